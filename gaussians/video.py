"""The one video encoder (PyAV: H.264 yuv420p, mono AAC audio muxed in) and image writer (Pillow); both atomic.

:class:`VideoSink` takes frames one at a time, so a long clip never holds all its frames in memory (the player
streams through it); :func:`write_video` is the same encoder for frames already in memory. Also the one list of
audio file suffixes the project accepts (:data:`AUDIO_SUFFIXES`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np

from .fileio import atomic_path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm"}
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".m4a", ".aac", ".opus", ".webm")
"""Audio files the player, viewer and web export take (FFmpeg decodes them; browsers play them)."""
_AAC_FRAME = 1024  # samples per AAC frame


def to_uint8(frames) -> np.ndarray:
    """Float frames in [0, 1] (torch or numpy, ... H W 3) to uint8 numpy."""
    array = frames.detach().cpu().numpy() if hasattr(frames, "detach") else np.asarray(frames)
    return (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_image(path: str | os.PathLike, frame: np.ndarray) -> Path:
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f"cannot write an image to {path}: use one of {sorted(IMAGE_SUFFIXES)}")
    with atomic_path(path) as tmp:
        Image.fromarray(frame).save(tmp, format="JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else None)
    return path


class VideoSink:
    """``with VideoSink(path, fps, audio=samples) as sink: sink.write(frame)`` (frames H x W x 3 uint8).

    The file appears when the block ends without an error; on an error (or a kill) only a hidden temp file
    was written, and it is removed (a killed process's one is swept by the next bake of its job).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float,
        *,
        audio: np.ndarray | None = None,
        sample_rate: int = 16000,
        streamed_audio: bool = False,
    ):
        """``audio``: the whole track, muxed at the end; or ``streamed_audio``: the track arrives in pieces through
        :meth:`write_audio` as the frames are made (a long track never sits in memory)."""
        self.path = Path(path)
        if self.path.suffix.lower() not in VIDEO_SUFFIXES:
            raise ValueError(f"cannot write a video to {self.path}: use one of {sorted(VIDEO_SUFFIXES)}")
        if not (np.isfinite(fps) and 0 < fps <= 240):
            raise ValueError(f"video frame rate {fps} must be above 0 and at most 240")
        self.fps, self.audio, self.sample_rate = fps, audio, sample_rate
        self.streamed_audio = streamed_audio
        self.frames = 0
        self._container = self._stream = self._audio_stream = None
        self._pending_audio: list[np.ndarray] = []
        self._pending_count = 0
        self._exit = contextlib.ExitStack()

    def __enter__(self) -> VideoSink:
        import av

        tmp = self._exit.enter_context(atomic_path(self.path))
        self._container = av.open(str(tmp), mode="w")
        return self

    def write(self, frame: np.ndarray) -> None:
        import av

        if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected an H x W x 3 uint8 frame, got {frame.shape} {frame.dtype}")
        h, w = frame.shape[:2]
        if h % 2 or w % 2:  # yuv420p needs even sizes
            frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        if self._stream is None:
            self._stream = self._container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1001))
            self._stream.width, self._stream.height = frame.shape[1], frame.shape[0]
            self._stream.pix_fmt = "yuv420p"
            self._stream.options = {"crf": "18", "preset": "veryfast"}
            if self.streamed_audio or (self.audio is not None and len(self.audio)):  # streams before packets
                self._audio_stream = self._container.add_stream("aac", rate=self.sample_rate)
                self._audio_stream.layout = "mono"
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in self._stream.encode(video_frame):
            self._container.mux(packet)
        self.frames += 1

    def write_audio(self, samples: np.ndarray) -> None:
        """The next piece of the mono float track (``streamed_audio``); encoded in whole AAC frames as it comes."""
        if not self.streamed_audio:
            raise ValueError("this VideoSink was made without streamed_audio=True")
        self._pending_audio.append(np.clip(np.asarray(samples, dtype=np.float32).reshape(-1), -1, 1))
        self._pending_count += len(self._pending_audio[-1])
        if self._audio_stream is not None and self._pending_count >= _AAC_FRAME:
            self._encode_audio(final=False)

    def _encode_audio(self, final: bool) -> None:
        import av

        samples = np.concatenate(self._pending_audio) if self._pending_audio else np.zeros(0, np.float32)
        usable = len(samples) if final else len(samples) - len(samples) % _AAC_FRAME
        for start in range(0, usable, _AAC_FRAME):
            frame = av.AudioFrame.from_ndarray(samples[None, start : min(start + _AAC_FRAME, usable)].copy(),
                                               format="fltp", layout="mono")  # fmt: skip
            frame.sample_rate = self.sample_rate
            for packet in self._audio_stream.encode(frame):
                self._container.mux(packet)
        self._pending_audio = [samples[usable:]]
        self._pending_count = len(samples) - usable

    def _finish(self) -> None:
        if self._stream is None:
            raise ValueError(f"no frames were written to {self.path}")
        for packet in self._stream.encode():
            self._container.mux(packet)
        if self._audio_stream is not None:
            if not self.streamed_audio:
                self._pending_audio = [np.clip(np.asarray(self.audio, dtype=np.float32).reshape(-1), -1, 1)]
            self._encode_audio(final=True)
            for packet in self._audio_stream.encode():
                self._container.mux(packet)

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is None:
                self._finish()
        except BaseException as error:
            self._container.close()
            self._exit.__exit__(type(error), error, error.__traceback__)
            raise
        self._container.close()
        return bool(self._exit.__exit__(exc_type, exc, tb))


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray | Iterable[np.ndarray],
    fps: float,
    *,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
) -> Path:
    """Encode T x H x W x 3 uint8 frames (an array or any iterable of frames) with optional mono float audio."""
    path = Path(path)
    if isinstance(frames, np.ndarray) and (frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0):
        raise ValueError(f"expected T x H x W x 3 frames, got {frames.shape}")
    with VideoSink(path, fps, audio=audio, sample_rate=sample_rate) as sink:
        for frame in frames:
            sink.write(frame)
    return path
