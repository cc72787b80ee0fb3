"""Rigged avatars as glTF 2.0 binary (``.glb``) for engines (Unity, Unreal, Godot, Blender, three.js).

One file holds everything an engine needs to play the avatar, in glTF's own conventions (meters, +Y up,
front +Z: ours already; quaternions ``xyzw``, converted here at the boundary):

- **skeleton**: one node per rig joint, named as the joint, in rig order (node ``j`` is joint ``j``), with the
  rest offset to its parent as translation and an identity rest rotation (our joints are world-aligned, so a
  world-aligned local rotation *is* the glTF node's local rotation). The skin's inverse bind matrices are
  ``translate(-joints_rest)``.
- **surface** (node ``surface``, optional): the clothed, textured mesh :mod:`anchorsplat.export` extracts from
  the splats (:class:`~anchorsplat.gaussians.surface.SkinnedSurface`): ``TEXCOORD_0``, the colour texture as an
  embedded PNG in a non-metallic, fully rough PBR material, top-4 ``JOINTS_0`` / ``WEIGHTS_0`` and the expression
  morph targets. This is what an engine without splat support shows and animates.
- **body mesh** (node ``body``, only in files with the splats, and not in the scene: never drawn, a bald
  mannequin would cover the person; Blender imports off-scene nodes too, so surface-only files omit it): the
  rest mesh skinned with the rig's weights reduced to top-4 (``JOINTS_0`` / ``WEIGHTS_0``), normals, and the
  expression blendshapes as morph targets named in ``mesh.extras.targetNames``. The full top-k skinning is kept
  exactly in the custom attributes ``_RIG_JOINTS_i`` / ``_RIG_WEIGHTS_i``, for :func:`import_glb`.
- **Gaussians** (node ``gaussians``, optional): a ``POINTS`` primitive with the ``KHR_gaussian_splatting`` extension
  (ratified text: ``KHR_gaussian_splatting:ROTATION`` unit ``xyzw``, ``:SCALE`` *linear* ("MUST NOT be
  negative"; drafts stored log scales), ``:OPACITY`` post-sigmoid in [0, 1], ``:SH_DEGREE_l_COEF_n`` the raw RGB
  coefficients, ``m`` from ``-l`` to ``l`` with the Condon-Shortley phase, i.e. gsplat's basis order and signs, the
  DC term in ``SH_DEGREE_0_COEF_0``; kernel ``ellipse``, colour space ``srgb_rec709_display``; ``COLOR_0``
  fallback in linear RGB + opacity), skinned to the same skin with per-splat top-4 ``JOINTS_0`` / ``WEIGHTS_0`` and the
  per-splat expression deltas as morph targets (:func:`anchorsplat.gaussians.rigged.to_lbs`). Loaders that skip
  skins or the extension show the rest pose as a point cloud. The triangle binding rides along in
  ``_FACE_ID`` / ``_BARYCENTRIC`` / ``_NORMAL_OFFSET`` so :func:`anchorsplat.gaussians.import_gltf.import_glb`
  gets the avatar back exactly.
- **animation** (optional, from a :class:`~anchorsplat.gaussians.motion.Motion`): per-joint rotation channels,
  a root translation channel and morph-weight channels for both meshes, linear interpolation at the motion's fps.

Engines apply morph targets, then skinning, which is exactly :func:`anchorsplat.gaussians.rigged.pose_lbs`.

File layout of ``anchorsplat export --format glb`` (a separate file rather than ``KHR_node_visibility``, which
three.js, Unity's and Godot's importers ignore, so they would draw the points over the surface): ``NAME.glb``
has the surface and no splats, ``NAME.splats.glb`` the splats and no surface, both on the same skeleton with the
same animation; an engine with ``KHR_gaussian_splatting`` loads the second instead of (or beside) the first.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from .conventions import matrix_to_quat, quat_normalize, quat_wxyz_to_xyzw
from .glb_builder import ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER, POINTS, TRIANGLES, GlbBuilder
from .io import Avatar, atomic_write_bytes
from .motion import Motion
from .retarget import motion_to_rig
from .rig import vertex_normals
from .rigged import SH_C0, RiggedGaussians, to_lbs
from .surface import SkinnedSurface

GLB_FORMAT = "anchorsplat.glb"
GLB_VERSION = 1
SPLAT_EXTENSION = "KHR_gaussian_splatting"
SPLAT_PREFIX = f"{SPLAT_EXTENSION}:"

# --- conversions at the format boundary (the KHR_gaussian_splatting ellipse kernel's attribute spaces) ---


def gltf_rotations(quats_wxyz: Float[Tensor, "N 4"]) -> Float[Tensor, "N 4"]:
    """Unit ``xyzw`` quaternions (the spec lets renderers skip renormalisation, so they are normalised here)."""
    return quat_wxyz_to_xyzw(quat_normalize(quats_wxyz))


def gltf_scales(log_scales: Float[Tensor, "N 3"]) -> Float[Tensor, "N 3"]:
    """Linear scales (the ratified spec: "Scale values are linear and MUST NOT be negative")."""
    return torch.exp(log_scales)


def gltf_opacities(opacity_logits: Float[Tensor, " N"]) -> Float[Tensor, " N"]:
    """Opacity in [0, 1] after the sigmoid, usable directly for alpha blending."""
    return torch.sigmoid(opacity_logits)


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _np(t: Tensor, dtype=np.float32) -> np.ndarray:
    return t.detach().cpu().numpy().astype(dtype)


# --- skinning weights ---


def top4_weights(indices: np.ndarray, weights: np.ndarray, num_joints: int) -> tuple[np.ndarray, np.ndarray]:
    """Sparse top-k skinning -> glTF ``JOINTS_0`` / ``WEIGHTS_0``: duplicates merged, the 4 largest kept and
    renormalised, unused slots pointing at joint 0 with weight 0 (what the glTF validator expects)."""
    n = indices.shape[0]
    dense = np.zeros((n, num_joints), dtype=np.float64)
    np.add.at(dense, (np.repeat(np.arange(n), indices.shape[1]), indices.reshape(-1)), weights.reshape(-1))
    k = min(4, num_joints)
    top = np.argsort(-dense, axis=1, kind="stable")[:, :k]
    w = np.take_along_axis(dense, top, axis=1).clip(min=0)
    if k < 4:
        top = np.concatenate([top, np.zeros((n, 4 - k), dtype=top.dtype)], axis=1)
        w = np.concatenate([w, np.zeros((n, 4 - k))], axis=1)
    total = w.sum(1, keepdims=True)
    w = np.where(total > 0, w / np.where(total > 0, total, 1), np.array([1.0, 0, 0, 0]))
    top = np.where(w > 0, top, 0)
    w32 = w.astype(np.float32)
    w32[:, 0] = (np.float32(1) - w32[:, 1:].sum(1, dtype=np.float32)).astype(np.float32)  # sum is 1 in float32
    joint_dtype = np.uint8 if num_joints <= 256 else np.uint16
    return top.astype(joint_dtype), w32


# --- the file ---


def export_glb(
    avatar: Avatar,
    path: str | os.PathLike,
    *,
    motion: Motion | None = None,
    max_gaussians: int | None = None,
    surface: SkinnedSurface | None = None,
    splats: bool = True,
) -> Path:
    """Write ``avatar`` (rig + Gaussians, optionally animated by ``motion``) as a ``.glb``, atomically.

    Args:
        avatar: the rig and the Gaussians bound to it.
        path: output file, ending in ``.glb``.
        motion: SMPL-X-format motion to store as the glTF animation ``"motion"``.
        max_gaussians: keep at most this many Gaussians (the most opaque ones), for engines with splat budgets.
        surface: the textured surface skinned to the rig (``anchorsplat.export``): the visible node ``surface``.
        splats: write the Gaussians (node ``gaussians``).
    """
    path = Path(path)
    if path.suffix.lower() != ".glb":
        raise ValueError(f"a glTF binary export must end in .glb: got {path}")
    b = build_glb(avatar, motion=motion, max_gaussians=max_gaussians, surface=surface, splats=splats)
    atomic_write_bytes(path, b.to_bytes())
    return path


def build_glb(
    avatar: Avatar,
    *,
    motion: Motion | None = None,
    max_gaussians: int | None = None,
    surface: SkinnedSurface | None = None,
    splats: bool = True,
) -> GlbBuilder:
    """The document and binary of :func:`export_glb`, not yet written (the VRM exporter extends it)."""
    if surface is None and not splats:
        raise ValueError("nothing to export: give a surface, or keep the splats")
    rig = avatar.rig.to("cpu", torch.float64)
    gaussians = avatar.gaussians.to("cpu", torch.float64)
    if max_gaussians is not None:
        if max_gaussians < 1:
            raise ValueError(f"max_gaussians must be at least 1, got {max_gaussians}")
        if len(gaussians) > max_gaussians:
            keep = torch.argsort(gaussians.opacity_logits, descending=True, stable=True)[:max_gaussians]
            gaussians = gaussians.subset(torch.sort(keep).values)
    if len(gaussians) == 0:
        raise ValueError("the avatar has no Gaussians to export")
    if motion is not None and len(motion) == 0:
        raise ValueError("the motion has no frames")

    b = GlbBuilder()
    doc = b.json
    doc["asset"] = {
        "version": "2.0",
        "generator": f"anchorsplat {_anchorsplat_version()}",
        "extras": {
            "format": GLB_FORMAT,
            "version": GLB_VERSION,
            "units": "meters",
            "axes": "right-handed, +Y up, body faces +Z",
            "rig_kind": rig.kind,
            "rig_info": rig.info,
            "avatar_info": avatar.info,
        },
    }
    if splats:
        doc["extensionsUsed"] = [SPLAT_EXTENSION]
    j = rig.num_joints
    doc["nodes"] = _skeleton_nodes(rig)
    ibm = np.tile(np.eye(4), (j, 1, 1))
    ibm[:, :3, 3] = -_np(rig.joints_rest, np.float64)
    doc["skins"] = [
        {
            "name": "rig",
            "joints": list(range(j)),
            "skeleton": 0,
            "inverseBindMatrices": b.accessor(ibm.transpose(0, 2, 1).reshape(j, 16).astype(np.float32)),
        }
    ]
    doc["meshes"] = []
    shown, animated = [0], []
    if splats:
        # The body mesh is the rig, kept beside the splats for the exact round trip of import_glb, but not part
        # of the scene: drawn, it is a bald mannequin in front of the person. A surface-only file (the default
        # glb, the VRM) leaves it out: importers that bring in every node (Blender's) would show it.
        doc["materials"] = [
            {"name": "body",
             "pbrMetallicRoughness": {"baseColorFactor": [0.8, 0.62, 0.52, 1.0], "metallicFactor": 0.0}},
        ]  # fmt: skip
        doc["meshes"].append(_body_mesh(b, rig))
        doc["nodes"].append({"name": "body", "mesh": 0, "skin": 0})
        animated.append(len(doc["nodes"]) - 1)
    if surface is not None:
        doc["meshes"].append(surface_mesh(b, surface, rig))
        doc["nodes"].append({"name": "surface", "mesh": len(doc["meshes"]) - 1, "skin": 0})
        shown.append(len(doc["nodes"]) - 1)
    if splats:
        doc["meshes"].append(_splat_mesh(b, rig, gaussians))
        doc["nodes"].append({"name": "gaussians", "mesh": len(doc["meshes"]) - 1, "skin": 0})
        shown.append(len(doc["nodes"]) - 1)
    doc["scenes"] = [{"name": "avatar", "nodes": shown}]
    doc["scene"] = 0
    if motion is not None:
        doc["animations"] = [_animation(b, rig, motion, mesh_nodes=(*animated, *shown[1:]))]
    return b


def _anchorsplat_version() -> str:
    try:
        from importlib.metadata import version

        return version("anchorsplat")
    except Exception:  # noqa: BLE001 - not installed as a distribution: a source checkout
        return "dev"


def _skeleton_nodes(rig) -> list[dict]:
    from .rig import rest_joint_offsets

    offsets = _np(rest_joint_offsets(rig.parents, rig.joints_rest), np.float64).astype(np.float32)
    parents = rig.parents.tolist()
    sources, fractions = rig.smplx_source.tolist(), rig.smplx_fraction.tolist()
    nodes = []
    for k, name in enumerate(rig.joint_names):
        node = {
            "name": name,
            "translation": [float(x) for x in offsets[k]],
            "extras": {"smplx_source": int(sources[k]), "smplx_fraction": float(np.float32(fractions[k]))},
        }
        children = [c for c, p in enumerate(parents) if p == k]
        if children:
            node["children"] = children
        nodes.append(node)
    return nodes


def _skin_sets(b: GlbBuilder, indices: np.ndarray, weights: np.ndarray) -> dict:
    """The rig's full top-k skinning, exactly, in custom VEC4 attributes (engines read JOINTS_0/WEIGHTS_0)."""
    k = indices.shape[1]
    sets = math.ceil(k / 4)
    pad = sets * 4 - k
    idx = np.concatenate([indices, np.zeros((len(indices), pad), indices.dtype)], 1).astype(np.uint16)
    w = np.concatenate([weights, np.zeros((len(weights), pad), weights.dtype)], 1).astype(np.float32)
    out = {}
    for s in range(sets):
        out[f"_RIG_JOINTS_{s}"] = b.accessor(idx[:, 4 * s : 4 * s + 4], target=ARRAY_BUFFER)
        out[f"_RIG_WEIGHTS_{s}"] = b.accessor(w[:, 4 * s : 4 * s + 4], target=ARRAY_BUFFER)
    return out


