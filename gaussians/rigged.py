"""Gaussians bound to the rig's triangles, and posing them.

Binding (GaussianAvatars-style): a Gaussian lives on triangle ``face_ids[n]`` at barycentric coordinates
``barycentric[n]``, lifted ``normal_offsets[n]`` meters along the triangle normal. Its canonical rotation and
scales are those it has on the rest mesh; when the mesh moves, rotation follows the triangle's frame and
scales and the normal offset follow the triangle's size (ratio of posed to rest ``sqrt(2 * area)``).
So at rest, posing returns the canonical Gaussians exactly, and jaw, expression and body motion come for free.

For engines, :func:`to_lbs` converts the binding into per-Gaussian top-4 joint weights plus per-Gaussian
expression deltas (what glTF skinning and morph targets can express).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from jaxtyping import Float, Int
from torch import Tensor

from .conventions import matrix_to_quat, quat_multiply, quat_normalize
from .motion import Motion
from .retarget import RigInputs, motion_to_rig
from .rig import (
    PosedMesh,
    Rig,
    apply_transforms,
    blend_transforms,
    forward_kinematics,
    pose_mesh,
    skinning_transforms,
)


def num_sh_bases(degree: int) -> int:
    return (degree + 1) ** 2


def sh_degree_of(num_bases: int) -> int:
    degree = int(round(math.sqrt(num_bases))) - 1
    if num_sh_bases(degree) != num_bases:
        raise ValueError(f"{num_bases} is not a number of SH bases ((degree + 1) ** 2)")
    return degree


@dataclass(frozen=True, eq=False)
class RiggedGaussians:
    """N canonical Gaussians bound to a rig's triangles (see module docstring). All fields are raw
    (pre-activation) so the bake can optimise them directly."""

    face_ids: Int[Tensor, " N"]
    barycentric: Float[Tensor, "N 3"]
    normal_offsets: Float[Tensor, " N"]
    quats_canonical_wxyz: Float[Tensor, "N 4"]
    log_scales: Float[Tensor, "N 3"]
    opacity_logits: Float[Tensor, " N"]
    sh_coeffs: Float[Tensor, "N K 3"]

    def __post_init__(self) -> None:
        n = self.face_ids.shape[0]
        shapes = {
            "barycentric": (n, 3), "normal_offsets": (n,), "quats_canonical_wxyz": (n, 4), "log_scales": (n, 3),
            "opacity_logits": (n,),
        }  # fmt: skip
        for name, shape in shapes.items():
            if tuple(getattr(self, name).shape) != shape:
                raise ValueError(
                    f"RiggedGaussians.{name} has shape {tuple(getattr(self, name).shape)}, expected {shape}"
                )
        if self.sh_coeffs.ndim != 3 or self.sh_coeffs.shape[0] != n or self.sh_coeffs.shape[2] != 3:
            raise ValueError(f"RiggedGaussians.sh_coeffs must be N K 3, got {tuple(self.sh_coeffs.shape)}")
        sh_degree_of(self.sh_coeffs.shape[1])

    def __len__(self) -> int:
        return self.face_ids.shape[0]

    @property
    def sh_degree(self) -> int:
        return sh_degree_of(self.sh_coeffs.shape[1])

    def to(self, device=None, dtype=None) -> RiggedGaussians:
        floats = {k: getattr(self, k).to(device=device, dtype=dtype) for k in _FLOAT_FIELDS}
        return replace(self, face_ids=self.face_ids.to(device), **floats)

    def subset(self, index: Tensor) -> RiggedGaussians:
        return RiggedGaussians(**{k: getattr(self, k)[index] for k in ("face_ids", *_FLOAT_FIELDS)})


_FLOAT_FIELDS = ("barycentric", "normal_offsets", "quats_canonical_wxyz", "log_scales", "opacity_logits", "sh_coeffs")


@dataclass(frozen=True, eq=False)
class PosedGaussians:
    """Gaussians ready to render, activated: linear scales, opacities in (0, 1), unit wxyz quaternions."""

    means: Float[Tensor, "B N 3"]
    quats_wxyz: Float[Tensor, "B N 4"]
    scales: Float[Tensor, "B N 3"]
    opacities: Float[Tensor, "B N"]
    sh_coeffs: Float[Tensor, "N K 3"]

    def __len__(self) -> int:
        return self.means.shape[0]

    @property
    def sh_degree(self) -> int:
        return sh_degree_of(self.sh_coeffs.shape[1])


@dataclass(frozen=True, eq=False)
class TriangleFrames:
    """Per-triangle point/frames for the triangles the Gaussians are bound to."""

    points: Float[Tensor, "*B N 3"]
    rotations: Float[Tensor, "*B N 3 3"]
    sizes: Float[Tensor, "*B N"]


def triangle_frames(
    vertices: Float[Tensor, "*B V 3"],
    faces: Int[Tensor, "F 3"],
    face_ids: Int[Tensor, " N"],
    barycentric: Float[Tensor, "N 3"],
) -> TriangleFrames:
    """Surface point, orthonormal frame (edge, in-plane, normal as columns) and size of each bound triangle."""
    tri = vertices[..., faces[face_ids], :]  # *B N 3 3
    a, b, c = tri.unbind(-2)
    points = (barycentric[..., None] * tri).sum(-2)
    e1 = b - a
    n = torch.cross(e1, c - a, dim=-1)
    twice_area = n.norm(dim=-1)
    n = n / twice_area[..., None].clamp_min(1e-20)
    e1 = e1 / e1.norm(dim=-1, keepdim=True).clamp_min(1e-20)
    e2 = torch.cross(n, e1, dim=-1)
    return TriangleFrames(points, torch.stack([e1, e2, n], dim=-1), twice_area.clamp_min(1e-20).sqrt())


def canonical_means(rigged: RiggedGaussians, rig: Rig) -> Float[Tensor, "N 3"]:
    """``means_canonical``: the Gaussians' centres on the rest mesh."""
    frames = triangle_frames(rig.vertices_rest, rig.faces, rigged.face_ids, rigged.barycentric)
    return frames.points + rigged.normal_offsets[:, None] * frames.rotations[..., 2]


