"""Stage 1a, hands: each visible hand's 21 landmarks (mediapipe Hands), assigned to the subject's left or right hand.

mediapipe Hands (the "full" model mediapipe 0.10.14 ships, no download) runs on the whole photo and on a square
crop around each of the pose's hands (its wrist, index, pinky and thumb landmarks), where a hand a few dozen
pixels wide is found that the whole-photo pass misses. Each found hand goes to the subject's hand whose pose
wrist is nearest its wrist landmark, within :data:`MAX_WRIST_DISTANCE` hand sizes; when both wrists are about
equally near, mediapipe's handedness decides. Its handedness assumes a mirrored selfie: on an ordinary photo
its "Left" is the person's right hand.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from jaxtyping import Float, UInt8

HAND_LANDMARK_NAMES: tuple[str, ...] = (
    "wrist", "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip", "index_mcp", "index_pip", "index_dip", "index_tip",
    "middle_mcp", "middle_pip", "middle_dip", "middle_tip", "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
    "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)  # fmt: skip
"""mediapipe Hands' landmarks: the wrist, then four per finger from the base to the tip."""
SIDES = ("left", "right")
MAX_WRIST_DISTANCE = 1.5
"""A found hand belongs to a pose wrist at most this many hand sizes (wrist to middle knuckle) from its wrist."""
TIE = 0.25
"""Both wrists within this fraction of each other's distance: handedness decides which hand it is."""
CROP_SPREAD = 4.0
"""Crop side: this many times the pose hand landmarks' spread around the wrist (at least a fifth of the shoulder
width times 4), so the whole hand, fingers raised or not, is inside."""
MIN_POSE_VISIBILITY = 0.2
"""The pose's hand is looked for in a crop when its wrist's visibility is at least this."""

_LOCK = threading.Lock()


@dataclass(frozen=True, eq=False)
class HandLandmarks:
    """One hand's landmarks (:data:`HAND_LANDMARK_NAMES`).

    Attributes:
        xy: pixel coordinates (x right, y down, pixel centres at +0.5).
        world: mediapipe's metric landmarks (metres, around the hand's centre; x right, y down, z away from
            the camera, as the pose's ``pose_world``).
        score: mediapipe's hand presence score in [0, 1].
    """

    xy: Float[np.ndarray, "21 2"]
    world: Float[np.ndarray, "21 3"]
    score: float

    @property
    def size(self) -> float:
        """Wrist to middle knuckle, in pixels."""
        return float(np.linalg.norm(self.xy[9] - self.xy[0]))


@dataclass(frozen=True)
class _Found:
    hand: HandLandmarks
    person_side: str
    """The person's side mediapipe's handedness says (mirrored back)."""


@lru_cache(maxsize=1)
def _hands():
    import mediapipe as mp

    return mp.solutions.hands.Hands(
        static_image_mode=True, max_num_hands=2, model_complexity=1, min_detection_confidence=0.5
    )


def _run(image: np.ndarray, box: tuple[int, int, int, int]) -> list[_Found]:
    """mediapipe Hands on ``image[y0:y1, x0:x1]``; landmarks in image pixels."""
    x0, y0, x1, y1 = box
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    result = _hands().process(crop)
    out = []
    w, h = x1 - x0, y1 - y0
    for points, world, handed in zip(
        result.multi_hand_landmarks or [], result.multi_hand_world_landmarks or [], result.multi_handedness or [],
        strict=True,
    ):  # fmt: skip
        xy = np.array([(x0 + p.x * w, y0 + p.y * h) for p in points.landmark], np.float32)
        xyz = np.array([(p.x, p.y, p.z) for p in world.landmark], np.float32)
        label = handed.classification[0]
        side = "right" if label.label == "Left" else "left"  # mediapipe assumes a mirrored selfie
        out.append(_Found(HandLandmarks(xy, xyz, float(label.score)), side))
    return out


def _crop_box(
    pose_xy: np.ndarray, pose_visibility: np.ndarray, side: str, width: int, height: int
) -> tuple[int, int, int, int] | None:
    """A square crop around the pose's hand on ``side``, None when its wrist is hidden or the crop is tiny."""
    from .detect import POSE_LANDMARK_NAMES

    ids = [POSE_LANDMARK_NAMES.index(f"{side}_{n}") for n in ("wrist", "index", "pinky", "thumb")]
    if pose_visibility[ids[0]] < MIN_POSE_VISIBILITY:
        return None
    points = pose_xy[ids]
    shoulders = pose_xy[[POSE_LANDMARK_NAMES.index("left_shoulder"), POSE_LANDMARK_NAMES.index("right_shoulder")]]
    spread = max(float(np.linalg.norm(points - points[0], axis=1).max()), 0.2 * float(np.ptp(shoulders[:, 0])))
    centre = points.mean(0)
    half = 0.5 * CROP_SPREAD * spread
    x0, y0 = int(max(centre[0] - half, 0)), int(max(centre[1] - half, 0))
    x1, y1 = int(min(centre[0] + half, width)), int(min(centre[1] + half, height))
    return (x0, y0, x1, y1) if min(x1 - x0, y1 - y0) >= 32 else None


def detect_hands(
    image: UInt8[np.ndarray, "H W 3"], pose_xy: Float[np.ndarray, "33 2"], pose_visibility: Float[np.ndarray, "33"]
) -> dict[str, HandLandmarks]:
    """The subject's hands found in ``image``, by side (``"left"``/``"right"``: the person's); a hand that is
    not found is absent. See the module docstring."""
    from .detect import POSE_LANDMARK_NAMES

    h, w = image.shape[:2]
    with _LOCK:
        found = _run(image, (0, 0, w, h))
        for side in SIDES:
            box = _crop_box(pose_xy, pose_visibility, side, w, h)
            if box is not None and box != (0, 0, w, h):
                found += _run(image, box)
    ids = {s: POSE_LANDMARK_NAMES.index(f"{s}_wrist") for s in SIDES}
    wrists = {s: pose_xy[i] for s, i in ids.items() if pose_visibility[i] >= MIN_POSE_VISIBILITY}
    claims = [(claim, f.hand) for f in found if (claim := _claim(f, wrists)) is not None]
    out: dict[str, HandLandmarks] = {}
    taken: list[HandLandmarks] = []
    for (_, side), hand in sorted(claims, key=lambda c: c[0][0] - 1e-3 * c[1].score):  # nearest first
        if side not in out and not any(_same_hand(hand, t) for t in taken):
            out[side] = hand
            taken.append(hand)
    return out


def _claim(found: _Found, wrists: dict[str, np.ndarray]) -> tuple[float, str] | None:
    """The wrist distance (in hand sizes) and the person's side of the pose wrist a found hand belongs to; None
    when no pose wrist is within :data:`MAX_WRIST_DISTANCE`. Two about equally near wrists: handedness decides."""
    size = max(found.hand.size, 1.0)
    distances = {side: float(np.linalg.norm(found.hand.xy[0] - xy)) / size for side, xy in wrists.items()}
    near = sorted((d, side) for side, d in distances.items() if d <= MAX_WRIST_DISTANCE)
    if len(near) == 2 and near[1][0] - near[0][0] <= TIE * near[1][0]:
        return next(c for c in near if c[1] == found.person_side)
    return near[0] if near else None


def _same_hand(a: HandLandmarks, b: HandLandmarks) -> bool:
    """Two detections of one hand (the whole photo's and a crop's): their landmarks nearly coincide."""
    return float(np.linalg.norm(a.xy - b.xy, axis=1).mean()) < 0.5 * max(a.size, b.size, 1.0)