def _body_mesh(b: GlbBuilder, rig) -> dict:
    vertices = _np(rig.vertices_rest)
    normals = _np(vertex_normals(rig.vertices_rest, rig.faces), np.float64)
    bad = ~np.isfinite(normals).all(1) | (np.abs(np.linalg.norm(normals, axis=1) - 1) > 1e-3)
    normals[bad] = (0.0, 1.0, 0.0)  # isolated or degenerate vertices have no normal; any unit vector will do
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    joints, weights = top4_weights(_np(rig.skin_indices, np.int64), _np(rig.skin_weights, np.float64), rig.num_joints)
    index_dtype = np.uint16 if rig.num_vertices <= 65535 else np.uint32
    attributes = {
        "POSITION": b.accessor(vertices, target=ARRAY_BUFFER, bounds=True),
        "NORMAL": b.accessor(normals.astype(np.float32), target=ARRAY_BUFFER),
        "JOINTS_0": b.accessor(joints, target=ARRAY_BUFFER),
        "WEIGHTS_0": b.accessor(weights, target=ARRAY_BUFFER),
        **_skin_sets(b, _np(rig.skin_indices, np.int64), _np(rig.skin_weights)),
    }
    primitive = {
        "attributes": attributes,
        "indices": b.accessor(_np(rig.faces, np.int64).reshape(-1).astype(index_dtype), target=ELEMENT_ARRAY_BUFFER),
        "mode": TRIANGLES,
        "material": 0,
    }
    mesh = {"name": "body", "primitives": [primitive], "extras": {"rig_skin_k": int(rig.skin_indices.shape[1])}}
    _add_targets(b, mesh, _np(rig.expression_dirs), rig.expression_names)
    return mesh


