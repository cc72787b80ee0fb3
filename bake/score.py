"""Stage 4: per-frame identity score against the photo, turned into per-frame fit weights.

Where a face is visible, dlib's 128-D face embedding of the frame is compared with the photo's; the usual
same-person threshold of that embedding is 0.6. Weights fall linearly from 1 at ``full_weight_below`` to 0
at ``drop_above``; frames past ``drop_above`` drift too far and are dropped. Frames with no detectable face
(backs, profiles, arms) keep weight 1: they carry body and clothing, not the face.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from anchorsplat.diffusion.generator import Clip

from .identity import face_embedding, identity_distance


@dataclass(frozen=True)
class FrameScore:
    clip: str
    index: int
    distance: float | None
    """Face-embedding distance to the photo; None when no face is found in the frame."""
    weight: float


def weight_from_distance(distance: float | None, full_weight_below: float = 0.45, drop_above: float = 0.6) -> float:
    if distance is None or math.isnan(distance):
        return 1.0
    if distance <= full_weight_below:
        return 1.0
    if distance >= drop_above:
        return 0.0
    return (drop_above - distance) / (drop_above - full_weight_below)


def score_clips(clips: list[Clip], photo: np.ndarray, *, upscale_to: int = 256) -> list[FrameScore]:
    """Score every frame of every clip against ``photo`` (uint8 H W 3)."""
    reference = face_embedding(photo)
    scores = []
    for clip in clips:
        # dlib runs on the host: one read-back per clip, whatever the clips' device
        frames = (clip.frames.clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy() if reference is not None else None
        for t in range(len(clip)):
            distance = None
            if frames is not None:
                frame = _upscale(frames[t], upscale_to)
                embedding = face_embedding(frame)
                distance = None if embedding is None else identity_distance(reference, embedding)
            scores.append(FrameScore(clip.name, t, distance, weight_from_distance(distance)))
    return scores


def _upscale(frame: np.ndarray, size: int) -> np.ndarray:
    """dlib's detector needs faces of ~80 px: small preview frames are enlarged first."""
    if frame.shape[0] >= size:
        return frame
    from PIL import Image

    return np.asarray(Image.fromarray(frame).resize((size, size), Image.Resampling.BICUBIC))
