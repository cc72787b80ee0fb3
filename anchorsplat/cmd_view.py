"""``anchorsplat view``: serve the viser viewer until interrupted (see :mod:`anchorsplat.viewer.app`)."""

from __future__ import annotations

import errno
import socket
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from anchorsplat.configs import ViewConfig
    from anchorsplat.viewer.app import ViewerApp


def check_address(host: str, port: int) -> None:
    """Say why ``--host``/``--port`` cannot be served (a malformed or foreign address, a port in use) in one line."""
    fix = "use 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)"
    if not 0 <= port <= 65535:
        raise ValueError(f"--port {port} must be between 0 and 65535 (0: any free port)")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError):
        raise ValueError(f"--host {host} is not a valid address or a known host name: {fix}") from None
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ValueError(
                    f"port {port} on {host} is in use: pass another --port (or 0 for any free one)"
                ) from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise ValueError(f"--host {host} is not an address of this machine: {fix}") from None
            if exc.errno == errno.EACCES:
                raise ValueError(f"port {port} needs administrator rights: pass a port above 1023") from None
            raise


def start_viewer(config: ViewConfig) -> ViewerApp:
    """Start the server for ``config`` and return it (the caller stops it)."""
    from anchorsplat.gaussians.fileio import require_file
    from anchorsplat.viewer.app import ViewerApp, ViewerSettings

    require_file(config.avatar, "avatar file")
    for path, what in ((config.audio, "--audio"), (config.motion, "--motion")):
        if path is not None:
            require_file(path, what)
    check_address(config.host, config.port)
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