def pose_from_vertices(rigged: RiggedGaussians, rig: Rig, vertices: Float[Tensor, "B V 3"]) -> PosedGaussians:
    """Place the Gaussians on an already posed mesh (same topology as ``rig``)."""
    rest = triangle_frames(rig.vertices_rest, rig.faces, rigged.face_ids, rigged.barycentric)
    posed = triangle_frames(vertices, rig.faces, rigged.face_ids, rigged.barycentric)
    ratio = posed.sizes / rest.sizes  # B N
    means = posed.points + (rigged.normal_offsets * ratio)[..., None] * posed.rotations[..., 2]
    R_delta = posed.rotations @ rest.rotations.transpose(-1, -2)
    quats = quat_multiply(matrix_to_quat(R_delta), rigged.quats_canonical_wxyz.expand(*means.shape[:-1], 4))
    quats = quat_normalize(quats)
    scales = torch.exp(rigged.log_scales) * ratio[..., None]
    opacities = torch.sigmoid(rigged.opacity_logits).expand(means.shape[:-1])
    return PosedGaussians(means, quats, scales, opacities, rigged.sh_coeffs)


def bound_means(rigged: RiggedGaussians, rig: Rig, vertices: Float[Tensor, "B V 3"]) -> Float[Tensor, "B N 3"]:
    """The centres :func:`pose_from_vertices` gives, without the rotations (cheaper when only centres matter)."""
    rest = triangle_frames(rig.vertices_rest, rig.faces, rigged.face_ids, rigged.barycentric)
    posed = triangle_frames(vertices, rig.faces, rigged.face_ids, rigged.barycentric)
    ratio = posed.sizes / rest.sizes
    return posed.points + (rigged.normal_offsets * ratio)[..., None] * posed.rotations[..., 2]


def pose_motion_mesh(rig: Rig, motion: Motion | RigInputs) -> PosedMesh:
    """The rig's mesh posed by every frame of ``motion`` (retarget, blendshapes, skinning)."""
    inputs = motion_to_rig(motion, rig) if isinstance(motion, Motion) else motion
    return pose_mesh(rig, inputs.joint_rotations, inputs.root_translation, inputs.expression)


