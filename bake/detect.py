"""Stage 1a: find the one person in the photo (read by :func:`.photo.load_photo`).

:func:`detect_person` runs three detectors on it:

- mediapipe Pose (BlazePose "full", the model mediapipe 0.10.14 ships): 33 landmarks with visibility, metric
  world landmarks, and the person's segmentation mask. It finds at most one person.
- mediapipe FaceMesh (478 landmarks with ``refine_landmarks``) and FaceDetection (full range).
- dlib's HOG face detector and its 68-landmark shape predictor (face_recognition_models' weights).
- mediapipe Hands around the pose's hands: each visible hand's 21 landmarks (:mod:`.hands`).

dlib's HOG detector fires on face-like things (the mission patch on the astronaut's suit scores 0.12), so a
face box only counts when FaceMesh also finds a face there (on the whole image, or on a crop around the box),
and the subject's face is the confirmed face at the pose's head. Every confirmed face of comparable size is a
person (numbered left to right); in a group photo the pose runs on the chosen person's column of the image only
(by default the largest, most central face). A face under :data:`MIN_FACE_PX` and a photo cut above the
shoulders are refused with the minimum they need.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from jaxtyping import Float, UInt8

from .hands import HandLandmarks, detect_hands
from .photo import Box, check_image

COMPARABLE_FACE = 0.5
"""Another face counts as another person when its width is at least this fraction of the subject's face."""
VISIBLE = 0.5
MIN_FACE_PX = 40
"""The smallest face (width in pixels) the bake accepts: under it, no identity survives."""
"""Pose landmarks with visibility below this are treated as hidden (framing)."""

POSE_LANDMARK_NAMES: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)  # fmt: skip
"""mediapipe Pose's landmarks; "left" is the person's left (it appears on the image's right in a front view)."""


@dataclass(frozen=True, eq=False)
class Detections:
    """What the detectors found for the one person in a photo (pixel coordinates: x right, y down, pixel
    centres at +0.5, as :func:`anchorsplat.gaussians.conventions.project_points`).

    Attributes:
        width / height: image size in pixels.
        pose_xy / pose_visibility: mediapipe Pose landmarks (:data:`POSE_LANDMARK_NAMES`) and their visibility
            in [0, 1]. Landmarks outside the image are extrapolated by mediapipe and have low visibility.
        pose_world: mediapipe's metric landmarks (hip-centred, x right, y down, z away from the camera).
        mask: person segmentation, probability in [0, 1].
        face_mesh_xy: FaceMesh's 478 landmarks of the subject's face, None when no face mesh was found.
        face_box: dlib's box of the subject's face (left, top, right, bottom), None when dlib found none.
        face_landmarks_68: dlib's 68 landmarks (iBUG 300-W order) in ``face_box``, None with it.
        num_people: people found (faces of comparable size; 1 when there is no face).
        person: which of them is the subject (1-based, left to right).
        face_mesh_z: FaceMesh's relative depth of each landmark (pixels, away from the camera; None without it).
        left_hand / right_hand: the person's hands' 21 landmarks (:func:`.hands.detect_hands`), None where
            mediapipe Hands found no hand at that wrist.
    """

    width: int
    height: int
    pose_xy: Float[np.ndarray, "33 2"]
    pose_visibility: Float[np.ndarray, "33"]
    pose_world: Float[np.ndarray, "33 3"]
    mask: Float[np.ndarray, "H W"]
    face_mesh_xy: Float[np.ndarray, "478 2"] | None
    face_box: Box | None
    face_landmarks_68: Float[np.ndarray, "68 2"] | None
    num_people: int
    face_mesh_z: Float[np.ndarray, "478"] | None = None
    person: int = 1
    left_hand: HandLandmarks | None = None
    right_hand: HandLandmarks | None = None

    def hand(self, side: str) -> HandLandmarks | None:
        """The hand landmarks of the person's ``"left"`` or ``"right"`` hand."""
        return {"left": self.left_hand, "right": self.right_hand}[side]

    def visible(self, name: str) -> bool:
        """Whether a pose landmark is visible and inside the image."""
        i = POSE_LANDMARK_NAMES.index(name)
        x, y = self.pose_xy[i]
        return bool(self.pose_visibility[i] >= VISIBLE and 0 <= x < self.width and 0 <= y < self.height)

    @property
    def framing(self) -> str:
        """``"full_body"`` when a hip is visible, else ``"portrait"`` (head and shoulders)."""
        return "full_body" if self.visible("left_hip") or self.visible("right_hip") else "portrait"


