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

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from .fileio import FileFormat, atomic_write_bytes, read_safetensors, write_safetensors
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
AVATAR_FILE = FileFormat(AVATAR_FORMAT, CURRENT_VERSION, "avatar file", "re-export or re-bake it")
RIG_FILE = FileFormat(RIG_FORMAT, CURRENT_VERSION, "rig file", "regenerate it")
MAX_LOG_SCALE = 5.0
"""A Gaussian wider than e^5 m (150 m) around a person is damage, not data (it would paint the whole image)."""

__all__ = ["Avatar", "atomic_write_bytes", "load_avatar", "load_rig", "save_avatar", "save_rig"]


@dataclass(frozen=True, eq=False)
class Avatar:
    """One subject: its rig and the Gaussians bound to it."""

    rig: Rig
    gaussians: RiggedGaussians
    info: dict = field(default_factory=dict)


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


def _header(meta: dict) -> dict[str, str]:
    return {**_CONVENTIONS, "rig_kind": meta["rig"]["kind"]}


def save_avatar(path: str | os.PathLike, avatar: Avatar) -> Path:
    """Write ``avatar`` to ``path`` (suffix ``.anchorsplat``), atomically."""
    path = Path(path)
    if path.suffix != AVATAR_SUFFIX:
        raise ValueError(f"avatar files end in {AVATAR_SUFFIX}: got {path}")
    meta = {"rig": _rig_meta(avatar.rig), "info": avatar.info}
    tensors = {**_rig_tensors(avatar.rig), **_gaussian_tensors(avatar.gaussians)}
    write_safetensors(path, AVATAR_FILE, tensors, meta, _header(meta))
    return path


def save_rig(path: str | os.PathLike, rig: Rig) -> Path:
    path = Path(path)
    meta = {"rig": _rig_meta(rig)}
    write_safetensors(path, RIG_FILE, _rig_tensors(rig), meta, _header(meta))
    return path


def _check_index(path: Path, name: str, index: Tensor, count: int, fmt: FileFormat) -> None:
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= count):
        raise fmt.error(path, f"is corrupt: {name} point outside 0..{count - 1}")


def _check_rig(path: Path, rig: Rig, fmt: FileFormat) -> None:
    v, j = rig.vertices_rest.shape[0], rig.parents.shape[0]
    _check_index(path, "rig triangle corners", rig.faces, v, fmt)
    _check_index(path, "rig skinning joints", rig.skin_indices, j, fmt)
    parents = rig.parents[1:]
    if parents.numel() and (int(parents.min()) < 0 or bool((parents >= torch.arange(1, j)).any())):
        raise fmt.error(path, "is corrupt: the joint hierarchy is not a tree in parent-first order")


def _check_gaussians(path: Path, g: RiggedGaussians, faces: int, fmt: FileFormat) -> None:
    n = g.face_ids.shape[0]
    if n == 0:
        raise fmt.error(path, "holds no Gaussians")
    for name in _GAUSSIAN_FIELDS:
        if getattr(g, name).shape[0] != n:
            raise fmt.error(path, f"is corrupt: gaussians.{name} has {getattr(g, name).shape[0]} rows, not {n}")
    _check_index(path, "Gaussians' triangle ids", g.face_ids, faces, fmt)
    if float(g.log_scales.max()) > MAX_LOG_SCALE:
        raise fmt.error(
            path, f"is corrupt: a Gaussian's log-scale is {float(g.log_scales.max()):.3g} (over {MAX_LOG_SCALE})"
        )


def load_avatar(path: str | os.PathLike) -> Avatar:
    """Read an ``.anchorsplat`` file; a clear ValueError for a missing, damaged, foreign, newer or corrupt file."""
    path = Path(path)
    meta, t = read_safetensors(path, AVATAR_FILE)
    try:
        rig = _rig_from(meta["rig"], t)
        gaussians = _gaussians_from(t)
    except (KeyError, ValueError, RuntimeError, IndexError, TypeError, AttributeError) as exc:
        raise AVATAR_FILE.error(path, f"has inconsistent contents ({type(exc).__name__}: {exc})") from None
    _check_rig(path, rig, AVATAR_FILE)
    _check_gaussians(path, gaussians, rig.faces.shape[0], AVATAR_FILE)
    return Avatar(rig, gaussians, meta.get("info", {}))


def load_rig(path: str | os.PathLike) -> Rig:
    path = Path(path)
    meta, t = read_safetensors(path, RIG_FILE)
    try:
        rig = _rig_from(meta["rig"], t)
    except (KeyError, ValueError, RuntimeError, IndexError, TypeError, AttributeError) as exc:
        raise RIG_FILE.error(path, f"has inconsistent contents ({type(exc).__name__}: {exc})") from None
    _check_rig(path, rig, RIG_FILE)
    return rig
