import math

import numpy as np
import torch
from wire import camera_message

from anchorsplat.gaussians.conventions import look_at, project_points, quat_to_matrix
from anchorsplat.gaussians.rig import forward_kinematics
from anchorsplat.gaussians.rigged import PosedGaussians, rgb_to_sh_dc
from anchorsplat.gaussians.synthetic import synthetic_rig
from anchorsplat.viewer.scene import (
    FAR_DEPTH,
    background_depth,
    bone_frames,
    skeleton_segments,
    splat_arrays,
    viser_camera,
)


def test_viser_camera_matches_look_at_and_centres_the_target():
    msg = camera_message((0.5, 1.2, 3.0), (0.0, 1.0, 0.0), width=320, height=240, fov_y_rad=0.6)
    cams = viser_camera(torch.tensor(msg["wxyz"]), torch.tensor(msg["position"]), msg["fov"], 320, 240)
    expected = look_at(torch.tensor([[0.5, 1.2, 3.0]]), torch.tensor([[0.0, 1.0, 0.0]]))
    assert torch.allclose(cams.T_cam_world, expected, atol=1e-5)
    uv = project_points(torch.tensor([[0.0, 1.0, 0.0]]), cams)[0, 0]
    assert torch.allclose(uv, torch.tensor([160.0, 120.0]), atol=1e-3)
    # vertical fov: a point at the top edge of the frustum projects to row 0
    assert math.isclose(float(cams.Ks[0, 1, 1]), 120 / math.tan(0.3), rel_tol=1e-6)


def test_splat_arrays_covariance_colour_and_opacity():
    q = torch.tensor([[[math.cos(0.3), 0.0, 0.0, math.sin(0.3)]]])
    scales = torch.tensor([[[0.1, 0.02, 0.05]]])
    colour = torch.tensor([0.2, 0.5, 0.9])
    posed = PosedGaussians(
        torch.tensor([[[1.0, 2.0, 3.0]]]), q, scales, torch.tensor([[0.7]]), rgb_to_sh_dc(colour)[None, None]
    )
    arrays = splat_arrays(posed)
    R = quat_to_matrix(q[0, 0])
    expected = R @ torch.diag(scales[0, 0] ** 2) @ R.T
    np.testing.assert_allclose(arrays.covariances[0], expected.numpy(), atol=1e-7)
    np.testing.assert_allclose(arrays.rgbs[0], colour.numpy(), atol=1e-6)
    np.testing.assert_allclose(arrays.opacities, [[0.7]], atol=1e-7)
    np.testing.assert_allclose(arrays.centers, [[1.0, 2.0, 3.0]])


def test_skeleton_and_bones_follow_the_rig():
    rig = synthetic_rig()
    rotations = torch.eye(3).expand(1, rig.num_joints, 3, 3).clone()
    T = forward_kinematics(rig, rotations)[0]
    segments = skeleton_segments(T, rig.parents)
    assert segments.shape == (rig.num_joints - 1, 2, 3)
    head = rig.joint_index("head")
    k = [i for i in range(1, rig.num_joints)].index(head)
    assert torch.allclose(segments[k, 1], rig.joints_rest[head])
    assert torch.allclose(segments[k, 0], rig.joints_rest[rig.parents[head]])
    frames = bone_frames(T)
    np.testing.assert_allclose(frames.wxyzs, np.tile([1.0, 0, 0, 0], (rig.num_joints, 1)), atol=1e-6)
    np.testing.assert_allclose(frames.positions, rig.joints_rest.numpy(), atol=1e-6)


def test_background_depth_is_far_off_the_avatar():
    depth = torch.tensor([[[2.0], [0.0]]])
    alpha = torch.tensor([[[0.9], [0.0]]])
    out = background_depth(depth, alpha)
    assert out.shape == (1, 2)
    assert out[0, 0] == 2.0 and out[0, 1] == FAR_DEPTH
