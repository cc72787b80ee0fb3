"""The ``anchorsplat`` command: tyro subcommands, one frozen dataclass each.

Every user error is one line on stderr (``anchorsplat: error: ...``) and exit status 2; nothing is left
half-written because every writer is atomic.
"""

from __future__ import annotations

import sys

import tyro

from anchorsplat.configs import BakeConfig, Command, ExportConfig, PlayConfig, RenderConfig, ViewConfig


class NotYetAvailable(Exception):
    """A subcommand whose implementation has not landed yet."""


def run(config: RenderConfig | ExportConfig | BakeConfig | PlayConfig | ViewConfig) -> None:
    from anchorsplat import commands

    if isinstance(config, RenderConfig):
        commands.render_command(config)
    elif isinstance(config, ExportConfig):
        from anchorsplat.cmd_export import export_command

        export_command(config)
    elif isinstance(config, BakeConfig):
        commands.bake_command(config)
    elif isinstance(config, PlayConfig):
        from anchorsplat.cmd_play import play_command

        play_command(config)
    elif isinstance(config, ViewConfig):
        from anchorsplat.cmd_view import view_command

        view_command(config)
    else:
        name = type(config).__name__.removesuffix("Config").lower()
        raise NotYetAvailable(f"'anchorsplat {name}' is not available yet in this version")


def main(argv: list[str] | None = None) -> None:
    description = "Photo -> rigged, audio-driven Gaussian avatar."
    config = tyro.cli(Command, args=argv, prog="anchorsplat", description=description)
    try:
        from anchorsplat.threads import apply_thread_policy

        apply_thread_policy(getattr(config, "threads", None))  # before any command imports torch
        run(config)
    except (ValueError, NotYetAvailable, FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        print(f"anchorsplat: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("anchorsplat: interrupted", file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
