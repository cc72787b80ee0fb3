"""The fitted subject and its file (``subject.json`` + ``subject.mask.png``, versioned).

The world is the body's: the rig stands at its rest position (``Motion.transl`` = 0) and the camera is placed
in front of it. The camera is level and looks along -Z (``R_cam_world = diag(1, -1, -1)``), so the person's
left (+X) appears on the image's right; everything that turns the body relative to the camera (yaw, lean,
roll) is the body's ``global_orient``. :mod:`.bodyfit` makes a fit, this module stores and reads it.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float, Int, UInt8
from torch import Tensor

from anchorsplat.gaussians.conventions import Cameras
from anchorsplat.gaussians.fileio import FileFormat, read_json
from anchorsplat.gaussians.motion import Motion
from anchorsplat.gaussians.rig import Rig

from .landmarks import Targets

R_CAM_WORLD = ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, -1.0))


@dataclass(frozen=True, eq=False)
class FaceShape:
    """Offsets of the head's rest vertices (in the shaped rig's rest frame) that give it the photo's face."""

    vertex_ids: Int[Tensor, " M"]
    offsets: Float[Tensor, "M 3"]

    def apply(self, rig: Rig) -> Rig:
        """``rig`` with the offsets added to its rest vertices."""
        ids = self.vertex_ids.to(rig.vertices_rest.device)
        moved = rig.vertices_rest.index_add(0, ids, self.offsets.to(rig.vertices_rest))
        return dataclasses.replace(rig, vertices_rest=moved)


@dataclass(frozen=True, eq=False)
class SubjectFit:
    """The fitted subject (see the module docstring for the world and camera conventions).

    ``shape`` holds coefficients for ``rig.with_shape`` (empty for a rig without a shape basis); ``motion`` is
    one SMPL-X-format frame; ``mask`` is the person mask (uint8, 255 = person); ``targets`` are the 2D keypoints
    the fit used; ``reprojection_error_px`` is their weighted mean error after the fit.
    """

    width: int
    height: int
    framing: str
    camera: Cameras
    shape_names: tuple[str, ...]
    shape: Float[Tensor, " S"]
    motion: Motion
    mask: UInt8[np.ndarray, "H W"]
    targets: Targets
    rig_kind: str
    reprojection_error_px: float
    seconds: float = 0.0
    parts: UInt8[np.ndarray, "H W"] | None = None
    """Pixel labels (:func:`.segment.segment`); None in files written before segmentation existed."""
    face_shape: FaceShape | None = None
    """The face's offsets from the body model (:func:`.headfit.face_shape_offsets`); None without a face mesh."""


def subject_rig(fit: SubjectFit, rig: Rig) -> Rig:
    """``rig`` made the subject's: the fitted shape coefficients, then the face-shape offsets."""
    if rig.shape_dirs is not None:
        rig = rig.with_shape(torch.as_tensor(fit.shape, dtype=rig.vertices_rest.dtype, device=rig.vertices_rest.device))
    return fit.face_shape.apply(rig) if fit.face_shape is not None and len(fit.face_shape.vertex_ids) else rig


SUBJECT_FORMAT = "anchorsplat.subject"
SUBJECT_VERSION = 1
_MOTION_FIELDS = ("global_orient", "body_pose", "jaw_pose", "leye_pose", "reye_pose", "left_hand_pose",
                  "right_hand_pose", "transl", "expression")  # fmt: skip


def mask_path_for(path: Path) -> Path:
    """Where :func:`save_subject` puts the mask of ``path``: ``subject.json`` -> ``subject.mask.png``."""
    return path.with_name(f"{path.stem}.mask.png")


def parts_path_for(path: Path) -> Path:
    """Where :func:`save_subject` puts the pixel labels of ``path``: ``subject.json`` -> ``subject.parts.png``."""
    return path.with_name(f"{path.stem}.parts.png")


def _png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def save_subject(path: str | os.PathLike, fit: SubjectFit) -> Path:
    """Write the fit as versioned JSON plus its mask as an 8-bit PNG next to it, both atomically."""

    from anchorsplat.gaussians.io import atomic_write_bytes

    path = Path(path)
    mask_path = mask_path_for(path)
    atomic_write_bytes(mask_path, _png_bytes(fit.mask))
    if fit.parts is not None:
        atomic_write_bytes(parts_path_for(path), _png_bytes(fit.parts))
    motion = {k: getattr(fit.motion, k)[0].tolist() for k in _MOTION_FIELDS}
    t = fit.targets
    data = {
        "format": SUBJECT_FORMAT, "version": SUBJECT_VERSION,
        "image": {"width": fit.width, "height": fit.height}, "framing": fit.framing,
        "camera": {"Ks": fit.camera.Ks[0].tolist(), "T_cam_world": fit.camera.T_cam_world[0].tolist(),
                   "convention": "OpenCV (+X right, +Y down, +Z forward); T_cam_world maps world to camera"},
        "shape": {"names": list(fit.shape_names), "values": fit.shape.tolist()},
        "motion": {**motion, "expression_names": list(fit.motion.expression_names), "fps": fit.motion.fps,
                   "format": "SMPL-X parameters, axis-angle"},
        "mask": mask_path.name,
        **({"parts": parts_path_for(path).name} if fit.parts is not None else {}),
        **({"face_shape": {"vertices": fit.face_shape.vertex_ids.tolist(), "offsets_m":
            [[round(x, 6) for x in row] for row in fit.face_shape.offsets.tolist()],
            "frame": "rest frame of the rig with the fitted shape"}} if fit.face_shape is not None else {}),
        "keypoints": [{"name": n, "xy": xy, "weight": wt, "joint": j, "vertex": v} for n, xy, wt, j, v in
                      zip(t.names, t.xy.tolist(), t.weights.tolist(), t.joint_ids, t.vertex_ids, strict=True)],
        "rig_kind": fit.rig_kind,
        "fit": {"reprojection_error_px": fit.reprojection_error_px, "seconds": fit.seconds},
    }  # fmt: skip
    atomic_write_bytes(path, (json.dumps(data, indent=1) + "\n").encode())
    return path


