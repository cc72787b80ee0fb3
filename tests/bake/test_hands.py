"""mediapipe Hands on real photos: the visible hands are found and given to the right side of the person."""

from pathlib import Path

import numpy as np
import pytest

from anchorsplat.bake.detect import POSE_LANDMARK_NAMES, detect_person
from anchorsplat.bake.photo import load_photo

PHOTOS = Path(__file__).parents[1] / "data" / "photos"


@pytest.fixture(scope="module")
def raised():
    return load_photo(PHOTOS / "half_body_hand_raised.jpg")


def _pose(detections, name: str) -> np.ndarray:
    return detections.pose_xy[POSE_LANDMARK_NAMES.index(name)]


def test_a_raised_hand_is_the_persons_right_hand(raised):
    """The V sign is the person's right hand (the image's left): its wrist at the pose's right wrist, its index
    and middle fingers raised above it, its ring and pinky tips folded back toward the palm."""
    d = detect_person(raised)
    assert d.left_hand is None  # the left hand hangs at the bottom edge, behind a camera
    hand = d.right_hand
    assert hand is not None and hand.xy.shape == (21, 2) and hand.world.shape == (21, 3)
    assert 30 < hand.size < 80, hand.size
    assert np.linalg.norm(hand.xy[0] - _pose(d, "right_wrist")) < hand.size
    assert hand.xy[0, 0] < raised.shape[1] / 2  # the person's right is the image's left
    for tip in (8, 12):  # index, middle: raised
        assert hand.xy[0, 1] - hand.xy[tip, 1] > 1.5 * hand.size, (tip, hand.xy[tip])
    for tip, knuckle in ((16, 13), (20, 17)):  # ring, pinky: folded (the tip not beyond its knuckle)
        assert hand.xy[tip, 1] > hand.xy[knuckle, 1] - 0.3 * hand.size, (tip, hand.xy[tip], hand.xy[knuckle])
    # mediapipe's metric landmarks are in the camera's axes: x right, y down (the raised fingers point up).
    assert hand.world[8, 1] - hand.world[0, 1] < -0.05


def test_a_hand_holding_a_cup_is_found():
    d = detect_person(load_photo(PHOTOS / "cup_in_hands_glasses.jpg"))
    hand = d.left_hand  # the person's left hand, on the image's right, fingers around the cup
    assert hand is not None
    assert hand.xy[:, 0].mean() > d.width / 2
    assert np.linalg.norm(hand.xy[0] - _pose(d, "left_wrist")) < 1.5 * hand.size


def test_a_photo_without_hands_has_none():
    d = detect_person(load_photo(PHOTOS / "three_quarter_man.jpg"))
    assert d.left_hand is None and d.right_hand is None


def test_a_small_hand_is_found_in_a_crop_at_the_pose_hand(raised):
    """The same photo small in a large frame: the whole-photo pass misses the hand, the crop around the pose's
    hand finds it."""
    import cv2

    from anchorsplat.bake.hands import _run

    canvas = np.full((1024, 1024, 3), 25, np.uint8)
    canvas[1024 - 260 :, 100:360] = cv2.resize(raised, (260, 260), interpolation=cv2.INTER_AREA)
    assert _run(canvas, (0, 0, 1024, 1024)) == []  # what the crop is for
    d = detect_person(canvas)
    assert d.right_hand is not None and d.left_hand is None
    assert np.linalg.norm(d.right_hand.xy[0] - _pose(d, "right_wrist")) < d.right_hand.size


def test_the_nearest_pose_wrist_takes_a_hand_and_handedness_breaks_ties():
    from anchorsplat.bake.hands import HandLandmarks, _claim, _Found

    xy = np.zeros((21, 2), np.float32)
    xy[9] = (0.0, -40.0)  # a hand 40 px long, its wrist at the origin
    hand = HandLandmarks(xy, np.zeros((21, 3), np.float32), 1.0)
    wrists = {"left": np.array([10.0, 0.0]), "right": np.array([-30.0, 0.0])}
    # The left wrist is nearer: it takes the hand whatever mediapipe's handedness says.
    assert _claim(_Found(hand, "right"), wrists) == (0.25, "left")
    # Both about equally near (within 25%): handedness decides.
    tied = {"left": np.array([30.0, 0.0]), "right": np.array([-27.0, 0.0])}
    assert _claim(_Found(hand, "left"), tied) == (0.75, "left")
    assert _claim(_Found(hand, "right"), tied)[1] == "right"
    # No pose wrist within 1.5 hand sizes: nobody's hand.
    assert _claim(_Found(hand, "left"), {"left": np.array([100.0, 0.0])}) is None