def _add_targets(b: GlbBuilder, mesh: dict, deltas: np.ndarray, names: tuple[str, ...]) -> None:
    if not len(names):
        return
    mesh["primitives"][0]["targets"] = [{"POSITION": b.sparse_accessor(d)} for d in deltas]
    mesh["weights"] = [0.0] * len(names)
    mesh.setdefault("extras", {})["targetNames"] = list(names)


def _splat_mesh(b: GlbBuilder, rig, gaussians: RiggedGaussians) -> dict:
    lbs = to_lbs(gaussians, rig)
    n = len(gaussians)
    rgb = (gaussians.sh_coeffs[:, 0] * SH_C0 + 0.5).clamp(0, 1)
    opacities = gltf_opacities(lbs.opacity_logits)
    colour = np.concatenate([srgb_to_linear(_np(rgb, np.float64)), _np(opacities, np.float64)[:, None]], 1)
    joints, weights = top4_weights(_np(lbs.joint_indices, np.int64), _np(lbs.joint_weights, np.float64), rig.num_joints)
    attributes = {
        "POSITION": b.accessor(_np(lbs.means_canonical), target=ARRAY_BUFFER, bounds=True),
        "COLOR_0": b.accessor(colour.astype(np.float32), target=ARRAY_BUFFER),
        SPLAT_PREFIX + "ROTATION": b.accessor(_np(gltf_rotations(lbs.quats_canonical_wxyz)), target=ARRAY_BUFFER),
        SPLAT_PREFIX + "SCALE": b.accessor(_np(gltf_scales(lbs.log_scales)), target=ARRAY_BUFFER),
        SPLAT_PREFIX + "OPACITY": b.accessor(_np(opacities), target=ARRAY_BUFFER),
    }
    sh = _np(lbs.sh_coeffs)  # N K 3, gsplat's order: per degree l, m from -l to l
    for k in range(sh.shape[1]):
        degree = int(math.isqrt(k))
        attributes[f"{SPLAT_PREFIX}SH_DEGREE_{degree}_COEF_{k - degree * degree}"] = b.accessor(
            sh[:, k], target=ARRAY_BUFFER
        )
    attributes["JOINTS_0"] = b.accessor(joints, target=ARRAY_BUFFER)
    attributes["WEIGHTS_0"] = b.accessor(weights, target=ARRAY_BUFFER)
    # Our binding, for an exact round trip (float face ids: glTF forbids UNSIGNED_INT attributes; exact to 2^24).
    attributes["_FACE_ID"] = b.accessor(_np(gaussians.face_ids, np.int64).astype(np.float32), target=ARRAY_BUFFER)
    attributes["_BARYCENTRIC"] = b.accessor(_np(gaussians.barycentric), target=ARRAY_BUFFER)
    attributes["_NORMAL_OFFSET"] = b.accessor(_np(gaussians.normal_offsets), target=ARRAY_BUFFER)
    primitive = {
        "attributes": attributes,
        "mode": POINTS,
        "extensions": {
            SPLAT_EXTENSION: {
                "kernel": "ellipse",
                "colorSpace": "srgb_rec709_display",
                "projection": "perspective",
                "sortingMethod": "cameraDistance",
            }
        },
    }
    mesh = {"name": "gaussians", "primitives": [primitive], "extras": {"count": n}}
    _add_targets(b, mesh, _np(lbs.expression_deltas), rig.expression_names)
    return mesh


