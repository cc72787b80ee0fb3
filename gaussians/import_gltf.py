"""Reading ``.glb`` files: a small accessor reader (:func:`read_glb`) and the avatar importer (:func:`import_glb`).

:func:`import_glb` reads back what :func:`anchorsplat.gaussians.export_gltf.export_glb` writes: the rig from the
skin, the skeleton nodes and the body mesh (the exact top-k skinning from ``_RIG_JOINTS_i`` / ``_RIG_WEIGHTS_i``,
the blendshapes from the morph targets), and the Gaussians from the ``KHR_gaussian_splatting`` primitive with
their triangle binding from ``_FACE_ID`` / ``_BARYCENTRIC`` / ``_NORMAL_OFFSET``. A splat primitive without our
binding attributes (another exporter's file on our rig) is re-bound to the nearest triangle. The rig's shape
basis is not stored in glTF, so an imported rig has none.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from .conventions import quat_xyzw_to_wxyz
from .export_gltf import GLB_FORMAT, GLB_VERSION, SPLAT_EXTENSION, SPLAT_PREFIX
from .io import Avatar
from .rig import Rig
from .rigged import RiggedGaussians, triangle_frames

_COMPONENTS = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
_WIDTHS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}


@dataclass(frozen=True, eq=False)
class Glb:
    """A parsed ``.glb``: its JSON document and binary chunk, with typed access to accessors."""

    json: dict
    binary: bytes

    def accessor(self, index: int) -> np.ndarray:
        """Accessor ``index`` as an array (count x width, or count for scalars), normalised integers as floats,
        sparse substitution applied (glTF 2.0 section 3.6)."""
        acc = self.json["accessors"][index]
        dtype = np.dtype(_COMPONENTS[acc["componentType"]]).newbyteorder("<")
        width, count = _WIDTHS[acc["type"]], acc["count"]
        if "bufferView" in acc:
            out = self._view(acc["bufferView"], acc.get("byteOffset", 0), dtype, count, width).copy()
        else:
            out = np.zeros((count, width), dtype=dtype)
        sparse = acc.get("sparse")
        if sparse:
            idx_acc, val_acc = sparse["indices"], sparse["values"]
            idx_dtype = np.dtype(_COMPONENTS[idx_acc["componentType"]]).newbyteorder("<")
            rows = self._view(idx_acc["bufferView"], idx_acc.get("byteOffset", 0), idx_dtype, sparse["count"], 1)
            values = self._view(val_acc["bufferView"], val_acc.get("byteOffset", 0), dtype, sparse["count"], width)
            out[rows[:, 0].astype(np.int64)] = values
        if acc.get("normalized"):
            info = np.iinfo(dtype)
            out = out.astype(np.float32) / np.float32(info.max)
            out = np.maximum(out, -1.0) if info.min < 0 else out
        return out[:, 0] if width == 1 else out

    def _view(self, view_index: int, offset: int, dtype: np.dtype, count: int, width: int) -> np.ndarray:
        view = self.json["bufferViews"][view_index]
        if view.get("buffer", 0) != 0:
            raise ValueError("only single-buffer .glb files are supported (external buffers are not)")
        start = view.get("byteOffset", 0) + offset
        item = dtype.itemsize * width
        stride = view.get("byteStride", item)
        if count == 0:
            return np.zeros((0, width), dtype=dtype)
        end = start + stride * (count - 1) + item
        if end > view.get("byteOffset", 0) + view["byteLength"] or end > len(self.binary):
            raise ValueError(f"bufferView {view_index} is too short for its accessor; the file is truncated")
        raw = np.frombuffer(self.binary, dtype=np.uint8, count=end - start, offset=start)
        if stride == item:
            return raw.view(dtype).reshape(count, width)
        rows = np.lib.stride_tricks.as_strided(raw, shape=(count, item), strides=(stride, 1))
        return np.ascontiguousarray(rows).view(dtype).reshape(count, width)


def read_glb(path: str | os.PathLike) -> Glb:
    """Parse a glTF binary file; a clear ValueError for a missing, truncated or non-glb file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"glTF file {path} does not exist")
    data = path.read_bytes()
    if len(data) < 20 or data[:4] != b"glTF":
        raise ValueError(f"{path} is not a glTF binary (.glb) file: it does not start with 'glTF'")
    _, version, total = struct.unpack_from("<III", data, 0)
    if version != 2:
        raise ValueError(f"{path} is glTF binary version {version}; only version 2 is supported")
    if total > len(data):
        raise ValueError(f"{path} is truncated ({len(data)} of {total} bytes); re-export it")
    offset, doc, binary = 12, None, b""
    while offset + 8 <= total:
        length, kind = struct.unpack_from("<II", data, offset)
        chunk = data[offset + 8 : offset + 8 + length]
        if kind == 0x4E4F534A:
            doc = json.loads(chunk.decode("utf-8"))
        elif kind == 0x004E4942:
            binary = bytes(chunk)
        offset += 8 + length + ((-length) % 4)
    if doc is None:
        raise ValueError(f"{path} has no JSON chunk; it is not a valid .glb")
    return Glb(doc, binary)


