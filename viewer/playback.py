"""Audio in the viewer: checking an uploaded file, the playback clock, the streaming face, and the browser's
``<audio>`` element.

Timing: the server's :class:`PlaybackClock` is the master. Pressing play starts it and sends the browser an
``<audio>`` element that starts at the clock's position; the element writes ``[currentTime, Date.now()]`` to
the browser's localStorage on every ``timeupdate``, the session reads it back about once a second and
:meth:`PlaybackClock.nudge` s the clock onto the audio the user actually hears (the browser's decode and start-up
delay), so the mouth follows what is heard. The face comes from :class:`~anchorsplat.runtime.motion.AudioToMotion`
fed in real time as the clock advances (causal, as a live microphone would be): the frame on screen shows the
newest face frame the audio heard so far completes, and the audio-to-frame latency is how far the clock has
moved past that frame's time by the moment the frame is sent.
"""

from __future__ import annotations

import base64
import io
import tempfile
import threading
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anchorsplat.gaussians.motion import Motion
from anchorsplat.runtime.audio import SAMPLE_RATE, Audio, load_audio
from anchorsplat.runtime.motion import AudioToMotion

MAX_UPLOAD_BYTES = 64 * 1024 * 1024
MAX_AUDIO_SECONDS = 300.0
PREROLL_S = 1.0
"""Audio fed to a fresh face stream before the seek point, so features and the model's state are warm."""


def check_upload_size(name: str, size: int, limit: int = MAX_UPLOAD_BYTES) -> None:
    if size > limit:
        raise ValueError(
            f"{name} is {size / 2**20:.1f} MiB, more than the {limit / 2**20:.0f} MiB the viewer accepts: "
            "upload a shorter or compressed file"
        )
    if size == 0:
        raise ValueError(f"{name} is empty: upload a file with content")


def decode_audio_upload(name: str, content: bytes, *, max_seconds: float = MAX_AUDIO_SECONDS) -> Audio:
    """An uploaded file's bytes -> mono 16 kHz :class:`Audio`; ValueError (one line) when it is too large, not
    audio, or too long."""
    check_upload_size(name, len(content))
    suffix = Path(name).suffix.lower()
    with tempfile.TemporaryDirectory(prefix="anchorsplat-upload-") as folder:
        path = Path(folder) / f"upload{suffix if suffix.isascii() and len(suffix) <= 8 else ''}"
        path.write_bytes(content)
        try:
            audio = load_audio(path)
        except ValueError as exc:
            raise ValueError(f"{name} is not audio the viewer can read: {_short(exc)}") from None
    if audio.duration_s > max_seconds:
        raise ValueError(f"{name} lasts {audio.duration_s:.0f} s; the viewer plays at most {max_seconds:.0f} s")
    return audio


def _short(exc: Exception) -> str:
    text = str(exc).replace(str(Path(tempfile.gettempdir())), "")
    return text if len(text) < 300 else text[:297] + "..."


def wav_bytes(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """16-bit PCM mono WAV of float samples in [-1, 1]."""
    pcm = (np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0) * 32767.0).round().astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.tobytes())
    return buffer.getvalue()


def audio_element_html(data_url: str, clock_key: str, position_s: float, playing: bool) -> str:
    """An invisible ``<audio>`` element for viser's HTML component: it starts at ``position_s`` (playing or not)
    and reports its clock to localStorage under ``clock_key`` (viser's ``viser-user:`` namespace)."""
    report = (
        f"localStorage.setItem('viser-user:{clock_key}', JSON.stringify([this.currentTime, Date.now(), this.paused]))"
    )
    start = f"this.currentTime={position_s:.4f};" + ("this.play().catch(function(){});" if playing else "")
    return (
        f'<audio data-anchorsplat="audio" preload="auto" src="{data_url}" '
        f'onloadedmetadata="{start}" ontimeupdate="{report}" onplaying="{report}"></audio>'
    )


def data_url(wav: bytes) -> str:
    return "data:audio/wav;base64," + base64.b64encode(wav).decode("ascii")


