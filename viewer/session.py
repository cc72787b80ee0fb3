"""One browser tab (:class:`ClientSession`): it wires the tab's state, GUI, scene and frame loop together.

Every tab gets a session when it connects and loses it when it disconnects: the frame loop and the audio-sync
thread stop (bounded joins), the tab's scene nodes and GUI go with its connection, and the avatar/audio/motion it
opened are dropped. The session sees a narrow :class:`~.state.ViewerContext`, never the app. The parts:

- :class:`~.state.TabState`: the data (controls, clock, face, body, flags), no browser access;
- :class:`~.gui.SessionGui`: the panel, whose callbacks call the methods here;
- :class:`~.tabscene.TabScene`: what a posed frame becomes in the browser;
- :class:`~.frameloop.FrameLoop`: when to draw; :class:`~.resolution.ProgressiveResolution`: at what size.
"""

from __future__ import annotations

import json
import secrets
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from anchorsplat.gaussians.conventions import VIEW_YAWS_DEG
from anchorsplat.gaussians.io import Avatar, load_avatar
from anchorsplat.gaussians.motion import Motion, load_motion
from anchorsplat.gaussians.rigged import pose_from_vertices, pose_motion_mesh
from anchorsplat.runtime.audio import Audio

from .clientmode import STOP_HTML as CLIENT_STOP_HTML
from .clientmode import PoseSender, camera_payload, client_html
from .frameloop import FrameLoop
from .gui import SessionGui
from .playback import (
    FaceStream,
    audio_element_html,
    check_upload_size,
    data_url,
    decode_audio_upload,
    wav_bytes,
)
from .resolution import AdaptiveResolution, ProgressiveResolution, frame_size
from .state import CAMERA_PRESETS, LoadedAvatar, Stats, TabState, ViewerContext
from .tabscene import RenderOptions, TabScene
from .talk import STOP_HTML, Talk

PANEL_PX = 335
"""Canvas pixels viser's floating control panel covers at the right (its "medium" width plus margin)."""


