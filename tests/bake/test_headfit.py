"""Head pose from the face mesh: a 3/4-view head is recovered, and the body fit lands on a turned head."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from anchorsplat.bake.bodyfit import RELAXED_ARMS, fit_subject
from anchorsplat.bake.detect import POSE_LANDMARK_NAMES, Detections
from anchorsplat.bake.headfit import head_target, head_target_from_pose, rotation_between, yaw_pitch_deg
from anchorsplat.bake.landmarks import FACE_KEYPOINTS, body_joint_ids, face_landmark_vertices
from anchorsplat.bake.subject import R_CAM_WORLD
from anchorsplat.gaussians.assets import asset_path
from anchorsplat.gaussians.conventions import Cameras, axis_angle_to_matrix, matrix_to_axis_angle, project_points
from anchorsplat.gaussians.io import load_rig
from anchorsplat.gaussians.motion import SMPLX_JOINT_NAMES, Motion
from anchorsplat.gaussians.retarget import motion_to_rig
from anchorsplat.gaussians.rig import pose_mesh

ANNY_RIG = asset_path("anny_default.rig.safetensors")
SIZE = 384


@pytest.fixture(scope="module")
def rig():
    return load_rig(ANNY_RIG).to("cpu", torch.float32)


def _head_rotation(rig, motion):
    head = rig.joint_names.index("head")
    posed = motion_to_rig(motion, rig)
    rest = motion_to_rig(Motion.zeros(1), rig)
    R = pose_mesh(rig, posed.joint_rotations, posed.root_translation).T_world_joint[0, head, :3, :3]
    R0 = pose_mesh(rig, rest.joint_rotations, rest.root_translation).T_world_joint[0, head, :3, :3]
    return R @ R0.T


def _turned_head_photo(rig, yaw_deg: float, pitch_deg: float):
    """Detections of a head-and-shoulders photo whose head is turned by (yaw, pitch), split between neck and
    head as people do, seen by a known camera: exact landmark projections, FaceMesh-style depths."""
    import cv2

    full = torch.zeros(1, 55, 3)
    for joint in ("neck", "head"):
        R = axis_angle_to_matrix(torch.tensor([0.0, math.radians(yaw_deg) / 2, 0.0])) @ axis_angle_to_matrix(
            torch.tensor([math.radians(-pitch_deg) / 2, 0.0, 0.0])
        )
        full[0, SMPLX_JOINT_NAMES.index(joint)] = matrix_to_axis_angle(R)
    for joint, aa in RELAXED_ARMS.items():  # arms hanging, as in a portrait
        full[0, SMPLX_JOINT_NAMES.index(joint)] = torch.tensor(aa)
    motion = Motion.from_full_pose(full)
    inputs = motion_to_rig(motion, rig)
    posed = pose_mesh(rig, inputs.joint_rotations, inputs.root_translation)
    head = posed.T_world_joint[0, rig.joint_names.index("head"), :3, 3]
    f = 0.5 * SIZE / math.tan(math.radians(45.0) / 2)
    T = torch.eye(4)
    T[:3, :3] = torch.tensor(R_CAM_WORLD)
    T[:3, 3] = -torch.tensor(R_CAM_WORLD) @ (head - torch.tensor([0.0, 0.12, 0.0])) + torch.tensor([0.0, 0.0, 0.9])
    camera = Cameras(T[None], torch.tensor([[f, 0, SIZE / 2], [0, f, SIZE / 2], [0, 0, 1.0]])[None], SIZE, SIZE)
    joints_xy = project_points(posed.T_world_joint[0, :, :3, 3], camera)[0]
    pose_xy, visibility = np.zeros((33, 2), np.float32), np.zeros(33, np.float32)
    for name, j in body_joint_ids(rig).items():
        pose_xy[POSE_LANDMARK_NAMES.index(name)] = joints_xy[j].numpy()
        visible = 0 <= joints_xy[j, 0] < SIZE and 0 <= joints_xy[j, 1] < SIZE
        visibility[POSE_LANDMARK_NAMES.index(name)] = 1.0 if visible else 0.0
    vertices_xy = project_points(posed.vertices[0], camera)[0]
    depth = (posed.vertices[0] @ T[:3, :3].T + T[:3, 3])[:, 2]
    mesh_xy, mesh_z = np.zeros((478, 2), np.float32), np.zeros(478, np.float32)
    ids = face_landmark_vertices(rig)
    for name, (mesh_index, _) in FACE_KEYPOINTS.items():
        mesh_xy[mesh_index] = vertices_xy[ids[name]].numpy()
        mesh_z[mesh_index] = float(depth[ids[name]] * f / depth[ids["nose_tip"]])  # relative depth in pixels
    mask = np.zeros((SIZE, SIZE), np.uint8)
    cv2.fillPoly(mask, list(np.round(vertices_xy.numpy()[rig.faces.numpy()] - 0.5).astype(np.int32)), 1)
    detections = Detections(SIZE, SIZE, pose_xy, visibility, np.zeros((33, 3), np.float32), mask.astype(np.float32),
                            mesh_xy, None, None, 1, mesh_z)  # fmt: skip
    return detections, motion


def test_rotation_between_recovers_a_known_rotation():
    points = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    R = axis_angle_to_matrix(torch.tensor([0.3, -0.7, 0.2]))
    moved = 2.5 * points @ R.T + torch.tensor([1.0, 2.0, 3.0])
    assert torch.allclose(rotation_between(points, moved), R, atol=1e-5)


@pytest.mark.parametrize("yaw, pitch", [(35.0, 0.0), (-40.0, -15.0), (0.0, -25.0)])
def test_head_target_reads_the_turned_head(rig, yaw, pitch):
    detections, motion = _turned_head_photo(rig, yaw, pitch)
    target = head_target(detections, rig, torch.tensor(R_CAM_WORLD))
    got_yaw, got_pitch = yaw_pitch_deg(target)
    true_yaw, true_pitch = yaw_pitch_deg(_head_rotation(rig, motion))
    assert abs(true_yaw - yaw) < 1.0 and abs(true_pitch - pitch) < 1.0  # the helper poses what it says
    assert abs(got_yaw - yaw) < 3.0 and abs(got_pitch - pitch) < 3.0, (got_yaw, got_pitch)


def test_fit_lands_a_three_quarter_photo_on_a_turned_head(rig):
    detections, motion = _turned_head_photo(rig, 35.0, -10.0)
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    fit = fit_subject(image, rig, detections=detections, iterations=50)
    yaw, pitch = yaw_pitch_deg(_head_rotation(rig, fit.motion))
    assert abs(yaw - 35.0) < 5.0 and abs(pitch + 10.0) < 5.0, (yaw, pitch)
    assert fit.reprojection_error_px < 4.0  # and the shoulders and face still sit on their landmarks


def _profile_without_face_mesh(rig, yaw_deg: float):
    """A near-profile photo's detections as FaceMesh leaves them: no face mesh, only the pose's metric ears (camera
    axes: x right, y down, z away), 15 cm apart across the turned head."""
    detections, motion = _turned_head_photo(rig, yaw_deg, 0.0)
    R_cam_head = torch.tensor(R_CAM_WORLD) @ _head_rotation(rig, motion)
    world = np.zeros((33, 3), np.float32)
    visibility = detections.pose_visibility.copy()
    for name, x in (("left_ear", 0.075), ("right_ear", -0.075)):
        world[POSE_LANDMARK_NAMES.index(name)] = (R_cam_head @ torch.tensor([x, 0.0, 0.0])).numpy()
        visibility[POSE_LANDMARK_NAMES.index(name)] = 1.0
    return dataclasses.replace(detections, face_mesh_xy=None, face_mesh_z=None, pose_world=world,
                               pose_visibility=visibility)  # fmt: skip


def test_head_target_from_the_ears_reads_a_profile(rig):
    target = head_target_from_pose(_profile_without_face_mesh(rig, -60.0), torch.tensor(R_CAM_WORLD))
    yaw, pitch = yaw_pitch_deg(target)
    assert abs(yaw + 60.0) < 1.0 and abs(pitch) < 1.0, (yaw, pitch)


def test_fit_turns_the_head_of_a_profile_without_a_face_mesh(rig):
    detections = _profile_without_face_mesh(rig, -60.0)
    assert head_target(detections, rig, torch.tensor(R_CAM_WORLD)) is None  # what FaceMesh gives a near profile
    fit = fit_subject(np.zeros((SIZE, SIZE, 3), np.uint8), rig, detections=detections, iterations=50)
    yaw, _ = yaw_pitch_deg(_head_rotation(rig, fit.motion))
    assert abs(yaw + 60.0) < 10.0, yaw  # without a target the head stays where the shoulders face (~0)
