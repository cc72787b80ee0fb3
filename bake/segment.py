"""Stage 1c: person and part segmentation of the photo, as a label map the texturing obeys.

Labels (:mod:`anchorsplat.diffusion.texture`): ``LABEL_BACKGROUND`` (not the person: background, held
objects, a table, other people, as the segmenter leaves them out), ``LABEL_PERSON``, ``LABEL_HAND`` and
``LABEL_FACE``.

- person: mediapipe Pose's segmentation mask (> 0.5), only its connected regions that hold the pose's torso
  or head landmarks (a second person or a stray blob is not the subject), eroded by one pixel so the
  anti-aliased outline (half background) never colours the body;
- hands (:func:`visible_hands`, :func:`hand_region`): where mediapipe Hands found a hand, its skeleton from the
  21 landmarks (the palm's hull, each finger's polyline, a stub past the wrist) grown by :data:`FINGER_RADIUS`
  hand sizes, so a V sign's raised fingers are the hand and the shirt between them is not; elsewhere the pose's
  four hand landmarks (wrist, index, pinky, thumb) of a visible hand, their convex hull grown by half the hand's
  size (the fingers are somewhere around it). A hand in front of the chest then colours only the hand and arm;
- face: the convex hull of FaceMesh's 478 landmarks (only the head takes colour from it);
- not the person, inside the person's outline (:func:`not_the_person`): a held object, a table in the
  foreground. Given the photo and the fitted body's part map in the photo camera (:func:`body_part_map`, a
  z-buffered rasterisation of the posed rig), a colour model of the person (k-means in CIELAB over person pixels
  that the fitted body covers, away from the hands' skeletons, plus the face) explains skin, hair and clothing;
  connected regions of person pixels it does not explain are not the person when they touch a hand (a held
  object) or touch the image's bottom edge outside the fitted body (a table). They become ``LABEL_BACKGROUND``
  and so never colour a Gaussian. mediapipe 0.10.14 ships no multiclass (hair / skin / clothes / others)
  segmenter, hence the colour model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from jaxtyping import Bool, Float, Int, UInt8
from torch import Tensor

from anchorsplat.diffusion.texture import LABEL_BACKGROUND, LABEL_FACE, LABEL_HAND, LABEL_PERSON

from .detect import POSE_LANDMARK_NAMES, VISIBLE, Detections
from .hands import SIDES, HandLandmarks

HAND_LANDMARKS = ("wrist", "index", "pinky", "thumb")
"""The pose's hand landmarks: the fallback hand where mediapipe Hands found none."""
PALM = (0, 1, 5, 9, 13, 17)
"""mediapipe Hands' landmarks whose convex hull is the palm: the wrist, the thumb's base and the four knuckles."""
FINGER_CHAINS = ((1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))
"""Each finger's landmarks from its base to its tip (thumb first): its polyline in the hand's skeleton."""
FINGER_RADIUS = 0.2
"""A hand from its 21 landmarks is the pixels within this many hand sizes (wrist to middle knuckle) of its
skeleton: a finger is ~0.2 hand sizes wide, and the landmarks sit on its axis give or take a few pixels."""
WRIST_STUB = 0.5
"""The hand's skeleton goes on past the wrist landmark, away from the middle knuckle, for this many hand sizes:
the wrist below the crease is the hand too (a raised hand's wrist over the chest colours the arm, not the torso)."""
POSE_HAND_RADIUS = 0.5
"""A hand from the pose's four landmarks (knuckles and wrist only) is their hull grown by this many hand sizes
(the hull's larger side): the fingers are somewhere around it."""
HAND_REACH = 0.1
"""A held object touches the hand: it comes within this many hand sizes of the hand's pixels (:func:`hand_region`;
from the pose's four points 0.6 hand sizes around their hull, from 21 landmarks 0.3 around the fingers: further,
on the cup photo, a dark lock of hair beside the fingers was taken for a held object)."""
HAND_EXCLUSION = 2.0
"""The person's colours are learnt this many hand sizes away from the hands' skeletons (where held objects are
not)."""
MIN_COLOUR_DISTANCE = 18.0
"""CIELAB distance under which a colour is always the person's (skin in shadow, folds of clothing)."""
COLOUR_SPREADS = 2.5
"""A colour is unexplained beyond this many times the person's own 90th-percentile distance to its clusters."""
MIN_FAR_SHARE = 0.3
"""A person colour must have at least this share of its pixels away from the hands (else it is held)."""
MIN_OBJECT_FRACTION = 2e-4
"""Unexplained regions smaller than this share of the image are noise, not objects."""
_ANCHORS = ("nose", "left_shoulder", "right_shoulder", "left_hip", "right_hip")


