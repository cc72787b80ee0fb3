"""``anchorsplat view``: serve the viser viewer until interrupted (see :mod:`anchorsplat.viewer.app`)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from anchorsplat.configs import ViewConfig
    from anchorsplat.viewer.app import ViewerApp


def start_viewer(config: ViewConfig) -> ViewerApp:
    """Start the server for ``config`` and return it (the caller stops it)."""
    from anchorsplat.viewer.app import ViewerApp, ViewerSettings

    for path, what in ((config.audio, "--audio"), (config.motion, "--motion")):
        if path is not None and not path.is_file():
            raise ValueError(f"{what} {path} does not exist")
    settings = ViewerSettings(
        host=config.host, port=config.port, mode="server render" if config.mode == "server" else "client splats",
        fps=config.fps, max_resolution=config.max_resolution, backend=config.backend, device=config.device,
        model=config.model, audio=config.audio, motion=config.motion, max_tabs=config.max_tabs,
    )  # fmt: skip
    return ViewerApp(config.avatar, settings)


def view_command(config: ViewConfig, stop: threading.Event | None = None) -> None:
    app = start_viewer(config)
    note = (
        ""
        if app.model_name == config.model
        else f" (audio-to-motion: {app.model_name}; no '{config.model}' model installed)"
    )
    print(f"anchorsplat viewer: open {app.url} in a browser{note}; Ctrl+C stops it", flush=True)
    try:
        (stop or threading.Event()).wait()
    finally:
        app.stop()
