"""The generator protocol: photo + clip script + anchors -> synthetic clips with known poses and cameras.

A bake asks a :class:`Generator` for clips; every frame comes back with the body parameters and camera the
script asked for, so the clips can supervise a rigged avatar directly. Implementations: ``ProxyGenerator``
(weight-free default, :mod:`.proxy`) and the anchored diffusion model (loads local weights).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch
from jaxtyping import Float, Int
from torch import Tensor

from anchorsplat.gaussians.conventions import Cameras
from anchorsplat.gaussians.motion import Motion
from anchorsplat.gaussians.rig import Rig


@dataclass(frozen=True, eq=False)
class Subject:
    """The person as the bake sees them: the photo, its person mask, the fitted (shaped) rig, and the pose and
    camera under which the rig reproduces the photo."""

    photo: Float[Tensor, "H W 3"]
    mask: Float[Tensor, "H W"]
    rig: Rig
    motion: Motion
    camera: Cameras
    parts: Int[Tensor, "H W"] | None = None
    """Pixel labels of the photo (:data:`.texture.LABEL_BACKGROUND` .. ``LABEL_FACE``: not the person, the
    person, a hand, the face); None: the mask alone decides what is the person."""


@dataclass(frozen=True, eq=False)
class ClipSpec:
    """One clip to generate: T frames, each with its body motion and its camera (known by construction)."""

    name: str
    motion: Motion
    cameras: Cameras

    def __post_init__(self) -> None:
        if len(self.motion) != len(self.cameras):
            raise ValueError(f"clip {self.name!r}: {len(self.motion)} motion frames but {len(self.cameras)} cameras")


@dataclass(frozen=True, eq=False)
class Anchors:
    """Identity anchors (seed 001): the global anchor (the photo), optional viewpoint anchors (front/back/left/
    right) and expression anchors, as RGB images in [0, 1]."""

    global_image: Float[Tensor, "H W 3"]
    viewpoints: dict[str, Tensor] = field(default_factory=dict)
    expressions: dict[str, Tensor] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Clip:
    """Generated frames with the motion and cameras they were generated for."""

    name: str
    frames: Float[Tensor, "T H W 3"]
    masks: Float[Tensor, "T H W"]
    motion: Motion
    cameras: Cameras

    def __len__(self) -> int:
        return self.frames.shape[0]


@runtime_checkable
class Generator(Protocol):
    """Anything that turns a subject and a clip script into clips."""

    name: str

    def generate(self, subject: Subject, script: list[ClipSpec], anchors: Anchors) -> list[Clip]: ...


def save_clip(path, clip: Clip) -> None:
    """One clip as a safetensors file (frames as uint8), atomically; loaded back with :func:`load_clip`."""
    import json

    from safetensors.torch import save

    from anchorsplat.gaussians.io import atomic_write_bytes
    from anchorsplat.gaussians.motion import NUM_SMPLX_JOINTS

    tensors = {
        "frames": (clip.frames.clamp(0, 1) * 255 + 0.5).to(torch.uint8).contiguous(),
        "masks": (clip.masks.clamp(0, 1) * 255 + 0.5).to(torch.uint8).contiguous(),
        "full_pose": clip.motion.full_pose().float().contiguous().reshape(-1, NUM_SMPLX_JOINTS * 3),
        "transl": clip.motion.transl.float().contiguous(),
        "expression": clip.motion.expression.float().contiguous(),
        "T_cam_world": clip.cameras.T_cam_world.float().contiguous(),
        "Ks": clip.cameras.Ks.float().contiguous(),
    }
    meta = {
        "format": "anchorsplat.clip", "version": "1", "name": clip.name, "fps": str(clip.motion.fps),
        "expression_names": json.dumps(list(clip.motion.expression_names)),
        "width": str(clip.cameras.width), "height": str(clip.cameras.height),
    }  # fmt: skip
    atomic_write_bytes(path, save({k: v.cpu() for k, v in tensors.items()}, metadata=meta))


def load_clip(path) -> Clip:
    import json

    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
            t = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"{path} is not a readable clip file ({exc}); rerun the bake with --force generate") from None
    if meta.get("format") != "anchorsplat.clip" or int(meta.get("version", 0)) > 1:
        raise ValueError(f"{path} is not a clip file this anchorsplat reads; rerun the bake with --force generate")
    names = tuple(json.loads(meta["expression_names"]))
    motion = Motion.from_full_pose(
        t["full_pose"].reshape(-1, 55, 3), t["transl"], t["expression"], names, float(meta["fps"])
    )
    cameras = Cameras(t["T_cam_world"], t["Ks"], int(meta["width"]), int(meta["height"]))
    return Clip(meta["name"], t["frames"].float() / 255, t["masks"].float() / 255, motion, cameras)
