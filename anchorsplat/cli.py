"""The ``anchorsplat`` command: tyro subcommands, one frozen dataclass each (their configs: :mod:`anchorsplat.configs`).

Every user error is one line on stderr (``anchorsplat: error: ...``) and exit status 2, whether tyro refuses the
arguments or a command refuses its inputs; nothing is left half-written because every writer is atomic
(:mod:`anchorsplat.gaussians.fileio`). Third-party libraries' logs and warnings are silenced unless ``--verbose``
(anywhere on the command line) asks for them, which also shows the traceback of an unexpected error.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import signal
import sys
import warnings
from collections.abc import Iterator

from anchorsplat.configs import BakeConfig, Command, ExportConfig, PlayConfig, RenderConfig, ViewConfig

PROG = "anchorsplat"
DESCRIPTION = (
    "Photo -> rigged, audio-driven Gaussian avatar. Add --verbose anywhere to see third-party logs and tracebacks."
)


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that ``finally`` blocks remove temp files before the process ends."""


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
    else:  # tyro only builds the configs above
        raise AssertionError(f"unknown config {type(config).__name__}")


def parse_error_line(box: str) -> str:
    """tyro's boxed parse error as one line: its message, and where the help is."""
    title, body, hint, done, want_hint = "", [], "anchorsplat --help", False, False
    for raw in box.splitlines():
        line = raw.strip().strip("│|").strip()
        if not line or set(line) <= set("-─━"):
            continue
        if line.startswith(("╭", "╰")):
            title = title or line.strip("╭╮╰╯─ ")
        elif want_hint:
            hint, want_hint = line, False
        elif line.startswith("For full helptext"):
            done, hint = True, re.sub(r"^For full helptext, (run|see):?\s*", "", line)
            want_hint = not hint
        elif line.startswith("Argument helptext"):
            done = True
        elif not title:
            title = line
        elif not done:
            body.append(line)
    message = " ".join(body).replace(" (required)", "").rstrip(".")
    if title.lower() in ("missing subcommand", "required options", "missing argument", "") or not message:
        message = f"{title.lower()}: {message}" if message else title.lower() or "bad arguments"
    return f"{message} (see {hint or 'anchorsplat --help'})"


def os_error_line(exc: OSError) -> str:
    """An OSError (from any writer or reader) as one line that says what to do."""
    name = exc.filename if exc.filename is not None else "the output"
    code = exc.errno
    if code == errno.ENOSPC or code == errno.EDQUOT:
        return f"no space left on the disk while writing {name}: free some space or choose another --out"
    if code in (errno.EACCES, errno.EPERM):
        return f"permission denied for {name}: choose a folder you can write to (or fix its permissions)"
    if code == errno.EROFS:
        return f"{name} is on a read-only file system: choose another --out"
    if code == errno.ENOTDIR:
        return f"{name}: a file is in the way where a folder is needed: choose another --out or move that file"
    if code == errno.EISDIR:
        return f"{name} is a folder where a file is needed: pass a file path"
    if code == errno.ENOENT:
        return f"{name} does not exist: check the path"
    if code == errno.ENAMETOOLONG:
        return f"the path {name} is too long: choose a shorter one"
    return f"{exc.strerror or exc} ({name})"


@contextlib.contextmanager
def quiet_third_party(verbose: bool) -> Iterator[None]:
    """Unless ``verbose``: MediaPipe/TFLite/absl logs (C++ writing to fd 2), Python warnings and library logging
    are dropped; anchorsplat's own messages and progress bars (Python's ``sys.stderr``) still reach the terminal.
    """
    if verbose:
        yield
        return
    import logging

    for key, value in {"GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "3", "ABSL_MIN_LOG_LEVEL": "3"}.items():
        os.environ.setdefault(key, value)
    logging.disable(logging.WARNING)
    saved_stderr, saved_fd = sys.stderr, None
    try:
        if sys.stderr is not None and sys.stderr.fileno() == 2:
            saved_fd = os.dup(2)
    except (AttributeError, OSError, io.UnsupportedOperation):  # stderr replaced (tests capture it): leave fd 2
        saved_fd = None
    if saved_fd is not None:
        sys.stderr.flush()
        sys.stderr = open(saved_fd, "w", buffering=1, closefd=False, encoding=saved_stderr.encoding)  # noqa: SIM115
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(logging.NOTSET)
        if saved_fd is not None:  # saved_fd stays open: progress bars may still hold the stream made on it
            sys.stderr.flush()
            os.dup2(saved_fd, 2)
            sys.stderr = saved_stderr


def _error(message: str, code: int = 2) -> SystemExit:
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr)
    return SystemExit(code)


def _parse(argv: list[str]):
    import tyro

    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            return tyro.cli(Command, args=argv, prog=PROG, description=DESCRIPTION)
    except SystemExit as exc:
        if exc.code in (0, None):  # --help
            raise
        raise _error(parse_error_line(captured.getvalue())) from None


def _on_sigterm(signum, frame) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in argv
    argv = [a for a in argv if a != "--verbose"]
    config = _parse(argv)
    with contextlib.suppress(ValueError):  # only the main thread may set handlers (tests call main elsewhere)
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        from anchorsplat.threads import apply_thread_policy, governed

        threads = getattr(config, "threads", None)
        apply_thread_policy(threads)  # before any command imports torch
        with quiet_third_party(verbose), governed(manual=threads is not None):
            run(config)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except Terminated:
        print(f"{PROG}: terminated", file=sys.stderr)
        raise SystemExit(143) from None
    except ValueError as exc:  # bad input: every reader and command raises ValueError with the fix in it
        raise _error(str(exc)) from None
    except OSError as exc:
        raise _error(os_error_line(exc)) from None
    except MemoryError:
        raise _error("out of memory: lower --resolution, --seconds or the preset, or free memory") from None
    except Exception as exc:  # noqa: BLE001 - a bug: still one line, the traceback with --verbose
        if verbose:
            raise
        if type(exc).__name__ == "OutOfMemoryError":  # torch's, a RuntimeError subclass
            raise _error("the GPU ran out of memory: lower --resolution or the preset, or use --device cpu") from None
        raise _error(
            f"unexpected {type(exc).__name__}: {exc} (a bug in anchorsplat: rerun with --verbose for the traceback "
            "and report it)",
            code=1,
        ) from None
    finally:
        with contextlib.suppress(NameError, ValueError, TypeError):
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    main()
