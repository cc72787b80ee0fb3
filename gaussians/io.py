"""The ``.anchorsplat`` avatar file and the ``.rig.safetensors`` rig file.

Both are safetensors files whose metadata says the format name, its version, units, axes, quaternion order
and rig kind, and carries the JSON-able parts (names, provenance). Version policy: older versions load
through one migration function per bump (:data:`_MIGRATIONS`); newer versions are refused with
"upgrade anchorsplat". Writes are atomic (temp file in the same folder, then rename).

Layout, version 1 (tensor names; ``rig.`` / ``gaussians.`` prefixes):
- ``rig.vertices_rest`` V 3 f32, ``rig.faces`` F 3 i32, ``rig.parents`` J i32, ``rig.joints_rest`` J 3 f32,
  ``rig.skin_indices`` V K i32, ``rig.skin_weights`` V K f32, ``rig.smplx_source`` J i32, ``rig.smplx_fraction`` J f32,
  ``rig.expression_vertex_ids`` M i32 + ``rig.expression_deltas`` E M 3 f32 (blendshapes stored sparsely on the
  M vertices any blendshape moves), optional ``rig.shape_dirs`` S V 3 and ``rig.joint_shape_dirs`` S J 3.
- ``gaussians.face_ids`` N i32, ``gaussians.barycentric`` N 3, ``gaussians.normal_offsets`` N,
  ``gaussians.quats_canonical_wxyz`` N 4, ``gaussians.log_scales`` N 3, ``gaussians.opacity_logits`` N,
  ``gaussians.sh_coeffs`` N K 3 (all f32).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from .rig import Rig
from .rigged import RiggedGaussians

AVATAR_FORMAT = "anchorsplat.avatar"
RIG_FORMAT = "anchorsplat.rig"
CURRENT_VERSION = 1
AVATAR_SUFFIX = ".anchorsplat"

_CONVENTIONS = {
    "units": "meters",
    "axes": "right-handed, +Y up, body faces +Z; cameras OpenCV (+Z forward, +Y down)",
    "quaternion_order": "wxyz",
    "rotations": "world-aligned local joint rotations (SMPL-X convention)",
}
# version -> function upgrading (metadata, tensors) of that version to version + 1
_MIGRATIONS: dict[int, Callable[[dict, dict[str, Tensor]], tuple[dict, dict[str, Tensor]]]] = {}


@dataclass(frozen=True, eq=False)
class Avatar:
    """One subject: its rig and the Gaussians bound to it."""

    rig: Rig
    gaussians: RiggedGaussians
    info: dict = field(default_factory=dict)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _rig_tensors(rig: Rig) -> dict[str, Tensor]:
    rig = rig.to("cpu")
    moved = rig.expression_dirs.abs().amax(dim=(0, 2)) > 0
    ids = torch.nonzero(moved)[:, 0]
    tensors = {
        "rig.vertices_rest": rig.vertices_rest.float(),
        "rig.faces": rig.faces.int(),
        "rig.parents": rig.parents.int(),
        "rig.joints_rest": rig.joints_rest.float(),
        "rig.skin_indices": rig.skin_indices.int(),
        "rig.skin_weights": rig.skin_weights.float(),
        "rig.smplx_source": rig.smplx_source.int(),
        "rig.smplx_fraction": rig.smplx_fraction.float(),
        "rig.expression_vertex_ids": ids.int(),
        "rig.expression_deltas": rig.expression_dirs[:, ids].float(),
    }
    if rig.shape_dirs is not None and rig.joint_shape_dirs is not None:
        tensors["rig.shape_dirs"] = rig.shape_dirs.float()
        tensors["rig.joint_shape_dirs"] = rig.joint_shape_dirs.float()
    return {k: v.contiguous() for k, v in tensors.items()}


def _rig_meta(rig: Rig) -> dict:
    return {
        "kind": rig.kind,
        "joint_names": list(rig.joint_names),
        "expression_names": list(rig.expression_names),
        "shape_names": list(rig.shape_names),
        "info": rig.info,
    }


def _rig_from(meta: dict, t: dict[str, Tensor]) -> Rig:
    v = t["rig.vertices_rest"].shape[0]
    e = len(meta["expression_names"])
    expression_dirs = torch.zeros(e, v, 3)
    expression_dirs[:, t["rig.expression_vertex_ids"].long()] = t["rig.expression_deltas"]
    return Rig(
        kind=meta["kind"],
        vertices_rest=t["rig.vertices_rest"],
        faces=t["rig.faces"].long(),
        joint_names=tuple(meta["joint_names"]),
        parents=t["rig.parents"].long(),
        joints_rest=t["rig.joints_rest"],
        skin_indices=t["rig.skin_indices"].long(),
        skin_weights=t["rig.skin_weights"],
        expression_names=tuple(meta["expression_names"]),
        expression_dirs=expression_dirs,
        smplx_source=t["rig.smplx_source"].long(),
        smplx_fraction=t["rig.smplx_fraction"],
        shape_names=tuple(meta.get("shape_names", ())),
        shape_dirs=t.get("rig.shape_dirs"),
        joint_shape_dirs=t.get("rig.joint_shape_dirs"),
        info=meta.get("info", {}),
    )


_GAUSSIAN_FIELDS = (
    "barycentric",
    "normal_offsets",
    "quats_canonical_wxyz",
    "log_scales",
    "opacity_logits",
    "sh_coeffs",
)


def _gaussian_tensors(g: RiggedGaussians) -> dict[str, Tensor]:
    tensors = {"gaussians.face_ids": g.face_ids.int().cpu()}
    for name in _GAUSSIAN_FIELDS:
        tensors[f"gaussians.{name}"] = getattr(g, name).detach().float().cpu()
    return {k: v.contiguous() for k, v in tensors.items()}


def _gaussians_from(t: dict[str, Tensor]) -> RiggedGaussians:
    return RiggedGaussians(
        face_ids=t["gaussians.face_ids"].long(), **{name: t[f"gaussians.{name}"] for name in _GAUSSIAN_FIELDS}
    )


def _serialise(format_name: str, meta: dict, tensors: dict[str, Tensor]) -> bytes:
    from safetensors.torch import save

    header = {"format": format_name, "version": str(CURRENT_VERSION), **_CONVENTIONS, "data": json.dumps(meta)}
    header["rig_kind"] = meta["rig"]["kind"]
    return save(tensors, metadata=header)


def save_avatar(path: str | os.PathLike, avatar: Avatar) -> Path:
    """Write ``avatar`` to ``path`` (suffix ``.anchorsplat``), atomically."""
    path = Path(path)
    if path.suffix != AVATAR_SUFFIX:
        raise ValueError(f"avatar files end in {AVATAR_SUFFIX}: got {path}")
    meta = {"rig": _rig_meta(avatar.rig), "info": avatar.info}
    tensors = {**_rig_tensors(avatar.rig), **_gaussian_tensors(avatar.gaussians)}
    atomic_write_bytes(path, _serialise(AVATAR_FORMAT, meta, tensors))
    return path


def save_rig(path: str | os.PathLike, rig: Rig) -> Path:
    path = Path(path)
    atomic_write_bytes(path, _serialise(RIG_FORMAT, {"rig": _rig_meta(rig)}, _rig_tensors(rig)))
    return path


def _read(path: str | os.PathLike, expected_format: str, what: str) -> tuple[dict, dict[str, Tensor]]:
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{what} file {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open is not a dict
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types for damaged files
        raise ValueError(
            f"{path} is not a readable {what} file ({type(exc).__name__}: {exc}); it may be truncated or of "
            "another format: re-export it"
        ) from None
    if header.get("format") != expected_format:
        raise ValueError(
            f"{path} is not an {what} file (format {header.get('format')!r}, expected {expected_format!r})"
        )
    try:
        version = int(header["version"])
        meta = json.loads(header["data"])
    except (KeyError, ValueError):
        raise ValueError(f"{path}: the {what} header is damaged (no version or data); re-export it") from None
    if version > CURRENT_VERSION:
        raise ValueError(
            f"{path} is {what} format version {version}, newer than this anchorsplat reads ({CURRENT_VERSION}): "
            "upgrade anchorsplat"
        )
    if version < 1:
        raise ValueError(f"{path}: invalid {what} format version {version}")
    while version < CURRENT_VERSION:
        meta, tensors = _MIGRATIONS[version](meta, tensors)
        version += 1
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ValueError(f"{path}: tensor {name!r} contains NaN or infinite values; the file is corrupt")
    return meta, tensors


def load_avatar(path: str | os.PathLike) -> Avatar:
    """Read an ``.anchorsplat`` file; a clear ValueError for a missing, damaged, foreign or newer file."""
    meta, t = _read(path, AVATAR_FORMAT, "anchorsplat avatar")
    try:
        rig = _rig_from(meta["rig"], t)
        gaussians = _gaussians_from(t)
    except (KeyError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{path}: the avatar's contents are inconsistent ({exc}); re-export it") from None
    if len(gaussians) and int(gaussians.face_ids.max()) >= rig.faces.shape[0]:
        raise ValueError(f"{path}: Gaussians are bound to triangles the rig does not have; the file is corrupt")
    return Avatar(rig, gaussians, meta.get("info", {}))


def load_rig(path: str | os.PathLike) -> Rig:
    meta, t = _read(path, RIG_FORMAT, "anchorsplat rig")
    try:
        return _rig_from(meta["rig"], t)
    except (KeyError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{path}: the rig's contents are inconsistent ({exc}); regenerate it") from None
