"""The frame loop of one tab (:class:`FrameLoop`): one thread that renders only when there is something to show.

Three reasons to draw: a change (camera, control, upload: :meth:`FrameLoop.request`), animation (playback,
orbit, a live microphone: at the target frame rate), and refinement (a still view after a change: frames keep
coming while ``frame(moving=False)`` returns True, i.e. until the server render reached the full canvas). An idle
tab costs one wake-up every quarter second. :meth:`FrameLoop.stop` joins the thread (bounded wait).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class FrameLoop:
    def __init__(
        self,
        name: str,
        *,
        fps: float,
        still_after_s: float,
        animating: Callable[[], bool],
        frame: Callable[[bool], bool],
        on_error: Callable[[Exception], None],
    ):
        """``frame(moving)`` draws one frame; with ``moving=False`` it refines and returns whether it drew."""
        self.period, self.still_after_s = 1.0 / fps, still_after_s
        self._animating, self._frame, self._on_error = animating, frame, on_error
        self._dirty = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def request(self) -> None:
        """Something changed: draw a frame soon."""
        self._dirty.set()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def stop(self, timeout: float = 5.0) -> None:
        self._closed.set()
        self._dirty.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=timeout)

    def _run(self) -> None:
        last_change, refining, next_due = -1e9, False, 0.0
        while not self._closed.is_set():
            animating = self._animating()
            still_in = last_change + self.still_after_s - time.perf_counter()
            if animating:
                timeout = max(next_due - time.perf_counter(), 0.0)
            elif refining:
                timeout = max(still_in, 0.0)
            else:
                timeout = 0.25
            changed = self._dirty.wait(timeout=timeout)
            if self._closed.is_set():
                break
            now = time.perf_counter()
            if changed:
                self._dirty.clear()
                last_change = now
            moving = animating or now - last_change < self.still_after_s
            if not (changed or animating or refining) or (moving and not changed and not animating):
                continue  # idle, or waiting for the view to come to rest before refining
            try:
                drew = self._frame(moving)
            except Exception as exc:  # noqa: BLE001 - a bad frame must not kill the tab's loop
                self._on_error(exc)
                drew = False
                self._closed.wait(0.5)
            refining = moving or drew
            next_due = now + self.period