# version -> function upgrading that version's JSON to version + 1 (none yet).
_MIGRATIONS: dict[int, Callable[[dict, dict], tuple[dict, dict]]] = {}
SUBJECT_FILE = FileFormat(SUBJECT_FORMAT, SUBJECT_VERSION, "subject file", "re-run the subject stage", _MIGRATIONS)


def load_subject(path: str | os.PathLike) -> SubjectFit:
    """Read a subject file written by :func:`save_subject` (or by hand: the ``--subject-params`` input).

    Raises:
        ValueError: a missing, damaged or foreign file, a newer format version, or a missing mask.
    """
    path = Path(path)
    data = read_json(path, SUBJECT_FILE)
    try:
        return _subject_from(data, path)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        if isinstance(exc, ValueError) and str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{path}: the subject file is inconsistent ({type(exc).__name__}: {exc})") from None


def _subject_from(data: dict, path: Path) -> SubjectFit:
    w, h = int(data["image"]["width"]), int(data["image"]["height"])
    camera = Cameras(torch.tensor(data["camera"]["T_cam_world"], dtype=torch.float32)[None],
                     torch.tensor(data["camera"]["Ks"], dtype=torch.float32)[None], w, h)  # fmt: skip
    m = data["motion"]
    names = tuple(m.get("expression_names", ()))
    parts = {k: torch.tensor(m[k], dtype=torch.float32)[None] if k in m else None for k in _MOTION_FIELDS}
    zero = Motion.zeros(1, names)
    motion = Motion(**{k: v if v is not None else getattr(zero, k) for k, v in parts.items()},
                    expression_names=names, fps=float(m.get("fps", 30.0)))  # fmt: skip
    mask = _label_png(path, data["mask"], "mask", "is", "the mask PNG", (h, w))
    parts = _label_png(path, data["parts"], "part labels", "are", "the PNG", (h, w)) if "parts" in data else None
    points = data.get("keypoints", [])
    targets = Targets(
        tuple(p["name"] for p in points), torch.tensor([p["xy"] for p in points], dtype=torch.float32).reshape(-1, 2),
        torch.tensor([float(p["weight"]) for p in points]), tuple(int(p.get("joint", -1)) for p in points),
        tuple(int(p.get("vertex", -1)) for p in points),
    )  # fmt: skip
    face = data.get("face_shape")
    face_shape = None
    if face is not None:
        ids = torch.tensor(face["vertices"], dtype=torch.long).reshape(-1)
        face_shape = FaceShape(ids, torch.tensor(face["offsets_m"], dtype=torch.float32).reshape(len(ids), 3))
    framing = data.get("framing", "portrait")
    if framing not in ("portrait", "full_body"):
        raise ValueError(f"{path}: framing {framing!r} is neither 'portrait' nor 'full_body'")
    fit = data.get("fit", {})
    return SubjectFit(
        width=w, height=h, framing=framing, camera=camera, shape_names=tuple(data["shape"]["names"]),
        shape=torch.tensor(data["shape"]["values"], dtype=torch.float32).reshape(-1), motion=motion, mask=mask,
        targets=targets, rig_kind=str(data.get("rig_kind", "unknown")),
        reprojection_error_px=float(fit.get("reprojection_error_px", float("nan"))),
        seconds=float(fit.get("seconds", 0.0)), parts=parts, face_shape=face_shape,
    )  # fmt: skip


def check_subject_for(fit: SubjectFit, image: np.ndarray, rig: Rig) -> None:
    """Raise a one-line error when a (``--subject-params``) fit does not belong to this photo and rig."""
    if (fit.width, fit.height) != (image.shape[1], image.shape[0]):
        raise ValueError(
            f"the subject parameters are for a {fit.width} x {fit.height} image but the photo is "
            f"{image.shape[1]} x {image.shape[0]}: pass the photo the subject was fitted on"
        )
    face = fit.face_shape
    if (
        face is not None
        and len(face.vertex_ids)
        and not 0 <= int(face.vertex_ids.min()) <= int(face.vertex_ids.max()) < rig.num_vertices
    ):
        raise ValueError(
            f"the subject parameters' face shape moves vertices up to {int(face.vertex_ids.max())} but the rig has "
            f"{rig.num_vertices}: refit the subject with this rig"
        )
    expected = tuple(rig.shape_names) if rig.shape_dirs is not None else ()
    if fit.shape_names != expected:
        raise ValueError(
            f"the subject parameters have shape coefficients {fit.shape_names}, the rig {expected}: refit the "
            "subject with this rig"
        )


def _label_png(json_path: Path, name: str, what: str, verb: str, keep: str, size: tuple[int, int]) -> np.ndarray:
    """A grey PNG stored beside a subject JSON (its mask or part labels), checked to match the photo's size."""
    from PIL import Image

    png = json_path.parent / name
    if not png.is_file():
        raise ValueError(f"{json_path}: its {what} {png} {verb} missing; keep {keep} next to the JSON")
    with Image.open(png) as img:
        out = np.asarray(img.convert("L"))
    if out.shape != size:
        h, w = size
        raise ValueError(f"{json_path}: the {what} {verb} {out.shape[1]} x {out.shape[0]}, the image {w} x {h}")
    return out
