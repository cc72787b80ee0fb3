"""Stage 1c: person and part segmentation of the photo, as a label map the texturing obeys.

Labels (:mod:`anchorsplat.diffusion.texture`): ``LABEL_BACKGROUND`` (not the person: background, held
objects, a table, other people, as the segmenter leaves them out), ``LABEL_PERSON``, ``LABEL_HAND`` and
``LABEL_FACE``.

- person: mediapipe Pose's segmentation mask (> 0.5), only its connected regions that hold the pose's torso
  or head landmarks (a second person or a stray blob is not the subject), eroded by one pixel so the
  anti-aliased outline (half background) never colours the body;
- hands: the pose's hand landmarks (wrist, index, pinky, thumb) of each visible hand, their convex hull grown
  by half the hand's size; a hand in front of the chest then colours only the hand and forearm;
- face: the convex hull of FaceMesh's 478 landmarks (only the head takes colour from it).
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float, UInt8

from anchorsplat.diffusion.texture import LABEL_BACKGROUND, LABEL_FACE, LABEL_HAND, LABEL_PERSON

from .detect import POSE_LANDMARK_NAMES, VISIBLE, Detections

HAND_LANDMARKS = ("wrist", "index", "pinky", "thumb")
_ANCHORS = ("nose", "left_shoulder", "right_shoulder", "left_hip", "right_hip")


def segment(detections: Detections) -> UInt8[np.ndarray, "H W"]:
    """The label map of the detected person (see the module docstring)."""
    person = subject_region(detections.mask, detections.pose_xy, detections.pose_visibility)
    labels = np.where(person, LABEL_PERSON, LABEL_BACKGROUND).astype(np.uint8)
    if detections.face_mesh_xy is not None:
        labels[person & _polygon(detections.face_mesh_xy, labels.shape, grow=0.0)] = LABEL_FACE
    for side in ("left", "right"):
        ids = [POSE_LANDMARK_NAMES.index(f"{side}_{n}") for n in HAND_LANDMARKS]
        if float(detections.pose_visibility[ids].min()) < VISIBLE:
            continue
        labels[person & _polygon(detections.pose_xy[ids], labels.shape, grow=0.5)] = LABEL_HAND
    return labels


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


def _polygon(points: np.ndarray, shape: tuple[int, int], *, grow: float) -> np.ndarray:
    """Pixels inside the convex hull of ``points``, grown by ``grow`` times the hull's larger side."""
    import cv2

    hull = cv2.convexHull(points.astype(np.float32)).reshape(-1, 2)
    out = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(out, np.round(hull - 0.5).astype(np.int32), 1)
    radius = int(round(grow * float((hull.max(0) - hull.min(0)).max())))
    if radius > 0:
        out = cv2.dilate(out, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)))
    return out > 0
