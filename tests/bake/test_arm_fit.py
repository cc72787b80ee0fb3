"""Arms and hands: the body fit puts a forearm that points at the camera in front of the body (where the metric
landmarks say it is), not behind it, and the hand landmarks turn the wrist."""

import math

import numpy as np
import pytest
import torch

from anchorsplat.bake.bodyfit import fit_subject
from anchorsplat.bake.detect import POSE_LANDMARK_NAMES, Detections
from anchorsplat.bake.landmarks import body_joint_ids
from anchorsplat.bake.subject import R_CAM_WORLD
from anchorsplat.gaussians.assets import asset_path
from anchorsplat.gaussians.conventions import Cameras, project_points
from anchorsplat.gaussians.io import load_rig
from anchorsplat.gaussians.motion import SMPLX_JOINT_NAMES, Motion
from anchorsplat.gaussians.rigged import pose_motion_mesh

SIZE = 384
POSE = {"left_shoulder": (0.0, 0.0, -1.2), "right_shoulder": (0.0, -0.3, 1.1), "right_elbow": (0.0, 1.5, 0.0),
        "left_elbow": (0.0, 0.0, 0.0)}  # fmt: skip
"""The person's left arm hangs; the right forearm points forward, at the camera (the hand in front of the body)."""


@pytest.fixture(scope="module")
def rig():
    return load_rig(asset_path("anny_default.rig.safetensors")).to("cpu", torch.float32)


def _photo(rig):
    """Detections of a half-body photo of the rig in :data:`POSE`: exact landmark projections, metric landmarks
    (camera axes) from the posed joints, the mesh's silhouette as the person mask."""
    import cv2

    full = torch.zeros(1, 55, 3)
    for joint, aa in POSE.items():
        full[0, SMPLX_JOINT_NAMES.index(joint)] = torch.tensor(aa)
    motion = Motion.from_full_pose(full)
    posed = pose_motion_mesh(rig, motion)
    f = 0.5 * SIZE / math.tan(math.radians(45.0) / 2)
    T = torch.eye(4)
    T[:3, :3] = torch.tensor(R_CAM_WORLD)
    T[:3, 3] = -torch.tensor(R_CAM_WORLD) @ torch.tensor([0.0, 0.35, 0.0]) + torch.tensor([0.0, 0.0, 1.6])
    camera = Cameras(T[None], torch.tensor([[f, 0, SIZE / 2], [0, f, SIZE / 2], [0, 0, 1.0]])[None], SIZE, SIZE)
    joints = posed.T_world_joint[0, :, :3, 3]
    joints_xy = project_points(joints, camera)[0]
    joints_cam = joints @ T[:3, :3].T + T[:3, 3]
    pose_xy, visibility = np.zeros((33, 2), np.float32), np.zeros(33, np.float32)
    world = np.zeros((33, 3), np.float32)
    for name, j in body_joint_ids(rig).items():
        i = POSE_LANDMARK_NAMES.index(name)
        pose_xy[i], world[i] = joints_xy[j].numpy(), joints_cam[j].numpy()
        visibility[i] = 1.0 if 0 <= joints_xy[j, 0] < SIZE and 0 <= joints_xy[j, 1] < SIZE else 0.0
    vertices_xy = project_points(posed.vertices[0], camera)[0]
    mask = np.zeros((SIZE, SIZE), np.uint8)
    cv2.fillPoly(mask, list(np.round(vertices_xy.numpy()[rig.faces.numpy()] - 0.5).astype(np.int32)), 1)
    detections = Detections(SIZE, SIZE, pose_xy, visibility, world, mask.astype(np.float32), None, None, None, 1)
    return detections, posed


def test_bone_targets_are_the_limbs_world_directions(rig):
    """mediapipe's metric landmarks (camera axes) become the limbs' directions in the body's world."""
    from anchorsplat.bake.landmarks import bone_targets

    detections, truth = _photo(rig)
    bones = bone_targets(detections, rig, torch.tensor(R_CAM_WORLD))
    assert set(bones.names) == {"left_shoulder-left_elbow", "left_elbow-left_wrist", "right_shoulder-right_elbow",
                                "right_elbow-right_wrist"}  # the legs are out of the picture  # fmt: skip
    joints = truth.T_world_joint[0, :, :3, 3]
    d = joints[list(bones.end_ids)] - joints[list(bones.start_ids)]
    cos = (d / d.norm(dim=1, keepdim=True) * bones.directions_world).sum(1)
    assert float(cos.min()) > 0.999
    forearm = bones.names.index("right_elbow-right_wrist")
    assert float(bones.directions_world[forearm, 2]) > 0.9  # toward the camera (+Z in the world)


@pytest.mark.slow  # ~75 s on a loaded 2-core machine (300 fit iterations, the bake's default)
def test_forearm_pointing_at_the_camera_is_fitted_in_front_of_the_body(rig):
    detections, truth = _photo(rig)
    fit = fit_subject(np.zeros((SIZE, SIZE, 3), np.uint8), rig, detections=detections, iterations=300)
    posed = pose_motion_mesh(rig.with_shape(fit.shape), fit.motion)
    wrist, elbow = rig.joint_names.index("wrist.R"), rig.joint_names.index("lowerarm01.R")
    # Compare in the body's frame (pelvis-relative, in the fitted body's orientation: the fit's world is the body's).
    true_wrist = truth.T_world_joint[0, wrist, :3, 3] - truth.T_world_joint[0, 0, :3, 3]
    got_wrist = posed.T_world_joint[0, wrist, :3, 3] - posed.T_world_joint[0, 0, :3, 3]
    forearm = posed.T_world_joint[0, wrist, :3, 3] - posed.T_world_joint[0, elbow, :3, 3]
    assert float(true_wrist[2]) > 0.15  # the helper poses what it says: the hand well in front
    assert float(got_wrist[2]) > 0.12, got_wrist  # in front of the body, not behind it
    assert float(forearm[2]) / float(forearm.norm()) > 0.8, forearm  # the forearm points forward
    assert float((got_wrist - true_wrist).norm()) < 0.08, (got_wrist, true_wrist)