def _animation(b: GlbBuilder, rig, motion: Motion, mesh_nodes: tuple[int, ...]) -> dict:
    inputs = motion_to_rig(motion.to(dtype=torch.float64), rig)
    frames = len(motion)
    times = b.accessor(np.arange(frames, dtype=np.float32) / np.float32(motion.fps), bounds=True)
    quats = _np(quat_wxyz_to_xyzw(matrix_to_quat(inputs.joint_rotations)), np.float64)  # B J 4
    # Consecutive keys on the same hemisphere, so every interpolator takes the short way.
    for t in range(1, frames):
        flip = (quats[t] * quats[t - 1]).sum(-1) < 0
        quats[t, flip] *= -1
    samplers, channels = [], []

    def channel(node: int, path: str, values: np.ndarray) -> None:
        samplers.append({"input": times, "output": b.accessor(values.astype(np.float32)), "interpolation": "LINEAR"})
        channels.append({"sampler": len(samplers) - 1, "target": {"node": node, "path": path}})

    for joint in range(rig.num_joints):
        channel(joint, "rotation", quats[:, joint])
    root = _np(rig.joints_rest[0] + inputs.root_translation, np.float64)  # B 3: rest position + translation
    channel(0, "translation", root)
    if len(rig.expression_names):
        weights = _np(inputs.expression, np.float64).reshape(-1)  # frame-major, E per key
        for node in mesh_nodes:
            channel(node, "weights", weights)
    return {"name": "motion", "samplers": samplers, "channels": channels, "extras": {"fps": float(motion.fps)}}


