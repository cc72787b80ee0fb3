"""A small synthetic rig for tests and examples: box limbs on an 11-joint SMPL-X-named skeleton, with two
ARKit-named blendshapes on the head (``jawOpen`` and ``eyeBlinkLeft``). It is a real rig (validated, skinned,
retargetable), only tiny."""

from __future__ import annotations

import torch

from .motion import SMPLX_JOINT_NAMES
from .rig import Rig

# name, parent name, rest position (T-pose, facing +Z, +Y up)
_SKELETON = (
    ("pelvis", None, (0.0, 1.0, 0.0)),
    ("spine3", "pelvis", (0.0, 1.3, 0.0)),
    ("head", "spine3", (0.0, 1.55, 0.0)),
    ("left_shoulder", "spine3", (0.18, 1.45, 0.0)),
    ("left_elbow", "left_shoulder", (0.45, 1.45, 0.0)),
    ("right_shoulder", "spine3", (-0.18, 1.45, 0.0)),
    ("right_elbow", "right_shoulder", (-0.45, 1.45, 0.0)),
    ("left_hip", "pelvis", (0.1, 0.95, 0.0)),
    ("left_knee", "left_hip", (0.1, 0.5, 0.0)),
    ("right_hip", "pelvis", (-0.1, 0.95, 0.0)),
    ("right_knee", "right_hip", (-0.1, 0.5, 0.0)),
)
# Each bone is a box from the joint to its end point, rigidly skinned to the joint, with the box's first
# ring blended 50/50 with the parent so bends deform smoothly.
_BONE_ENDS = {
    "pelvis": (0.0, 1.3, 0.0), "spine3": (0.0, 1.5, 0.0), "head": (0.0, 1.8, 0.0),
    "left_shoulder": (0.45, 1.45, 0.0), "left_elbow": (0.7, 1.45, 0.0),
    "right_shoulder": (-0.45, 1.45, 0.0), "right_elbow": (-0.7, 1.45, 0.0),
    "left_hip": (0.1, 0.5, 0.0), "left_knee": (0.1, 0.05, 0.0),
    "right_hip": (-0.1, 0.5, 0.0), "right_knee": (-0.1, 0.05, 0.0),
}  # fmt: skip
_HALF_WIDTH = {"pelvis": 0.14, "spine3": 0.16, "head": 0.1}
# Triangles of a box whose 8 corners are ordered ring0 (4, counter-clockwise around the bone axis), ring1.
_BOX_FACES = (
    (0, 2, 1), (0, 3, 2), (4, 5, 6), (4, 6, 7),
    (0, 1, 5), (0, 5, 4), (1, 2, 6), (1, 6, 5), (2, 3, 7), (2, 7, 6), (3, 0, 4), (3, 4, 7),
)  # fmt: skip


def _box(start: torch.Tensor, end: torch.Tensor, half: float) -> torch.Tensor:
    axis = end - start
    axis = axis / axis.norm()
    helper = torch.tensor([0.0, 0.0, 1.0] if abs(float(axis[2])) < 0.9 else [1.0, 0.0, 0.0], dtype=axis.dtype)
    u = torch.linalg.cross(axis, helper)
    u = u / u.norm()
    w = torch.linalg.cross(axis, u)
    ring = [u + w, -u + w, -u - w, u - w]
    corners = [start + half * r for r in ring] + [end + half * r for r in ring]
    return torch.stack(corners)


def synthetic_rig(dtype: torch.dtype = torch.float32) -> Rig:
    names = tuple(n for n, _, _ in _SKELETON)
    parents = torch.tensor([-1 if p is None else names.index(p) for _, p, _ in _SKELETON])
    joints = torch.tensor([pos for _, _, pos in _SKELETON], dtype=torch.float64)
    vertices, faces, skin_idx, skin_w = [], [], [], []
    for j, name in enumerate(names):
        start, end = joints[j], torch.tensor(_BONE_ENDS[name], dtype=torch.float64)
        corners = _box(start, end, _HALF_WIDTH.get(name, 0.05))
        base = len(vertices) * 8
        vertices.append(corners)
        faces.extend([[base + a, base + b, base + c] for a, b, c in _BOX_FACES])
        parent = int(parents[j])
        for k in range(8):
            if k < 4 and parent >= 0:
                skin_idx.append([j, parent])
                skin_w.append([0.5, 0.5])
            else:
                skin_idx.append([j, j])
                skin_w.append([1.0, 0.0])
    v = torch.cat(vertices)
    head = names.index("head")
    head_vertices = torch.arange(head * 8, head * 8 + 8)
    expression_dirs = torch.zeros(2, v.shape[0], 3, dtype=torch.float64)
    # jawOpen: the head box's bottom ring drops 3 cm; eyeBlinkLeft: its top-left corners move 1 cm down.
    expression_dirs[0, head_vertices[:4], 1] = -0.03
    expression_dirs[1, head_vertices[4:][v[head_vertices[4:], 0] > 0], 1] = -0.01
    smplx_source = torch.tensor([SMPLX_JOINT_NAMES.index(n) for n in names])
    return Rig(
        kind="synthetic",
        vertices_rest=v.to(dtype),
        faces=torch.tensor(faces),
        joint_names=names,
        parents=parents,
        joints_rest=joints.to(dtype),
        skin_indices=torch.tensor(skin_idx),
        skin_weights=torch.tensor(skin_w, dtype=dtype),
        expression_names=("jawOpen", "eyeBlinkLeft"),
        expression_dirs=expression_dirs.to(dtype),
        smplx_source=smplx_source,
        smplx_fraction=torch.ones(len(names), dtype=dtype),
        info={"source": "anchorsplat.gaussians.synthetic"},
    )
