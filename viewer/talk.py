"""The "talk" control of one tab (:class:`Talk`): the page's microphone drives the tab's avatar live.

Start: the tab's panel gets the talk script (``web/talk.js``, run from an ``onerror`` handler because viser's
HTML component inserts markup, not scripts) with a fresh secret token; the script opens its own websocket to the
viser server (a connection that never sends a camera, so it never becomes a tab) and sends the microphone's
chunks with the token; the :class:`MicRouter` passes each chunk to the tab that holds its token. Each chunk goes
through the tab's own :class:`~.mic.MicStream`; each face frame it completes becomes the tab's live face (the
frame loop draws it) and is sent straight back to the page (localStorage, one small JSON per batch of frames), so "mic
chunk received -> motion sent" is measured on the server per frame (:attr:`Talk.latencies_ms`).
Stop (or the tab closing, mid-utterance or not): the page's script stops its microphone and closes its socket,
the token is forgotten (later chunks with it are dropped) and the worker joined.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable

from anchorsplat.gaussians.assets import package_data
from anchorsplat.gaussians.motion import Motion

from .inject import read_source, run_html, script_html
from .mic import MicFrame, MicStream, chunk_message_type

SCRIPT = package_data("anchorsplat.viewer", "web", "talk.js")
CHUNK_SAMPLES = 256
"""Samples per microphone chunk: 16 ms at 16 kHz (the issue asks for <= 20 ms)."""
SLOTS = 16
"""localStorage keys the motion updates rotate through: viser keeps only the newest value of a key when messages
bunch up, so consecutive updates go to different keys and the page reads them all."""
NO_AUDIO_S = 5.0
"""Talking without a single chunk for this long: tell the user the microphone sends nothing."""


def talk_html(motion_key: str, token: str, viser_version: str) -> str:
    """The panel markup that starts the microphone script (it replaces any earlier one)."""
    config = {
        "motionKey": motion_key, "token": token, "protocol": f"viser-v{viser_version}",
        "slots": SLOTS, "chunk": CHUNK_SAMPLES, "block": CHUNK_SAMPLES,
    }  # fmt: skip
    return script_html("anchorsplat-talk", [read_source(SCRIPT)], {"config": config})


class MicRouter:
    """Microphone chunks -> the tab whose secret token they carry (one handler on the server for all tabs)."""

    def __init__(self, server):
        self._lock = threading.Lock()
        self._talks: dict[str, Talk] = {}
        self.unrouted = 0
        server._websock_server.register_handler(chunk_message_type(), self._dispatch)

    def add(self, talk: Talk) -> str:
        token = secrets.token_urlsafe(18)
        with self._lock:
            self._talks[token] = talk
        return token

    def remove(self, token: str) -> None:
        with self._lock:
            self._talks.pop(token, None)

    def _dispatch(self, _client_id, chunk) -> None:
        with self._lock:
            talk = self._talks.get(chunk.token) if isinstance(chunk.token, str) else None
        if talk is None:
            self.unrouted += 1  # a stopped tab's late chunks, or a wrong token: nobody's avatar moves
            return
        talk.mic.receive(chunk)


STOP_HTML = run_html("if(window.anchorsplatTalk&&window.anchorsplatTalk.stop)window.anchorsplatTalk.stop()")


def jaw_open(motion: Motion) -> list[float]:
    """The ``jawOpen`` weight of every frame (0 where the motion has none)."""
    names = list(motion.expression_names)
    if "jawOpen" not in names:
        return [0.0] * len(motion)
    return [round(float(v), 4) for v in motion.expression[:, names.index("jawOpen")]]


class Talk:
    def __init__(
        self,
        client,
        model,
        router: MicRouter,
        *,
        fps: float,
        on_face: Callable[[Motion | None], None],
        notify: Callable[[str], None],
    ):
        self.client, self._on_face, self._notify, self._router = client, on_face, notify, router
        self.latencies_ms: deque[float] = deque(maxlen=2048)
        self.frames = self.updates = 0
        self._stop = threading.Event()
        self.mic = MicStream(
            model, fps=fps, on_frame=self._frame, on_error=notify, name=f"anchorsplat-mic-{client.client_id}"
        )
        self.token = router.add(self)
        self.motion_key = f"anchorsplat.talk.{client.client_id}.{self.token[:8]}"
        self._watch = threading.Thread(target=self._watchdog, name="anchorsplat-talk-watch", daemon=True)
        self._watch.start()

    def html(self) -> str:
        import viser

        return talk_html(self.motion_key, self.token, viser.__version__)

    def _frame(self, frame: MicFrame) -> None:
        self._on_face(frame.motion.frame(len(frame.motion) - 1))
        ready_ms = 1000.0 * (time.perf_counter() - frame.received)
        # every new frame goes out (viser keeps only the newest value of a key when messages bunch up)
        jaws = [[frame.first_index + k, jaw] for k, jaw in enumerate(jaw_open(frame.motion))]
        payload = json.dumps(
            {"n": self.updates, "frames": jaws, "seq": frame.seq, "sent": frame.sent_ms, "ms": round(ready_ms, 2)}
        )
        self.client.local_storage.set_item(f"{self.motion_key}.{self.updates % SLOTS}", payload)
        self.client.flush()
        self.latencies_ms.append(1000.0 * (time.perf_counter() - frame.received))  # chunk in -> motion sent
        self.frames += len(frame.motion)
        self.updates += 1

    def _watchdog(self) -> None:
        """Tell the user when no audio arrives at all (microphone refused or missing)."""
        if not self._stop.wait(NO_AUDIO_S) and not self.mic.chunks:
            self._notify("no microphone audio arrived: allow the microphone for this page and press Talk again")

    @property
    def server_latency_ms(self) -> float | None:
        return None if not self.latencies_ms else sorted(self.latencies_ms)[len(self.latencies_ms) // 2]

    def stop(self, *, page_open: bool = True) -> None:
        """Stop talking; ``page_open=False`` when the tab is gone (nothing more is sent to it)."""
        self._stop.set()
        self._router.remove(self.token)
        self.mic.stop()
        if self._watch is not threading.current_thread():
            self._watch.join(timeout=5.0)
        for slot in range(SLOTS if page_open else 0):
            self.client.local_storage.remove_item(f"{self.motion_key}.{slot}")
        self._on_face(None)
