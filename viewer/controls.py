"""The viewer's hand controls as motion: expression sliders, jaw, head and body pose presets, combined with a
motion file's body and the audio's face into the one :class:`Motion` frame that poses the avatar.

Rotations follow SMPL-X (axis-angle, world-aligned, a body facing +Z with +Y up): +X pitch nods forward, +Y
yaw turns towards the body's left, +Z rolls; the left arm rests along +X in the T-pose.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from anchorsplat.gaussians.motion import SMPLX_JOINT_NAMES, Motion
from anchorsplat.gaussians.retarget import JAW_OPEN_RADIANS, SMPLX_JAW
from anchorsplat.gaussians.rig import Rig
from anchorsplat.runtime.channels import NECK_SHARE, combine_motion, motion_for_rig

HEAD_PRESETS: dict[str, tuple[float, float, float]] = {
    "neutral": (0.0, 0.0, 0.0),
    "nod down": (0.35, 0.0, 0.0),
    "look up": (-0.3, 0.0, 0.0),
    "look left": (0.0, 0.6, 0.0),
    "look right": (0.0, -0.6, 0.0),
    "tilt": (0.0, 0.0, 0.3),
}
"""Head rotation (axis-angle, radians) of each head preset; split between neck and head like the runtime does."""

BODY_PRESETS: dict[str, dict[str, tuple[float, float, float]]] = {
    "rest": {},
    "arms down": {"left_shoulder": (0.0, 0.0, -1.25), "right_shoulder": (0.0, 0.0, 1.25)},
    "wave": {
        "left_shoulder": (0.0, 0.0, -1.25), "right_shoulder": (0.0, 0.0, -1.1), "right_elbow": (0.0, -1.3, 0.0),
    },
    "arms forward": {"left_shoulder": (0.0, -1.3, 0.0), "right_shoulder": (0.0, 1.3, 0.0)},
    "turn left": {"pelvis": (0.0, 0.6, 0.0)},
    "lean": {"spine3": (0.3, 0.0, 0.0), "left_shoulder": (0.0, 0.0, -1.0), "right_shoulder": (0.0, 0.0, 1.0)},
    "squat": {
        "left_hip": (-1.2, 0.0, 0.0), "right_hip": (-1.2, 0.0, 0.0), "left_knee": (1.6, 0.0, 0.0),
        "right_knee": (1.6, 0.0, 0.0),
    },
}  # fmt: skip
"""Joint rotations (SMPL-X joint name -> axis-angle) of each body preset; other joints stay at rest."""

_NECK = SMPLX_JOINT_NAMES.index("neck")
_HEAD = SMPLX_JOINT_NAMES.index("head")


@dataclass(frozen=True)
class ManualControls:
    """What the sliders and dropdowns say (immutable: the GUI swaps in a new value on every change)."""

    expressions: dict[str, float] = field(default_factory=dict)
    """Blendshape name -> weight in [0, 1], added to the audio's face."""
    jaw: float = 0.0
    """Jaw opening in [0, 1] (1 = ``JAW_OPEN_RADIANS``), added to the audio's jaw."""
    head: str = "neutral"
    body: str = "rest"


def preset_motion(controls: ManualControls, dtype: torch.dtype = torch.float32) -> Motion:
    """One frame: the body preset's joints and the head preset (no face)."""
    if controls.body not in BODY_PRESETS:
        raise ValueError(f"unknown body preset {controls.body!r}: choose one of {list(BODY_PRESETS)}")
    if controls.head not in HEAD_PRESETS:
        raise ValueError(f"unknown head preset {controls.head!r}: choose one of {list(HEAD_PRESETS)}")
    full = torch.zeros(1, 55, 3, dtype=dtype)
    for name, rotation in BODY_PRESETS[controls.body].items():
        full[0, SMPLX_JOINT_NAMES.index(name)] = torch.tensor(rotation, dtype=dtype)
    return Motion.from_full_pose(full)


def apply_manual(motion: Motion, controls: ManualControls) -> Motion:
    """``motion`` (one or more frames) with the head preset, expression sliders and jaw added on top.

    The jaw goes to both ``jaw_pose`` and the ``jawOpen`` channel, the runtime's convention; :func:`frame_motion`
    then keeps the one the rig uses (:func:`~anchorsplat.runtime.channels.motion_for_rig`)."""
    full = motion.full_pose().clone()
    head = torch.tensor(HEAD_PRESETS[controls.head], dtype=full.dtype)
    full[:, _NECK] += NECK_SHARE * head
    full[:, _HEAD] += (1.0 - NECK_SHARE) * head
    full[:, SMPLX_JAW, 0] += controls.jaw * JAW_OPEN_RADIANS
    names = list(motion.expression_names)
    columns = [motion.expression[:, i] for i in range(len(names))]
    extra = dict(controls.expressions)
    if controls.jaw:
        extra["jawOpen"] = extra.get("jawOpen", 0.0) + controls.jaw
    for name, weight in extra.items():
        if name in names:
            k = names.index(name)
            columns[k] = (columns[k] + weight).clamp(0.0, 1.0)
        elif weight:
            names.append(name)
            columns.append(torch.full((len(motion),), min(max(weight, 0.0), 1.0), dtype=full.dtype))
    expression = torch.stack(columns, dim=1) if columns else full.new_zeros(len(motion), 0)
    return Motion.from_full_pose(full, motion.transl, expression, tuple(names), motion.fps)


def frame_motion(rig: Rig, controls: ManualControls, body: Motion | None = None, face: Motion | None = None) -> Motion:
    """The motion of the frame on screen: the motion file's body frame (else the body preset), the audio's face
    on top (:func:`~anchorsplat.runtime.channels.combine_motion`), then the hand controls, adapted to ``rig``."""
    base = body if body is not None else preset_motion(controls)
    if face is not None:
        base = combine_motion(base.to(dtype=face.expression.dtype), face)
    return motion_for_rig(apply_manual(base, controls), rig)
