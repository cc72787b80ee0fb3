import pytest
import torch

from anchorsplat.gaussians.motion import SMPLX_JOINT_NAMES, Motion
from anchorsplat.gaussians.retarget import JAW_OPEN_RADIANS, SMPLX_JAW
from anchorsplat.gaussians.rigged import pose
from anchorsplat.gaussians.synthetic import synthetic_rig
from anchorsplat.runtime.channels import NECK_SHARE
from anchorsplat.viewer.controls import (
    BODY_PRESETS,
    HEAD_PRESETS,
    ManualControls,
    apply_manual,
    frame_motion,
    preset_motion,
)


def test_body_and_head_presets_set_their_joints():
    for name, joints in BODY_PRESETS.items():
        full = preset_motion(ManualControls(body=name)).full_pose()[0]
        for joint, rotation in joints.items():
            assert torch.allclose(full[SMPLX_JOINT_NAMES.index(joint)], torch.tensor(rotation))
        assert int((full.abs().sum(-1) > 0).sum()) == len(joints)
    full = apply_manual(Motion.zeros(1), ManualControls(head="look left")).full_pose()[0]
    yaw = HEAD_PRESETS["look left"][1]
    assert torch.isclose(full[SMPLX_JOINT_NAMES.index("neck"), 1], torch.tensor(NECK_SHARE * yaw))
    assert torch.isclose(full[SMPLX_JOINT_NAMES.index("head"), 1], torch.tensor((1 - NECK_SHARE) * yaw))
    with pytest.raises(ValueError, match="body preset"):
        preset_motion(ManualControls(body="moonwalk"))


def test_sliders_add_to_the_audio_face_and_clamp():
    face = Motion.zeros(1, ("jawOpen", "eyeBlinkLeft"))
    face = Motion.from_full_pose(
        face.full_pose(), expression=torch.tensor([[0.7, 0.1]]), expression_names=face.expression_names
    )
    out = apply_manual(face, ManualControls(expressions={"eyeBlinkLeft": 0.5, "mouthSmileLeft": 0.3}, jaw=0.5))
    names = list(out.expression_names)
    assert out.expression[0, names.index("jawOpen")] == pytest.approx(1.0)  # 0.7 + 0.5, clamped
    assert out.expression[0, names.index("eyeBlinkLeft")] == pytest.approx(0.6)
    assert out.expression[0, names.index("mouthSmileLeft")] == pytest.approx(0.3)
    assert out.full_pose()[0, SMPLX_JAW, 0] == pytest.approx(0.5 * JAW_OPEN_RADIANS)


def test_jaw_slider_opens_the_synthetic_mouth_once():
    rig = synthetic_rig()
    from anchorsplat.gaussians.rigged import bind_to_surface

    g = bind_to_surface(rig, 200, generator=torch.Generator().manual_seed(1))
    closed = pose(g, rig, frame_motion(rig, ManualControls())).means
    opened = pose(g, rig, frame_motion(rig, ManualControls(jaw=1.0))).means
    moved = (opened - closed).norm(dim=-1)
    # the synthetic rig has no jaw joint: jawOpen drops the head box's bottom ring by 3 cm, counted once
    assert float(moved.max()) == pytest.approx(0.03, abs=2e-3)


def test_motion_file_body_with_audio_face():
    rig = synthetic_rig()
    body = preset_motion(ManualControls(body="arms down"))
    face = Motion.from_full_pose(torch.zeros(1, 55, 3), expression=torch.tensor([[0.4]]), expression_names=("jawOpen",))
    out = frame_motion(rig, ManualControls(body="rest"), body=body, face=face)
    assert torch.allclose(
        out.full_pose()[0, SMPLX_JOINT_NAMES.index("left_shoulder")],
        torch.tensor(BODY_PRESETS["arms down"]["left_shoulder"]),
    )
    assert out.expression[0, list(out.expression_names).index("jawOpen")] == pytest.approx(0.4)
