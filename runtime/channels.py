"""The runtime's motion channels: one flat vector per frame, and its conversion to and from :class:`Motion`.

Channels (:data:`CHANNEL_NAMES`), in order:

- :data:`VISEME_CHANNELS`: the mouth, as ARKit-52 blendshape weights in [0, 1]. Left/right pairs are one
  channel here (speech is symmetric) and are written to both ``...Left`` and ``...Right`` names.
- :data:`UPPER_FACE_CHANNELS`: blinks and brows (ARKit names, [0, 1]).
- :data:`POSE_CHANNELS`: head and torso rotation, radians, axis-angle components about +X (pitch, positive nods
  the head forward/down), +Y (yaw, turning towards the body's left) and +Z (roll) of a body facing +Z.

In a :class:`Motion` the head rotation is split between SMPL-X ``neck`` (40 %) and ``head`` (60 %), the torso
rotation goes to ``spine3``, and the jaw is both ``jaw_pose`` (opening ``jawOpen * JAW_OPEN_RADIANS`` about +X)
and the ``jawOpen`` expression channel: a rig with a jaw joint uses the former, a rig with a ``jawOpen``
blendshape the latter (:func:`motion_for_rig` keeps only one so the two never add up).
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

from anchorsplat.gaussians.motion import SMPLX_JOINT_NAMES, Motion
from anchorsplat.gaussians.retarget import JAW_OPEN_RADIANS, SMPLX_JAW
from anchorsplat.gaussians.rig import Rig

VISEME_CHANNELS: tuple[str, ...] = (
    "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthSmile", "mouthStretch", "mouthRollLower",
    "mouthRollUpper", "mouthPress", "mouthLowerDown", "mouthUpperUp",
)  # fmt: skip
UPPER_FACE_CHANNELS: tuple[str, ...] = ("eyeBlinkLeft", "eyeBlinkRight", "browInnerUp", "browOuterUp")
POSE_CHANNELS: tuple[str, ...] = ("headPitch", "headYaw", "headRoll", "torsoPitch", "torsoYaw", "torsoRoll")
CHANNEL_NAMES: tuple[str, ...] = VISEME_CHANNELS + UPPER_FACE_CHANNELS + POSE_CHANNELS
NUM_CHANNELS = len(CHANNEL_NAMES)
NUM_VISEME = len(VISEME_CHANNELS)
SYMMETRIC = {"mouthSmile", "mouthStretch", "mouthPress", "mouthLowerDown", "mouthUpperUp", "browOuterUp"}
HEAD_SLICE = slice(NUM_CHANNELS - 6, NUM_CHANNELS - 3)
TORSO_SLICE = slice(NUM_CHANNELS - 3, NUM_CHANNELS)
NECK_SHARE = 0.4

NECK = SMPLX_JOINT_NAMES.index("neck")
HEAD = SMPLX_JOINT_NAMES.index("head")
SPINE3 = SMPLX_JOINT_NAMES.index("spine3")


def _arkit_layout() -> tuple[tuple[str, ...], list[int]]:
    names, source = [], []
    for i, name in enumerate(VISEME_CHANNELS + UPPER_FACE_CHANNELS):
        if name in SYMMETRIC:
            names += [name + "Left", name + "Right"]
            source += [i, i]
        else:
            names.append(name)
            source.append(i)
    return tuple(names), source


EXPRESSION_NAMES, _EXPRESSION_SOURCE = _arkit_layout()
"""The ARKit names a runtime :class:`Motion` carries, in order."""


def channel(name: str) -> int:
    return CHANNEL_NAMES.index(name)


def lip_aperture(channels: Float[Tensor, "*B C"]) -> Float[Tensor, "*B"]:
    """How far apart the lips are, in [0, 1]: the jaw's opening less what ``mouthClose`` and ``mouthPress``
    take back. The quantity lip-sync metrics compare (0 on a closed mouth, ~0.6 on an open vowel)."""
    jaw, close, press = (channels[..., channel(n)] for n in ("jawOpen", "mouthClose", "mouthPress"))
    return (jaw - close - 0.5 * press).clamp(0.0, 1.0)


def channels_to_motion(channels: Float[Tensor, "B C"], fps: float) -> Motion:
    """Runtime channels -> a :class:`Motion` (SMPL-X joints + ARKit expression names)."""
    if channels.ndim != 2 or channels.shape[1] != NUM_CHANNELS:
        raise ValueError(f"expected B x {NUM_CHANNELS} channels, got {tuple(channels.shape)}")
    b = channels.shape[0]
    full = channels.new_zeros(b, 55, 3)
    head = channels[:, HEAD_SLICE]
    full[:, NECK] = NECK_SHARE * head
    full[:, HEAD] = (1.0 - NECK_SHARE) * head
    full[:, SPINE3] = channels[:, TORSO_SLICE]
    full[:, SMPLX_JAW, 0] = channels[:, channel("jawOpen")] * JAW_OPEN_RADIANS
    expression = channels[:, _EXPRESSION_SOURCE].clamp(0.0, 1.0)
    return Motion.from_full_pose(full, expression=expression, expression_names=EXPRESSION_NAMES, fps=fps)


def motion_to_channels(motion: Motion) -> Float[Tensor, "B C"]:
    """A :class:`Motion` (e.g. a reference clip) -> runtime channels. Named ARKit channels are read where present
    (Left/Right averaged); ``jawOpen`` falls back to the jaw joint's opening; head = neck + head rotation."""
    b = len(motion)
    out = motion.expression.new_zeros(b, NUM_CHANNELS)
    index = {n: i for i, n in enumerate(motion.expression_names)}
    for i, name in enumerate(VISEME_CHANNELS + UPPER_FACE_CHANNELS):
        keys = [name + "Left", name + "Right"] if name in SYMMETRIC else [name]
        found = [index[k] for k in keys if k in index]
        if found:
            out[:, i] = motion.expression[:, found].mean(-1)
    if "jawOpen" not in index:
        out[:, channel("jawOpen")] = (motion.jaw_pose[:, 0] / JAW_OPEN_RADIANS).clamp(0.0, 1.0)
    full = motion.full_pose()
    out[:, HEAD_SLICE] = full[:, NECK] + full[:, HEAD]
    out[:, TORSO_SLICE] = full[:, SPINE3]
    return out


