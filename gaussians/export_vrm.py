"""VRM 1.0 (``.vrm``): the textured surface as an avatar for VTuber apps and three-vrm.

A VRM file is a glb (:func:`~anchorsplat.gaussians.export_gltf.build_glb` with the surface and no splats) with
the ``VRMC_vrm`` extension:

- **humanoid**: VRM bone -> skeleton node, found through the rig's SMPL-X retarget map (``smplx_source``): the
  VRM bone of an SMPL-X joint is the rig joint nearest the root that takes its angle (Anny's ``spine05`` for
  ``spine1`` -> ``spine``, ``upperarm01.L`` for ``left_shoulder`` -> ``leftUpperArm``, ...). Our rest pose is the
  T-pose facing +Z with world-aligned joints, which is VRM 1.0's required rest pose.
- **expressions**: the VRM presets as weighted sums of the ARKit blendshapes (morph targets of the surface):
  visemes ``aa ih ou ee oh``, ``blink`` (+ left / right), emotions ``happy angry sad relaxed surprised``, and
  ``lookUp / lookDown / lookLeft / lookRight`` for the expression-type look-at.
- **meta**: name, version, authors and the licence fields (VRM Public License 1.0 terms, most restrictive by
  default: the person in the photo did not agree to more).
"""

from __future__ import annotations

import os
from pathlib import Path

from .export_gltf import build_glb
from .io import Avatar, atomic_write_bytes
from .motion import SMPLX_JOINT_NAMES
from .surface import SkinnedSurface

VRM_EXTENSION = "VRMC_vrm"
SMPLX_TO_VRM = {
    "pelvis": "hips", "spine1": "spine", "spine2": "chest", "spine3": "upperChest", "neck": "neck",
    "head": "head", "jaw": "jaw", "left_eye_smplhf": "leftEye", "right_eye_smplhf": "rightEye",
    "left_collar": "leftShoulder", "left_shoulder": "leftUpperArm", "left_elbow": "leftLowerArm",
    "left_wrist": "leftHand", "right_collar": "rightShoulder", "right_shoulder": "rightUpperArm",
    "right_elbow": "rightLowerArm", "right_wrist": "rightHand", "left_hip": "leftUpperLeg",
    "left_knee": "leftLowerLeg", "left_ankle": "leftFoot", "left_foot": "leftToes", "right_hip": "rightUpperLeg",
    "right_knee": "rightLowerLeg", "right_ankle": "rightFoot", "right_foot": "rightToes",
}  # fmt: skip
REQUIRED_BONES = (
    "hips", "spine", "head", "leftUpperArm", "leftLowerArm", "leftHand", "rightUpperArm", "rightLowerArm",
    "rightHand", "leftUpperLeg", "leftLowerLeg", "leftFoot", "rightUpperLeg", "rightLowerLeg", "rightFoot",
)  # fmt: skip
# VRM preset -> {ARKit blendshape: weight}; names the rig lacks are left out.
PRESETS: dict[str, dict[str, float]] = {
    "aa": {"jawOpen": 1.0},
    "ih": {"jawOpen": 0.2, "mouthStretchLeft": 0.6, "mouthStretchRight": 0.6},
    "ou": {"jawOpen": 0.2, "mouthPucker": 1.0, "mouthFunnel": 0.4},
    "ee": {"jawOpen": 0.1, "mouthStretchLeft": 0.5, "mouthStretchRight": 0.5, "mouthSmileLeft": 0.3,
           "mouthSmileRight": 0.3},
    "oh": {"jawOpen": 0.5, "mouthFunnel": 0.8},
    "blink": {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0},
    "blinkLeft": {"eyeBlinkLeft": 1.0},
    "blinkRight": {"eyeBlinkRight": 1.0},
    "happy": {"mouthSmileLeft": 1.0, "mouthSmileRight": 1.0, "cheekSquintLeft": 0.5, "cheekSquintRight": 0.5},
    "angry": {"browDownLeft": 1.0, "browDownRight": 1.0, "mouthFrownLeft": 0.5, "mouthFrownRight": 0.5,
              "noseSneerLeft": 0.4, "noseSneerRight": 0.4},
    "sad": {"browInnerUp": 1.0, "mouthFrownLeft": 0.8, "mouthFrownRight": 0.8},
    "relaxed": {"mouthSmileLeft": 0.4, "mouthSmileRight": 0.4, "eyeSquintLeft": 0.3, "eyeSquintRight": 0.3},
    "surprised": {"browInnerUp": 1.0, "browOuterUpLeft": 1.0, "browOuterUpRight": 1.0, "eyeWideLeft": 1.0,
                  "eyeWideRight": 1.0, "jawOpen": 0.4},
    "lookUp": {"eyeLookUpLeft": 1.0, "eyeLookUpRight": 1.0},
    "lookDown": {"eyeLookDownLeft": 1.0, "eyeLookDownRight": 1.0},
    "lookLeft": {"eyeLookOutLeft": 1.0, "eyeLookInRight": 1.0},
    "lookRight": {"eyeLookInLeft": 1.0, "eyeLookOutRight": 1.0},
}  # fmt: skip


