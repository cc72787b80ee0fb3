"""The one atomic writer and the one versioned-file reader: every file anchorsplat writes or reads goes through here.

Writing: a hidden temp file in the destination's folder (so the rename never crosses file systems), fsync,
``os.replace``. A folder is built in a hidden staging folder beside its destination and swapped in whole (an
existing folder is exchanged atomically where the kernel can, then removed). Every temp name carries
:data:`TEMP_MARK`, so a job can sweep up what a killed process left behind (:func:`remove_leftovers`).

Reading: every file says its format name and version. :class:`FileFormat` names one format; its readers check
the name (a file of another kind is refused by name), upgrade older versions through one migration function per
bump, refuse newer ones with "upgrade anchorsplat", turn truncation into a clear message and refuse NaN or
infinite values. Every refusal is a :class:`FileFormatError`, a ``ValueError`` whose text says what is wrong
and how to fix it (the CLI prints it as one line).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

TEMP_MARK = ".anchorsplat-tmp-"
"""In the name of every temp file and staging folder; what :func:`remove_leftovers` looks for."""


class FileFormatError(ValueError):
    """A file that cannot be read as the format asked for (missing, foreign, damaged, newer, non-finite)."""


# ---------------------------------------------------------------------------------------------------- writing


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temp_name(path: Path) -> str:
    # the real suffix stays last: encoders (PyAV, Pillow, numpy) choose their format from it
    return f".{path.stem}{TEMP_MARK}"


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be opened for fsync
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _ensure_parent(path: Path) -> None:
    if path.parent.exists() and not path.parent.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "a file is in the way of the output folder", str(path.parent))
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "a folder is in the way of the output file", str(path))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """``with atomic_path(out) as tmp: encoder.save(tmp)``: ``out`` appears whole when the block ends, or not at all.

    For writers that need a file name (video encoders, ``torch.save``, Pillow); bytes in memory go through
    :func:`atomic_write_bytes`. The temp file is in ``out``'s folder with ``out``'s suffix.
    """
    path = Path(path)
    _ensure_parent(path)
    try:
        fd, name = tempfile.mkstemp(prefix=_temp_name(path), suffix=path.suffix, dir=path.parent)
    except OSError as exc:  # name the file the user asked for, not the temp file
        raise type(exc)(exc.errno, exc.strerror, str(path)) from None
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        if exc.filename is None or Path(exc.filename) == tmp:
            raise type(exc)(exc.errno, exc.strerror, str(path)) from None
        raise
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, rename)."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _rename_exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where that is unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return result == 0


@contextlib.contextmanager
def staged_folder(out_dir: str | os.PathLike) -> Iterator[Path]:
    """``with staged_folder(out) as stage: ...write into stage...``: ``out`` is replaced whole when the block ends.

    An existing ``out`` stays readable until the swap (exchanged in one step on Linux; elsewhere it is moved
    aside just before the new one moves in), then it is removed. On an error the staging folder is removed and
    ``out`` is untouched.
    """
    out_dir = Path(out_dir)
    if out_dir.parent.exists() and not out_dir.parent.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "a file is in the way of the output folder", str(out_dir.parent))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "a file is in the way of the output folder", str(out_dir))
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}{TEMP_MARK}", dir=out_dir.parent))
    try:
        os.chmod(stage, 0o777 & ~_umask())
        yield stage
        if not out_dir.exists():
            os.replace(stage, out_dir)
        elif _rename_exchange(stage, out_dir):
            shutil.rmtree(stage)  # now holds the old folder
        else:
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}{TEMP_MARK}old-", dir=out_dir.parent))
            os.replace(out_dir, old / "old")
            os.replace(stage, out_dir)
            shutil.rmtree(old)
        _fsync_dir(out_dir.parent)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)


def remove_leftovers(folder: str | os.PathLike, *, recursive: bool = True) -> list[Path]:
    """Delete the temp files and staging folders a killed process left in ``folder``; returns what was removed.

    Only call this on a folder no other process writes to (a bake job holds its lock while it does).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    pattern = f".*{TEMP_MARK}*"
    removed = []
    for path in sorted(folder.rglob(pattern) if recursive else folder.glob(pattern), reverse=True):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


# ---------------------------------------------------------------------------------------------------- reading

