"""What one browser tab holds (:class:`TabState`) and the narrow context every tab shares (:class:`ViewerContext`).

A tab's state is plain data behind one lock: the avatar it shows, the hand controls, the playback clock, the
audio's face stream, the live microphone's face, the body motion and the display flags. It never touches the
browser; the session's GUI and scene adapters read it. The only thing tabs share is the :class:`ViewerContext`
(settings, device, the read-only face model and the start-up audio/motion), so one tab's audio, motion and
model state can never reach another tab.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from anchorsplat.gaussians.conventions import framing_cameras
from anchorsplat.gaussians.io import Avatar
from anchorsplat.gaussians.motion import Motion
from anchorsplat.gaussians.rigged import canonical_means
from anchorsplat.runtime.audio import Audio

from .controls import ManualControls, frame_motion
from .playback import FaceStream, PlaybackClock

MODES = ("server render", "client splats")
CAMERA_PRESETS = ("front", "left", "back", "right")


@dataclass(frozen=True, eq=False)
class LoadedAvatar:
    """An avatar on the render device, with what the viewer derives from it once."""

    avatar: Avatar
    name: str
    target: np.ndarray  # framing centre
    distance: float  # framing distance of a front camera

    @staticmethod
    def make(avatar: Avatar, name: str, device: torch.device) -> LoadedAvatar:
        moved = Avatar(avatar.rig.to(device), avatar.gaussians.to(device), avatar.info)
        points = canonical_means(avatar.gaussians, avatar.rig).float()
        cams = framing_cameras(points, torch.tensor([0.0]), width=640, height=480)
        eye = cams.T_world_cam[0, :3, 3]
        lo, hi = points.min(0).values, points.max(0).values
        target = ((lo + hi) / 2).numpy().astype(np.float64)
        return LoadedAvatar(moved, name, target, float((eye - torch.from_numpy(target).float()).norm()))


@dataclass(frozen=True, eq=False)
class ViewerContext:
    """What a tab may use of the viewer: settings, the render device, the face model (read-only weights; each tab
    runs its own stream state) and the audio/motion every tab starts with. Sessions get this, never the app."""

    settings: Any  # ViewerSettings (app.py imports this module, so the type is not imported here)
    device: torch.device
    face_model: object
    initial_audio: Audio | None = None
    initial_motion: Motion | None = None
    mic_router: Any = None
    """The server's :class:`~.talk.MicRouter` (microphone chunks -> the tab that holds their token)."""


@dataclass
class Stats:
    frames: int = 0
    window_start: float = 0.0
    fps: float = 0.0
    compute_ms: float = 0.0
    latency_ms: float | None = None
    av_offset_ms: float | None = None
    size: tuple[int, int] = (0, 0)
    mic_ms: float | None = None
    """Microphone chunk received -> its face frame ready on the server (smoothed), while talking."""


@dataclass
class TabState:
    """One tab's avatar, controls, playback and display flags. Mutate through the methods (they hold the lock)."""

    avatar: LoadedAvatar
    mode: str
    controls: ManualControls = field(default_factory=ManualControls)
    clock: PlaybackClock = field(default_factory=lambda: PlaybackClock(0.0))
    face: FaceStream | None = None
    live_face: Motion | None = None
    """The newest face frame from the live microphone (None when not talking)."""
    body: Motion | None = None
    audio_url: str | None = None
    orbit: bool = False
    show_skeleton: bool = False
    show_mesh: bool = False
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"display mode {self.mode!r} is not one of {MODES}")

    def set_controls(self, **changes) -> None:
        with self.lock:
            self.controls = replace(self.controls, **changes)

    def set_expression(self, name: str, weight: float) -> None:
        with self.lock:
            self.controls = replace(self.controls, expressions={**self.controls.expressions, name: float(weight)})

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"display mode {mode!r} is not one of {MODES}")
        self.mode = mode

    def set_avatar(self, loaded: LoadedAvatar) -> None:
        with self.lock:
            self.avatar = loaded
            self.controls = ManualControls(head=self.controls.head, body=self.controls.body)

    def set_audio(self, face: FaceStream, url: str) -> None:
        with self.lock:
            self.face, self.audio_url = face, url
            self.clock = PlaybackClock(face.audio.duration_s)

    def set_motion(self, motion: Motion | None) -> None:
        with self.lock:
            self.body = motion
            if self.face is None:
                seconds = 0.0 if motion is None else len(motion) / motion.fps
                self.clock = PlaybackClock(seconds, loop=True)

    @property
    def animating(self) -> bool:
        """Whether frames change without input: playback, orbit or a live microphone."""
        return self.clock.playing or self.orbit or self.live_face is not None

    def current_motion(self) -> tuple[Motion, float | None]:
        """The motion on screen now, and the audio time its face shows (None without playing audio)."""
        with self.lock:
            controls, face_stream, live, body, clock = self.controls, self.face, self.live_face, self.body, self.clock
            rig = self.avatar.avatar.rig
        position = clock.position()
        body_frame = None
        if body is not None:
            body_frame = body.frame(int(position * body.fps) % len(body))
        face, face_time = live, None
        if live is None and face_stream is not None:
            newest = face_stream.advance(position)
            face, face_time = newest.motion, newest.time_s
        return frame_motion(rig, controls, body_frame, face), face_time

    def clear(self) -> None:
        """Drop everything large (the tab closed)."""
        with self.lock:
            self.face = self.body = self.audio_url = self.live_face = None