@dataclass(frozen=True, eq=False)
class Hand:
    """One visible hand of the subject in the photo, as a skeleton that :func:`hand_region` grows into pixels.

    Attributes:
        palm: points whose convex hull is the palm (pixels).
        lines: each finger's polyline, base to tip, and the wrist's stub (pixels; empty for a hand from the
            pose's landmarks).
        size: the hand's size in pixels (wrist to middle knuckle; the pose hull's larger side, about the same).
        radius: how far around the skeleton the hand's pixels reach, in hand sizes (:data:`FINGER_RADIUS` with
            fingers, :data:`POSE_HAND_RADIUS` without).
    """

    palm: Float[np.ndarray, "P 2"]
    lines: tuple[Float[np.ndarray, "_ 2"], ...]
    size: float
    radius: float


def segment(
    detections: Detections,
    image: UInt8[np.ndarray, "H W 3"] | None = None,
    body_parts: Int[np.ndarray, "H W"] | None = None,
) -> UInt8[np.ndarray, "H W"]:
    """The label map of the detected person (see the module docstring). With the photo ``image`` and the fitted
    body's ``body_parts`` (:func:`body_part_map`), objects in front of the person are left out too."""
    person = subject_region(detections.mask, detections.pose_xy, detections.pose_visibility)
    labels = np.where(person, LABEL_PERSON, LABEL_BACKGROUND).astype(np.uint8)
    face = None
    if detections.face_mesh_xy is not None:
        face = person & _hull(detections.face_mesh_xy, labels.shape)
        labels[face] = LABEL_FACE
    hands = visible_hands(detections)
    for hand in hands:
        labels[person & hand_region(hand, labels.shape)] = LABEL_HAND
    if image is not None and body_parts is not None:
        labels[not_the_person(image, person, body_parts, hands, face)] = LABEL_BACKGROUND
    return labels


def visible_hands(detections: Detections) -> list[Hand]:
    """The subject's visible hands: from mediapipe Hands' 21 landmarks where it found the hand, else from the
    pose's :data:`HAND_LANDMARKS` where they are all visible."""
    out = []
    for side in SIDES:
        landmarks = detections.hand(side)
        if landmarks is not None:
            out.append(hand_from_landmarks(landmarks))
            continue
        ids = [POSE_LANDMARK_NAMES.index(f"{side}_{n}") for n in HAND_LANDMARKS]
        if float(detections.pose_visibility[ids].min()) >= VISIBLE:
            points = detections.pose_xy[ids].astype(np.float32)
            out.append(Hand(points, (), float(np.ptp(points, axis=0).max()), POSE_HAND_RADIUS))
    return out


def hand_from_landmarks(landmarks: HandLandmarks) -> Hand:
    """The hand's skeleton from its 21 landmarks: the palm's hull (:data:`PALM`), five finger polylines and the
    wrist's stub (:data:`WRIST_STUB`)."""
    xy = landmarks.xy.astype(np.float32)
    wrist = np.stack([xy[0], xy[0] + WRIST_STUB * (xy[0] - xy[9])])  # the hand's size is wrist to middle knuckle
    return Hand(xy[list(PALM)], (*(xy[list(c)] for c in FINGER_CHAINS), wrist), landmarks.size, FINGER_RADIUS)


def hand_region(hand: Hand, shape: tuple[int, int], grow: float | None = None) -> Bool[np.ndarray, "H W"]:
    """Pixels within ``grow`` hand sizes (the hand's own :attr:`Hand.radius` when None) of the hand's skeleton."""
    import cv2

    skeleton = _hull(hand.palm, shape).astype(np.uint8)
    for line in hand.lines:
        cv2.polylines(skeleton, [np.round(line - 0.5).astype(np.int32)], False, 1)
    distance = cv2.distanceTransform(1 - skeleton, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return distance <= (hand.radius if grow is None else grow) * hand.size


def body_part_map(
    vertices_xy: Float[np.ndarray | Tensor, "V 2"],
    vertices_depth: Float[np.ndarray | Tensor, " V"],
    faces: Int[np.ndarray | Tensor, "F 3"],
    face_parts: Int[np.ndarray | Tensor, " F"],
    shape: tuple[int, int],
) -> Int[np.ndarray, "H W"]:
    """The body part (index into ``diffusion.texture.PART_NAMES``) seen at each pixel, -1 where the body is not:
    the posed mesh's triangles drawn far to near (a painter's z-buffer; the body's triangles are small). Tensors
    are brought to the host (once: this runs after the fit)."""
    import cv2

    vertices_xy, vertices_depth, faces, face_parts = (
        x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)
        for x in (vertices_xy, vertices_depth, faces, face_parts)
    )

    out = np.full(shape, -1, np.int32)
    corners = np.round(vertices_xy[faces] - 0.5).astype(np.int32)  # F 3 2
    depth = vertices_depth[faces].mean(1)
    order = np.argsort(-depth)
    order = order[(depth[order] > 0)]
    for i in order:
        cv2.fillConvexPoly(out, corners[i], int(face_parts[i]))
    return out