Migration = Callable[[dict, dict], tuple[dict, dict]]
"""Upgrades (metadata, payload) of version v to version v + 1 (payload: tensors, or {} for JSON files)."""


@dataclass(frozen=True)
class FileFormat:
    """One file format: its name (written into the file), current version, and how to upgrade older versions."""

    name: str
    """Written into every file, e.g. ``anchorsplat.avatar``."""
    version: int
    """The version this anchorsplat writes; files up to it are read, newer ones are refused."""
    what: str
    """What the file is, for messages ("avatar file", "bake job config")."""
    fix: str = "make it again"
    """How to fix a damaged file, for messages ("re-export it", "delete the job folder and bake again")."""
    migrations: Mapping[int, Migration] = field(default_factory=dict)
    """version -> function upgrading a file of that version to the next."""
    unversioned: int | None = None
    """Files written before this format carried its name in them are read as this version (None: refused)."""

    def error(self, path: Path, problem: str) -> FileFormatError:
        return FileFormatError(f"{self.what} {path} {problem}: {self.fix}")

    def upgrade(self, path: Path, header: Mapping[str, Any], meta: dict, payload: dict) -> tuple[dict, dict]:
        """Check the header's format name and version, then migrate (meta, payload) to the current version."""
        found = header.get("format")
        if found is None and self.unversioned is not None:
            version = self.unversioned
        elif found != self.name:
            kind = "no format name" if found is None else f"format {found!r}"
            raise FileFormatError(
                f"{path} is not an anchorsplat {self.what} ({kind}, expected {self.name!r}): pass the right file"
            )
        else:
            try:
                version = int(header.get("version"))
            except (TypeError, ValueError):
                raise self.error(path, "has a damaged header (no version number)") from None
        if version > self.version:
            raise FileFormatError(
                f"{path} is {self.what} version {version}, newer than this anchorsplat reads ({self.version}): "
                "upgrade anchorsplat"
            )
        if version < 1:
            raise self.error(path, f"has an invalid version number {version}")
        while version < self.version:
            meta, payload = self.migrations[version](meta, payload)
            version += 1
        return meta, payload