def _find_mesh_node(doc: dict, name: str, path: Path) -> dict:
    for node in doc.get("nodes", []):
        if node.get("name") == name and "mesh" in node:
            return node
    raise ValueError(f"{path} has no {name!r} mesh node: it was not written by anchorsplat's glb exporter")


def import_glb(path: str | os.PathLike) -> Avatar:
    """Read an avatar written by :func:`anchorsplat.gaussians.export_gltf.export_glb`."""
    path = Path(path)
    glb = read_glb(path)
    doc = glb.json
    extras = doc.get("asset", {}).get("extras", {})
    if extras.get("format") != GLB_FORMAT:
        raise ValueError(f"{path} is a glb but not an anchorsplat avatar (asset.extras.format is not {GLB_FORMAT!r})")
    if int(extras.get("version", 0)) > GLB_VERSION:
        raise ValueError(
            f"{path} is anchorsplat glb version {extras['version']}, newer than this one: upgrade anchorsplat"
        )
    try:
        splats = _find_mesh_node(doc, "gaussians", path)  # first: a surface-only glb has neither, say what it lacks
        rig = _read_rig(glb, _find_mesh_node(doc, "body", path), extras)
        gaussians = _read_gaussians(glb, splats, rig)
    except (KeyError, IndexError, TypeError) as exc:
        raise ValueError(
            f"{path}: the glb's contents are inconsistent ({type(exc).__name__}: {exc}); re-export it"
        ) from None
    return Avatar(rig, gaussians, dict(extras.get("avatar_info", {})))


def _read_rig(glb: Glb, body_node: dict, extras: dict) -> Rig:
    doc = glb.json
    skin = doc["skins"][body_node["skin"]]
    joints = skin["joints"]
    node_to_joint = {node: k for k, node in enumerate(joints)}
    parents = [-1] * len(joints)
    for k, node in enumerate(joints):
        for child in doc["nodes"][node].get("children", []):
            if child in node_to_joint:
                parents[node_to_joint[child]] = k
    ibm = glb.accessor(skin["inverseBindMatrices"]).reshape(-1, 4, 4).transpose(0, 2, 1)
    joints_rest = -ibm[:, :3, 3]  # identity rest rotations: IBM = translate(-joint position)
    nodes = [doc["nodes"][n] for n in joints]
    primitive = doc["meshes"][body_node["mesh"]]["primitives"][0]
    attributes = primitive["attributes"]
    vertices = glb.accessor(attributes["POSITION"])
    sets = sorted(int(k.rsplit("_", 1)[1]) for k in attributes if k.startswith("_RIG_JOINTS_"))
    if sets:
        skin_indices = np.concatenate([glb.accessor(attributes[f"_RIG_JOINTS_{s}"]) for s in sets], 1)
        skin_weights = np.concatenate([glb.accessor(attributes[f"_RIG_WEIGHTS_{s}"]) for s in sets], 1)
        k = int(doc["meshes"][body_node["mesh"]].get("extras", {}).get("rig_skin_k", skin_indices.shape[1]))
        skin_indices, skin_weights = skin_indices[:, :k], skin_weights[:, :k]
    else:  # another exporter: the engine's top-4
        skin_indices, skin_weights = glb.accessor(attributes["JOINTS_0"]), glb.accessor(attributes["WEIGHTS_0"])
    names, dirs = _targets(glb, doc["meshes"][body_node["mesh"]], len(vertices))
    return Rig(
        kind=str(extras.get("rig_kind", "gltf")),
        vertices_rest=torch.from_numpy(vertices.astype(np.float32)),
        faces=torch.from_numpy(glb.accessor(primitive["indices"]).astype(np.int64).reshape(-1, 3)),
        joint_names=tuple(n.get("name", f"joint{k}") for k, n in enumerate(nodes)),
        parents=torch.tensor(parents),
        joints_rest=torch.from_numpy(joints_rest.astype(np.float32)),
        skin_indices=torch.from_numpy(skin_indices.astype(np.int64)),
        skin_weights=torch.from_numpy(skin_weights.astype(np.float32)),
        expression_names=names,
        expression_dirs=dirs,
        smplx_source=torch.tensor([int(n.get("extras", {}).get("smplx_source", -1)) for n in nodes]),
        smplx_fraction=torch.tensor([float(n.get("extras", {}).get("smplx_fraction", 0.0)) for n in nodes]),
        info=dict(extras.get("rig_info", {})),
    )


