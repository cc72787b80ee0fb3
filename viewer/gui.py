"""The controls of one tab (:class:`SessionGui`, the GUI adapter): every widget lives in the client's own GUI, so
tabs never share state. Callbacks only call :class:`~.session.ClientSession` methods, and the session changes the
panel only through this class's methods; a user error becomes a notification and a status line in the panel,
never an exception in viser's worker."""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING

from anchorsplat.gaussians.video import AUDIO_SUFFIXES

from .controls import BODY_PRESETS, HEAD_PRESETS
from .inject import run_html
from .state import CAMERA_PRESETS, MODES

if TYPE_CHECKING:
    from .session import ClientSession


class SessionGui:
    def __init__(self, session: ClientSession):
        self.session = session
        gui = session.client.gui
        self.readout = gui.add_markdown("")
        self.status = gui.add_markdown("")
        # Top level, never inside a folder: a collapsed folder would unmount the element and stop the sound.
        self.audio_html = gui.add_html("")
        self.talk_html = gui.add_html("")  # the microphone script; top level for the same reason
        self.client_html = gui.add_html("")  # client mode's player and the avatar
        self.title_html = gui.add_html("")
        tabs = gui.add_tab_group()

        with tabs.add_tab("Play"):
            self.talk_button = gui.add_button("Talk", hint="Drive the avatar live with this browser's microphone")
            self.audio_upload = gui.add_upload_button(
                "Upload audio", mime_type="audio/*", hint=", ".join(AUDIO_SUFFIXES)
            )
            self.play_button = gui.add_button("Play")
            self.pause_button = gui.add_button("Pause")
            self.seek = gui.add_slider("Seek (s)", min=0.0, max=1.0, step=0.01, initial_value=0.0)
            self.motion_upload = gui.add_upload_button("Load motion (.npz)")
            self.motion_clear = gui.add_button("Clear motion")
        with tabs.add_tab("Face"):
            self.jaw = gui.add_slider("jaw", min=0.0, max=1.0, step=0.01, initial_value=0.0)
            self.head = gui.add_dropdown("Head", tuple(HEAD_PRESETS), initial_value="neutral")
            self.expression_folder = gui.add_folder("ARKit expressions")
            self.expression_sliders: dict[str, object] = {}
        with tabs.add_tab("Body"):
            self.body = gui.add_dropdown("Body pose", tuple(BODY_PRESETS), initial_value="rest")
            self.skeleton = gui.add_checkbox("Skeleton overlay", initial_value=False)
            self.mesh = gui.add_checkbox("Mesh overlay", initial_value=False)
        with tabs.add_tab("View"):
            self.mode = gui.add_dropdown("Display", MODES, initial_value=session.mode)
            self.camera_buttons = gui.add_button_group("Camera", CAMERA_PRESETS)
            self.orbit = gui.add_checkbox("Orbit", initial_value=False)
            self.avatar_upload = gui.add_upload_button("Open avatar (.anchorsplat)")
            self.avatar_path = gui.add_text("Avatar path", initial_value="")
            self.avatar_open = gui.add_button("Open path")
        self._connect()
        self.rebuild_expressions()
        self.set_status(f"avatar **{session.avatar.name}**")
        self.set_title(session.avatar.name)

    def _connect(self) -> None:
        s = self.session
        guarded = self._guarded
        self.talk_button.on_click(guarded(lambda _: self._on_talk()))
        self.play_button.on_click(guarded(lambda _: s.play()))
        self.pause_button.on_click(guarded(lambda _: s.pause()))
        self.seek.on_update(guarded(lambda e: s.seek(e.target.value)))
        self.audio_upload.on_upload(guarded(self._on_audio))
        self.motion_upload.on_upload(guarded(self._on_motion))
        self.motion_clear.on_click(guarded(lambda _: s.set_motion(None)))
        self.jaw.on_update(guarded(lambda e: s.set_controls(jaw=float(e.target.value))))
        self.head.on_update(guarded(lambda e: s.set_controls(head=e.target.value)))
        self.body.on_update(guarded(lambda e: s.set_controls(body=e.target.value)))
        self.skeleton.on_update(guarded(lambda e: s.set_overlay(skeleton=e.target.value)))
        self.mesh.on_update(guarded(lambda e: s.set_overlay(mesh=e.target.value)))
        self.mode.on_update(guarded(lambda e: s.set_mode(e.target.value)))
        self.camera_buttons.on_click(guarded(lambda e: s.set_camera_preset(e.target.value)))
        self.orbit.on_update(guarded(self._on_orbit))
        self.avatar_upload.on_upload(guarded(self._on_avatar_upload))
        self.avatar_open.on_click(guarded(lambda _: self._on_avatar_path()))

    def _guarded(self, callback):
        @functools.wraps(callback)
        def run(event) -> None:
            try:
                callback(event)
            except ValueError as exc:
                self.notify("Cannot do that", str(exc), error=True)

        return run

    def _on_talk(self) -> None:
        if self.session.talking:
            self.session.stop_talk()
            self.talk_button.label = "Talk"
            self.set_status("talk stopped")
        else:
            self.session.start_talk()
            self.talk_button.label = "Stop talking"
            self.set_status("talking: the microphone drives the face")

    def _on_orbit(self, event) -> None:
        self.session.set_orbit(bool(event.target.value))

    def _on_audio(self, event) -> None:
        upload = event.target.value
        self.set_status(f"reading {upload.name} ...")
        self.audio_loaded(upload.name, self.session.load_audio(upload.name, upload.content))

    def audio_loaded(self, name: str, seconds: float) -> None:
        self.seek.max = max(round(seconds, 2), 0.01)
        self.seek.value = 0.0
        self.set_status(f"audio **{name}** ({seconds:.1f} s): press Play")

    def _on_motion(self, event) -> None:
        upload = event.target.value
        motion = self.session.load_motion(upload.name, upload.content)
        self.set_status(f"motion **{upload.name}** ({len(motion)} frames at {motion.fps:g} fps)")

    def _on_avatar_upload(self, event) -> None:
        upload = event.target.value
        loaded = self.session.open_avatar_upload(upload.name, upload.content)
        self.set_status(f"avatar **{loaded.name}** ({len(loaded.avatar.gaussians)} Gaussians)")

    def _on_avatar_path(self) -> None:
        path = self.avatar_path.value.strip()
        if not path:
            raise ValueError("type the path of a .anchorsplat file on the server first")
        loaded = self.session.open_avatar(path)
        self.set_status(f"avatar **{loaded.name}** ({len(loaded.avatar.gaussians)} Gaussians)")

    def rebuild_expressions(self) -> None:
        """One slider per blendshape of the current avatar's rig (ARKit names on Anny)."""
        for slider in self.expression_sliders.values():
            slider.remove()
        self.expression_sliders = {}
        with self.expression_folder:
            for name in self.session.avatar.avatar.rig.expression_names:
                slider = self.session.client.gui.add_slider(name, min=0.0, max=1.0, step=0.01, initial_value=0.0)
                slider.on_update(self._guarded(functools.partial(self._on_expression, name)))
                self.expression_sliders[name] = slider

    def _on_expression(self, name: str, event) -> None:
        self.session.set_expression(name, float(event.target.value))

    def set_audio_html(self, content: str) -> None:
        self.audio_html.content = content

    def set_talk_html(self, content: str) -> None:
        self.talk_html.content = content

    def set_client_html(self, content: str) -> None:
        self.client_html.content = content

    def set_title(self, name: str) -> None:
        """The browser tab's title: the avatar's name."""
        self.title_html.content = run_html(f"document.title={json.dumps(f'{name} · anchorsplat')}")

    def set_status(self, text: str) -> None:
        self.status.content = text

    def notify(self, title: str, body: str, *, error: bool = False) -> None:
        self.set_status(f"**{title}:** {body}")
        self.session.client.add_notification(
            title, body, auto_close_seconds=8.0, color="red" if error else None, with_close_button=True
        )

    def update_readout(self) -> None:
        s = self.session
        stats = s.stats
        size = f"{stats.size[0]}x{stats.size[1]}" if s.mode == "server render" else f"{stats.size[0]} splats"
        parts = [f"**{stats.fps:.1f} fps**", size, f"frame {stats.compute_ms:.0f} ms"]
        if stats.latency_ms is not None:
            parts.append(f"audio→frame {stats.latency_ms:.0f} ms")
        if stats.mic_ms is not None:
            parts.append(f"mic→motion {stats.mic_ms:.0f} ms")
        if stats.av_offset_ms is not None:
            parts.append(f"A/V {stats.av_offset_ms:+.0f} ms")
        if s.clock.duration_s > 0:
            parts.append(f"{s.clock.position():.1f} / {s.clock.duration_s:.1f} s")
        self.readout.content = " · ".join(parts)