def pose(rigged: RiggedGaussians, rig: Rig, motion: Motion | RigInputs) -> PosedGaussians:
    """Pose the avatar for every frame of ``motion``: one pure, batched, differentiable function shared by
    bake, runtime, viewer and exporters."""
    return pose_from_vertices(rigged, rig, pose_motion_mesh(rig, motion).vertices)


def canonical_posed(rigged: RiggedGaussians, rig: Rig) -> PosedGaussians:
    """The avatar in its rest pose (B = 1) without running the skeleton."""
    return pose_from_vertices(rigged, rig, rig.vertices_rest[None])


def bind_to_surface(
    rig: Rig,
    num_gaussians: int,
    *,
    sh_degree: int = 0,
    rgb: Float[Tensor, "3"] | None = None,
    thickness: float = 0.25,
    generator: torch.Generator | None = None,
    face_density: Float[Tensor, " F"] | None = None,
) -> RiggedGaussians:
    """Area-weighted random Gaussians on the rest mesh: flat discs in the triangle plane sized to tile the
    surface, the start of a bake and the way a body-only avatar is made. ``face_density`` multiplies the
    density per triangle (e.g. more, smaller Gaussians on the face; see :func:`region_density`). The random draws
    come from ``generator``'s device (the same Gaussians from a CPU generator whatever the rig's device)."""
    v = rig.vertices_rest
    draw = v.device if generator is None else generator.device
    tri = v[rig.faces]
    areas = 0.5 * torch.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1).norm(dim=-1)
    density = torch.ones_like(areas) if face_density is None else face_density.to(areas)
    weighted = areas * density
    probabilities = (weighted / weighted.sum()).to(draw)
    face_ids = torch.multinomial(probabilities, num_gaussians, replacement=True, generator=generator).to(v.device)
    u = torch.rand(num_gaussians, 2, dtype=v.dtype, generator=generator, device=draw).to(v.device)
    flip = u.sum(-1) > 1
    u = torch.where(flip[:, None], 1 - u, u)
    bary = torch.stack([1 - u[:, 0] - u[:, 1], u[:, 0], u[:, 1]], dim=-1)
    frames = triangle_frames(v, rig.faces, face_ids, bary)
    quats = matrix_to_quat(frames.rotations)
    # Each Gaussian covers the area its triangle's density gives it: sum(area * density) / (N * density).
    radius = torch.sqrt(weighted.sum() / num_gaussians / density[face_ids] / math.pi) * 1.5
    log_scales = torch.log(radius[:, None] * torch.tensor([1.0, 1.0, thickness], dtype=v.dtype, device=v.device))
    colour = torch.tensor([0.72, 0.6, 0.52], dtype=v.dtype, device=v.device) if rgb is None else rgb.to(v)
    sh = torch.zeros(num_gaussians, num_sh_bases(sh_degree), 3, dtype=v.dtype, device=v.device)
    sh[:, 0] = rgb_to_sh_dc(colour)
    return RiggedGaussians(
        face_ids, bary, torch.zeros(num_gaussians, dtype=v.dtype, device=v.device), quats, log_scales.clone(),
        torch.full((num_gaussians,), 2.0, dtype=v.dtype, device=v.device), sh,
    )  # fmt: skip


def region_density(rig: Rig, weights: dict[str, float]) -> Float[Tensor, " F"]:
    """Per-triangle density multipliers from joint-name fragments: a triangle gets the weight of the first
    fragment found in the name of the joint that dominates its vertices' skinning (1 where none matches)."""
    dominant = rig.skin_indices.gather(1, rig.skin_weights.argmax(1, keepdim=True))[:, 0]
    per_joint = torch.tensor(
        [next((w for frag, w in weights.items() if frag in name), 1.0) for name in rig.joint_names],
        dtype=rig.vertices_rest.dtype,
        device=rig.vertices_rest.device,
    )
    return per_joint[dominant][rig.faces].mean(-1)


SH_C0 = 0.28209479177387814


def rgb_to_sh_dc(rgb: Float[Tensor, "*B 3"]) -> Float[Tensor, "*B 3"]:
    return (rgb - 0.5) / SH_C0


def sh_dc_to_rgb(dc: Float[Tensor, "*B 3"]) -> Float[Tensor, "*B 3"]:
    return dc * SH_C0 + 0.5