def _targets(glb: Glb, mesh: dict, count: int) -> tuple[tuple[str, ...], Tensor]:
    targets = mesh["primitives"][0].get("targets", [])
    names = tuple(mesh.get("extras", {}).get("targetNames", [f"target{k}" for k in range(len(targets))]))
    if not targets:
        return names, torch.zeros(0, count, 3)
    return names, torch.from_numpy(np.stack([glb.accessor(t["POSITION"]) for t in targets]).astype(np.float32))


def _read_gaussians(glb: Glb, splat_node: dict, rig: Rig) -> RiggedGaussians:
    primitive = glb.json["meshes"][splat_node["mesh"]]["primitives"][0]
    if SPLAT_EXTENSION not in primitive.get("extensions", {}):
        raise ValueError(f"the 'gaussians' primitive does not use {SPLAT_EXTENSION}")
    a = primitive["attributes"]

    def get(name: str) -> Tensor:
        return torch.from_numpy(glb.accessor(a[name]).astype(np.float32))

    means = get("POSITION")
    quats = quat_xyzw_to_wxyz(get(SPLAT_PREFIX + "ROTATION"))
    log_scales = torch.log(get(SPLAT_PREFIX + "SCALE").double().clamp_min(1e-30)).float()
    opacities = get(SPLAT_PREFIX + "OPACITY").double().clamp(1e-7, 1 - 1e-7)
    opacity_logits = (torch.log(opacities) - torch.log1p(-opacities)).float()
    degree = 0
    while f"{SPLAT_PREFIX}SH_DEGREE_{degree + 1}_COEF_0" in a:
        degree += 1
    sh = torch.stack(
        [get(f"{SPLAT_PREFIX}SH_DEGREE_{d}_COEF_{k}") for d in range(degree + 1) for k in range(2 * d + 1)], dim=1
    )
    if "_FACE_ID" in a:
        face_ids = get("_FACE_ID").round().long()
        barycentric, normal_offsets = get("_BARYCENTRIC"), get("_NORMAL_OFFSET")
    else:
        binding = bind_to_nearest_triangle(means, rig)
        face_ids, barycentric, normal_offsets = binding.face_ids, binding.barycentric, binding.normal_offsets
    return RiggedGaussians(face_ids, barycentric, normal_offsets, quats, log_scales, opacity_logits, sh)


@dataclass(frozen=True, eq=False)
class TriangleBinding:
    """Where points sit on a rig's rest mesh (the binding fields of :class:`RiggedGaussians`)."""

    face_ids: Int[Tensor, " N"]
    barycentric: Float[Tensor, "N 3"]
    normal_offsets: Float[Tensor, " N"]


def bind_to_nearest_triangle(points: Float[Tensor, "N 3"], rig: Rig, chunk: int = 4096) -> TriangleBinding:
    """Bind rest-pose points to the triangle whose centroid is nearest: the barycentric coordinates of the
    point's projection on the triangle's plane and its signed distance along the normal. The binding
    reproduces the point exactly on the rest mesh (the projection may fall outside the triangle)."""
    points = points.to(rig.vertices_rest.dtype)
    tri = rig.vertices_rest[rig.faces]  # F 3 3
    centroids = tri.mean(1)
    face_ids = torch.cat([torch.cdist(p, centroids).argmin(1) for p in points.split(chunk)])
    a, b, c = tri[face_ids].unbind(1)
    frames = triangle_frames(rig.vertices_rest, rig.faces, face_ids, torch.full_like(points, 1 / 3))
    normal = frames.rotations[..., 2]
    offsets = ((points - a) * normal).sum(-1)
    q = points - offsets[:, None] * normal
    # Barycentric coordinates of q in (a, b, c), by the standard dot-product solve.
    v0, v1, v2 = b - a, c - a, q - a
    d00, d01, d11 = (v0 * v0).sum(-1), (v0 * v1).sum(-1), (v1 * v1).sum(-1)
    d20, d21 = (v2 * v0).sum(-1), (v2 * v1).sum(-1)
    denom = (d00 * d11 - d01 * d01).clamp_min(1e-30)
    v = (d11 * d20 - d01 * d21) / denom
    w = (d00 * d21 - d01 * d20) / denom
    return TriangleBinding(face_ids, torch.stack([1 - v - w, v, w], dim=-1), offsets)
