"""The player loop: audio chunk -> motion -> posed avatar -> rendered frame, streamed or written to a video.

:class:`StreamingPlayer` is what the viewer drives: ``feed`` audio chunks of any size as they arrive, pull
:class:`PlayerFrame` s from ``frames()`` (each carries its audio-to-frame latency), ``finish`` at the end.
:func:`play` runs the same loop over a whole file and writes an mp4 with the audio muxed in.

A motion file (SMPL-X ``.npz``) can drive the body alone, or the body while the audio drives the face: the
audio's head, neck and torso rotations are added on top of the file's, and its face channels replace the
file's channels of the same name (:func:`~.channels.combine_motion`).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from anchorsplat.gaussians.conventions import VIEW_YAWS_DEG, Cameras, framing_cameras
from anchorsplat.gaussians.device import resolve_device
from anchorsplat.gaussians.io import Avatar, load_avatar
from anchorsplat.gaussians.motion import Motion, load_motion
from anchorsplat.gaussians.rigged import canonical_means, pose
from anchorsplat.gaussians.video import VIDEO_SUFFIXES, VideoSink, to_uint8

from .audio import SAMPLE_RATE, Audio, audio_duration_s, load_audio, stream_audio
from .channels import combine_motion, motion_for_rig, resample_motion
from .motion import AudioToMotion, load_face_model
from .retrieval import build_style_memory

VIEWS = (*VIEW_YAWS_DEG, "face")


def view_cameras(avatar: Avatar, view: str, resolution: int, device: torch.device) -> Cameras:
    """One camera framing the whole body from a named view, or the head (``"face"``)."""
    if view not in VIEWS:
        raise ValueError(f"view {view!r} is not one of {list(VIEWS)}")
    points = canonical_means(avatar.gaussians, avatar.rig).float()
    yaw = VIEW_YAWS_DEG.get(view, 0.0)
    if view == "face" and "head" in avatar.rig.joint_names:
        head = avatar.rig.joints_rest[avatar.rig.joint_index("head")].float()
        near_head = (points[:, 1] > head[1] - 0.12) & ((points[:, [0, 2]] - head[[0, 2]]).norm(dim=-1) < 0.3)
        if int(near_head.sum()) >= 10:
            points = points[near_head]
    cams = framing_cameras(points, torch.tensor([yaw], device=points.device), width=resolution, height=resolution)
    return cams.to(device)


@dataclass(frozen=True, eq=False)
class PlayerFrame:
    """One rendered frame. ``latency_ms``: wall-clock time from the arrival of the last audio this frame needed
    to the frame being ready (queueing + motion + pose + render); ``compute_ms``: pose + render of this frame."""

    index: int
    time_s: float
    rgb: np.ndarray
    motion: Motion
    latency_ms: float
    compute_ms: float


class StreamingPlayer:
    """Audio (and/or a motion) in, rendered frames out, one frame at a time (module docstring).

    Args:
        avatar: an ``.anchorsplat`` path or an :class:`Avatar`.
        motion: an SMPL-X motion (path or :class:`Motion`) for the body; held at its last frame past its end.
        references: (audio, motion) pairs that personalise the face (:mod:`.retrieval`).
        sample_rate: rate of the fed audio chunks (any; resampled to 16 kHz on the fly).
    """

    def __init__(
        self,
        avatar: str | os.PathLike | Avatar,
        *,
        fps: float = 30.0,
        resolution: int = 512,
        view: str = "front",
        backend: str = "auto",
        device: str | torch.device = "auto",
        model: str | object = "learned",
        references: Sequence = (),
        lookahead_ms: float = 0.0,
        motion: str | os.PathLike | Motion | None = None,
        sample_rate: int = SAMPLE_RATE,
        background: tuple[float, float, float] = (1.0, 1.0, 1.0),
        seed: int = 0,
        head_motion: float = 1.0,
    ):
        if not 16 <= resolution <= 4096:
            raise ValueError(f"resolution {resolution} must be between 16 and 4096")
        self.device = resolve_device(device)
        avatar = avatar if isinstance(avatar, Avatar) else load_avatar(avatar)
        self.rig, self.gaussians = avatar.rig.to(self.device), avatar.gaussians.to(self.device)
        self.cameras = view_cameras(avatar, view, resolution, self.device)
        self.backend, self.fps = backend, float(fps)
        self.background = torch.tensor(background, dtype=torch.float32, device=self.device)
        self.body = None if motion is None else (motion if isinstance(motion, Motion) else load_motion(motion))
        face_model = load_face_model(model)
        style = build_style_memory(references, face_model) if references else None
        self.audio = AudioToMotion(
            face_model, fps=fps, lookahead_ms=lookahead_ms, style=style, seed=seed, head_motion=head_motion,
            sample_rate=sample_rate,
        )  # fmt: skip
        self._queue: deque[tuple[int, Motion, float]] = deque()  # (frame index, face motion, audio arrival time)
        self._next_index = 0

    @property
    def algorithmic_latency_ms(self) -> float:
        return self.audio.algorithmic_latency_ms

    def feed(self, samples: np.ndarray) -> int:
        """Add an audio chunk; returns how many frames it completed (pull them with :meth:`frames`)."""
        arrival = time.perf_counter()
        return self._enqueue(self.audio.push(samples), arrival)

    def finish(self) -> int:
        """End of the audio: completes the last frames."""
        return self._enqueue(self.audio.flush(), time.perf_counter())

    def _enqueue(self, face: Motion, arrival: float) -> int:
        for k in range(len(face)):
            self._queue.append((self._next_index, face.frame(k), arrival))
            self._next_index += 1
        return len(face)

    def frames(self) -> Iterator[PlayerFrame]:
        """Render every queued frame, oldest first."""
        while self._queue:
            index, face, arrival = self._queue.popleft()
            start = time.perf_counter()
            motion = self.frame_motion(index, face)
            rgb = self.render(motion)
            done = time.perf_counter()
            yield PlayerFrame(index, index / self.fps, rgb[0], motion, 1000 * (done - arrival), 1000 * (done - start))

    def frame_motion(self, index: int, face: Motion | None) -> Motion:
        """The full motion of frame ``index``: the body file's frame (if any) combined with the audio's face."""
        body = None
        if self.body is not None:
            source = min(round(index / self.fps * self.body.fps), len(self.body) - 1)  # hold the last frame
            body = resample_motion(self.body.frame(source), self.fps, 1)
        if face is None:
            return body if body is not None else Motion.zeros(1, fps=self.fps)
        return face if body is None else combine_motion(body, face)

    @torch.no_grad()
    def render(self, motion: Motion) -> np.ndarray:
        """B x H x W x 3 uint8 frames of the avatar posed by ``motion``."""
        from anchorsplat.gaussians.render import render

        dtype = self.rig.vertices_rest.dtype
        motion = motion_for_rig(motion, self.rig).to(device=self.device, dtype=dtype)
        posed = pose(self.gaussians, self.rig, motion)
        out = render(posed, self.cameras, backend=self.backend, background=self.background)
        return to_uint8(out.rgb[:, 0])


def iter_frames(
    player: StreamingPlayer, audio: Audio | None, frames: int, *, chunk_s: float | None = None
) -> Iterator[PlayerFrame]:
    """Every frame of a clip, in order, as the live loop would make them: ``audio`` (16 kHz) is fed in chunks of
    ``chunk_s`` seconds (default one frame) and each frame is rendered as soon as its audio is in; without audio
    the player's body motion alone drives ``frames`` frames. Stops after ``frames`` frames."""
    if audio is None:
        for index in range(frames):
            start = time.perf_counter()
            motion = player.frame_motion(index, None)
            rgb = player.render(motion)[0]
            ms = 1000 * (time.perf_counter() - start)
            yield PlayerFrame(index, index / player.fps, rgb, motion, ms, ms)
        return
    chunk = max(1, round(SAMPLE_RATE * (chunk_s if chunk_s is not None else 1.0 / player.fps)))
    chunks = (audio.samples[start : start + chunk] for start in range(0, len(audio.samples), chunk))
    yield from itertools.islice(stream_frames(player, chunks), frames)


