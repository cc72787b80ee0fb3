"""One browser tab: its own controls, camera, playback state and frame loop (:class:`ClientSession`).

Every tab gets a session when it connects and loses it when it disconnects: the loop thread stops, the tab's
scene nodes and GUI go with its connection, and the avatar/audio/motion it opened are dropped. A session renders
only when something changed (camera, a control, playback), so idle tabs cost nothing.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from anchorsplat.gaussians.conventions import VIEW_YAWS_DEG, framing_cameras
from anchorsplat.gaussians.io import Avatar, load_avatar
from anchorsplat.gaussians.motion import Motion, load_motion
from anchorsplat.gaussians.rigged import canonical_means, pose_from_vertices, pose_motion_mesh
from anchorsplat.gaussians.video import to_uint8
from anchorsplat.runtime.audio import Audio

from .controls import ManualControls, frame_motion
from .playback import (
    FaceStream,
    PlaybackClock,
    audio_element_html,
    check_upload_size,
    data_url,
    decode_audio_upload,
    wav_bytes,
)
from .resolution import AdaptiveResolution
from .scene import background_depth, bone_frames, skeleton_segments, splat_arrays, viser_camera

if TYPE_CHECKING:
    from .app import ViewerApp

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


@dataclass
class Stats:
    frames: int = 0
    window_start: float = 0.0
    fps: float = 0.0
    compute_ms: float = 0.0
    latency_ms: float | None = None
    av_offset_ms: float | None = None
    size: tuple[int, int] = (0, 0)


def _load_upload(name: str, content: bytes, filename: str, loader):
    """Run a file loader on uploaded bytes (through a temporary file); its errors name the upload, not the file."""
    with tempfile.TemporaryDirectory(prefix="anchorsplat-upload-") as folder:
        path = Path(folder) / filename
        path.write_bytes(content)
        try:
            return loader(path)
        except ValueError as exc:
            raise ValueError(str(exc).replace(str(path), name)) from None


class ClientSession:
    def __init__(self, app: ViewerApp, client, avatar: LoadedAvatar):
        self.app, self.client, self.settings = app, client, app.settings
        self.avatar = avatar
        self.controls = ManualControls()
        self.mode = self.settings.mode
        self.clock = PlaybackClock(0.0)
        self.face: FaceStream | None = None
        self.audio_url: str | None = None
        self.body: Motion | None = None
        self.orbit = False
        self.show_skeleton = False
        self.show_mesh = False
        self.resolution = AdaptiveResolution(
            target_fps=self.settings.fps,
            max_height=self.settings.max_resolution,
            height=min(384, self.settings.max_resolution),
        )
        self.stats = Stats(window_start=time.perf_counter())
        self.last_motion: Motion | None = None
        self.frames_sent = 0
        self._audio_generation = 0
        self._lock = threading.RLock()
        self._dirty = threading.Event()
        self._closed = threading.Event()
        self._splats = self._skeleton = self._mesh = None
        self._scene_avatar: LoadedAvatar | None = None
        self._orbit_yaw, self._last_tick = 0.0, time.perf_counter()
        from .gui import build_gui

        self.gui = build_gui(self)
        if app.initial_audio is not None:
            self.gui.audio_loaded("audio", self.set_audio(app.initial_audio))
        if app.initial_motion is not None:
            self.set_motion(app.initial_motion)
        client.camera.on_update(lambda _camera: self._dirty.set())
        self._dirty.set()  # the first frame, for the camera the tab connected with
        self._thread = threading.Thread(target=self._loop, name=f"anchorsplat-view-{client.client_id}", daemon=True)
        self._thread.start()
        self._sync_thread = threading.Thread(target=self._sync_loop, name="anchorsplat-audio-sync", daemon=True)
        self._sync_thread.start()

    # ------------------------------------------------------------------------------------------------ state changes

    def mark_dirty(self) -> None:
        self._dirty.set()

    def set_controls(self, **changes) -> None:
        with self._lock:
            self.controls = replace(self.controls, **changes)
        self._dirty.set()

    def set_expression(self, name: str, weight: float) -> None:
        with self._lock:
            expressions = {**self.controls.expressions, name: float(weight)}
            self.controls = replace(self.controls, expressions=expressions)
        self._dirty.set()

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"display mode {mode!r} is not one of {MODES}")
        self.mode = mode
        self._dirty.set()

    def open_avatar(self, source: str | Path | Avatar, name: str | None = None) -> LoadedAvatar:
        avatar = source if isinstance(source, Avatar) else load_avatar(source)
        loaded = LoadedAvatar.make(
            avatar, name or (Path(source).name if not isinstance(source, Avatar) else "avatar"), self.app.device
        )
        with self._lock:
            self.avatar = loaded
            self.controls = ManualControls(head=self.controls.head, body=self.controls.body)
        self.gui.rebuild_expressions()
        self.set_camera_preset("front")
        self._dirty.set()
        return loaded

    def open_avatar_upload(self, name: str, content: bytes) -> LoadedAvatar:
        check_upload_size(name, len(content), self.settings.max_upload_bytes)
        if not name.endswith(".anchorsplat"):
            raise ValueError(f"{name} is not an avatar: open a .anchorsplat file")
        return self.open_avatar(_load_upload(name, content, "upload.anchorsplat", load_avatar), name)

    def load_audio(self, name: str, content: bytes) -> float:
        """Take an uploaded audio file (ValueError with a one-line reason when it is unusable); returns seconds."""
        check_upload_size(name, len(content), self.settings.max_upload_bytes)
        return self.set_audio(decode_audio_upload(name, content))

    def set_audio(self, audio: Audio) -> float:
        face = FaceStream(audio, self.app.face_model, fps=self.settings.fps)
        with self._lock:
            self.face, self.audio_url = face, data_url(wav_bytes(audio.samples))
            self.clock = PlaybackClock(audio.duration_s)
            self._send_audio_element(playing=False)
        self._dirty.set()
        return audio.duration_s

    def load_motion(self, name: str, content: bytes) -> Motion:
        check_upload_size(name, len(content), self.settings.max_upload_bytes)
        if not name.lower().endswith(".npz"):
            raise ValueError(f"{name} is not a motion file: upload an SMPL-X-format .npz")
        motion = _load_upload(name, content, "motion.npz", load_motion)
        self.set_motion(motion)
        return motion

    def set_motion(self, motion: Motion | None) -> None:
        with self._lock:
            self.body = motion
            if self.face is None:
                seconds = 0.0 if motion is None else len(motion) / motion.fps
                self.clock = PlaybackClock(seconds, loop=True)
        self._dirty.set()

    def play(self) -> None:
        with self._lock:
            self.clock.play()
            self._send_audio_element(playing=True)
        self._dirty.set()

    def pause(self) -> None:
        with self._lock:
            self.clock.pause()
            self._send_audio_element(playing=False)
        self._dirty.set()

    def seek(self, position_s: float) -> None:
        with self._lock:
            self.clock.seek(position_s)
            self._send_audio_element(playing=self.clock.playing)
        self._dirty.set()

    def _send_audio_element(self, playing: bool) -> None:
        self._audio_generation += 1
        if self.audio_url is None or not playing:
            self.gui.audio_html.content = ""  # removing the element stops the browser's audio
            return
        key = self._clock_key()
        self.gui.audio_html.content = audio_element_html(self.audio_url, key, self.clock.position(), playing=True)

    def _clock_key(self) -> str:
        return f"anchorsplat.audio.{self.client.client_id}.{self._audio_generation}"

    def set_camera_preset(self, preset: str) -> None:
        if preset not in CAMERA_PRESETS:
            raise ValueError(f"camera preset {preset!r} is not one of {CAMERA_PRESETS}")
        self.orbit = False
        self._place_camera(VIEW_YAWS_DEG[preset])

    def _place_camera(self, yaw_deg: float) -> None:
        yaw = np.radians(yaw_deg)
        target = self.avatar.target
        eye = target + self.avatar.distance * np.array([np.sin(yaw), 0.0, np.cos(yaw)])
        with self.client.atomic():
            self.client.camera.up_direction = (0.0, 1.0, 0.0)
            self.client.camera.position = eye
            self.client.camera.look_at = target
        self._dirty.set()

    # ------------------------------------------------------------------------------------------------ frame loop

    def close(self) -> None:
        self._closed.set()
        self._dirty.set()
        for thread in (self._thread, self._sync_thread):
            if thread is not threading.current_thread():
                thread.join(timeout=5.0)
        with self._lock:
            self.face = self.body = self.audio_url = self.last_motion = None
            self._splats = self._skeleton = self._mesh = None

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def _loop(self) -> None:
        period = 1.0 / self.settings.fps
        while not self._closed.is_set():
            animating = self.clock.playing or self.orbit
            if not self._dirty.wait(timeout=period if animating else 0.25) and not animating:
                continue
            self._dirty.clear()
            if self._closed.is_set():
                break
            start = time.perf_counter()
            try:
                self.tick()
            except Exception as exc:  # noqa: BLE001 - a bad frame must not kill the tab's loop
                self.gui.notify("Frame failed", f"{type(exc).__name__}: {exc}", error=True)
                time.sleep(0.5)
            spent = time.perf_counter() - start
            if self.clock.playing or self.orbit:
                time.sleep(max(0.0, period - spent))

    def current_motion(self) -> tuple[Motion, float | None]:
        """The motion on screen now, and the audio time its face shows (None without audio)."""
        with self._lock:
            controls, face_stream, body, clock, rig = (
                self.controls,
                self.face,
                self.body,
                self.clock,
                self.avatar.avatar.rig,
            )
        position = clock.position()
        body_frame = None
        if body is not None:
            body_frame = body.frame(int(position * body.fps) % len(body))
        face, face_time = None, None
        if face_stream is not None:
            newest = face_stream.advance(position)
            face, face_time = newest.motion, newest.time_s
        return frame_motion(rig, controls, body_frame, face), face_time

    @torch.no_grad()
    def tick(self) -> None:
        """Pose the avatar for now and send one frame to the browser."""
        now = time.perf_counter()
        if self.orbit:
            self._orbit_yaw = (self._orbit_yaw + 30.0 * min(now - self._last_tick, 0.2)) % 360.0
            self._place_camera(self._orbit_yaw)
        self._last_tick = now
        loaded = self.avatar
        if self._scene_avatar is not loaded:
            self._reset_scene(loaded)
        motion, face_time = self.current_motion()
        rig, gaussians = loaded.avatar.rig, loaded.avatar.gaussians
        mesh = pose_motion_mesh(rig, motion.to(device=self.app.device, dtype=rig.vertices_rest.dtype))
        posed = pose_from_vertices(gaussians, rig, mesh.vertices)
        self.last_motion = motion
        with self.client.atomic():
            if self.mode == "server render":
                self._send_render(posed)
            else:
                self._send_splats(posed)
            self._send_overlays(mesh.T_world_joint[0], rig.parents)
        self.client.flush()
        done = time.perf_counter()
        if self.mode == "server render":
            self.resolution.update(done - now)
        self._record(done - now, None if face_time is None else self.clock.position() - face_time)

    def _send_render(self, posed) -> None:
        from anchorsplat.gaussians.render import render

        if self._splats is not None:
            self._splats.remove()
            self._splats = None
        camera = self.client.camera
        # viser reports a tab only once its first camera arrived, so the camera is always known here
        width, height = self.resolution.size(camera.aspect, camera.image_height or None)
        cams = viser_camera(torch.tensor(camera.wxyz), torch.tensor(camera.position), float(camera.fov), width, height)
        cams = cams.to(self.app.device)
        background = torch.tensor(self.settings.background, dtype=torch.float32, device=self.app.device)
        out = render(posed, cams, backend=self.settings.backend, background=background)
        image = to_uint8(out.rgb[0, 0])
        depth = background_depth(out.depth[0, 0], out.alpha[0, 0])
        self.client.scene.set_background_image(
            image, format="jpeg", jpeg_quality=self.settings.jpeg_quality, depth=depth
        )
        self.stats.size = (width, height)

    def _send_splats(self, posed) -> None:
        arrays = splat_arrays(posed)
        if self._splats is None:
            self.client.scene.set_background_image(None)
            self._splats = self.client.scene.add_gaussian_splats(
                "/anchorsplat/splats", arrays.centers, arrays.covariances, arrays.rgbs, arrays.opacities
            )
        else:  # one message per frame: centres, covariances and colours land together
            self._splats.set_gaussians(arrays.centers, arrays.covariances, arrays.rgbs, arrays.opacities)
        self.stats.size = (len(arrays.centers), 0)

    def _send_overlays(self, T_world_joint, parents) -> None:
        if self.show_skeleton:
            points = skeleton_segments(T_world_joint, parents).float().cpu().numpy()
            if self._skeleton is None:
                self._skeleton = self.client.scene.add_line_segments(
                    "/anchorsplat/skeleton", points, (255, 60, 30), thickness=4.0, thickness_units="screen"
                )
            else:
                self._skeleton.points = points
        elif self._skeleton is not None:
            self._skeleton.remove()
            self._skeleton = None
        if self.show_mesh:
            if self._mesh is None:
                self._mesh = self._add_mesh()
            frames = bone_frames(T_world_joint)
            for bone, wxyz, position in zip(self._mesh.bones, frames.wxyzs, frames.positions, strict=True):
                bone.wxyz, bone.position = wxyz, position
        elif self._mesh is not None:
            self._mesh.remove()
            self._mesh = None

    def _add_mesh(self):
        rig = self.avatar.avatar.rig.to("cpu")
        weights = torch.zeros(rig.num_vertices, rig.num_joints, dtype=torch.float32)
        weights.scatter_add_(1, rig.skin_indices, rig.skin_weights.float())
        joints = rig.joints_rest.float().numpy()
        return self.client.scene.add_mesh_skinned(
            "/anchorsplat/mesh", rig.vertices_rest.float().numpy(), rig.faces.numpy(),
            bone_wxyzs=np.tile([1.0, 0.0, 0.0, 0.0], (rig.num_joints, 1)), bone_positions=joints,
            skin_weights=weights.numpy(), color=(90, 160, 255), wireframe=True,
        )  # fmt: skip

    def _reset_scene(self, loaded: LoadedAvatar) -> None:
        for handle in (self._splats, self._skeleton, self._mesh):
            if handle is not None:
                handle.remove()
        self._splats = self._skeleton = self._mesh = None
        self._scene_avatar = loaded

    def _record(self, compute_s: float, latency_s: float | None) -> None:
        stats, now = self.stats, time.perf_counter()
        stats.frames += 1
        self.frames_sent += 1
        stats.compute_ms = 0.8 * stats.compute_ms + 0.2 * 1000 * compute_s if stats.compute_ms else 1000 * compute_s
        if latency_s is not None and self.clock.playing:
            stats.latency_ms = 1000 * (latency_s + compute_s)
        if now - stats.window_start >= 0.5:
            stats.fps = stats.frames / (now - stats.window_start)
            stats.frames, stats.window_start = 0, now
            self.gui.update_readout()

    # ------------------------------------------------------------------------------------------------ audio sync

    def _sync_loop(self) -> None:
        """About once a second while playing: read where the browser's audio is and nudge the clock onto it."""
        while not self._closed.wait(1.0):
            if not self.clock.playing or self.audio_url is None:
                continue
            generation = self._audio_generation
            try:
                raw = self.client.local_storage.get_item(self._clock_key(), timeout=1.0)
            except (RuntimeError, TimeoutError):
                continue
            if raw is None or generation != self._audio_generation:
                continue
            try:
                current, stamp_ms, paused = json.loads(raw)
            except (ValueError, TypeError):
                continue
            if paused:
                continue
            heard = float(current) + max(0.0, time.time() - float(stamp_ms) / 1000.0)
            offset = heard - self.clock.position()
            self.stats.av_offset_ms = 1000.0 * offset
            if 0.03 < abs(offset) < 1.0:  # larger offsets mean clocks that disagree, not audio start-up delay
                self.clock.nudge(offset)
