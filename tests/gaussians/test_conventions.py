import math

import pytest
import torch

from anchorsplat.gaussians.conventions import (
    axis_angle_to_matrix,
    framing_cameras,
    intrinsics_from_fov,
    look_at,
    matrix_to_axis_angle,
    matrix_to_quat,
    orbit_cameras,
    project_points,
    quat_multiply,
    quat_to_matrix,
    quat_wxyz_to_xyzw,
    quat_xyzw_to_wxyz,
    rotation_between,
)


def test_quaternion_order_is_wxyz():
    # 90 degrees about +Z: w = cos(45), z = sin(45); it maps +X to +Y.
    q = torch.tensor([math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)])
    R = quat_to_matrix(q)
    assert torch.allclose(R @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)
    assert torch.allclose(quat_wxyz_to_xyzw(q), torch.tensor([0.0, 0.0, math.sin(math.pi / 4), math.cos(math.pi / 4)]))
    assert torch.equal(quat_xyzw_to_wxyz(quat_wxyz_to_xyzw(q)), q)


def test_matrix_quat_axis_angle_round_trips():
    aa = torch.randn(200, 3) * 1.5
    R = axis_angle_to_matrix(aa)
    assert torch.allclose(R @ R.transpose(-1, -2), torch.eye(3).expand(200, 3, 3), atol=1e-5)
    assert torch.allclose(quat_to_matrix(matrix_to_quat(R)), R, atol=1e-5)
    assert torch.allclose(axis_angle_to_matrix(matrix_to_axis_angle(R)), R, atol=1e-4)
    # Rotations near 180 degrees go through the stable branch.
    R180 = axis_angle_to_matrix(torch.tensor([[0.0, math.pi - 1e-4, 0.0]]))
    assert torch.allclose(quat_to_matrix(matrix_to_quat(R180)), R180, atol=1e-5)


def test_quat_multiply_composes_like_matrices():
    a, b = torch.randn(10, 4), torch.randn(10, 4)
    assert torch.allclose(quat_to_matrix(quat_multiply(a, b)), quat_to_matrix(a) @ quat_to_matrix(b), atol=1e-5)


def test_axis_angle_gradient_is_finite_at_zero():
    aa = torch.zeros(3, requires_grad=True)
    axis_angle_to_matrix(aa).sum().backward()
    assert torch.isfinite(aa.grad).all()


def test_rotation_between():
    a, b = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 1.0])
    assert torch.allclose(rotation_between(a, b) @ a, b, atol=1e-6)


def test_camera_projects_known_points():
    # A camera at z = +2 looking at the origin (the front view of a body facing +Z).
    T = look_at(torch.tensor([[0.0, 0.0, 2.0]]), torch.zeros(1, 3))
    K = intrinsics_from_fov(90.0, 200, 100)[None]
    from anchorsplat.gaussians.conventions import Cameras

    cams = Cameras(T, K, 200, 100)
    f = 50.0  # 0.5 * height / tan(45 deg)
    points = torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    uv = project_points(points, cams)[0]
    assert torch.allclose(uv[0], torch.tensor([100.0, 50.0]))  # principal point
    assert torch.allclose(uv[1], torch.tensor([100.0, 50.0 - f / 2]))  # world up is image up (smaller y)
    # Seen from the front, the body's left (+X) is on the image's right, as in a photo of the person.
    assert torch.allclose(uv[2], torch.tensor([100.0 + f / 2, 50.0]))
    # T_cam_world maps the eye to the origin and the target onto +Z.
    p = T[0] @ torch.tensor([0.0, 0.0, 0.0, 1.0])
    assert torch.allclose(p[:3], torch.tensor([0.0, 0.0, 2.0]))


def test_orbit_and_framing_cameras():
    cams = orbit_cameras(torch.zeros(3), 3.0, torch.tensor([0.0, 90.0, 180.0]))
    centres = cams.T_world_cam[:, :3, 3]
    assert torch.allclose(centres, torch.tensor([[0.0, 0.0, 3.0], [3.0, 0.0, 0.0], [0.0, 0.0, -3.0]]), atol=1e-5)
    points = torch.rand(100, 3) * torch.tensor([0.5, 1.8, 0.3])
    framed = framing_cameras(points, torch.tensor([0.0, 90.0]), width=64, height=64)
    uv = project_points(points, framed)
    assert (uv >= 0).all() and (uv <= 64).all()


def test_cameras_reject_bad_shapes():
    from anchorsplat.gaussians.conventions import Cameras

    def unchecked(T, K, width, height):  # the test session's shape checker would refuse first: run __post_init__
        cams = object.__new__(Cameras)
        for name, value in {"T_cam_world": T, "Ks": K, "width": width, "height": height}.items():
            object.__setattr__(cams, name, value)
        cams.__post_init__()

    with pytest.raises(ValueError, match="Ks must be C x 3 x 3 matching T_cam_world"):
        unchecked(torch.eye(4)[None], torch.eye(3)[None].repeat(2, 1, 1), 10, 10)
    with pytest.raises(ValueError, match="T_cam_world must be C x 4 x 4"):
        unchecked(torch.eye(3)[None], torch.eye(3)[None], 10, 10)
    with pytest.raises(ValueError, match="image size must be positive"):
        unchecked(torch.eye(4)[None], torch.eye(3)[None], 0, 10)
