"""The body-model-agnostic rig and its math: forward kinematics, linear blend skinning, blendshapes.

A :class:`Rig` is everything needed to pose one subject. It is built from Anny (:mod:`.anny_rig`), from an
SMPL-X model folder (:mod:`.smplx_rig`) or synthetically (:mod:`.synthetic`), and once built it no longer
depends on where it came from.

Joint rotations are *world-aligned local* rotations, as in SMPL/SMPL-X: joint ``j``'s rotation is expressed
in axes parallel to the world axes at rest, applied about the joint's rest position, and composed down the
kinematic chain. Rigs are rebased so their rest pose matches SMPL-X's (T-pose, facing +Z, +Y up), which makes
SMPL-X-format motion drive every rig through a joint map alone (:mod:`.retarget`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import torch
from jaxtyping import Float, Int
from torch import Tensor


@dataclass(frozen=True, eq=False)
class Rig:
    """A skinned, blendshaped triangle mesh with a skeleton. See the module docstring for conventions.

    Attributes:
        kind: where the rig came from: ``"anny"``, ``"smplx"`` or ``"synthetic"``.
        vertices_rest: rest-pose vertices with the subject's shape applied, meters.
        faces: triangles, counter-clockwise seen from outside (normals point out).
        joint_names: one name per joint.
        parents: parent index per joint, ``-1`` for the root; every parent comes before its children.
        joints_rest: rest-pose joint positions (pivot points), meters.
        skin_indices / skin_weights: sparse top-k skinning; weights of a vertex sum to 1.
        expression_names: blendshape names (ARKit-52 names on Anny).
        expression_dirs: per-blendshape vertex offsets at weight 1, meters.
        shape_names / shape_dirs / joint_shape_dirs: optional linear shape basis (SMPL-X betas, or Anny
            phenotype parameters linearised around the rig's phenotype); see :meth:`with_shape`.
        smplx_source / smplx_fraction: the retarget map: joint ``j`` takes ``smplx_fraction[j]`` of the angle
            of SMPL-X joint ``smplx_source[j]`` (``-1``: not driven).
        info: free-form JSON-serialisable provenance (phenotype values, model version, ...).
    """

    kind: str
    vertices_rest: Float[Tensor, "V 3"]
    faces: Int[Tensor, "F 3"]
    joint_names: tuple[str, ...]
    parents: Int[Tensor, " J"]
    joints_rest: Float[Tensor, "J 3"]
    skin_indices: Int[Tensor, "V K"]
    skin_weights: Float[Tensor, "V K"]
    expression_names: tuple[str, ...]
    expression_dirs: Float[Tensor, "E V 3"]
    smplx_source: Int[Tensor, " J"]
    smplx_fraction: Float[Tensor, " J"]
    shape_names: tuple[str, ...] = ()
    shape_dirs: Float[Tensor, "S V 3"] | None = None
    joint_shape_dirs: Float[Tensor, "S J 3"] | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        v, j = self.vertices_rest.shape[0], self.joints_rest.shape[0]
        checks = [
            (self.vertices_rest.ndim == 2 and self.vertices_rest.shape[1] == 3, "vertices_rest must be V x 3"),
            (self.faces.ndim == 2 and self.faces.shape[1] == 3, "faces must be F x 3"),
            (len(self.joint_names) == j, "one joint name per joint"),
            (tuple(self.parents.shape) == (j,), "parents must have one entry per joint"),
            (self.skin_indices.shape == self.skin_weights.shape, "skin_indices and skin_weights differ in shape"),
            (self.skin_indices.shape[0] == v, "skinning must have one row per vertex"),
            (tuple(self.expression_dirs.shape) == (len(self.expression_names), v, 3), "expression_dirs must be E V 3"),
            (tuple(self.smplx_source.shape) == (j,), "smplx_source must have one entry per joint"),
            (tuple(self.smplx_fraction.shape) == (j,), "smplx_fraction must have one entry per joint"),
        ]
        if self.shape_dirs is not None:
            s = len(self.shape_names)
            checks.append((tuple(self.shape_dirs.shape) == (s, v, 3), "shape_dirs must be S V 3"))
            checks.append(
                (self.joint_shape_dirs is not None and tuple(self.joint_shape_dirs.shape) == (s, j, 3),
                 "joint_shape_dirs must be S J 3")
            )  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise ValueError(f"invalid rig: {message}")
        parents = self.parents.tolist()
        if parents[0] != -1 or any(p >= i or p < -1 for i, p in enumerate(parents)) or parents.count(-1) != 1:
            raise ValueError("invalid rig: joint 0 must be the only root and every parent must precede its child")
        if self.faces.numel() and (int(self.faces.min()) < 0 or int(self.faces.max()) >= v):
            raise ValueError("invalid rig: a face index is out of range")
        if self.skin_indices.numel() and (int(self.skin_indices.min()) < 0 or int(self.skin_indices.max()) >= j):
            raise ValueError("invalid rig: a skinning joint index is out of range")

    @property
    def num_vertices(self) -> int:
        return self.vertices_rest.shape[0]

    @property
    def num_joints(self) -> int:
        return self.joints_rest.shape[0]

    @cached_property
    def levels(self) -> list[Tensor]:
        """Joint indices grouped by depth in the tree, root level first (FK runs one batched op per level)."""
        depth: list[int] = []
        for p in self.parents.tolist():
            depth.append(0 if p < 0 else depth[p] + 1)
        d = torch.tensor(depth, device=self.parents.device)
        return [torch.nonzero(d == k)[:, 0] for k in range(max(depth) + 1)]

    def joint_index(self, name: str) -> int:
        try:
            return self.joint_names.index(name)
        except ValueError:
            raise ValueError(f"rig has no joint {name!r}; joints: {', '.join(self.joint_names)}") from None

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Rig:
        def f(t: Tensor | None) -> Tensor | None:
            if t is None:
                return None
            return t.to(device=device, dtype=dtype) if t.is_floating_point() else t.to(device=device)

        return replace(
            self,
            vertices_rest=f(self.vertices_rest), faces=f(self.faces), parents=f(self.parents),
            joints_rest=f(self.joints_rest), skin_indices=f(self.skin_indices), skin_weights=f(self.skin_weights),
            expression_dirs=f(self.expression_dirs), smplx_source=f(self.smplx_source),
            smplx_fraction=f(self.smplx_fraction), shape_dirs=f(self.shape_dirs),
            joint_shape_dirs=f(self.joint_shape_dirs),
        )  # fmt: skip

    def with_shape(self, shape: Float[Tensor, " S"]) -> Rig:
        """A rig with ``shape`` (coefficients of ``shape_dirs``) baked into its rest vertices and joints."""
        if self.shape_dirs is None or self.joint_shape_dirs is None:
            raise ValueError(f"this {self.kind} rig has no shape basis")
        if shape.shape != (len(self.shape_names),):
            raise ValueError(f"expected {len(self.shape_names)} shape coefficients ({self.shape_names})")
        return replace(
            self,
            vertices_rest=self.vertices_rest + torch.einsum("s,svc->vc", shape, self.shape_dirs),
            joints_rest=self.joints_rest + torch.einsum("s,sjc->jc", shape, self.joint_shape_dirs),
        )


def rest_joint_offsets(parents: Int[Tensor, " J"], joints_rest: Float[Tensor, "*B J 3"]) -> Float[Tensor, "*B J 3"]:
    """Each joint's rest position relative to its parent (the root's is its absolute position)."""
    parent_pos = joints_rest[..., parents.clamp_min(0), :]
    root = (parents < 0)[:, None]
    return torch.where(root, joints_rest, joints_rest - parent_pos)


def forward_kinematics(
    rig: Rig,
    joint_rotations: Float[Tensor, "B J 3 3"],
    joints_rest: Float[Tensor, "*B J 3"] | None = None,
) -> Float[Tensor, "B J 4 4"]:
    """World transforms ``T_world_joint`` of every joint: a rigid frame at the joint's posed position whose
    rotation is the accumulated world-aligned rotation (identity at rest)."""
    joints_rest = rig.joints_rest if joints_rest is None else joints_rest
    b, j = joint_rotations.shape[:2]
    offsets = rest_joint_offsets(rig.parents, joints_rest).expand(b, j, 3)
    local = joint_rotations.new_zeros(b, j, 4, 4)
    local[..., :3, :3] = joint_rotations
    local[..., :3, 3] = offsets
    local[..., 3, 3] = 1.0
    # Level by level: each level's parents are final already, so one batched matmul per tree depth.
    out = local
    for level in rig.levels[1:]:
        out = out.index_copy(1, level, out[:, rig.parents[level]] @ local[:, level])
    return out


def skinning_transforms(
    T_world_joint: Float[Tensor, "B J 4 4"], joints_rest: Float[Tensor, "*B J 3"]
) -> Float[Tensor, "B J 3 4"]:
    """Per-joint transforms that take rest-pose points to posed points (``T_world_joint @ T_joint_rest``)."""
    R = T_world_joint[..., :3, :3]
    t = T_world_joint[..., :3, 3] - (R @ joints_rest[..., None])[..., 0]
    return torch.cat([R, t[..., None]], dim=-1)


def blend_transforms(
    A: Float[Tensor, "B J 3 4"], skin_indices: Int[Tensor, "V K"], skin_weights: Float[Tensor, "V K"]
) -> Float[Tensor, "B V 3 4"]:
    """Linear blend of the joint transforms with each vertex's sparse weights."""
    gathered = A[:, skin_indices]  # B V K 3 4
    return torch.einsum("bvkij,vk->bvij", gathered, skin_weights.to(A.dtype))