def panel_shift(width: int, height: int, fov_y_rad: float, distance: float) -> float:
    """Meters to move the camera right so an object ``distance`` ahead sits in the middle of the canvas left of the
    panel; 0 when the canvas is too narrow to keep both (the panel then overlays whatever is there)."""
    if width < 2 * PANEL_PX or height <= 0:
        return 0.0
    focal = 0.5 * height / np.tan(fov_y_rad / 2)
    return 0.5 * PANEL_PX * distance / focal


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
    def __init__(self, context: ViewerContext, client, avatar: LoadedAvatar):
        self.context, self.client, self.settings = context, client, context.settings
        self.state = TabState(avatar, self.settings.mode)
        self.resolution = ProgressiveResolution(
            AdaptiveResolution(
                target_fps=self.settings.fps,
                max_height=self.settings.max_resolution,
                height=min(384, self.settings.max_resolution),
            )
        )
        self.scene = TabScene(
            client,
            RenderOptions(self.settings.backend, context.device, self.settings.background, self.settings.jpeg_quality),
        )
        self.stats = Stats(window_start=time.perf_counter())
        self.last_motion: Motion | None = None
        self.frames_sent = 0
        self._audio_generation = 0
        self._scene_avatar: LoadedAvatar | None = None
        self._client_avatar: LoadedAvatar | None = None  # the avatar the browser's player has (client mode)
        self._poses: PoseSender | None = None
        self._pose_key = f"anchorsplat.pose.{client.client_id}.{secrets.token_hex(4)}"
        self._camera_key = f"anchorsplat.camera.{client.client_id}"
        self._orbit_yaw, self._last_tick = 0.0, time.perf_counter()
        self._closed = threading.Event()
        self.talk: Talk | None = None
        self.gui = SessionGui(self)
        self.loop = FrameLoop(
            f"anchorsplat-view-{client.client_id}",
            fps=self.settings.fps,
            still_after_s=self.resolution.still_after_s,
            animating=lambda: self.state.animating,
            frame=self.frame,
            on_error=lambda exc: self.gui.notify("Frame failed", f"{type(exc).__name__}: {exc}", error=True),
        )
        if context.initial_audio is not None:
            self.gui.audio_loaded("audio", self.set_audio(context.initial_audio))
        if context.initial_motion is not None:
            self.set_motion(context.initial_motion)
        if panel_shift(client.camera.image_width, client.camera.image_height, float(client.camera.fov), 1.0):
            self._place_camera(0.0)  # a wide canvas: frame the avatar beside the panel, not under it
        client.camera.on_update(lambda _camera: self._camera_moved())
        self.loop.request()  # the first frame, for the camera the tab connected with
        self._sync_thread = threading.Thread(target=self._sync_loop, name="anchorsplat-audio-sync", daemon=True)
        self._sync_thread.start()

    # ------------------------------------------------------------------------------------------------ read-outs

    avatar = property(lambda self: self.state.avatar)
    controls = property(lambda self: self.state.controls)
    clock = property(lambda self: self.state.clock)
    face = property(lambda self: self.state.face)
    mode = property(lambda self: self.state.mode)
    orbit = property(lambda self: self.state.orbit)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @property
    def _thread(self) -> threading.Thread:
        return self.loop.thread

    # ------------------------------------------------------------------------------------------------ state changes

    def mark_dirty(self) -> None:
        self.loop.request()

    def set_controls(self, **changes) -> None:
        self.state.set_controls(**changes)
        self.loop.request()

    def set_expression(self, name: str, weight: float) -> None:
        self.state.set_expression(name, weight)
        self.loop.request()

    def set_mode(self, mode: str) -> None:
        self.state.set_mode(mode)
        self.loop.request()

    def set_overlay(self, *, skeleton: bool | None = None, mesh: bool | None = None) -> None:
        if skeleton is not None:
            self.state.show_skeleton = bool(skeleton)
        if mesh is not None:
            self.state.show_mesh = bool(mesh)
        self.loop.request()

    def set_orbit(self, orbit: bool) -> None:
        self.state.orbit = bool(orbit)
        self.loop.request()

    def open_avatar(self, source: str | Path | Avatar, name: str | None = None) -> LoadedAvatar:
        avatar = source if isinstance(source, Avatar) else load_avatar(source)
        shown = name or (Path(source).name if not isinstance(source, Avatar) else "avatar")
        loaded = LoadedAvatar.make(avatar, shown, self.context.device)
        self.state.set_avatar(loaded)
        self.gui.rebuild_expressions()
        self.gui.set_title(shown)
        self.set_camera_preset("front")
        self.loop.request()
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
        face = FaceStream(audio, self.context.face_model, fps=self.settings.fps)
        with self.state.lock:
            self.state.set_audio(face, data_url(wav_bytes(audio.samples)))
            self._send_audio_element(playing=False)
        self.mark_dirty()
        return audio.duration_s

    def load_motion(self, name: str, content: bytes) -> Motion:
        check_upload_size(name, len(content), self.settings.max_upload_bytes)
        if not name.lower().endswith(".npz"):
            raise ValueError(f"{name} is not a motion file: upload an SMPL-X-format .npz")
        motion = _load_upload(name, content, "motion.npz", load_motion)
        self.set_motion(motion)
        return motion

    def set_motion(self, motion: Motion | None) -> None:
        self.state.set_motion(motion)
        self.mark_dirty()

    def play(self) -> None:
        with self.state.lock:
            self.state.clock.play()
            self._send_audio_element(playing=True)
        self.mark_dirty()

    def pause(self) -> None:
        with self.state.lock:
            self.state.clock.pause()
            self._send_audio_element(playing=False)
        self.mark_dirty()

    def seek(self, position_s: float) -> None:
        with self.state.lock:
            self.state.clock.seek(position_s)
            self._send_audio_element(playing=self.state.clock.playing)
        self.mark_dirty()

    def _send_audio_element(self, playing: bool) -> None:
        self._audio_generation += 1
        url = self.state.audio_url
        if url is None or not playing:
            self.gui.set_audio_html("")  # removing the element stops the browser's audio
            return
        self.gui.set_audio_html(audio_element_html(url, self._clock_key(), self.state.clock.position(), playing=True))

    def _clock_key(self) -> str:
        return f"anchorsplat.audio.{self.client.client_id}.{self._audio_generation}"

    def _camera_moved(self) -> None:
        if self.state.mode != "server render" and self._client_avatar is not None:
            self._send_camera()
        self.loop.request()

    def _send_camera(self) -> None:
        camera = self.client.camera
        self.client.local_storage.set_item(self._camera_key, camera_payload(camera.wxyz, camera.position, camera.fov))
        self.client.flush()

    @property
    def talking(self) -> bool:
        return self.talk is not None

    def start_talk(self) -> None:
        """Drive the face from this tab's microphone (live, causal); the page asks for the microphone."""
        if self.talk is not None or self.closed:
            return
        self.talk = Talk(
            self.client,
            self.context.face_model,
            self.context.mic_router,
            fps=self.settings.fps,
            on_face=self._live_face,
            notify=lambda message: self.gui.notify("Talk", message, error=True),
        )
        self.gui.set_talk_html(self.talk.html())

    def stop_talk(self) -> None:
        talk, self.talk = self.talk, None
        if talk is not None:
            self.gui.set_talk_html(STOP_HTML)
            talk.stop()
            self.stats.mic_ms = None

    def _live_face(self, motion: Motion | None) -> None:
        with self.state.lock:
            self.state.live_face = motion
        talk = self.talk
        self.stats.mic_ms = None if talk is None else talk.server_latency_ms
        self.loop.request()

    def set_camera_preset(self, preset: str) -> None:
        if preset not in CAMERA_PRESETS:
            raise ValueError(f"camera preset {preset!r} is not one of {CAMERA_PRESETS}")
        self.state.orbit = False
        self._place_camera(VIEW_YAWS_DEG[preset])

    def _place_camera(self, yaw_deg: float) -> None:
        """Look at the avatar from ``yaw_deg``, framed in the part of the canvas the control panel leaves free."""
        yaw = np.radians(yaw_deg)
        target = self.state.avatar.target
        eye = target + self.state.avatar.distance * np.array([np.sin(yaw), 0.0, np.cos(yaw)])
        camera = self.client.camera
        shift = panel_shift(camera.image_width, camera.image_height, float(camera.fov), self.state.avatar.distance)
        right = np.array([np.cos(yaw), 0.0, -np.sin(yaw)])  # the camera's +x: moving right shows the avatar left
        with self.client.atomic():
            camera.up_direction = (0.0, 1.0, 0.0)
            camera.position = eye + shift * right
            camera.look_at = target + shift * right
        self.loop.request()

    # ------------------------------------------------------------------------------------------------ frames

    def close(self) -> None:
        self._closed.set()
        talk, self.talk = self.talk, None
        if talk is not None:
            talk.stop(page_open=False)
        self.loop.stop()
        if self._sync_thread is not threading.current_thread():
            self._sync_thread.join(timeout=5.0)
        self.state.clear()
        self.last_motion = None
        self.scene.forget()

    def current_motion(self) -> tuple[Motion, float | None]:
        return self.state.current_motion()

    @torch.no_grad()
    def frame(self, moving: bool) -> bool:
        """Draw one frame: a moving one (server render at the frame-time height), or while still the next
        refinement step of the server render; returns False when there is nothing to refine."""
        camera = self.client.camera
        display = (camera.image_width, camera.image_height) if camera.image_height else None
        server = self.state.mode == "server render"
        if not moving:
            height = self.resolution.refine_height(display and display[1]) if server else None
            if height is None:
                return False
        else:
            height = self.resolution.moving_height(display and display[1])
        self.tick(frame_size(height, camera.aspect, display) if server else None, moving=moving)
        return True

    @torch.no_grad()
    def tick(self, size: tuple[int, int] | None = None, *, moving: bool = True) -> None:
        """Pose the avatar for now and send one frame (``size``: the server render's width, height)."""
        now = time.perf_counter()
        state = self.state
        if state.orbit:
            self._orbit_yaw = (self._orbit_yaw + 30.0 * min(now - self._last_tick, 0.2)) % 360.0
            self._place_camera(self._orbit_yaw)
        self._last_tick = now
        loaded = state.avatar
        if self._scene_avatar is not loaded:
            self.scene.reset()
            self._scene_avatar = loaded
        motion, face_time = state.current_motion()
        rig, gaussians = loaded.avatar.rig, loaded.avatar.gaussians
        server = state.mode == "server render"
        overlays = state.show_skeleton or state.show_mesh
        mesh = None
        if server or overlays:
            mesh = pose_motion_mesh(rig, motion.to(device=self.context.device, dtype=rig.vertices_rest.dtype))
        self.last_motion = motion
        with self.client.atomic():
            if server:
                if self._client_avatar is not None:
                    self.gui.set_client_html(CLIENT_STOP_HTML)
                    self._client_avatar = self._poses = None
                if size is None:
                    camera = self.client.camera
                    size = frame_size(self.resolution.moving_height(camera.image_height or None), camera.aspect, None)
                self.scene.send_render(pose_from_vertices(gaussians, rig, mesh.vertices), *size)
                self.stats.size = size
            else:
                if self._client_avatar is not loaded:  # the rig goes once per avatar
                    self.scene.clear_background()
                    self.gui.set_client_html(client_html(loaded.avatar, self._pose_key, self._camera_key))
                    self._client_avatar, self._poses = loaded, PoseSender(self.client, self._pose_key, rig)
                    self._send_camera()
                self._poses.send(motion)
                self.stats.size = (len(gaussians), 0)
            joints = None if mesh is None else mesh.T_world_joint[0]  # None only when no overlay is on
            self.scene.send_overlays(joints, rig, skeleton=state.show_skeleton, mesh=state.show_mesh)
        self.client.flush()
        done = time.perf_counter()
        if server:
            self.resolution.shown(self.stats.size[1])
            if moving:
                self.resolution.adaptive.update(done - now)
        self._record(done - now, None if face_time is None else state.clock.position() - face_time)

    def _record(self, compute_s: float, latency_s: float | None) -> None:
        stats, now = self.stats, time.perf_counter()
        stats.frames += 1
        self.frames_sent += 1
        stats.compute_ms = 0.8 * stats.compute_ms + 0.2 * 1000 * compute_s if stats.compute_ms else 1000 * compute_s
        if latency_s is not None and self.state.clock.playing:
            stats.latency_ms = 1000 * (latency_s + compute_s)
        if now - stats.window_start >= 0.5:
            stats.fps = stats.frames / (now - stats.window_start)
            stats.frames, stats.window_start = 0, now
            self.gui.update_readout()

    # ------------------------------------------------------------------------------------------------ audio sync

    def _sync_loop(self) -> None:
        """About once a second while playing: read where the browser's audio is and nudge the clock onto it."""
        while not self._closed.wait(1.0):
            clock = self.state.clock
            if not clock.playing or self.state.audio_url is None:
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
            offset = heard - clock.position()
            self.stats.av_offset_ms = 1000.0 * offset
            if 0.03 < abs(offset) < 1.0:  # larger offsets mean clocks that disagree, not audio start-up delay
                clock.nudge(offset)
