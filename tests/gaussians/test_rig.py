import math

import pytest
import torch

from anchorsplat.gaussians.conventions import axis_angle_to_matrix
from anchorsplat.gaussians.motion import Motion
from anchorsplat.gaussians.retarget import motion_to_rig
from anchorsplat.gaussians.rig import Rig, forward_kinematics, pose_mesh, vertex_normals
from anchorsplat.gaussians.synthetic import synthetic_rig


@pytest.fixture
def rig() -> Rig:
    return synthetic_rig(torch.float64)


def _rotations(rig: Rig, **joints: tuple[float, float, float]) -> torch.Tensor:
    R = torch.eye(3, dtype=torch.float64).repeat(1, rig.num_joints, 1, 1)
    for name, aa in joints.items():
        R[0, rig.joint_index(name)] = axis_angle_to_matrix(torch.tensor(aa, dtype=torch.float64))
    return R


def test_rest_pose_is_identity(rig):
    posed = pose_mesh(rig, _rotations(rig))
    assert torch.allclose(posed.vertices[0], rig.vertices_rest)
    assert torch.allclose(posed.T_world_joint[0, :, :3, 3], rig.joints_rest)


def test_fk_matches_hand_computed_elbow_bend(rig):
    # Bend the left elbow 90 degrees about -Y: the forearm (along +X) swings to +Z, about the elbow.
    posed = pose_mesh(rig, _rotations(rig, left_elbow=(0.0, -math.pi / 2, 0.0)))
    elbow = rig.joints_rest[rig.joint_index("left_elbow")]
    forearm_end = rig.vertices_rest[rig.joint_index("left_elbow") * 8 + 4]  # a far-ring corner, rigidly skinned
    expected = elbow + torch.tensor([forearm_end[2] - elbow[2], forearm_end[1] - elbow[1], forearm_end[0] - elbow[0]])
    expected[2] = forearm_end[0] - elbow[0]
    expected[0] = elbow[0] - (forearm_end[2] - elbow[2])
    assert torch.allclose(posed.vertices[0, rig.joint_index("left_elbow") * 8 + 4], expected, atol=1e-9)
    # The elbow itself and the other arm do not move.
    assert torch.allclose(posed.T_world_joint[0, rig.joint_index("left_elbow"), :3, 3], elbow)
    right = rig.joint_index("right_elbow") * 8
    assert torch.allclose(posed.vertices[0, right : right + 8], rig.vertices_rest[right : right + 8])


def test_fk_composes_down_the_chain(rig):
    # Shoulder 30 deg + elbow 60 deg about the same axis == the elbow's frame rotated 90 deg in the world.
    posed = forward_kinematics(
        rig, _rotations(rig, left_shoulder=(0.0, 0.0, math.pi / 6), left_elbow=(0.0, 0.0, math.pi / 3))
    )
    R = posed[0, rig.joint_index("left_elbow"), :3, :3]
    assert torch.allclose(R, axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2], dtype=torch.float64)))
    shoulder = rig.joints_rest[rig.joint_index("left_shoulder")]
    arm = rig.joints_rest[rig.joint_index("left_elbow")] - shoulder
    c, s = math.cos(math.pi / 6), math.sin(math.pi / 6)
    expected = shoulder + torch.tensor([c * arm[0] - s * arm[1], s * arm[0] + c * arm[1], arm[2]])
    assert torch.allclose(posed[0, rig.joint_index("left_elbow"), :3, 3], expected)


def test_lbs_blends_between_joints(rig):
    # The elbow's first ring is weighted 50/50 with the shoulder: it moves exactly half-way in a pure translation.
    R = _rotations(rig)
    posed = pose_mesh(rig, R, root_translation=torch.tensor([[0.0, 0.5, 0.0]], dtype=torch.float64))
    assert torch.allclose(posed.vertices[0], rig.vertices_rest + torch.tensor([0.0, 0.5, 0.0], dtype=torch.float64))


def test_root_rotation_and_translation(rig):
    R = _rotations(rig, pelvis=(0.0, math.pi, 0.0))
    posed = pose_mesh(rig, R, root_translation=torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64))
    pelvis = rig.joints_rest[0]
    v = rig.vertices_rest
    expected = torch.stack([-(v[:, 0] - pelvis[0]) + pelvis[0] + 1.0, v[:, 1], -(v[:, 2] - pelvis[2]) + pelvis[2]], -1)
    assert torch.allclose(posed.vertices[0], expected, atol=1e-9)


def test_expression_blendshapes_are_linear(rig):
    R = _rotations(rig).repeat(3, 1, 1, 1)
    expression = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.5, 1.0]], dtype=torch.float64)
    posed = pose_mesh(rig, R, expression=expression)
    assert torch.allclose(posed.vertices[1] - posed.vertices[0], rig.expression_dirs[0])
    assert torch.allclose(posed.vertices[2] - posed.vertices[0], 0.5 * rig.expression_dirs[0] + rig.expression_dirs[1])


def test_motion_retarget_drives_synthetic_rig(rig):
    full = torch.zeros(1, 55, 3, dtype=torch.float64)
    full[0, 18] = torch.tensor([0.0, -math.pi / 2, 0.0])  # SMPL-X joint 18 = left_elbow
    motion = Motion.from_full_pose(
        full, expression=torch.tensor([[0.7]], dtype=torch.float64), expression_names=("jawOpen",)
    )
    inputs = motion_to_rig(motion, rig)
    assert torch.allclose(inputs.joint_rotations[0, rig.joint_index("left_elbow")], axis_angle_to_matrix(full[0, 18]))
    assert torch.allclose(inputs.joint_rotations[0, rig.joint_index("right_elbow")], torch.eye(3, dtype=torch.float64))
    assert inputs.expression.tolist() == [[0.7, 0.0]]


def test_fk_is_differentiable(rig):
    aa = torch.zeros(1, rig.num_joints, 3, dtype=torch.float64, requires_grad=True)

    def f(aa):
        return pose_mesh(rig, axis_angle_to_matrix(aa + 0.1)).vertices.sum()

    assert torch.autograd.gradcheck(f, (aa,))


def test_vertex_normals_point_outward(rig):
    n = vertex_normals(rig.vertices_rest, rig.faces)
    head = rig.joint_index("head") * 8
    centre = rig.vertices_rest[head : head + 8].mean(0)
    outward = rig.vertices_rest[head : head + 8] - centre
    assert ((n[head : head + 8] * outward).sum(-1) > 0).all()


def test_invalid_rig_rejected(rig):
    from dataclasses import replace

    with pytest.raises(ValueError, match="parent"):
        replace(rig, parents=torch.tensor([-1, 2, 1, 1, 3, 1, 5, 0, 7, 0, 9]))
    with pytest.raises(ValueError, match="face index"):
        replace(rig, faces=rig.faces + 1000)