def not_the_person(
    image: UInt8[np.ndarray, "H W 3"],
    person: Bool[np.ndarray, "H W"],
    body_parts: Int[np.ndarray, "H W"],
    hands: list[Hand],
    face: Bool[np.ndarray, "H W"] | None = None,
) -> Bool[np.ndarray, "H W"]:
    """Person pixels that are not the person: a held object or a table in front of the body (module docstring)."""
    import cv2

    h, w = person.shape
    near_hand = np.zeros((h, w), bool)
    far_from_hands = np.ones((h, w), bool)
    for hand in hands:
        near_hand |= hand_region(hand, (h, w), hand.radius + HAND_REACH)
        far_from_hands &= ~hand_region(hand, (h, w), HAND_EXCLUSION)
    on_body = body_parts >= 0
    reference = person & on_body & far_from_hands
    if face is not None:
        reference |= face
    if reference.sum() < 50:
        return np.zeros((h, w), bool)  # nothing to learn the person's colours from
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    distance, spread = _colour_distance(lab, reference, person | reference)
    unexplained = person & (distance > max(MIN_COLOUR_DISTANCE, COLOUR_SPREADS * spread))
    unexplained = cv2.morphologyEx(unexplained.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0
    count, components = cv2.connectedComponents(unexplained.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros((h, w), bool)
    ids = components.ravel()
    size = np.bincount(ids, minlength=count)
    touches_hand = np.bincount(ids, weights=near_hand.ravel(), minlength=count) > 0
    off_body = np.bincount(ids, weights=(~on_body).ravel(), minlength=count) > 0.5 * size
    bottom = np.zeros(count, bool)
    bottom[np.unique(components[-1])] = True
    drop = (touches_hand | (bottom & off_body)) & (size >= MIN_OBJECT_FRACTION * h * w)
    drop[0] = False
    out = drop[components]
    # The object's anti-aliased rim mixes its colour with the body's: one more pixel goes with it.
    return person & (cv2.dilate(out.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)


def _colour_distance(
    lab: np.ndarray, reference: np.ndarray, person: np.ndarray, k: int = 8
) -> tuple[np.ndarray, float]:
    """Each pixel's CIELAB distance to the nearest colour cluster of the person, and the reference pixels' own
    90th-percentile distance (how tight the person's colours are).

    The clusters are k-means of the ``reference`` pixels; a cluster that holds under :data:`MIN_FAR_SHARE` of
    the person pixels of its colour is dropped: a colour found mostly near the hands is what they hold, seen
    again where the object reaches past the hands' surroundings."""
    import cv2

    samples = lab[reference]
    if len(samples) > 6000:
        samples = samples[np.random.default_rng(0).choice(len(samples), 6000, replace=False)]
    k = min(k, len(samples))
    cv2.setRNGSeed(0)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 30, 0.5)
    _, _, centres = cv2.kmeans(samples, k, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    pixels = lab[person]
    nearest = np.stack([np.linalg.norm(pixels - c, axis=1) for c in centres], 1).argmin(1)
    in_reference = reference[person]
    far_share = np.bincount(nearest[in_reference], minlength=k) / np.maximum(np.bincount(nearest, minlength=k), 1)
    centres = centres[far_share >= MIN_FAR_SHARE]
    flat = lab.reshape(-1, 3)
    distance = np.full(len(flat), np.inf, np.float32)
    for c in centres:
        distance = np.minimum(distance, np.linalg.norm(flat - c, axis=1))
    distance = distance.reshape(lab.shape[:2])
    return distance, float(np.quantile(distance[reference], 0.9))


def subject_region(
    mask: Float[np.ndarray, "H W"], pose_xy: Float[np.ndarray, "33 2"], visibility: Float[np.ndarray, "33"]
) -> np.ndarray:
    """The mask's connected regions holding the pose's visible head/torso landmarks, eroded by one pixel."""
    import cv2

    inside = (mask > 0.5).astype(np.uint8)
    count, components = cv2.connectedComponents(inside, connectivity=8)
    h, w = mask.shape
    keep = set()
    for name in _ANCHORS:
        i = POSE_LANDMARK_NAMES.index(name)
        x, y = int(pose_xy[i, 0]), int(pose_xy[i, 1])
        if visibility[i] >= VISIBLE and 0 <= x < w and 0 <= y < h and components[y, x] > 0:
            keep.add(int(components[y, x]))
    if not keep and count > 1:  # no landmark on the mask: the largest region
        sizes = np.bincount(components.ravel(), minlength=count)[1:]
        keep.add(int(sizes.argmax()) + 1)
    region = np.isin(components, sorted(keep)).astype(np.uint8)
    return cv2.erode(region, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE) > 0


def _hull(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pixels inside the convex hull of ``points``."""
    import cv2

    hull = cv2.convexHull(points.astype(np.float32)).reshape(-1, 2)
    out = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(out, np.round(hull - 0.5).astype(np.int32), 1)
    return out > 0
