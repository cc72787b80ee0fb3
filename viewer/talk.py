"""The "talk" control of one tab (:class:`Talk`): the page's microphone drives the tab's avatar live.

Start: the tab's panel gets the talk script (``web/talk.js``, run from an ``onerror`` handler because viser's
HTML component inserts markup, not scripts), a handler for microphone chunks is registered on this tab's
connection only, and the server asks the page for a localStorage item so the script can find the websocket.
Each chunk goes through the tab's own :class:`~.mic.MicStream`; each face frame it completes becomes the tab's
live face (the frame loop draws it) and is sent straight back to the page (localStorage, one small JSON per
frame), so "mic chunk received -> motion sent" is measured on the server per frame (:attr:`Talk.latencies_ms`).
Stop (or the tab closing, mid-utterance or not): the page's script stops its microphone, the handler is
unregistered and the worker joined.
"""

from __future__ import annotations

import html
import json
import threading
import time
from collections import deque
from collections.abc import Callable

from anchorsplat.gaussians.assets import package_data
from anchorsplat.gaussians.motion import Motion

from .mic import MicFrame, MicStream, chunk_message_type

SCRIPT = package_data("anchorsplat.viewer", "web", "talk.js")
CHUNK_SAMPLES = 256
"""Samples per microphone chunk: 16 ms at 16 kHz (the issue asks for <= 20 ms)."""
NO_AUDIO_S = 5.0
"""Talking without a single chunk for this long: tell the user the microphone sends nothing."""


def _run_script_html(element_id: str, source: str, config: dict) -> str:
    loader = (
        "var d=document,s=d.createElement('script');"
        f"s.text=d.getElementById('{element_id}').textContent;d.head.appendChild(s);"
    )
    data = json.dumps(config).replace("<", "\\u003c")  # script text is raw: no "</script>" inside
    return (
        f'<script type="application/json" id="anchorsplat-talk-config">{data}</script>'
        f'<script type="text/plain" id="{element_id}">{source}</script>'
        f'<img alt="" hidden src="data:image/gif;base64,AA" onerror="{html.escape(loader)}">'
    )


def talk_html(motion_key: str) -> str:
    """The panel markup that starts the microphone script (it replaces any earlier one)."""
    source = SCRIPT.read_text(encoding="utf-8")
    assert "</script" not in source
    return _run_script_html(
        "anchorsplat-talk-src", source, {"motionKey": motion_key, "chunk": CHUNK_SAMPLES, "block": CHUNK_SAMPLES}
    )


STOP_HTML = (
    '<img alt="" hidden src="data:image/gif;base64,AA" '
    'onerror="if(window.anchorsplatTalk&amp;&amp;window.anchorsplatTalk.stop)window.anchorsplatTalk.stop()">'
)


def jaw_open(motion: Motion) -> float:
    names = list(motion.expression_names)
    return float(motion.expression[0, names.index("jawOpen")]) if "jawOpen" in names else 0.0


class Talk:
    def __init__(
        self,
        client,
        model,
        *,
        fps: float,
        on_face: Callable[[Motion | None], None],
        notify: Callable[[str], None],
    ):
        self.client, self._on_face, self._notify = client, on_face, notify
        self.motion_key = f"anchorsplat.talk.{client.client_id}"
        self.latencies_ms: deque[float] = deque(maxlen=2048)
        self.frames = 0
        self._stop = threading.Event()
        self.mic = MicStream(
            model, fps=fps, on_frame=self._frame, on_error=notify, name=f"anchorsplat-mic-{client.client_id}"
        )
        self._message = chunk_message_type()
        self._handler = lambda _client_id, message: self.mic.receive(message)
        client._websock_connection.register_handler(self._message, self._handler)
        self._watch = threading.Thread(target=self._watchdog, name="anchorsplat-talk-watch", daemon=True)
        self._watch.start()

    def _frame(self, frame: MicFrame) -> None:
        self._on_face(frame.motion)
        ready_ms = 1000.0 * (time.perf_counter() - frame.received)
        payload = json.dumps([frame.seq, frame.sent_ms, round(jaw_open(frame.motion), 4), round(ready_ms, 2)])
        self.client.local_storage.set_item(self.motion_key, payload)
        self.client.flush()
        self.latencies_ms.append(1000.0 * (time.perf_counter() - frame.received))  # chunk in -> motion sent
        self.frames += 1

    def _watchdog(self) -> None:
        """Ping the page until its script found the websocket (its reply passes through the patched send), and
        tell the user when no audio arrives at all (microphone refused or missing)."""
        started = time.perf_counter()
        while not self._stop.wait(0.3):
            if self.mic.chunks:
                return
            try:
                self.client.local_storage.get_item("anchorsplat.ping", timeout=1.0)
            except (RuntimeError, TimeoutError):
                pass
            if time.perf_counter() - started > NO_AUDIO_S:
                self._notify("no microphone audio arrived: allow the microphone for this page and press Talk again")
                return

    @property
    def server_latency_ms(self) -> float | None:
        return None if not self.latencies_ms else sorted(self.latencies_ms)[len(self.latencies_ms) // 2]

    def stop(self) -> None:
        self._stop.set()
        try:
            self.client._websock_connection.unregister_handler(self._message, self._handler)
        except (AssertionError, ValueError):
            pass
        self.mic.stop()
        if self._watch is not threading.current_thread():
            self._watch.join(timeout=5.0)
        self._on_face(None)