def motion_for_rig(motion: Motion, rig: Rig) -> Motion:
    """Adapt a runtime motion to a rig so that nothing is counted twice or lost:

    - a rig with no jaw joint but a ``jawOpen`` blendshape gets the jaw from the expression only (the retarget
      would otherwise add the jaw joint's opening on top);
    - a rig with a head joint but no neck joint gets the neck's rotation on its head.
    """
    sources = set(rig.smplx_source.tolist())
    full = motion.full_pose().clone()
    if SMPLX_JAW not in sources and "jawOpen" in rig.expression_names and "jawOpen" in motion.expression_names:
        full[:, SMPLX_JAW] = 0.0
    if NECK not in sources and HEAD in sources:
        full[:, HEAD] = full[:, HEAD] + full[:, NECK]
        full[:, NECK] = 0.0
    return Motion.from_full_pose(full, motion.transl, motion.expression, motion.expression_names, motion.fps)


def resample_motion(motion: Motion, fps: float, frames: int) -> Motion:
    """``frames`` frames at ``fps`` taken from ``motion`` by nearest frame in time; past its end the last frame
    holds."""
    times = torch.arange(frames, dtype=torch.float64, device=motion.transl.device) / fps
    index = torch.round(times * motion.fps).long().clamp(0, len(motion) - 1)
    full = motion.full_pose()[index]
    return Motion.from_full_pose(full, motion.transl[index], motion.expression[index], motion.expression_names, fps)


def combine_motion(body: Motion, face: Motion) -> Motion:
    """A body motion (e.g. from a file) with an audio-driven face on top, frame by frame (same length):
    the face's neck, head and spine3 rotations are added to the body's (small angles: adding axis-angles is
    close to composing them), the face's jaw replaces the body's, and the face's expression channels replace the
    body's channels of the same name (the body's other channels are kept)."""
    if len(body) != len(face):
        raise ValueError(f"combine_motion needs equal lengths, got {len(body)} body and {len(face)} face frames")
    full = body.full_pose().clone()
    face_full = face.full_pose().to(full)
    for joint in (NECK, HEAD, SPINE3):
        full[:, joint] = full[:, joint] + face_full[:, joint]
    full[:, SMPLX_JAW] = face_full[:, SMPLX_JAW]
    names = list(body.expression_names)
    values = [body.expression[:, i] for i in range(len(names))]
    for i, name in enumerate(face.expression_names):
        column = face.expression[:, i].to(full)
        if name in names:
            values[names.index(name)] = column
        else:
            names.append(name)
            values.append(column)
    expression = torch.stack(values, dim=1) if values else full.new_zeros(len(body), 0)
    return Motion.from_full_pose(full, body.transl, expression, tuple(names), face.fps)
