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
from anchorsplat.gaussians.fileio import FileFormat, read_safetensors, write_safetensors
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
class ClipAudio:
    """The speech a clip is driven by: one mono track per character, starting at the clip's first frame."""

    waveforms: Float[Tensor, "K S"]
    sample_rate: int = 16000

    def __post_init__(self) -> None:
        if self.waveforms.ndim != 2:
            raise ValueError(
                f"clip audio: waveforms must be K x S (one row per character), got {tuple(self.waveforms.shape)}"
            )


@dataclass(frozen=True, eq=False)
class ClipSpec:
    """One clip to generate: T frames, each with its body motion and its camera (known by construction), and
    optionally the speech that drives it (audio-conditioned generators use it; the proxy ignores it)."""

    name: str
    motion: Motion
    cameras: Cameras
    audio: ClipAudio | None = None

    def __post_init__(self) -> None:
        if len(self.motion) != len(self.cameras):
            raise ValueError(f"clip {self.name!r}: {len(self.motion)} motion frames but {len(self.cameras)} cameras")


@dataclass(frozen=True, eq=False)
class Anchors:
    """Identity anchors ("Gloria"): the global anchor (the photo), optional viewpoint anchors (front/back/left/
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
    """Anything that turns a subject and a clip script into clips (a clip's audio, if any, rides on its
    :class:`ClipSpec`)."""

    name: str

    def generate(self, subject: Subject, script: list[ClipSpec], anchors: Anchors) -> list[Clip]: ...


CLIP_FILE = FileFormat("anchorsplat.clip", 1, "clip file", "rerun the bake with --force generate")


def save_clip(path, clip: Clip) -> None:
    """One clip as a safetensors file (frames as uint8), atomically; loaded back with :func:`load_clip`."""
    from anchorsplat.gaussians.motion import NUM_SMPLX_JOINTS

    tensors = {
        "frames": (clip.frames.clamp(0, 1) * 255 + 0.5).to(torch.uint8),
        "masks": (clip.masks.clamp(0, 1) * 255 + 0.5).to(torch.uint8),
        "full_pose": clip.motion.full_pose().float().reshape(-1, NUM_SMPLX_JOINTS * 3),
        "transl": clip.motion.transl.float(),
        "expression": clip.motion.expression.float(),
        "T_cam_world": clip.cameras.T_cam_world.float(),
        "Ks": clip.cameras.Ks.float(),
    }
    meta = {
        "name": clip.name, "fps": clip.motion.fps, "expression_names": list(clip.motion.expression_names),
        "width": clip.cameras.width, "height": clip.cameras.height,
    }  # fmt: skip
    write_safetensors(path, CLIP_FILE, tensors, meta)


def load_clip(path) -> Clip:
    import json

    meta, t = read_safetensors(path, CLIP_FILE)
    try:
        names = meta["expression_names"]
        names = tuple(json.loads(names) if isinstance(names, str) else names)  # older files: a JSON string
        motion = Motion.from_full_pose(
            t["full_pose"].reshape(-1, 55, 3), t["transl"], t["expression"], names, float(meta["fps"])
        )
        cameras = Cameras(t["T_cam_world"], t["Ks"], int(meta["width"]), int(meta["height"]))
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CLIP_FILE.error(path, f"has inconsistent contents ({type(exc).__name__}: {exc})") from None
    return Clip(meta["name"], t["frames"].float() / 255, t["masks"].float() / 255, motion, cameras)