def apply_transforms(M: Float[Tensor, "B V 3 4"], points: Float[Tensor, "*B V 3"]) -> Float[Tensor, "B V 3"]:
    return (M[..., :3] @ points[..., None])[..., 0] + M[..., 3]


def shaped_rest_vertices(
    rig: Rig, expression: Float[Tensor, "B E"] | None = None
) -> Float[Tensor, "B V 3"] | Float[Tensor, "V 3"]:
    """Rest vertices plus expression blendshapes (batched when ``expression`` is given)."""
    if expression is None or expression.shape[-1] == 0:
        return rig.vertices_rest
    return rig.vertices_rest + torch.einsum(
        "be,evc->bvc", expression.to(rig.expression_dirs.dtype), rig.expression_dirs
    )


@dataclass(frozen=True, eq=False)
class PosedMesh:
    """A posed rig: its vertices and joint frames, and the per-vertex blended transforms (reused for Gaussians)."""

    vertices: Float[Tensor, "B V 3"]
    T_world_joint: Float[Tensor, "B J 4 4"]
    vertex_transforms: Float[Tensor, "B V 3 4"]


def pose_mesh(
    rig: Rig,
    joint_rotations: Float[Tensor, "B J 3 3"],
    root_translation: Float[Tensor, "B 3"] | None = None,
    expression: Float[Tensor, "B E"] | None = None,
) -> PosedMesh:
    """Forward kinematics + expression blendshapes + linear blend skinning; pure and differentiable."""
    T_world_joint = forward_kinematics(rig, joint_rotations)
    if root_translation is not None:
        T_world_joint = T_world_joint.clone()
        T_world_joint[..., :3, 3] = T_world_joint[..., :3, 3] + root_translation[:, None]
    A = skinning_transforms(T_world_joint, rig.joints_rest)
    M = blend_transforms(A, rig.skin_indices, rig.skin_weights)
    rest = shaped_rest_vertices(rig, expression)
    return PosedMesh(apply_transforms(M, rest), T_world_joint, M)


def vertex_normals(vertices: Float[Tensor, "*B V 3"], faces: Int[Tensor, "F 3"]) -> Float[Tensor, "*B V 3"]:
    """Area-weighted unit vertex normals."""
    tri = vertices[..., faces, :]  # *B F 3 3
    n = torch.cross(tri[..., 1, :] - tri[..., 0, :], tri[..., 2, :] - tri[..., 0, :], dim=-1)
    out = torch.zeros_like(vertices)
    for k in range(3):
        out = out.index_add(-2, faces[:, k], n)
    return out / out.norm(dim=-1, keepdim=True).clamp_min(1e-12)
