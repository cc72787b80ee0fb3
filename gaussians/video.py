"""Write frames (and optionally audio) to video files with PyAV; images with Pillow. Atomic writes."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm"}


def to_uint8(frames) -> np.ndarray:
    """Float frames in [0, 1] (torch or numpy, ... H W 3) to uint8 numpy."""
    array = frames.detach().cpu().numpy() if hasattr(frames, "detach") else np.asarray(frames)
    return (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _temp_in(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)
    return Path(tmp)


def write_image(path: str | os.PathLike, frame: np.ndarray) -> Path:
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f"cannot write an image to {path}: use one of {sorted(IMAGE_SUFFIXES)}")
    tmp = _temp_in(path)
    try:
        Image.fromarray(frame).save(tmp, format=None if path.suffix.lower() != ".jpg" else "JPEG")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: float,
    *,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
) -> Path:
    """Encode T x H x W x 3 uint8 frames as H.264 (yuv420p) with optional mono float audio muxed in as AAC."""
    import av

    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"cannot write a video to {path}: use one of {sorted(VIDEO_SUFFIXES)}")
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"expected T x H x W x 3 frames, got {frames.shape}")
    h, w = frames.shape[1:3]
    if h % 2 or w % 2:  # yuv420p needs even sizes
        frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    tmp = _temp_in(path)
    try:
        with av.open(str(tmp), mode="w") as container:
            from fractions import Fraction

            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "18", "preset": "veryfast"}
            audio_stream = None
            if audio is not None:
                audio_stream = container.add_stream("aac", rate=sample_rate)
                audio_stream.layout = "mono"
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
            if audio_stream is not None:
                samples = np.clip(np.asarray(audio, dtype=np.float32), -1, 1)[None]
                chunk = 1024
                for start in range(0, samples.shape[1], chunk):
                    af = av.AudioFrame.from_ndarray(
                        samples[:, start : start + chunk].copy(), format="fltp", layout="mono"
                    )
                    af.sample_rate = sample_rate
                    for packet in audio_stream.encode(af):
                        container.mux(packet)
                for packet in audio_stream.encode():
                    container.mux(packet)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
