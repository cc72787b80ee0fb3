import math

import pytest
import torch

from anchorsplat.gaussians.conventions import axis_angle_to_matrix, quat_to_matrix
from anchorsplat.gaussians.motion import Motion
from anchorsplat.gaussians.retarget import RigInputs, motion_to_rig
from anchorsplat.gaussians.rigged import (
    RiggedGaussians,
    bind_to_surface,
    canonical_means,
    pose,
    pose_from_vertices,
    pose_lbs,
    to_lbs,
    triangle_frames,
)
from anchorsplat.gaussians.synthetic import synthetic_rig


@pytest.fixture
def rig():
    return synthetic_rig(torch.float64)


@pytest.fixture
def gaussians(rig):
    g = bind_to_surface(rig, 32, sh_degree=1, generator=torch.Generator().manual_seed(1))
    offsets = torch.linspace(-0.01, 0.02, 32, dtype=torch.float64)
    return RiggedGaussians(
        g.face_ids, g.barycentric, offsets, g.quats_canonical_wxyz, g.log_scales, g.opacity_logits, g.sh_coeffs
    )


def test_rest_pose_returns_canonical_gaussians(rig, gaussians):
    posed = pose(gaussians, rig, Motion.zeros(1, dtype=torch.float64))
    assert torch.allclose(posed.means[0], canonical_means(gaussians, rig))
    assert torch.allclose(
        posed.quats_wxyz[0], gaussians.quats_canonical_wxyz / gaussians.quats_canonical_wxyz.norm(dim=-1, keepdim=True)
    )
    assert torch.allclose(posed.scales[0], gaussians.log_scales.exp())
    assert torch.allclose(posed.opacities[0], torch.sigmoid(gaussians.opacity_logits))


def test_binding_follows_a_moving_triangle_exactly(rig, gaussians):
    # Move the whole mesh rigidly (rotate + translate) and scale it by 2: every Gaussian must follow exactly.
    R = axis_angle_to_matrix(torch.tensor([0.3, -1.1, 0.4], dtype=torch.float64))
    t = torch.tensor([0.5, -0.2, 1.0], dtype=torch.float64)
    moved = 2.0 * rig.vertices_rest @ R.T + t
    posed = pose_from_vertices(gaussians, rig, moved[None])
    expected_means = 2.0 * canonical_means(gaussians, rig) @ R.T + t
    assert torch.allclose(posed.means[0], expected_means, atol=1e-9)
    expected_rot = R @ quat_to_matrix(gaussians.quats_canonical_wxyz)
    assert torch.allclose(quat_to_matrix(posed.quats_wxyz[0]), expected_rot, atol=1e-9)
    assert torch.allclose(posed.scales[0], 2.0 * gaussians.log_scales.exp(), atol=1e-9)


def test_binding_point_is_barycentric_plus_normal_offset(rig, gaussians):
    frames = triangle_frames(rig.vertices_rest, rig.faces, gaussians.face_ids, gaussians.barycentric)
    tri = rig.vertices_rest[rig.faces[gaussians.face_ids]]
    normal = torch.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1)
    normal = normal / normal.norm(dim=-1, keepdim=True)
    bary_point = (gaussians.barycentric[..., None] * tri).sum(1)
    assert torch.allclose(frames.points, bary_point)
    assert torch.allclose(canonical_means(gaussians, rig), bary_point + gaussians.normal_offsets[:, None] * normal)


def test_expression_moves_bound_gaussians(rig):
    head_faces = torch.nonzero((rig.faces // 8 == rig.joint_index("head")).all(-1))[:, 0]
    g = bind_to_surface(rig, 200, generator=torch.Generator().manual_seed(0))
    on_head = torch.isin(g.face_ids, head_faces)
    motion = Motion.zeros(2, ("jawOpen",), dtype=torch.float64)
    motion = motion.with_expression(("jawOpen",), torch.tensor([[0.0], [1.0]], dtype=torch.float64))
    posed = pose(g, rig, motion)
    moved = (posed.means[1] - posed.means[0]).norm(dim=-1) > 1e-6
    assert moved[on_head].any() and not moved[~on_head].any()


def test_pose_is_batched_and_differentiable(rig, gaussians):
    full = torch.zeros(3, 55, 3, dtype=torch.float64)
    full[1, 18, 1] = -1.0
    full[2, 16, 2] = 0.5
    motion = Motion.from_full_pose(full)
    posed = pose(gaussians, rig, motion)
    for b in range(3):
        single = pose(gaussians, rig, motion.frame(b))
        assert torch.allclose(single.means[0], posed.means[b])
    inputs = motion_to_rig(motion.frame(1), rig)
    aa = torch.full((1, rig.num_joints, 3), 0.2, dtype=torch.float64, requires_grad=True)
    offsets = gaussians.normal_offsets.clone().requires_grad_(True)

    def f(aa, offsets):
        g = RiggedGaussians(gaussians.face_ids, gaussians.barycentric, offsets, gaussians.quats_canonical_wxyz,
                            gaussians.log_scales, gaussians.opacity_logits, gaussians.sh_coeffs)  # fmt: skip
        p = pose(g, rig, RigInputs(axis_angle_to_matrix(aa), inputs.root_translation, inputs.expression))
        return p.means.sum() + p.quats_wxyz.sum() + p.scales.sum()

    assert torch.autograd.gradcheck(f, (aa, offsets))


def test_lbs_conversion_reproduces_triangle_binding(rig):
    # On the rigidly skinned parts of the mesh, LBS and triangle binding agree exactly; across blended
    # joints they differ by the binding's curvature, bounded here for moderate bends.
    g = bind_to_surface(rig, 300, generator=torch.Generator().manual_seed(2))
    lbs = to_lbs(g, rig)
    assert torch.allclose(lbs.joint_weights.sum(-1), torch.ones(300, dtype=torch.float64))
    full = torch.zeros(4, 55, 3, dtype=torch.float64)
    full[1, 18] = torch.tensor([0.0, -0.6, 0.0])
    full[2, 16] = torch.tensor([0.0, 0.0, 0.5])
    full[3, 0] = torch.tensor([0.0, math.pi / 2, 0.0])
    motion = Motion.from_full_pose(full, transl=torch.randn(4, 3, dtype=torch.float64),
                                   expression=torch.tensor([[0.0], [1.0], [0.3], [0.0]], dtype=torch.float64),
                                   expression_names=("jawOpen",))  # fmt: skip
    inputs = motion_to_rig(motion, rig)
    exact = pose(g, rig, inputs).means
    converted = pose_lbs(lbs, rig, inputs).means
    error = (exact - converted).norm(dim=-1)
    rigid = lbs.joint_weights.max(-1).values > 0.999
    assert error[:, rigid].max() < 1e-9
    assert error.max() < 0.03  # 3 cm on a coarse box rig at a 35 degree elbow bend
    assert error[3].max() < 1e-9  # a rigid root motion is exact everywhere