def surface_mesh(b: GlbBuilder, surface: SkinnedSurface, rig) -> dict:
    """The textured surface: a skinned primitive with UVs, the colour texture as an embedded PNG in a metallic-
    roughness material (non-metallic, fully rough: the texture holds the lit colour), the expressions as morph
    targets. Appends its material, texture, sampler and image to the document."""
    from io import BytesIO

    from PIL import Image

    vertices = surface.vertices_rest.to("cpu", torch.float64)
    normals = _np(vertex_normals(vertices, surface.faces.cpu()), np.float64)
    bad = ~np.isfinite(normals).all(1) | (np.abs(np.linalg.norm(normals, axis=1) - 1) > 1e-3)
    normals[bad] = (0.0, 1.0, 0.0)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    joints, weights = top4_weights(
        _np(surface.skin_indices, np.int64), _np(surface.skin_weights, np.float64), rig.num_joints
    )
    png = BytesIO()
    Image.fromarray(surface.texture).save(png, format="PNG")
    doc = b.json
    doc.setdefault("images", []).append(
        {"name": "surface", "bufferView": b.view(np.frombuffer(png.getvalue(), np.uint8)), "mimeType": "image/png"}
    )
    doc.setdefault("samplers", []).append({"magFilter": 9729, "minFilter": 9987, "wrapS": 33071, "wrapT": 33071})
    doc.setdefault("textures", []).append({"sampler": len(doc["samplers"]) - 1, "source": len(doc["images"]) - 1})
    doc.setdefault("materials", []).append(
        {
            "name": "surface",
            "pbrMetallicRoughness": {
                "baseColorTexture": {"index": len(doc["textures"]) - 1},
                "metallicFactor": 0.0,
                "roughnessFactor": 1.0,
            },
        }
    )
    index_dtype = np.uint16 if surface.num_vertices <= 65535 else np.uint32
    primitive = {
        "attributes": {
            "POSITION": b.accessor(_np(vertices), target=ARRAY_BUFFER, bounds=True),
            "NORMAL": b.accessor(normals.astype(np.float32), target=ARRAY_BUFFER),
            "TEXCOORD_0": b.accessor(_np(surface.uvs), target=ARRAY_BUFFER),
            "JOINTS_0": b.accessor(joints, target=ARRAY_BUFFER),
            "WEIGHTS_0": b.accessor(weights, target=ARRAY_BUFFER),
        },
        "indices": b.accessor(
            _np(surface.faces, np.int64).reshape(-1).astype(index_dtype), target=ELEMENT_ARRAY_BUFFER
        ),
        "mode": TRIANGLES,
        "material": len(doc["materials"]) - 1,
    }
    mesh = {"name": "surface", "primitives": [primitive]}
    _add_targets(b, mesh, _np(surface.expression_dirs), rig.expression_names)
    return mesh