def stream_frames(player: StreamingPlayer, chunks: Iterable[np.ndarray]) -> Iterator[PlayerFrame]:
    """Feed 16 kHz audio chunks as they come and yield each frame as soon as its audio is in, then the last ones."""
    for samples in chunks:
        player.feed(samples)
        yield from player.frames()
    player.finish()
    yield from player.frames()


def frame_count(samples: int, fps: float) -> int:
    """Frames of a video as long as ``samples`` of 16 kHz audio: ``ceil(duration * fps)``."""
    return int(np.ceil(samples / SAMPLE_RATE * fps - 1e-9))


def play(
    avatar_path: str | os.PathLike | Avatar,
    *,
    audio: str | os.PathLike | Audio | None = None,
    motion: str | os.PathLike | Motion | None = None,
    out: str | os.PathLike,
    resolution: int = 512,
    fps: float = 30.0,
    view: str = "front",
    backend: str = "auto",
    device: str = "auto",
    model: str | object = "learned",
    references: Sequence = (),
    lookahead_ms: float = 0.0,
    background: tuple[float, float, float] = (1.0, 1.0, 1.0),
    seed: int = 0,
    head_motion: float = 1.0,
    progress: bool = False,
) -> Path:
    """Render the avatar driven by ``audio`` and/or ``motion`` to a video with the audio muxed in.

    Without audio the video lasts as long as the motion (at ``fps``); with audio, as long as the audio
    (``ceil(duration * fps)`` frames; a shorter motion holds its last frame).

    Raises:
        ValueError: neither audio nor motion, an output that is not a video, or bad inputs (one clear line).
    """
    out = Path(out)
    if out.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"--out {out}: the player writes a video ({', '.join(sorted(VIDEO_SUFFIXES))})")
    if audio is None and motion is None:
        raise ValueError("nothing to play: pass --audio (speech) and/or --motion (an SMPL-X .npz)")
    if not 1 <= fps <= 240:
        raise ValueError(f"--fps {fps} must be between 1 and 240")
    streamed = audio is not None and not isinstance(audio, Audio)
    if streamed:  # a file: decoded, resampled and muxed piece by piece (an hour of audio never sits in memory)
        chunks = stream_audio(audio, chunk_s=1.0 / fps)
        first = next(chunks)  # a missing, unreadable or empty file fails here, before any output exists
        chunks = itertools.chain([first], chunks)
        sound = None
    else:
        sound = load_audio(audio) if audio is not None else None
    body = None if motion is None else (motion if isinstance(motion, Motion) else load_motion(motion))
    has_audio = streamed or sound is not None
    player = StreamingPlayer(
        avatar_path, fps=fps, resolution=resolution, view=view, backend=backend, device=device,
        model=model if has_audio else "baseline", references=references if has_audio else (),
        lookahead_ms=lookahead_ms, motion=body, background=background, seed=seed, head_motion=head_motion,
    )  # fmt: skip
    if streamed:
        seconds = audio_duration_s(audio)
        total = None if seconds is None else frame_count(round(seconds * SAMPLE_RATE), fps)
    elif sound is not None:
        total = frame_count(len(sound.samples), fps)
    else:
        total = max(1, round(len(body) / body.fps * fps))
    bar = _progress(total, progress)
    audio_track = None if sound is None else sound.samples
    with (
        contextlib.closing(bar),
        VideoSink(out, fps, audio=audio_track, sample_rate=SAMPLE_RATE, streamed_audio=streamed) as sink,
    ):
        if streamed:
            received = [0]

            def muxed(chunks=chunks):
                for samples in chunks:
                    received[0] += len(samples)
                    sink.write_audio(samples)
                    yield samples

            for frame in stream_frames(player, muxed()):
                if frame.index < frame_count(received[0], fps):  # past the audio's end: the last hop's spill
                    sink.write(frame.rgb)
                    bar.update(1)
        else:
            for frame in iter_frames(player, sound, total):
                sink.write(frame.rgb)
                bar.update(1)
    return out


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc="play", disable=not enabled)
