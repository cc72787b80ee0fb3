"""A hand's pixels in the photo come from mediapipe Hands' 21 landmarks where they were found: a V sign's raised
fingers are the hand, the shirt between them is not; without hand landmarks the pose's four hand points stand in."""

import cv2
import numpy as np
import pytest

from anchorsplat.bake.detect import POSE_LANDMARK_NAMES, Detections
from anchorsplat.bake.hands import HandLandmarks
from anchorsplat.bake.segment import POSE_HAND_RADIUS, segment
from anchorsplat.diffusion.texture import LABEL_HAND, LABEL_PERSON

SIZE = 200
FINGER_WIDTH = 8  # pixels: 0.2 hand sizes, a finger's width
SHIRT = (40, 60, 160)
SKIN = (220, 170, 140)


def v_sign_hand() -> np.ndarray:
    """21 landmarks of a right hand held up in front of the chest, palm to the camera, index and middle finger
    spread in a V, ring and little finger folded onto the palm, the thumb across them (pixels; size 40)."""
    wrist, knuckles = np.array([100.0, 170.0]), {5: (88, 132), 9: (100, 130), 13: (111, 132), 17: (121, 136)}
    xy = np.zeros((21, 2))
    xy[0] = wrist
    for base, point in knuckles.items():
        xy[base] = point
    for base, direction in ((5, (-0.45, -1.0)), (9, (0.45, -1.0))):  # the V: 18 + 12 + 10 pixels per finger
        d = np.array(direction) / np.linalg.norm(direction)
        xy[base + 1 : base + 4] = xy[base] + np.cumsum([18, 12, 10])[:, None] * d
    for base in (13, 17):  # folded: up, then back down over the palm
        xy[base + 1 : base + 4] = xy[base] + np.array([(0, -9), (-3, -2), (-5, 6)])
    xy[1:5] = [(86, 160), (80, 150), (86, 142), (96, 141)]  # the thumb across the folded fingers
    return xy.astype(np.float32)


def scene(with_hand_landmarks: bool):
    """A shirt filling the person mask and the V-sign hand drawn over it; the detections a photo of it gives."""
    xy = v_sign_hand()
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    image[20:, 20:180] = SHIRT
    hand = np.zeros((SIZE, SIZE), np.uint8)
    cv2.fillConvexPoly(hand, np.round(cv2.convexHull(xy[[0, 1, 5, 9, 13, 17]])).astype(np.int32), 1)
    for chain in ((1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20)):
        cv2.polylines(hand, [np.round(xy[list(chain)]).astype(np.int32)], False, 1, thickness=FINGER_WIDTH)
    image[hand > 0] = SKIN
    arm = np.zeros((SIZE, SIZE), np.uint8)
    cv2.line(arm, np.round(xy[0]).astype(int), (104, SIZE), 1, thickness=26)  # the forearm, down from the wrist
    image[(arm > 0) & (hand == 0)] = SKIN
    mask = np.zeros((SIZE, SIZE), np.float32)
    mask[20:, 20:180] = 1.0
    pose_xy, visibility = np.full((33, 2), -1.0, np.float32), np.zeros(33, np.float32)
    points = {"nose": (100, 40), "left_shoulder": (140, 80), "right_shoulder": (60, 80), "right_wrist": xy[0],
              "right_index": xy[5], "right_pinky": xy[17], "right_thumb": xy[3]}  # fmt: skip
    for name, point in points.items():
        pose_xy[POSE_LANDMARK_NAMES.index(name)] = point
        visibility[POSE_LANDMARK_NAMES.index(name)] = 1.0
    landmarks = HandLandmarks(xy, np.zeros((21, 3), np.float32), 0.9) if with_hand_landmarks else None
    detections = Detections(SIZE, SIZE, pose_xy, visibility, np.zeros((33, 3), np.float32), mask, None, None, None,
                            1, right_hand=landmarks)  # fmt: skip
    return detections, image, hand > 0, xy


def _between_the_fingers(xy: np.ndarray, hand: np.ndarray, margin: float) -> np.ndarray:
    """Shirt pixels inside the V (the triangle of the two knuckles' midpoint and the two fingertips) further than
    ``margin`` pixels from any hand pixel."""
    v = np.zeros(hand.shape, np.uint8)
    cv2.fillConvexPoly(v, np.round([(xy[5] + xy[9]) / 2, xy[8], xy[12]]).astype(np.int32), 1)
    distance = cv2.distanceTransform((~hand).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return (v > 0) & (distance > margin)


def test_a_v_signs_fingers_are_the_hand_and_the_shirt_between_them_is_not():
    detections, image, hand, xy = scene(with_hand_landmarks=True)
    labels = segment(detections, image)
    assert (labels[hand] == LABEL_HAND).mean() > 0.99  # every finger, to its tip
    between = _between_the_fingers(xy, hand, margin=0.2 * 40)  # a finger width off the fingers
    assert between.sum() > 100
    assert (labels[between] == LABEL_PERSON).all()
    shirt = (image == SHIRT).all(-1) & (cv2.distanceTransform((~hand).astype(np.uint8), cv2.DIST_L2, 5) > 16)
    shirt &= ~(image == SKIN).all(-1)  # the forearm's pixels are not the shirt
    assert not (labels[shirt] == LABEL_HAND).any()  # no shirt beyond 0.4 hand sizes of the hand is the hand


@pytest.mark.parametrize("visible", [False, True])
def test_without_hand_landmarks_the_pose_hand_points_stand_in(visible):
    """No landmarks from mediapipe Hands: the hull of the pose's wrist, index, pinky and thumb, grown by half the
    hand's size, is the hand (fingers or not); and nothing where the pose's hand points are not visible."""
    detections, image, hand, xy = scene(with_hand_landmarks=False)
    if not visible:
        visibility = detections.pose_visibility.copy()
        visibility[POSE_LANDMARK_NAMES.index("right_thumb")] = 0.1
        detections = Detections(SIZE, SIZE, detections.pose_xy, visibility, detections.pose_world, detections.mask,
                                None, None, None, 1)  # fmt: skip
    labels = segment(detections, image)
    if not visible:
        assert not (labels == LABEL_HAND).any()
        return
    ids = [POSE_LANDMARK_NAMES.index(f"right_{n}") for n in ("wrist", "index", "pinky", "thumb")]
    points = detections.pose_xy[ids]
    size = float(np.ptp(points, axis=0).max())
    hull = np.zeros((SIZE, SIZE), np.uint8)
    cv2.fillConvexPoly(hull, np.round(cv2.convexHull(points) - 0.5).astype(np.int32), 1)
    distance = cv2.distanceTransform(1 - hull, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    assert (labels[distance <= (POSE_HAND_RADIUS - 0.05) * size] == LABEL_HAND).all()
    assert (labels[distance > (POSE_HAND_RADIUS + 0.05) * size] != LABEL_HAND).all()
    assert (labels[hand] == LABEL_HAND).mean() < 0.9  # the fallback does miss the raised fingertips