# --- detectors (loaded once; mediapipe graphs are not re-entrant, so calls are serialised) ------------------------

_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _mediapipe():
    try:
        import mediapipe as mp
    except ImportError:
        raise ValueError(
            "person detection needs mediapipe: pip install 'anchorsplat[fit]' (mediapipe==0.10.14)"
        ) from None
    solutions = mp.solutions
    # model_complexity=1 is the pose model mediapipe ships; 2 would be downloaded on first use.
    pose = solutions.pose.Pose(static_image_mode=True, model_complexity=1, enable_segmentation=True)
    mesh = solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=2, refine_landmarks=True)
    crop_mesh = solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True)
    faces = solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.6)
    return pose, mesh, crop_mesh, faces


def _mesh_points(result, width: int, height: int) -> list[np.ndarray]:
    """FaceMesh's landmarks in pixels: x, y and the relative depth z (away from the camera, in x's scale)."""
    return [
        np.array([(p.x * width, p.y * height, p.z * width) for p in face.landmark], dtype=np.float32)
        for face in (result.multi_face_landmarks or [])
    ]


def _mesh_in_crop(image: np.ndarray, box: Box) -> np.ndarray | None:
    """FaceMesh on a square crop of twice the box's size around it; landmarks in image pixels."""
    _, _, crop_mesh, _ = _mediapipe()
    h, w = image.shape[:2]
    cx, cy, size = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, max(box[2] - box[0], box[3] - box[1])
    x0, y0 = int(max(cx - size, 0)), int(max(cy - size, 0))
    x1, y1 = int(min(cx + size, w)), int(min(cy + size, h))
    if x1 - x0 < 16 or y1 - y0 < 16:
        return None
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    found = _mesh_points(crop_mesh.process(crop), x1 - x0, y1 - y0)
    if not found:
        return None
    points = found[0] + np.array([x0, y0, 0.0], dtype=np.float32)
    return points if _inside(points[:, :2].mean(0), box) else None


def _inside(xy: np.ndarray, box: Box) -> bool:
    return bool(box[0] <= xy[0] <= box[2] and box[1] <= xy[1] <= box[3])


def _iou(a: Box, b: Box) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _same_face(a: Box, b: Box) -> bool:
    centre = lambda r: np.array([(r[0] + r[2]) / 2, (r[1] + r[3]) / 2])  # noqa: E731
    return _iou(a, b) > 0.25 or _inside(centre(a), b) or _inside(centre(b), a)


def _box_of(points: np.ndarray) -> Box:
    lo, hi = points[:, :2].min(0), points[:, :2].max(0)
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


@dataclass
class _Face:
    box: Box
    mesh: np.ndarray | None = None
    dlib_box: Box | None = None

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]


def _confirmed_faces(image: np.ndarray) -> list[_Face]:
    """Faces that FaceMesh confirms, merged across detectors (one entry per face)."""
    from .identity import dlib_detect

    _, mesh, _, _ = _mediapipe()
    h, w = image.shape[:2]
    faces = [_Face(_box_of(points), points) for points in _mesh_points(mesh.process(image), w, h)]
    candidates: list[tuple[Box, bool]] = [(box, True) for box, _ in dlib_detect(image)]
    candidates += [(box, False) for box in _mediapipe_face_boxes(image)]
    for box, from_dlib in candidates:
        known = next((f for f in faces if _same_face(f.box, box)), None)
        if known is None:
            points = _mesh_in_crop(image, box)
            if points is None:
                continue  # a face-like pattern (a badge, a print), not a face
            known = _Face(_box_of(points), points)
            faces.append(known)
        if from_dlib and known.dlib_box is None:
            known.dlib_box = box
    return faces


