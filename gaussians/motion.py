"""Motion in SMPL-X parameter format, the exchange format of anchorsplat.

Every rig (Anny, SMPL-X, synthetic) is driven by the same :class:`Motion`: axis-angle joint rotations in
SMPL-X's joint order, a root translation and named expression weights. A rig turns it into its own joint
rotations with :func:`anchorsplat.gaussians.retarget.motion_to_rig`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from .fileio import atomic_path, read_npz

MAX_ANGLE = 100.0
"""Radians; axis-angle values beyond this are damage (real motion stays within a few turns)."""
MAX_TRANSLATION = 1000.0
"""Meters from the origin; beyond this the body leaves every camera (and float32 precision)."""
MAX_EXPRESSION = 100.0

SMPLX_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
    "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "jaw",
    "left_eye_smplhf", "right_eye_smplhf",
    "left_index1", "left_index2", "left_index3", "left_middle1", "left_middle2", "left_middle3",
    "left_pinky1", "left_pinky2", "left_pinky3", "left_ring1", "left_ring2", "left_ring3",
    "left_thumb1", "left_thumb2", "left_thumb3",
    "right_index1", "right_index2", "right_index3", "right_middle1", "right_middle2", "right_middle3",
    "right_pinky1", "right_pinky2", "right_pinky3", "right_ring1", "right_ring2", "right_ring3",
    "right_thumb1", "right_thumb2", "right_thumb3",
)  # fmt: skip
SMPLX_PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15, 15,
    20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38,
    21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50, 21, 52, 53,
)  # fmt: skip
NUM_SMPLX_JOINTS = 55


@dataclass(frozen=True, eq=False)
class Motion:
    """B frames of SMPL-X-format motion. Rotations are axis-angle, local to the parent (SMPL-X's layout).

    ``expression`` holds named channels: ARKit-52 names (``jawOpen``, ``eyeBlinkLeft``, ...) drive rigs
    that have those blendshapes; SMPL-X PCA coefficients are named ``smplx_expr_000``, ``smplx_expr_001``...
    """

    global_orient: Float[Tensor, "B 3"]
    body_pose: Float[Tensor, "B 21 3"]
    jaw_pose: Float[Tensor, "B 3"]
    leye_pose: Float[Tensor, "B 3"]
    reye_pose: Float[Tensor, "B 3"]
    left_hand_pose: Float[Tensor, "B 15 3"]
    right_hand_pose: Float[Tensor, "B 15 3"]
    transl: Float[Tensor, "B 3"]
    expression: Float[Tensor, "B E"]
    expression_names: tuple[str, ...] = field(default=())
    fps: float = 30.0

    def __post_init__(self) -> None:
        b = self.global_orient.shape[0]
        expected = {
            "global_orient": (b, 3), "body_pose": (b, 21, 3), "jaw_pose": (b, 3), "leye_pose": (b, 3),
            "reye_pose": (b, 3), "left_hand_pose": (b, 15, 3), "right_hand_pose": (b, 15, 3), "transl": (b, 3),
            "expression": (b, len(self.expression_names)),
        }  # fmt: skip
        for name, shape in expected.items():
            value = getattr(self, name)
            if tuple(value.shape) != shape:
                raise ValueError(f"motion field {name!r} has shape {tuple(value.shape)}, expected {shape}")
        if not self.fps > 0:
            raise ValueError(f"motion fps must be positive, got {self.fps}")

    def __len__(self) -> int:
        return self.global_orient.shape[0]

    @staticmethod
    def zeros(
        frames: int = 1, expression_names: tuple[str, ...] = (), *, fps: float = 30.0, dtype=torch.float32, device=None
    ) -> Motion:
        def z(*shape: int) -> Tensor:
            return torch.zeros(frames, *shape, dtype=dtype, device=device)

        return Motion(
            z(3), z(21, 3), z(3), z(3), z(3), z(15, 3), z(15, 3), z(3), z(len(expression_names)),
            tuple(expression_names), fps,
        )  # fmt: skip

    def full_pose(self) -> Float[Tensor, "B 55 3"]:
        """All 55 SMPL-X joint rotations in SMPL-X joint order."""
        return torch.cat(
            [
                self.global_orient[:, None], self.body_pose, self.jaw_pose[:, None], self.leye_pose[:, None],
                self.reye_pose[:, None], self.left_hand_pose, self.right_hand_pose,
            ],
            dim=1,
        )  # fmt: skip

    @staticmethod
    def from_full_pose(
        full_pose: Float[Tensor, "B 55 3"],
        transl: Float[Tensor, "B 3"] | None = None,
        expression: Float[Tensor, "B E"] | None = None,
        expression_names: tuple[str, ...] = (),
        fps: float = 30.0,
    ) -> Motion:
        b = full_pose.shape[0]
        transl = full_pose.new_zeros(b, 3) if transl is None else transl
        expression = full_pose.new_zeros(b, len(expression_names)) if expression is None else expression
        return Motion(
            full_pose[:, 0], full_pose[:, 1:22], full_pose[:, 22], full_pose[:, 23], full_pose[:, 24],
            full_pose[:, 25:40], full_pose[:, 40:55], transl, expression, tuple(expression_names), fps,
        )  # fmt: skip

    def frame(self, index: int | slice) -> Motion:
        sel = slice(index, index + 1) if isinstance(index, int) else index
        return Motion.from_full_pose(
            self.full_pose()[sel], self.transl[sel], self.expression[sel], self.expression_names, self.fps
        )

    def to(self, device=None, dtype=None) -> Motion:
        tensors = {
            k: getattr(self, k).to(device=device, dtype=dtype)
            for k in ("global_orient", "body_pose", "jaw_pose", "leye_pose", "reye_pose", "left_hand_pose",
                      "right_hand_pose", "transl", "expression")
        }  # fmt: skip
        return replace(self, **tensors)

    def with_expression(self, names: tuple[str, ...], values: Float[Tensor, "B E"]) -> Motion:
        return replace(self, expression=values, expression_names=tuple(names))


def save_motion(path: str | os.PathLike, motion: Motion) -> None:
    """Write an SMPL-X-format ``.npz`` (keys as the ``smplx`` package names its arguments), atomically."""
    path = Path(path)
    arrays = {
        k: getattr(motion, k).detach().cpu().numpy().astype(np.float32)
        for k in ("global_orient", "body_pose", "jaw_pose", "leye_pose", "reye_pose", "left_hand_pose",
                  "right_hand_pose", "transl", "expression")
    }  # fmt: skip
    arrays["expression_names"] = np.array(motion.expression_names, dtype=np.str_)
    arrays["mocap_frame_rate"] = np.array(motion.fps, dtype=np.float32)
    with atomic_path(path.with_suffix(".npz") if path.suffix != ".npz" else path) as tmp:
        np.savez(tmp, **arrays)


def load_motion(path: str | os.PathLike) -> Motion:
    """Read an SMPL-X-format motion ``.npz``.

    Two layouts are accepted: per-part keys (``global_orient``, ``body_pose``, ``jaw_pose``, ``leye_pose``,
    ``reye_pose``, ``left_hand_pose``, ``right_hand_pose``, ``transl``, ``expression``; as written by
    :func:`save_motion` and most SMPL-X fitting tools), and AMASS's ``poses`` (T x 165) + ``trans``.
    """
    path = Path(path)
    fix = "pass an SMPL-X-format .npz (AMASS 'poses'/'trans' or per-part keys)"
    if path.suffix.lower() != ".npz" and not path.is_dir():
        raise ValueError(f"motion file {path} is not an .npz file: {fix}")
    data = read_npz(path, "motion file", fix)
    try:
        motion = _motion_from(path, data)
    except (ValueError, TypeError, IndexError, RuntimeError) as exc:
        if str(exc).startswith("motion file"):
            raise
        raise ValueError(f"motion file {path} has arrays of the wrong shape or type: {fix}") from None
    if len(motion) == 0:
        raise ValueError(f"motion file {path} holds no frames")
    if not all(torch.isfinite(t).all() for t in (motion.full_pose(), motion.transl, motion.expression)):
        raise ValueError(f"motion file {path} contains NaN or infinite values")
    for name, value, limit in (
        ("joint angles", motion.full_pose(), MAX_ANGLE),
        ("translations", motion.transl, MAX_TRANSLATION),
        ("expression weights", motion.expression, MAX_EXPRESSION),
    ):
        if value.numel() and float(value.abs().max()) > limit:
            raise ValueError(
                f"motion file {path}: {name} reach {float(value.abs().max()):.3g}, beyond {limit:g}; the file is "
                "damaged or not in SMPL-X units (radians, meters)"
            )
    return motion


def _frame_rate(path: Path, data: dict[str, np.ndarray]) -> float:
    raw = data.get("mocap_frame_rate", data.get("mocap_framerate", data.get("fps", np.array(30.0))))
    raw = np.asarray(raw)
    if raw.size != 1 or raw.dtype.kind not in "iuf":
        raise ValueError(f"motion file {path}: the frame rate must be one number, got an array of shape {raw.shape}")
    fps = float(raw.reshape(()))
    if not (math.isfinite(fps) and 0 < fps <= 1000):
        raise ValueError(f"motion file {path}: the frame rate {fps} must be between 0 and 1000 frames per second")
    return fps


def _motion_from(path: Path, data: dict[str, np.ndarray]) -> Motion:
    fps = _frame_rate(path, data)
    if "poses" in data:
        poses = np.asarray(data["poses"], dtype=np.float32)
        if poses.ndim != 2 or poses.shape[1] != 165:
            raise ValueError(f"motion file {path}: 'poses' must be T x 165 (SMPL-X layout), got {poses.shape}")
        full = torch.from_numpy(poses).reshape(-1, 55, 3)
        transl = torch.from_numpy(np.asarray(data.get("trans", np.zeros((len(poses), 3))), dtype=np.float32))
        names, expression = _expression_from(data, len(poses))
        motion = Motion.from_full_pose(full, transl, expression, names, fps)
    elif "body_pose" in data:
        t = np.asarray(data["body_pose"]).reshape(-1, 63).shape[0]

        def part(key: str, joints: int) -> Tensor:
            value = np.asarray(data.get(key, np.zeros((t, joints * 3))), dtype=np.float32)
            if value.size != t * joints * 3:
                raise ValueError(f"motion file {path}: {key!r} has {value.size} values, expected {t} x {joints * 3}")
            return torch.from_numpy(value.reshape(t, joints, 3))

        full = torch.cat(
            [part("global_orient", 1), part("body_pose", 21), part("jaw_pose", 1), part("leye_pose", 1),
             part("reye_pose", 1), part("left_hand_pose", 15), part("right_hand_pose", 15)],
            dim=1,
        )  # fmt: skip
        names, expression = _expression_from(data, t)
        motion = Motion.from_full_pose(full, part("transl", 1)[:, 0], expression, names, fps)
    else:
        raise ValueError(
            f"motion file {path} has neither 'poses' (AMASS) nor 'body_pose' (SMPL-X parameters); keys: {sorted(data)}"
        )
    return motion


def _expression_from(data: dict[str, np.ndarray], frames: int) -> tuple[tuple[str, ...], Tensor]:
    if "expression" not in data:
        return (), torch.zeros(frames, 0)
    expression = np.asarray(data["expression"], dtype=np.float32).reshape(frames, -1)
    if "expression_names" in data:
        names = tuple(str(n) for n in data["expression_names"])
    else:
        names = tuple(f"smplx_expr_{i:03d}" for i in range(expression.shape[1]))
    if len(names) != expression.shape[1]:
        raise ValueError(f"{len(names)} expression names for {expression.shape[1]} expression channels")
    return names, torch.from_numpy(expression)