class PlaybackClock:
    """Position in seconds over [0, duration]: play / pause / seek, and nudging onto an external clock."""

    def __init__(self, duration_s: float = 0.0, *, loop: bool = False, clock=time.perf_counter):
        self._lock = threading.Lock()
        self._clock = clock
        self.duration_s = float(duration_s)
        self.loop = loop
        self._playing = False
        self._anchor_pos = 0.0
        self._anchor_time = clock()

    @property
    def playing(self) -> bool:
        with self._lock:
            return self._playing and not self._ended(self._raw())

    def _raw(self) -> float:
        if not self._playing:
            return self._anchor_pos
        return self._anchor_pos + (self._clock() - self._anchor_time)

    def _ended(self, raw: float) -> bool:
        return not self.loop and raw >= self.duration_s

    def position(self) -> float:
        with self._lock:
            raw = self._raw()
        if self.duration_s <= 0:
            return 0.0
        if self.loop:
            return raw % self.duration_s
        return min(max(raw, 0.0), self.duration_s)

    def play(self) -> None:
        with self._lock:
            pos = self._raw()
            if self._ended(pos) or (self.loop and self.duration_s > 0):
                pos = 0.0 if self._ended(pos) else pos % self.duration_s
            self._anchor_pos, self._anchor_time, self._playing = pos, self._clock(), True

    def pause(self) -> None:
        with self._lock:
            raw = self._raw()
            self._anchor_pos = raw % self.duration_s if self.loop and self.duration_s > 0 else min(raw, self.duration_s)
            self._anchor_time, self._playing = self._clock(), False

    def seek(self, position_s: float) -> None:
        with self._lock:
            self._anchor_pos = min(max(float(position_s), 0.0), max(self.duration_s, 0.0))
            self._anchor_time = self._clock()

    def nudge(self, offset_s: float) -> None:
        """Move the clock by ``offset_s`` (positive: later), e.g. onto the audio the browser reports playing."""
        with self._lock:
            self._anchor_pos += float(offset_s)


@dataclass(frozen=True, eq=False)
class FaceFrame:
    """The newest face frame the audio heard so far completes, and the audio time it shows."""

    motion: Motion
    time_s: float


class FaceStream:
    """Audio -> face motion, fed in real time: :meth:`advance` to the clock's position returns the newest face
    frame. A backwards seek (or a jump ahead of more than a few seconds) restarts the causal stream from
    :data:`PREROLL_S` before the new position."""

    def __init__(self, audio: Audio, model, *, fps: float = 30.0, seed: int = 0):
        if audio.sample_rate != SAMPLE_RATE:
            raise ValueError(f"FaceStream needs {SAMPLE_RATE} Hz audio, got {audio.sample_rate} Hz")
        self.audio, self.model, self.fps, self.seed = audio, model, float(fps), seed
        self._lock = threading.Lock()
        self._restart(0)

    def _restart(self, start_sample: int) -> None:
        self._stream = AudioToMotion(self.model, fps=self.fps, seed=self.seed)
        self._start = start_sample
        self._fed = start_sample
        self._frames = 0
        self._last: Motion | None = None

    def advance(self, position_s: float) -> FaceFrame:
        """Feed the audio up to ``position_s`` and return the newest frame (the neutral face before the first)."""
        target = min(max(int(round(position_s * SAMPLE_RATE)), 0), len(self.audio.samples))
        with self._lock:
            if target < self._fed or target - self._fed > 5 * SAMPLE_RATE:
                self._restart(max(0, target - int(PREROLL_S * SAMPLE_RATE)))
            if target > self._fed:
                out = self._stream.push(self.audio.samples[self._fed : target])
                self._fed = target
                if len(out):
                    self._frames += len(out)
                    self._last = out.frame(len(out) - 1)
            if self._last is None:
                return FaceFrame(Motion.zeros(1, fps=self.fps), self._start / SAMPLE_RATE)
            return FaceFrame(self._last, self._start / SAMPLE_RATE + (self._frames - 1) / self.fps)
