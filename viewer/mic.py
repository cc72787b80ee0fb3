"""The live microphone of one tab: 16 kHz mono chunks from the browser -> causal face motion (:class:`MicStream`).

Wire: the page's talk script (``web/talk.js``) sends one chunk message per <= 20 ms of audio (a viser message
type of ours, :func:`chunk_message_type`) over a websocket of its own to the viser server (viser's client keeps
its socket inside a web worker, out of reach), tagged with a secret token the server gave that tab only: the
:class:`~.talk.MicRouter` hands a chunk to the tab whose token it carries and drops any other. On the server a
chunk is checked and queued on viser's event loop (nothing slow there); the tab's worker thread feeds it to its
own :class:`~anchorsplat.runtime.motion.AudioToMotion` (0 look-ahead: a frame is final once the audio up to its
time has arrived) and hands every new face frame to the session, with the chunk's arrival time.

Bad input is refused with one message to the user and the chunk dropped: a sample rate other than 16 kHz, a
format other than ``s16le`` / ``f32le``, an empty or > 20 ms chunk, and a client that sends faster than real time
(more audio than wall-clock time since the first chunk, plus :data:`SLACK_S`). The queue is bounded;
:meth:`MicStream.stop` ends the worker (bounded join), mid-utterance or not.
"""

from __future__ import annotations

import dataclasses
import functools
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from anchorsplat.gaussians.motion import Motion
from anchorsplat.runtime.audio import SAMPLE_RATE
from anchorsplat.runtime.motion import AudioToMotion

MAX_CHUNK_S = 0.02
FORMATS = {"s16le": ("<i2", 1.0 / 32768.0), "f32le": ("<f4", 1.0)}
SLACK_S = 0.5
"""Audio a client may be ahead of real time (network bunching) before chunks are refused."""
MAX_QUEUED = 128
"""Chunks waiting for the worker (about two seconds of 16 ms chunks) before new ones are dropped."""


@functools.cache
def chunk_message_type() -> type:
    """The viser message class of a microphone chunk (defined on first use: viser is imported lazily)."""
    from viser import _messages

    @dataclasses.dataclass
    class AnchorsplatMicChunk(_messages.Message, include_in_scene_serialization=False):
        """Browser -> server: one chunk of microphone audio (mono)."""

        token: str
        """The tab's talk token (a secret the server gave that tab only)."""
        seq: int
        sample_rate: int
        format: str
        samples: bytes
        sent_ms: float
        """The page's ``performance.now()`` when it sent the chunk (echoed back with the motion)."""

    # viser maps a message's "type" to its class through a cached table of Message subclasses: refresh it now
    # that this one exists, or the server would not recognise the chunks.
    _messages.Message._subclass_from_type_string.cache_clear()
    return AnchorsplatMicChunk


@dataclass(frozen=True, eq=False)
class MicFrame:
    """The face frames one batch of microphone audio completed, and the newest chunk of that batch."""

    motion: Motion
    """K >= 1 frames; the last one is the newest face."""
    first_index: int
    """Stream frame index of ``motion``'s first frame: frame k shows the audio up to ``k / fps`` seconds after
    the first chunk the server received."""
    seq: int
    sent_ms: float
    received: float
    """When the chunk arrived on the server (``time.perf_counter``)."""


def decode_chunk(chunk) -> np.ndarray:
    """The chunk's samples as float32 in [-1, 1]; ValueError (one line for the user) when it is unusable."""
    if chunk.sample_rate != SAMPLE_RATE:
        raise ValueError(
            f"microphone audio arrives at {chunk.sample_rate} Hz; talk needs {SAMPLE_RATE} Hz mono: "
            "use a browser that resamples (Chrome, Firefox) or a 16 kHz input"
        )
    if chunk.format not in FORMATS:
        raise ValueError(f"microphone audio format {chunk.format!r} is not one of {sorted(FORMATS)}")
    dtype, scale = FORMATS[chunk.format]
    width = np.dtype(dtype).itemsize
    if not isinstance(chunk.samples, bytes | bytearray | memoryview) or len(chunk.samples) % width:
        raise ValueError(f"a microphone chunk is not whole {chunk.format} samples")
    count = len(chunk.samples) // width
    if not 0 < count <= int(MAX_CHUNK_S * SAMPLE_RATE):
        raise ValueError(f"a microphone chunk holds {count} samples; send 1 to {int(MAX_CHUNK_S * SAMPLE_RATE)}")
    samples = np.frombuffer(chunk.samples, dtype=dtype).astype(np.float32) * scale
    if not np.all(np.isfinite(samples)):
        raise ValueError("a microphone chunk holds NaN or infinite samples")
    return np.clip(samples, -1.0, 1.0)


class MicStream:
    def __init__(
        self,
        model,
        *,
        fps: float,
        on_frame: Callable[[MicFrame], None],
        on_error: Callable[[str], None],
        name: str = "anchorsplat-mic",
        clock: Callable[[], float] = time.perf_counter,
    ):
        self._stream = AudioToMotion(model, fps=fps, lookahead_ms=0.0)
        self._on_frame, self._on_error, self._clock = on_frame, on_error, clock
        self._queue: queue.Queue = queue.Queue(maxsize=MAX_QUEUED)
        self._first: float | None = None
        self._received_s = 0.0
        self._reported: set[str] = set()
        self.chunks = self.dropped = 0
        self.processed = 0
        """Chunks the worker has fed to the stream."""
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def receive(self, chunk) -> None:
        """Check and queue one chunk (called on viser's event loop: never blocks)."""
        if self._stopped.is_set():
            return
        now = self._clock()
        try:
            samples = decode_chunk(chunk)
        except ValueError as exc:
            return self._drop("format", str(exc))
        if self._first is None:
            self._first = now
        if self._received_s + len(samples) / SAMPLE_RATE > now - self._first + SLACK_S:
            return self._drop("rate", "the microphone stream arrives faster than real time: extra audio was dropped")
        try:
            self._queue.put_nowait((now, chunk.seq, chunk.sent_ms, samples))
        except queue.Full:
            return self._drop("queue", "the server cannot keep up with the microphone: audio was dropped")
        self._received_s += len(samples) / SAMPLE_RATE
        self.chunks += 1

    def _drop(self, kind: str, message: str) -> None:
        self.dropped += 1
        if kind not in self._reported:  # one message per kind, not one per chunk
            self._reported.add(kind)
            self._on_error(message)

    def _run(self) -> None:
        """Feed queued chunks to the stream: everything waiting goes in one push (a busy CPU falls behind by a
        batch, not by a growing queue; the stream's output does not depend on how audio is chunked) and the
        newest frame it completes goes out, stamped with the last chunk's arrival."""
        while True:
            batch = [self._queue.get()]
            while batch[-1] is not None:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = batch[-1] is None or self._stopped.is_set()
            chunks = [item for item in batch if item is not None]
            if chunks and not stop:
                received, seq, sent_ms, _ = chunks[-1]
                first = self._stream.frames_out
                frames = self._stream.push(np.concatenate([item[3] for item in chunks]))
                if len(frames):
                    self._on_frame(MicFrame(frames, first, seq, sent_ms, received))
                self.processed += len(chunks)
            if stop:
                return

    def stop(self, timeout: float = 5.0) -> None:
        """End the worker now (queued audio is dropped)."""
        self._stopped.set()
        while True:  # make room for the sentinel: the worker may be busy and the queue full
            try:
                self._queue.put_nowait(None)
                break
            except queue.Full:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    pass
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=timeout)
