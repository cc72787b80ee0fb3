"""Stage 4: per-frame identity score against the photo, turned into per-frame fit weights.

Two detectors look at every frame. MediaPipe's full-range face detector (:func:`.detect.face_boxes`) says whether
the frame shows a face at all: it finds faces turned up to about 70 degrees (the script's cameras sweep to 60
degrees around the face) and not the back of a head. Where dlib's frontal detector also finds the face (turned
less than about 40 degrees), dlib's 128-D face embedding of the frame is compared with the photo's; the usual
same-person threshold of that embedding is 0.6. Weights fall linearly from 1 at ``full_weight_below`` to 0
at ``drop_above``; frames past ``drop_above`` drift too far and are dropped. Frames without a dlib distance
(backs, profiles, turned heads) keep weight 1: they carry body and clothing, and a frontal descriptor of a turned
face would read as a different person.

A frame whose camera sees the head from behind (:func:`sees_face`: the camera lies behind the plane through the
head across its facing direction, e.g. the back half of the turntable) cannot show a face by design: it is
scored like any frame but left out of the faces-found count, and the summary says how many were left out.
The score is only evidence when it sees faces: :func:`faces_warning` says so when fewer than
:data:`MIN_FACE_SHARE` of the frames that face the camera show one, and :func:`portrait_scores` renders the
baked avatar in head-and-shoulders views at yaw 0, +-30, +-60 degrees and measures each against the photo (the
report shows them beside the photo).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Bool
from torch import Tensor

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
    """Face-embedding distance to the photo; None where dlib's frontal detector finds no face in the frame."""
    weight: float
    facing: bool = True
    """Whether the camera sees the face side of the head (:func:`sees_face`); True when unknown."""
    face: bool = False
    """Whether the frame shows a face: MediaPipe's detector found one (or dlib's did: ``distance`` is set)."""


def weight_from_distance(distance: float | None, full_weight_below: float = 0.45, drop_above: float = 0.6) -> float:
    if distance is None or math.isnan(distance):
        return 1.0
    if distance <= full_weight_below:
        return 1.0
    if distance >= drop_above:
        return 0.0
    return (drop_above - distance) / (drop_above - full_weight_below)


def sees_face(rig, clip: Clip) -> Bool[Tensor, " B"] | None:
    """Per frame of ``clip``: whether its camera is in front of the posed head (on the side its face looks to);
    None for a rig without a head joint."""
    from anchorsplat.gaussians.rigged import pose_motion_mesh

    from .views import head_forward, head_position

    T_world_joint = pose_motion_mesh(rig, clip.motion.to(rig.vertices_rest.device)).T_world_joint
    forward = head_forward(rig, T_world_joint)
    if forward is None:
        return None
    head = head_position(rig, T_world_joint)
    to_camera = clip.cameras.T_world_cam[:, :3, 3].to(head) - head
    return (forward * to_camera).sum(-1) > 0


def score_clips(clips: list[Clip], photo: np.ndarray, *, upscale_to: int = 256, rig=None) -> list[FrameScore]:
    """Score every frame of every clip against ``photo`` (uint8 H W 3): whether it shows a face, and dlib's
    identity distance where its frontal detector finds one (none at all when the photo has no face dlib finds);
    with the clips' ``rig``, each frame also says whether its camera sees the face side of the head
    (:func:`sees_face`)."""
    from .detect import face_boxes

    reference = face_embedding(photo)
    scores = []
    for clip in clips:
        facing = None if rig is None else sees_face(rig, clip)
        # the detectors run on the host: one read-back per clip, whatever the clips' device
        frames = (clip.frames.clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()
        for t in range(len(clip)):
            frame = _upscale(frames[t], upscale_to)
            distance = None
            if reference is not None:
                embedding = face_embedding(frame)
                distance = None if embedding is None else identity_distance(reference, embedding)
            face = distance is not None or bool(face_boxes(frame))
            front = True if facing is None else bool(facing[t])
            scores.append(FrameScore(clip.name, t, distance, weight_from_distance(distance), front, face))
    return scores


def _upscale(frame: np.ndarray, size: int) -> np.ndarray:
    """The detectors need faces of ~40 px or more: small preview frames are enlarged first."""
    if frame.shape[0] >= size:
        return frame
    from PIL import Image

    return np.asarray(Image.fromarray(frame).resize((size, size), Image.Resampling.BICUBIC))


def faces_warning(frames_with_face: int, frames: int) -> str | None:
    """A one-line warning when fewer than :data:`MIN_FACE_SHARE` of the generated frames (those that face the
    camera, see :func:`sees_face`) show a face."""
    if frames == 0 or frames_with_face >= MIN_FACE_SHARE * frames:
        return None
    return (
        f"the score stage found a face in only {frames_with_face} of {frames} generated frames facing the camera "
        f"(under "
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
