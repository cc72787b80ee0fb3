"""The ``anchorsplat`` command: tyro subcommands, one frozen dataclass each.

Every user error is one line on stderr (``anchorsplat: error: ...``) and exit status 2; nothing is left
half-written because every writer is atomic.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro

Device = Literal["auto", "cpu", "cuda"]
Backend = Literal["auto", "gsplat", "torch"]
View = Literal["front", "three-quarter", "left", "back", "right"]


@dataclass(frozen=True)
class RenderConfig:
    """Render an avatar to an image (.png/.jpg) or a video (.mp4): a view, a motion, or a turntable."""

    avatar: tyro.conf.Positional[Path]
    """The avatar file (.anchorsplat)."""
    out: Path = Path("front.png")
    """Output: an image (.png, .jpg, .webp) or a video (.mp4, .mov, .mkv, .webm)."""
    view: View = "front"
    """Camera view around the body (it faces +Z; "left" looks at the body's left side)."""
    motion: Path | None = None
    """An SMPL-X-format motion .npz (AMASS 'poses'/'trans' or per-part keys). Images show --frame of it."""
    frame: int = 0
    """Which motion frame an image shows."""
    turntable: bool | None = None
    """Orbit the camera once around the avatar (default for a video without --motion)."""
    seconds: float = 4.0
    """Turntable length."""
    fps: float = 30.0
    """Turntable frame rate (a motion video uses the motion's own rate)."""
    resolution: int = 512
    """Image height in pixels (width equals height)."""
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Background colour, RGB in [0, 1]."""
    backend: Backend = "auto"
    """Rasterizer: gsplat on CUDA, the pure-torch renderer otherwise."""
    device: Device = "auto"


@dataclass(frozen=True)
class ExportConfig:
    """Export an avatar: standard 3DGS PLY now; glb, spz and web come with the engine-export issue."""

    avatar: tyro.conf.Positional[Path]
    """The avatar file (.anchorsplat)."""
    format: Literal["ply", "glb", "spz", "web"] = "ply"
    out: Path | None = None
    """Output path (default: the avatar's name with the format's suffix)."""
    motion: Path | None = None
    """Export the avatar posed by this SMPL-X-format motion (.npz) instead of its rest pose."""
    frame: int = 0
    """Which motion frame to export (ply)."""


@dataclass(frozen=True)
class BakeConfig:
    """Bake a photo into a rigged Gaussian avatar (the per-subject job)."""

    photo: tyro.conf.Positional[Path | None] = None
    out: Path = Path("job")


@dataclass(frozen=True)
class PlayConfig:
    """Play an avatar driven by audio or motion, to a video file."""

    avatar: tyro.conf.Positional[Path]
    audio: Path | None = None
    out: Path = Path("talk.mp4")


@dataclass(frozen=True)
class ViewConfig:
    """Open an avatar in the viser web viewer."""

    avatar: tyro.conf.Positional[Path]
    host: str = "127.0.0.1"
    port: int = 8080


Command = (
    Annotated[RenderConfig, tyro.conf.subcommand("render")]
    | Annotated[ExportConfig, tyro.conf.subcommand("export")]
    | Annotated[BakeConfig, tyro.conf.subcommand("bake")]
    | Annotated[PlayConfig, tyro.conf.subcommand("play")]
    | Annotated[ViewConfig, tyro.conf.subcommand("view")]
)


class NotYetAvailable(Exception):
    """A subcommand whose implementation has not landed yet."""


def run(config: RenderConfig | ExportConfig | BakeConfig | PlayConfig | ViewConfig) -> None:
    from anchorsplat import commands

    if isinstance(config, RenderConfig):
        commands.render_command(config)
    elif isinstance(config, ExportConfig):
        commands.export_command(config)
    else:
        name = type(config).__name__.removesuffix("Config").lower()
        raise NotYetAvailable(f"'anchorsplat {name}' is not available yet in this version")


def main(argv: list[str] | None = None) -> None:
    config = tyro.cli(Command, args=argv, prog="anchorsplat", description="Photo -> rigged, audio-driven Gaussian avatar.")
    try:
        run(config)
    except (ValueError, NotYetAvailable, FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        print(f"anchorsplat: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("anchorsplat: interrupted", file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
