"""The viser web viewer: one server, one :class:`~.session.ClientSession` per browser tab.

    app = ViewerApp(avatar_path, ViewerSettings(port=0))   # port 0: any free port
    print(app.url)
    ...
    app.stop()

Binds 127.0.0.1 unless told otherwise (the viewer accepts uploads; bind elsewhere only on a trusted network).
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anchorsplat.gaussians.io import Avatar, load_avatar
from anchorsplat.gaussians.motion import load_motion

from .playback import MAX_AUDIO_SECONDS, MAX_UPLOAD_BYTES
from .session import ClientSession
from .state import MODES, LoadedAvatar, ViewerContext
from .talk import MicRouter


@dataclass(frozen=True)
class ViewerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    """0 picks a free port."""
    mode: str = "server render"
    """Initial display mode: "server render" (frames rendered here, streamed as JPEG) or "client splats"."""
    fps: float = 30.0
    """Target frame rate; the server render lowers its resolution to hold it."""
    max_resolution: int = 720
    """Tallest server-rendered frame, in pixels."""
    backend: str = "auto"
    device: str = "auto"
    model: str = "learned"
    """Audio-to-motion model: "learned" (falls back to "baseline" when its weights are not installed) or "baseline"."""
    jpeg_quality: int = 85
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    audio: Path | None = None
    """Audio every tab starts with (more can be uploaded in the browser)."""
    motion: Path | None = None
    """SMPL-X motion .npz every tab starts with."""
    max_tabs: int = 8
    """Tabs served at once; one more gets a message instead of a session (each tab holds its own model state)."""
    verbose: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r} is not one of {MODES}")
        if not 1 <= self.fps <= 120:
            raise ValueError(f"fps {self.fps} must be between 1 and 120")
        if not 64 <= self.max_resolution <= 4096:
            raise ValueError(f"max resolution {self.max_resolution} must be between 64 and 4096")
        if not 1 <= self.max_tabs <= 256:
            raise ValueError(f"max tabs {self.max_tabs} is out of range: pass --max-tabs between 1 and 256")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} must be between 0 and 65535 (0: any free port)")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def load_face_model_or_baseline(name: str):
    """The runtime's face model; the weight-free baseline when the learned weights are not installed."""
    from anchorsplat.runtime.motion import load_face_model

    try:
        return load_face_model(name), name
    except ValueError:
        if name != "learned":
            raise
        return load_face_model("baseline"), "baseline"


def _checked_audio(path: Path):
    from anchorsplat.runtime.audio import load_audio

    audio = load_audio(path)
    if audio.duration_s > MAX_AUDIO_SECONDS:
        raise ValueError(
            f"--audio {path} lasts {audio.duration_s:.0f} s; the viewer plays at most {MAX_AUDIO_SECONDS:.0f} s"
        )
    return audio


def _refuse(client, max_tabs: int) -> None:
    message = (
        f"This viewer already serves {max_tabs} tabs, the most it allows: close another tab and reload this one "
        "(or restart the viewer with a larger --max-tabs)."
    )
    client.gui.add_markdown(f"**anchorsplat viewer is full.** {message}")
    client.add_notification("Viewer full", message, color="red", with_close_button=True)


def release_freed_memory() -> None:
    """Hand memory freed by a closed tab back to the system: collect its reference cycles, then ask glibc to trim
    its heaps (each tab's threads allocate in their own malloc arenas, which glibc otherwise keeps)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): the allocator keeps what it keeps
        pass


class ViewerApp:
    """A running viewer. Every tab that connects gets its own session (camera, controls, playback)."""

    def __init__(self, avatar: str | os.PathLike | Avatar, settings: ViewerSettings = ViewerSettings()):
        try:
            import viser
        except ImportError:
            raise ValueError("the viewer needs viser: pip install 'anchorsplat[viewer]'") from None
        from anchorsplat.gaussians.device import resolve_device

        self.settings = settings
        self.device = resolve_device(settings.device)
        name = "avatar" if isinstance(avatar, Avatar) else Path(avatar).name
        loaded_avatar = avatar if isinstance(avatar, Avatar) else load_avatar(avatar)
        self.avatar = LoadedAvatar.make(loaded_avatar, name, self.device)
        self.face_model, self.model_name = load_face_model_or_baseline(settings.model)
        self.initial_audio = None if settings.audio is None else _checked_audio(settings.audio)
        self.initial_motion = None if settings.motion is None else load_motion(settings.motion)
        port = settings.port or free_port(settings.host)
        if _port_in_use(settings.host, port):
            raise ValueError(f"port {port} on {settings.host} is in use: pass another --port (or 0 for any free one)")
        self.sessions: dict[int, ClientSession] = {}
        self._lock = threading.Lock()
        self._reserved = 0  # sessions made or being made (the cap counts both)
        self.refused = 0
        self.server = viser.ViserServer(host=settings.host, port=port, label="anchorsplat", verbose=settings.verbose)
        self.server.scene.set_up_direction("+y")
        self.context = ViewerContext(
            settings, self.device, self.face_model, self.initial_audio, self.initial_motion, MicRouter(self.server)
        )
        self._set_initial_camera()
        self.server.on_client_connect(self._connect)
        self.server.on_client_disconnect(self._disconnect)

    @property
    def port(self) -> int:
        return self.server.get_port()

    @property
    def url(self) -> str:
        host = self.settings.host
        shown = "localhost" if host in ("0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)
        return f"http://{shown}:{self.port}"

    def _set_initial_camera(self) -> None:
        target = self.avatar.target
        camera = self.server.initial_camera
        camera.position = tuple(target + np.array([0.0, 0.0, self.avatar.distance]))
        camera.look_at = tuple(target)
        camera.up = (0.0, 1.0, 0.0)
        camera.fov = float(np.radians(30.0))

    def _connect(self, client) -> None:
        with self._lock:
            full = self._reserved >= self.settings.max_tabs
            self._reserved += 0 if full else 1
        if full:
            self.refused += 1
            return _refuse(client, self.settings.max_tabs)
        try:
            session = ClientSession(self.context, client, self.avatar)
        except BaseException:
            with self._lock:
                self._reserved -= 1
            raise
        with self._lock:
            self.sessions[client.client_id] = session

    def _disconnect(self, client) -> None:
        with self._lock:
            session = self.sessions.pop(client.client_id, None)
            self._reserved -= session is not None
        if session is not None:
            session.close()
            del session
            release_freed_memory()

    def stop(self) -> None:
        with self._lock:
            sessions = list(self.sessions.values())
            self.sessions.clear()
        for session in sessions:
            session.close()
        self.server.stop()

    def __enter__(self) -> ViewerApp:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