def require_file(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a Path if it is a readable file; a clear ValueError for a missing path or a folder."""
    path = Path(path)
    if path.is_dir():
        raise FileFormatError(f"{what} {path} is a folder, not a file: pass the file itself")
    if not path.exists():
        raise FileFormatError(f"{what} {path} does not exist: check the path")
    if not os.access(path, os.R_OK):
        raise FileFormatError(f"{what} {path} is not readable (permission denied): fix its permissions")
    return path


def _reject_constant(name: str) -> float:
    raise ValueError(f"non-finite number {name}")


def check_finite(path: Path, name: str, value: Any, fmt: FileFormat | None = None) -> None:
    """Refuse NaN or infinite values in a tensor, an array or a (nested) JSON value."""
    bad = False
    if isinstance(value, Tensor):
        bad = value.is_floating_point() and not bool(torch.isfinite(value).all())
    elif isinstance(value, np.ndarray):
        bad = value.dtype.kind in "fc" and not bool(np.isfinite(value).all())
    elif isinstance(value, float):
        bad = not math.isfinite(value)
    elif isinstance(value, Mapping):
        for k, v in value.items():
            check_finite(path, f"{name}.{k}" if name else str(k), v, fmt)
    elif isinstance(value, (list, tuple)):
        for v in value:
            check_finite(path, name, v, fmt)
    if bad:
        what = fmt.what if fmt is not None else "file"
        fix = fmt.fix if fmt is not None else "make it again"
        raise FileFormatError(f"{what} {path}: {name!r} holds NaN or infinite values; the file is corrupt: {fix}")


def write_json(path: str | os.PathLike, fmt: FileFormat, payload: Mapping[str, Any]) -> Path:
    """``{"format": ..., "version": ..., **payload}`` as indented JSON, atomically (NaN is refused, not written)."""
    data = {"format": fmt.name, "version": fmt.version, **payload}
    return atomic_write_text(path, json.dumps(data, indent=1, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike, fmt: FileFormat) -> dict:
    """A JSON file of format ``fmt``, upgraded to its current version (the ``format``/``version`` keys removed)."""
    path = require_file(path, fmt.what)
    try:
        data = json.loads(path.read_bytes().decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise fmt.error(path, "is not text (not a JSON file)") from None
    except ValueError as exc:
        raise fmt.error(path, f"is not valid JSON (truncated or damaged: {exc})") from None
    if not isinstance(data, dict):
        raise fmt.error(path, "does not hold a JSON object")
    data, _ = fmt.upgrade(path, data, data, {})
    return {k: v for k, v in data.items() if k not in ("format", "version")}


def write_safetensors(
    path: str | os.PathLike,
    fmt: FileFormat,
    tensors: Mapping[str, Tensor],
    meta: Mapping[str, Any] | None = None,
    header: Mapping[str, str] | None = None,
) -> Path:
    """Tensors + JSON-able ``meta`` (stored as the ``data`` header string) as safetensors, atomically.

    ``header`` adds plain string fields to the safetensors metadata (units, axes: readable by other tools).
    """
    from safetensors.torch import save

    for name, tensor in tensors.items():
        check_finite(Path(path), name, tensor, fmt)
    metadata = {
        **(header or {}),
        "format": fmt.name,
        "version": str(fmt.version),
        "data": json.dumps(meta or {}, allow_nan=False),
    }
    cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    return atomic_write_bytes(path, save(cpu, metadata=metadata))


def read_safetensors(path: str | os.PathLike, fmt: FileFormat) -> tuple[dict, dict[str, Tensor]]:
    """(meta, tensors) of a safetensors file of format ``fmt``, upgraded to the current version, all finite."""
    from safetensors import safe_open

    path = require_file(path, fmt.what)
    try:
        with safe_open(str(path), framework="pt") as f:
            header = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open is not a dict
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types for damaged files
        raise fmt.error(
            path,
            f"is not a readable safetensors file ({type(exc).__name__}: {exc}); truncated or of another kind?",
        ) from None
    if "data" not in header:  # files that kept their fields as plain header strings
        header = {**header, "data": json.dumps({k: v for k, v in header.items() if k not in ("format", "version")})}
    try:
        meta = json.loads(header["data"], parse_constant=_reject_constant)
    except ValueError:
        raise fmt.error(path, "has a damaged header") from None
    if not isinstance(meta, dict):
        raise fmt.error(path, "has a damaged header")
    meta, tensors = fmt.upgrade(path, header, meta, tensors)
    for name, tensor in tensors.items():
        check_finite(path, name, tensor, fmt)
    return meta, tensors


def write_torch(path: str | os.PathLike, fmt: FileFormat, state: Mapping[str, Any]) -> Path:
    """A ``torch.save`` of plain containers of tensors and numbers (read back with ``weights_only=True``)."""
    with atomic_path(path) as tmp:
        torch.save({**state, "format": fmt.name, "version": fmt.version}, tmp)
    return Path(path)


def read_torch(path: str | os.PathLike, fmt: FileFormat) -> dict:
    """Load a :func:`write_torch` file with ``weights_only=True`` (no code runs from the file), checked."""
    path = require_file(path, fmt.what)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for damaged or hostile files
        raise fmt.error(path, f"cannot be read ({type(exc).__name__}); it may be truncated") from None
    if not isinstance(state, dict):
        raise fmt.error(path, "does not hold a saved state")
    state, _ = fmt.upgrade(path, state, state, {})
    check_finite(path, "", {k: v for k, v in state.items() if isinstance(v, (Tensor, Mapping))}, fmt)
    return state


def read_npz(path: str | os.PathLike, what: str, fix: str = "make it again") -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` (pickles refused); a clear error for a text, truncated or damaged file."""
    import zipfile

    path = require_file(path, what)
    if not zipfile.is_zipfile(path):
        raise FileFormatError(f"{what} {path} is not an .npz archive (truncated, or another kind of file): {fix}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {k: archive[k] for k in archive.files}
    except ValueError as exc:
        if "pickle" in str(exc):
            raise FileFormatError(
                f"{what} {path} holds Python objects (pickles), which are never loaded: {fix}"
            ) from None
        raise FileFormatError(f"{what} {path} is damaged ({exc}): {fix}") from None
    except Exception as exc:  # noqa: BLE001 - zipfile/numpy raise many types for damaged archives
        raise FileFormatError(f"{what} {path} is damaged or truncated ({type(exc).__name__}): {fix}") from None