def face_boxes(image: UInt8[np.ndarray, "H W 3"]) -> list[Box]:
    """Boxes (left, top, right, bottom, pixels) of the faces MediaPipe's full-range face detector finds and FaceMesh
    confirms (a blob of skin colour is not a face), best first. It finds faces turned up to about 70 degrees, where
    dlib's frontal HOG detector stops near 40, and not the back of a head: the score stage counts with it the
    generated frames that show a face."""
    image = np.ascontiguousarray(image)
    with _LOCK:
        return [box for box in _mediapipe_face_boxes(image) if _mesh_in_crop(image, box) is not None]


def _mediapipe_face_boxes(image: np.ndarray) -> list[Box]:
    """Boxes (pixels) of the faces MediaPipe's full-range face detector finds, best first (hold ``_LOCK``)."""
    _, _, _, face_detection = _mediapipe()
    h, w = image.shape[:2]
    detections = sorted(face_detection.process(image).detections or [], key=lambda d: -d.score[0])
    boxes = [d.location_data.relative_bounding_box for d in detections]
    return [(r.xmin * w, r.ymin * h, (r.xmin + r.width) * w, (r.ymin + r.height) * h) for r in boxes]


def detect_person(image: UInt8[np.ndarray, "H W 3"], *, person: int | None = None) -> Detections:
    """Find the subject in ``image``: pose, mask, face landmarks. See the module docstring.

    Args:
        image: the photo, uint8 RGB.
        person: in a photo of several people (faces of comparable size, numbered 1, 2, ... left to right), the
            one to fit; None picks the largest, most central one (``Detections.person`` says which).

    Raises:
        ValueError: no person, a ``person`` the photo does not have, a face under :data:`MIN_FACE_PX`, a body cut
            above the shoulders, or an image under 128 px on its short side.
    """
    check_image(image)
    h, w = image.shape[:2]
    pose, _, _, _ = _mediapipe()
    with _LOCK:
        faces = _confirmed_faces(image)
        people = _people(faces)
        index, (x0, x1) = _choose_person(people, person, w)
        column = np.ascontiguousarray(image[:, x0:x1])  # only the chosen person's column of the photo
        result = pose.process(column)
        mask = np.zeros((h, w), np.float32)
        if result.segmentation_mask is not None:
            mask[:, x0:x1] = np.asarray(result.segmentation_mask, np.float32)
        if result.pose_landmarks is None or (mask > 0.5).mean() < 0.005:
            raise ValueError(
                "no person found in the photo: use a photo in which one person's head and shoulders are clearly "
                "visible and well lit"
            )
        cw = x1 - x0
        pose_xy = np.array([(x0 + p.x * cw, p.y * h) for p in result.pose_landmarks.landmark], dtype=np.float32)
        visibility = np.array([p.visibility for p in result.pose_landmarks.landmark], dtype=np.float32)
        world = np.array([(p.x, p.y, p.z) for p in result.pose_world_landmarks.landmark], dtype=np.float32)
        in_column = [f for f in faces if x0 <= (f.box[0] + f.box[2]) / 2 < x1]
        subject = _subject_face(in_column, pose_xy, visibility, mask)
        if subject is not None and subject.mesh is None:
            subject.mesh = _mesh_in_crop(image, subject.box)
    _check_framing(subject, pose_xy, visibility, w, h)
    landmarks = None
    if subject is not None and subject.dlib_box is not None:
        from .identity import dlib_landmarks

        landmarks = dlib_landmarks(image, subject.dlib_box)
    hands = detect_hands(image, pose_xy, visibility)
    return Detections(
        width=w, height=h, pose_xy=pose_xy, pose_visibility=visibility, pose_world=world, mask=mask,
        face_mesh_xy=None if subject is None or subject.mesh is None else subject.mesh[:, :2].copy(),
        face_mesh_z=None if subject is None or subject.mesh is None else subject.mesh[:, 2].copy(),
        face_box=None if subject is None else subject.dlib_box,
        face_landmarks_68=landmarks, num_people=max(1, len(people)), person=index,
        left_hand=hands.get("left"), right_hand=hands.get("right"),
    )  # fmt: skip