def humanoid_bones(rig) -> dict[str, int]:
    """VRM humanoid bone name -> rig joint index (see the module docstring)."""
    source = rig.smplx_source.tolist()
    bones: dict[str, int] = {}
    for smplx_index, smplx_name in enumerate(SMPLX_JOINT_NAMES):
        vrm = SMPLX_TO_VRM.get(smplx_name)
        joints = [j for j, s in enumerate(source) if s == smplx_index]
        if vrm is not None and joints:
            bones[vrm] = min(joints)  # parents precede children: the lowest index is nearest the root
    missing = [b for b in REQUIRED_BONES if b not in bones]
    if missing:
        raise ValueError(
            f"the rig has no joint for the VRM humanoid bones {missing}: VRM export needs a full body rig "
            "(Anny or SMPL-X)"
        )
    return bones


def export_vrm(
    avatar: Avatar,
    path: str | os.PathLike,
    surface: SkinnedSurface,
    *,
    name: str = "anchorsplat avatar",
    authors: tuple[str, ...] = ("anchorsplat",),
) -> Path:
    """Write the surface of ``avatar`` as a VRM 1.0 avatar, atomically."""
    path = Path(path)
    if path.suffix.lower() != ".vrm":
        raise ValueError(f"a VRM export must end in .vrm: got {path}")
    bones = humanoid_bones(avatar.rig)
    b = build_glb(avatar, surface=surface, splats=False)
    doc = b.json
    surface_node = next(i for i, n in enumerate(doc["nodes"]) if n.get("name") == "surface")
    names = avatar.rig.expression_names
    preset = {}
    for expression, weights in PRESETS.items():
        binds = [{"node": surface_node, "index": names.index(k), "weight": w} for k, w in weights.items() if k in names]
        if binds:
            preset[expression] = {"morphTargetBinds": binds, "isBinary": False}
    look_range = {"inputMaxValue": 90.0, "outputScale": 1.0}
    doc["extensionsUsed"] = [*doc.get("extensionsUsed", []), VRM_EXTENSION]
    doc.setdefault("extensions", {})[VRM_EXTENSION] = {
        "specVersion": "1.0",
        "meta": {
            "name": name,
            "version": "1",
            "authors": list(authors),
            "licenseUrl": "https://vrm.dev/licenses/1.0/",
            "avatarPermission": "onlyAuthor",
            "allowExcessivelyViolentUsage": False,
            "allowExcessivelySexualUsage": False,
            "commercialUsage": "personalNonProfit",
            "allowPoliticalOrReligiousUsage": False,
            "allowAntisocialOrHateUsage": False,
            "creditNotation": "required",
            "allowRedistribution": False,
            "modification": "prohibited",
        },
        "humanoid": {"humanBones": {bone: {"node": joint} for bone, joint in bones.items()}},
        "expressions": {"preset": preset},
        "lookAt": {
            "type": "expression",
            "offsetFromHeadBone": [0.0, 0.06, 0.08],  # eye level, in front of the head joint
            "rangeMapHorizontalInner": look_range,
            "rangeMapHorizontalOuter": look_range,
            "rangeMapVerticalDown": look_range,
            "rangeMapVerticalUp": look_range,
        },
    }
    atomic_write_bytes(path, b.to_bytes())
    return path