@dataclass(frozen=True, eq=False)
class LbsGaussians:
    """The binding converted for engines: canonical Gaussians with top-4 joint weights and expression deltas."""

    means_canonical: Float[Tensor, "N 3"]
    quats_canonical_wxyz: Float[Tensor, "N 4"]
    log_scales: Float[Tensor, "N 3"]
    opacity_logits: Float[Tensor, " N"]
    sh_coeffs: Float[Tensor, "N K 3"]
    joint_indices: Int[Tensor, "N 4"]
    joint_weights: Float[Tensor, "N 4"]
    expression_deltas: Float[Tensor, "E N 3"]


def to_lbs(rigged: RiggedGaussians, rig: Rig, top_k: int = 4) -> LbsGaussians:
    """Per-Gaussian top-k skinning (barycentric blend of the triangle's vertex weights, renormalised) and
    per-Gaussian expression deltas (each blendshape at weight 1, evaluated exactly through the binding)."""
    n, j = len(rigged), rig.num_joints
    tri_vertices = rig.faces[rigged.face_ids]  # N 3
    dense = torch.zeros(n, j, dtype=rig.skin_weights.dtype, device=rig.skin_weights.device)
    for corner in range(3):
        idx = rig.skin_indices[tri_vertices[:, corner]]  # N K
        w = rig.skin_weights[tri_vertices[:, corner]] * rigged.barycentric[:, corner : corner + 1].to(dense.dtype)
        dense.scatter_add_(1, idx, w)
    weights, indices = dense.topk(min(top_k, j), dim=1)
    weights = weights.clamp_min(0)
    weights = weights / weights.sum(-1, keepdim=True).clamp_min(1e-12)
    if weights.shape[1] < top_k:  # tiny rigs: pad with zero weights on joint 0
        pad = top_k - weights.shape[1]
        weights = torch.cat([weights, weights.new_zeros(n, pad)], 1)
        indices = torch.cat([indices, indices.new_zeros(n, pad)], 1)
    means = canonical_means(rigged, rig)
    e = len(rig.expression_names)
    deltas = means.new_zeros(e, n, 3)
    if e:
        # Only Gaussians on triangles that some blendshape moves can move (the face, on a full body).
        moved = rig.expression_dirs.abs().amax(dim=(0, 2)) > 0  # V
        touched = torch.nonzero(moved[tri_vertices].any(-1))[:, 0]
        if len(touched):
            shaped = rig.vertices_rest + rig.expression_dirs  # E V 3: each blendshape at weight 1
            deltas[:, touched] = bound_means(rigged.subset(touched), rig, shaped) - means[touched]
    return LbsGaussians(
        means, rigged.quats_canonical_wxyz, rigged.log_scales, rigged.opacity_logits, rigged.sh_coeffs,
        indices, weights, deltas,
    )  # fmt: skip


def pose_lbs(lbs: LbsGaussians, rig: Rig, inputs: RigInputs) -> PosedGaussians:
    """Pose converted Gaussians the way an engine does: morph targets, then linear blend skinning."""
    T_world_joint = forward_kinematics(rig, inputs.joint_rotations)
    T_world_joint = T_world_joint.clone()
    T_world_joint[..., :3, 3] = T_world_joint[..., :3, 3] + inputs.root_translation[:, None]
    A = skinning_transforms(T_world_joint, rig.joints_rest)
    M = blend_transforms(A, lbs.joint_indices, lbs.joint_weights)
    rest = lbs.means_canonical + torch.einsum(
        "be,enc->bnc", inputs.expression.to(lbs.means_canonical.dtype), lbs.expression_deltas
    )
    means = apply_transforms(M, rest)
    # The rotation part of a blended transform is not orthonormal; engines take it as is for the centre and
    # its polar factor for the splat's orientation.
    U, _, Vh = torch.linalg.svd(M[..., :3])
    R = U @ Vh
    quats = quat_normalize(quat_multiply(matrix_to_quat(R), lbs.quats_canonical_wxyz.expand(*means.shape[:-1], 4)))
    scales = torch.exp(lbs.log_scales).expand(*means.shape[:-1], 3)
    opacities = torch.sigmoid(lbs.opacity_logits).expand(means.shape[:-1])
    return PosedGaussians(means, quats, scales, opacities, lbs.sh_coeffs)