def _people(faces: list[_Face]) -> list[_Face]:
    """One face per person: the faces at least :data:`COMPARABLE_FACE` of the largest one, left to right."""
    if not faces:
        return []
    largest = max(f.width for f in faces)
    return sorted((f for f in faces if f.width >= COMPARABLE_FACE * largest), key=lambda f: f.box[0] + f.box[2])


def _choose_person(people: list[_Face], person: int | None, width: int) -> tuple[int, tuple[int, int]]:
    """The chosen person's number (1-based) and the image column that holds them (up to halfway to the next
    face on either side)."""
    if person is not None and not 1 <= person <= max(1, len(people)):
        raise ValueError(
            f"--person {person}: the photo shows {max(1, len(people))} person(s), numbered 1 to "
            f"{max(1, len(people))} from left to right; pick one of them"
        )
    if len(people) <= 1:
        return 1, (0, width)
    centres = [(f.box[0] + f.box[2]) / 2 for f in people]
    if person is None:  # the largest, most central face
        score = [f.width * (1.0 - 0.5 * abs(c - width / 2) / (width / 2)) for f, c in zip(people, centres, strict=True)]
        person = int(np.argmax(score)) + 1
    i = person - 1
    x0 = 0 if i == 0 else int((centres[i - 1] + centres[i]) / 2)
    x1 = width if i == len(people) - 1 else int((centres[i] + centres[i + 1]) / 2)
    return person, (x0, x1)


def _check_framing(subject: _Face | None, pose_xy: np.ndarray, visibility: np.ndarray, w: int, h: int) -> None:
    """Refuse a face too small to carry an identity and a photo cut above the shoulders."""
    if subject is not None and subject.width < MIN_FACE_PX:
        raise ValueError(
            f"the face is only {subject.width:.0f} px wide: the bake needs a face at least {MIN_FACE_PX} px wide; "
            "use a closer or higher-resolution photo, or crop it around the person"
        )
    shoulders = [POSE_LANDMARK_NAMES.index(n) for n in ("left_shoulder", "right_shoulder")]
    seen = [visibility[i] >= VISIBLE / 2 and 0 <= pose_xy[i, 0] < w and 0 <= pose_xy[i, 1] < h for i in shoulders]
    if not any(seen):
        raise ValueError(
            "the photo is cut above the shoulders: the bake needs at least the head and both shoulders in the "
            "photo; use a photo framed from the chest up or wider"
        )


def _head_box(pose_xy: np.ndarray, visibility: np.ndarray) -> Box | None:
    """A box around the pose's face landmarks (nose, eyes, ears, mouth), None when they are hidden."""
    head = pose_xy[:11][visibility[:11] >= VISIBLE]
    if len(head) < 3:
        return None
    lo, hi = head.min(0), head.max(0)
    pad = 0.5 * max(hi[0] - lo[0], hi[1] - lo[1])
    return float(lo[0] - pad), float(lo[1] - pad), float(hi[0] + pad), float(hi[1] + pad)


def _subject_face(faces: list[_Face], pose_xy: np.ndarray, visibility: np.ndarray, mask: np.ndarray) -> _Face | None:
    """The face at the pose's head; failing that, a face on the person's mask above the shoulders."""
    head = _head_box(pose_xy, visibility)
    if head is not None:
        at_head = [f for f in faces if _same_face(f.box, head)]
        if at_head:
            return max(at_head, key=lambda f: _iou(f.box, head))
    h, w = mask.shape
    shoulders_y = float(pose_xy[11:13, 1].max())
    for face in sorted(faces, key=lambda f: -f.width):
        x, y = int((face.box[0] + face.box[2]) / 2), int((face.box[1] + face.box[3]) / 2)
        if 0 <= x < w and 0 <= y < h and mask[y, x] > 0.5 and y < shoulders_y:
            return face
    return None
