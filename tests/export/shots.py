"""Engine screenshots against our splat render: the one home of the comparison the browser tests make (three.js and
Babylon.js shots of the textured surface, frame 0 and posed frames, the synthetic avatar and the sample face).

A shot is ``{"time", "eye", "target", "fovY", "size"}`` (what ``js/browser_checks.mjs`` draws); the reference is
``anchorsplat.gaussians.render`` of the same pose and camera.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from anchorsplat.gaussians.conventions import Cameras, intrinsics_from_fov, look_at
from anchorsplat.gaussians.io import Avatar
from anchorsplat.gaussians.motion import Motion


def decode_png(data_url: str) -> np.ndarray:
    """A ``data:image/png;base64,...`` URL -> H x W x 3 uint8."""
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB"))


@dataclass(frozen=True)
class Reference:
    """Our render of one shot: premultiplied colour and alpha (H W 3, H W), floats in [0, 1]."""

    rgb: np.ndarray
    alpha: np.ndarray

    @property
    def straight(self) -> np.ndarray:
        """Un-premultiplied colour: what an opaque textured surface shows where the splats are."""
        return self.rgb / np.clip(self.alpha, 1e-6, None)[..., None]

    @property
    def image(self) -> np.ndarray:
        """H x W x 3 uint8 over black (what dlib looks at)."""
        return (np.clip(self.rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def render_shot(avatar: Avatar, motion: Motion | None, shot: dict) -> Reference:
    """Our splat render of ``avatar`` at ``shot``'s time in ``motion`` (nearest frame; the rest pose without one)."""
    from anchorsplat.gaussians.render import render
    from anchorsplat.gaussians.rigged import canonical_posed, pose

    size, dtype = shot["size"], avatar.rig.vertices_rest.dtype
    eye, target = torch.tensor([shot["eye"]], dtype=dtype), torch.tensor([shot["target"]], dtype=dtype)
    cameras = Cameras(look_at(eye, target), intrinsics_from_fov(shot["fovY"], size, size)[None].to(dtype), size, size)
    with torch.no_grad():
        if motion is None:
            posed = canonical_posed(avatar.gaussians, avatar.rig)
        else:
            key = int(round(shot["time"] * motion.fps))
            posed = pose(avatar.gaussians, avatar.rig, motion.frame(slice(key, key + 1)).to(dtype=dtype))
        out = render(posed, cameras)
    return Reference(out.rgb[0, 0].numpy(), out.alpha[0, 0, ..., 0].numpy())


@dataclass(frozen=True)
class Comparison:
    psnr: float
    """Over the pixels where the splats are opaque (alpha > 0.9) and the engine drew something, dB."""
    covered: float
    """Share of the opaque splat pixels the engine drew."""
    spill: float
    """Pixels the engine drew where the splats are (nearly) absent, relative to the opaque splat pixels."""


def compare(shot: np.ndarray, reference: Reference, *, background: float = 0.02) -> Comparison:
    """Masked PSNR and silhouette agreement of an engine ``shot`` (uint8, drawn over black) against ``reference``."""
    image = shot.astype(np.float64) / 255
    drawn = image.sum(-1) > background
    opaque = reference.alpha > 0.9
    mask = drawn & opaque
    mse = float(((image - reference.straight) ** 2)[mask].mean()) if mask.any() else 1.0
    n = max(int(opaque.sum()), 1)
    return Comparison(
        psnr=10 * np.log10(1.0 / max(mse, 1e-12)),
        covered=float(mask.sum()) / n,
        spill=float((drawn & (reference.alpha < 0.05)).sum()) / n,
    )


def save_side_by_side(path, shot: np.ndarray, reference: Reference) -> None:
    """The engine's shot beside our render (over black), for a person to look at."""
    Image.fromarray(np.concatenate([shot, reference.image], 1)).save(path)


def face_distance(a: np.ndarray, b: np.ndarray) -> float:
    """dlib descriptor distance between the most confident faces of two uint8 images."""
    from anchorsplat.bake.identity import face_embedding, identity_distance

    ea, eb = face_embedding(a), face_embedding(b)
    assert ea is not None and eb is not None, "dlib found no face"
    return identity_distance(ea, eb)


def landmarks(image: np.ndarray) -> np.ndarray:
    """dlib's 68 landmarks (x, y pixels) of the most confident face."""
    from anchorsplat.bake.identity import dlib_detect, dlib_landmarks

    (box, _), *_ = dlib_detect(image)
    return dlib_landmarks(image, box)


def jaw_and_lips(image: np.ndarray) -> tuple[float, float]:
    """dlib landmarks: nose tip to chin (8 - 30) and the inner-lip gap (66 - 62), vertical pixels."""
    marks = landmarks(image)
    return float(marks[8, 1] - marks[30, 1]), float(marks[66, 1] - marks[62, 1])
