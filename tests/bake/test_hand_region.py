"""A hand's pixels in the photo come from mediapipe Hands' 21 landmarks where they were found: a V sign's raised
fingers are the hand, the shirt between them is not; without hand landmarks the pose's four hand points stand in."""

import cv2
import numpy as np
import pytest

from anchorsplat.bake.detect import POSE_LANDMARK_NAMES, Detections
from anchorsplat.bake.hands import HandLandmarks
from anchorsplat.bake.segment import POSE_HAND_RADIUS, segment
from anchorsplat.diffusion.texture import LABEL_BACKGROUND, LABEL_HAND, LABEL_PERSON

SIZE = 400
FINGER_WIDTH = 8  # pixels: 0.2 hand sizes, a finger's width
SHIRT = (40, 60, 160)
SKIN = (220, 170, 140)


def v_sign_hand() -> np.ndarray:
    """21 landmarks of a right hand held up in front of the chest, palm to the camera, index and middle finger
    spread in a V, ring and little finger folded onto the palm, the thumb across them (pixels; size 40)."""
    wrist, knuckles = np.array([200.0, 270.0]), {5: (188, 232), 9: (200, 230), 13: (211, 232), 17: (221, 236)}
    xy = np.zeros((21, 2))
    xy[0] = wrist
    for base, point in knuckles.items():
        xy[base] = point
    for base, direction in ((5, (-0.45, -1.0)), (9, (0.45, -1.0))):  # the V: 18 + 12 + 10 pixels per finger
        d = np.array(direction) / np.linalg.norm(direction)
        xy[base + 1 : base + 4] = xy[base] + np.cumsum([18, 12, 10])[:, None] * d
    for base in (13, 17):  # folded: up, then back down over the palm
        xy[base + 1 : base + 4] = xy[base] + np.array([(0, -9), (-3, -2), (-5, 6)])
    xy[1:5] = [(186, 260), (180, 250), (186, 242), (196, 241)]  # the thumb across the folded fingers
    return xy.astype(np.float32)


def scene(with_hand_landmarks: bool):
    """A person (a face's skin above a shirt) and the V-sign hand and forearm drawn over the shirt, with a little
    noise; the detections a photo of it gives. Returns them, the photo, the hand's pixels and its landmarks."""
    xy = v_sign_hand()
    image = np.zeros((SIZE, SIZE, 3), np.float32)
    image[40:, 40:360] = SHIRT
    image[40:120, 160:240] = SKIN  # the face (skin away from the hand: the person's colour)
    hand = np.zeros((SIZE, SIZE), np.uint8)
    cv2.fillConvexPoly(hand, np.round(cv2.convexHull(xy[[0, 1, 5, 9, 13, 17]])).astype(np.int32), 1)
    for chain in ((1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20)):
        cv2.polylines(hand, [np.round(xy[list(chain)]).astype(np.int32)], False, 1, thickness=FINGER_WIDTH)
    arm = np.zeros((SIZE, SIZE), np.uint8)
    cv2.line(arm, np.round(xy[0]).astype(int), (204, SIZE), 1, thickness=26)  # the forearm, down from the wrist
    image[(hand > 0) | (arm > 0)] = SKIN
    noise = np.random.default_rng(0).normal(0.0, 3.0, image.shape)
    image = np.clip(np.round(image + noise), 0, 255).astype(np.uint8)
    mask = np.zeros((SIZE, SIZE), np.float32)
    mask[40:, 40:360] = 1.0
    pose_xy, visibility = np.full((33, 2), -1.0, np.float32), np.zeros(33, np.float32)
    points = {"nose": (200, 80), "left_shoulder": (280, 160), "right_shoulder": (120, 160), "right_wrist": xy[0],
              "right_index": xy[5], "right_pinky": xy[17], "right_thumb": xy[3]}  # fmt: skip
    for name, point in points.items():
        pose_xy[POSE_LANDMARK_NAMES.index(name)] = point
        visibility[POSE_LANDMARK_NAMES.index(name)] = 1.0
    landmarks = HandLandmarks(xy, np.zeros((21, 3), np.float32), 0.9) if with_hand_landmarks else None
    detections = Detections(SIZE, SIZE, pose_xy, visibility, np.zeros((33, 3), np.float32), mask, None, None, None,
                            1, right_hand=landmarks)  # fmt: skip
    return detections, image, hand > 0, (arm > 0) & (hand == 0), xy


def _between_the_fingers(xy: np.ndarray, hand: np.ndarray, margin: float) -> np.ndarray:
    """Shirt pixels inside the V (the triangle of the two knuckles' midpoint and the two fingertips) further than
    ``margin`` pixels from any hand pixel."""
    v = np.zeros(hand.shape, np.uint8)
    cv2.fillConvexPoly(v, np.round([(xy[5] + xy[9]) / 2, xy[8], xy[12]]).astype(np.int32), 1)
    distance = cv2.distanceTransform((~hand).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return (v > 0) & (distance > margin)


def test_a_v_signs_fingers_are_the_hand_and_the_shirt_between_them_is_not():
    detections, image, hand, arm, xy = scene(with_hand_landmarks=True)
    labels = segment(detections, image)
    assert (labels[hand] == LABEL_HAND).mean() > 0.99  # every finger, to its tip
    between = _between_the_fingers(xy, hand, margin=0.2 * 40)  # a finger width off the fingers
    assert between.sum() > 100
    assert (labels[between] == LABEL_PERSON).all()
    shirt = (detections.mask > 0.5) & ~arm & (cv2.distanceTransform((~hand).astype(np.uint8), cv2.DIST_L2, 5) > 16)
    assert not (labels[shirt] == LABEL_HAND).any()  # no shirt beyond 0.4 hand sizes of the hand is the hand


@pytest.mark.parametrize("visible", [False, True])
def test_without_hand_landmarks_the_pose_hand_points_stand_in(visible):
    """No landmarks from mediapipe Hands: the hull of the pose's wrist, index, pinky and thumb, grown by half the
    hand's size, is the hand (fingers or not); and nothing where the pose's hand points are not visible."""
    detections, image, hand, _, xy = scene(with_hand_landmarks=False)
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


def test_a_colour_beside_the_fingers_that_does_not_touch_them_is_not_held():
    """A dark patch (a lock of hair) a third of a hand size beside the raised fingers, found nowhere else, is
    unexplained by the person's colours, but it does not touch the hand: it stays the person. Touching the
    fingers it is a held object."""
    detections, image, hand, _, xy = scene(with_hand_landmarks=True)
    body = np.where(detections.mask > 0.5, 0, -1).astype(np.int32)  # the fitted body covers the whole person
    distance = cv2.distanceTransform((~hand).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    for gap, expected in ((14, LABEL_PERSON), (0, LABEL_BACKGROUND)):  # 0.35 hand sizes off, or touching
        lock = np.zeros((SIZE, SIZE), bool)
        x = int(xy[12, 0]) + 6 + gap  # right of the middle fingertip
        lock[int(xy[12, 1]) : int(xy[12, 1]) + 24, x : x + 10] = True
        lock &= ~hand
        photo = image.copy()
        photo[lock] = (45, 30, 20)
        labels = segment(detections, photo, body)
        assert float(distance[lock].min()) > (0.3 * 40 if gap else 0)  # the hand's size is 40 pixels
        assert (labels[lock] == expected).mean() > 0.95, gap
