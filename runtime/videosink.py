"""An mp4 written frame by frame (H.264, yuv420p) with mono audio muxed in as AAC, atomically.

:func:`anchorsplat.gaussians.video.write_video` takes every frame at once; the player streams frames as it renders
them, so a long clip never holds all its frames in memory. Same encoder settings as ``write_video``.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from anchorsplat.gaussians.video import VIDEO_SUFFIXES, _temp_in


class VideoSink:
    """``with VideoSink(path, fps, audio=samples) as sink: sink.write(frame)`` (frames H x W x 3 uint8)."""

    def __init__(
        self, path: str | os.PathLike, fps: float, *, audio: np.ndarray | None = None, sample_rate: int = 16000
    ):
        self.path = Path(path)
        if self.path.suffix.lower() not in VIDEO_SUFFIXES:
            raise ValueError(f"cannot write a video to {self.path}: use one of {sorted(VIDEO_SUFFIXES)}")
        self.fps, self.audio, self.sample_rate = fps, audio, sample_rate
        self.frames = 0
        self._container = self._stream = self._audio_stream = self._tmp = None

    def __enter__(self) -> VideoSink:
        import av

        self._tmp = _temp_in(self.path)
        self._container = av.open(str(self._tmp), mode="w")
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
            if self.audio is not None and len(self.audio):  # every stream exists before the first packet
                self._audio_stream = self._container.add_stream("aac", rate=self.sample_rate)
                self._audio_stream.layout = "mono"
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in self._stream.encode(video_frame):
            self._container.mux(packet)
        self.frames += 1

    def _finish(self) -> None:
        import av

        if self._stream is None:
            raise ValueError(f"no frames were written to {self.path}")
        for packet in self._stream.encode():
            self._container.mux(packet)
        stream = self._audio_stream
        if stream is not None:
            samples = np.clip(np.asarray(self.audio, dtype=np.float32), -1, 1)[None]
            for start in range(0, samples.shape[1], 1024):
                frame = av.AudioFrame.from_ndarray(
                    samples[:, start : start + 1024].copy(), format="fltp", layout="mono"
                )
                frame.sample_rate = self.sample_rate
                for packet in stream.encode(frame):
                    self._container.mux(packet)
            for packet in stream.encode():
                self._container.mux(packet)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._finish()
            self._container.close()
            if exc_type is None:
                os.replace(self._tmp, self.path)
        finally:
            self._tmp.unlink(missing_ok=True)
