"""Stage 4: per-frame identity score against the photo, turned into per-frame fit weights.

Where a face is visible, dlib's 128-D face embedding of the frame is compared with the photo's; the usual
same-person threshold of that embedding is 0.6. Weights fall linearly from 1 at ``full_weight_below`` to 0
at ``drop_above``; frames past ``drop_above`` drift too far and are dropped. Frames with no detectable face
(backs, profiles, arms) keep weight 1: they carry body and clothing, not the face.

The score is only evidence when it sees faces: :func:`faces_warning` says so when fewer than
:data:`MIN_FACE_SHARE` of the frames show one, and :func:`portrait_scores` renders the baked avatar in
head-and-shoulders views at yaw 0, +-30, +-60 degrees and measures each against the photo (the report shows them
beside the photo).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from anchorsplat.diffusion.generator import Clip
from anchorsplat.gaussians.io import Avatar

from .identity import face_embedding, identity_distance

MIN_FACE_SHARE = 0.5
PORTRAIT_YAWS_DEG = (-60.0, -30.0, 0.0, 30.0, 60.0)


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


def faces_warning(frames_with_face: int, frames: int) -> str | None:
    """A one-line warning when fewer than :data:`MIN_FACE_SHARE` of the generated frames show a face."""
    if frames == 0 or frames_with_face >= MIN_FACE_SHARE * frames:
        return None
    return (
        f"the score stage found a face in only {frames_with_face} of {frames} generated frames (under "
        f"{MIN_FACE_SHARE:.0%}): the identity score is weak evidence; check the portrait renders in report.html "
        "and try a sharper, more frontal photo"
    )


@dataclass(frozen=True, eq=False)
class PortraitScore:
    yaw_deg: float
    image: np.ndarray
    """uint8 H W 3 render of the baked avatar, head and shoulders."""
    distance: float | None
    """Face-embedding distance to the photo; None when no face is found in the render."""


def portrait_scores(
    avatar: Avatar,
    photo: np.ndarray,
    *,
    yaws_deg: tuple[float, ...] = PORTRAIT_YAWS_DEG,
    size: int = 256,
    backend: str = "auto",
) -> list[PortraitScore]:
    """Render ``avatar`` (rest pose, arms hanging) in portrait views at ``yaws_deg`` and score each against
    ``photo``."""
    import torch

    from anchorsplat.gaussians.render import render
    from anchorsplat.gaussians.rigged import pose, pose_motion_mesh
    from anchorsplat.gaussians.video import to_uint8

    from .views import head_position, portrait_cameras, portrait_motion

    reference = face_embedding(photo)
    rig = avatar.rig
    motion = portrait_motion(rig)  # arms hanging, as in a portrait photo, not the rig's T-pose
    out = []
    with torch.no_grad():
        posed = pose(avatar.gaussians, rig, motion)
        head = head_position(rig, pose_motion_mesh(rig, motion).T_world_joint[0])
        means = posed.means[0].float()
        head = means.mean(0) if head is None else head.float()
        cameras = portrait_cameras(means, head, torch.tensor(yaws_deg, device=means.device), size)
        for i, yaw in enumerate(yaws_deg):
            background = torch.ones(3, dtype=means.dtype, device=means.device)
            image = to_uint8(render(posed, cameras[i], backend=backend, background=background).rgb[0, 0])
            embedding = None if reference is None else face_embedding(image)
            distance = None if embedding is None else identity_distance(reference, embedding)
            out.append(PortraitScore(float(yaw), image, distance))
    return out
