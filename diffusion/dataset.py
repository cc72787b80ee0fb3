"""Training data for the anchored model: (clip window, body maps, audio, anchor pool), one safetensors file per
sample plus ``dataset.json`` (format ``anchorsplat.diffusion_dataset``, version 1).

A sample holds ``frames`` (T H W 3 uint8, T = 4n+1), ``pose`` (8 F h w, latent-grid body maps), optional
``audio`` (F W C latent-aligned log-mel windows) and an anchor pool: ``anchors`` (A H W 3 uint8), ``anchor_kind``
(0 global, 1 viewpoint, 2 expression), ``anchor_slot`` (viewpoint index into ``VIEWPOINTS``; for expressions the
offset of the expression's RoPE slot from ``AnchorLayout.expression_t``), ``anchor_inside`` (1 when the anchor frame
lies inside the sample's window), and optionally ``keyframe`` + ``keyframe_distance``: a real later frame of the same
clip, D latent frames past the window's end, for training the lookahead anchor on true futures. Anchors from
*outside* the window (the photo, other windows and clips) are what makes superset content anchoring possible.

:func:`write_dataset` turns bake clips (``diffusion/generator.py`` ``load_clip``) or user videos with fitted
poses (build ``Clip`` objects from them) into this format.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from anchorsplat.gaussians.conventions import axis_angle_to_matrix
from anchorsplat.gaussians.fileio import FileFormat, read_json, read_safetensors, write_json, write_safetensors
from anchorsplat.gaussians.rig import Rig

from .anchors import VIEWPOINTS, AnchorLayout
from .audio_features import audio_for_clip
from .body_maps import render_body_maps, to_latent_grid
from .generator import Clip

FORMAT = "anchorsplat.diffusion_dataset"
VERSION = 1
DATASET_FILE = FileFormat(FORMAT, VERSION, "diffusion dataset index", "write the dataset again")
SAMPLE_FILE = FileFormat("anchorsplat.diffusion_sample", 1, "diffusion dataset sample", "write the dataset again",
                         unversioned=1)  # fmt: skip


@dataclass(frozen=True, eq=False)
class Sample:
    frames: Float[Tensor, "T H W 3"]
    pose: Float[Tensor, "P F h w"]
    audio: Tensor | None
    anchors: Float[Tensor, "A H W 3"]
    anchor_kind: Tensor
    anchor_slot: Tensor
    anchor_inside: Tensor
    keyframe: Float[Tensor, "H W 3"] | None = None
    """A real frame of the same clip ``keyframe_distance`` latent frames past the window's last frame."""
    keyframe_distance: int = 0


def viewpoint_of(clip: Clip, t: int) -> int:
    """Index into ``VIEWPOINTS`` of how frame t's camera sees the body (from the known pose and camera)."""
    R = axis_angle_to_matrix(clip.motion.global_orient[t].float())
    forward = R @ torch.tensor([0.0, 0.0, 1.0])  # SMPL-X bodies face +Z at rest
    to_cam = -clip.cameras.T_world_cam[min(t, len(clip.cameras) - 1), :3, 2].float()
    cos = float(forward @ to_cam)
    if cos > 0.5:
        return VIEWPOINTS.index("front")
    if cos < -0.5:
        return VIEWPOINTS.index("back")
    return VIEWPOINTS.index("left" if float(torch.linalg.cross(forward, to_cam)[1]) > 0 else "right")


def _resize(frames: Tensor, size: tuple[int, int]) -> Tensor:
    x = F.interpolate(frames.permute(0, 3, 1, 2).float(), size, mode="bilinear", antialias=True, align_corners=False)
    return x.permute(0, 2, 3, 1).clamp(0, 1)


def write_dataset(
    out_dir: str | Path, clips: list[Clip], rig: Rig, photo: Float[Tensor, "H W 3"], window: int = 17,
    size: tuple[int, int] = (64, 64), audio: dict[str, tuple[Tensor, int]] | None = None, temporal: int = 4,
    spatial: int = 8, anchors_per_sample: int = 6, seed: int = 0, keyframe_distance: int = 2,
    expression_threshold: float = 0.3,
) -> Path:  # fmt: skip
    """Cut clips into windows of ``window`` (4n+1) frames at ``size`` and write samples + ``dataset.json``.

    Args:
        audio: optional clip name -> (waveform, sample rate).
        keyframe_distance: latent frames past a window's end of its lookahead keyframe (a real later frame of the
            same clip, stored when the clip is long enough).
        expression_threshold: a frame whose strongest expression weight exceeds this can be an expression anchor
            (named after that expression, RoPE slot from :class:`.anchors.AnchorLayout`).
    """
    if (window - 1) % temporal:
        raise ValueError(f"window {window}: needs {temporal}*n+1 frames")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    g = torch.Generator().manual_seed(seed)
    windows = [(c, s) for c in clips for s in range(0, len(c) - window + 1, window - 1)]
    if not windows:
        raise ValueError(f"no clip has {window} frames; use a shorter --window")
    layout = AnchorLayout()
    expressive = []
    for c in clips:
        if c.motion.expression.shape[-1]:
            weight, which = c.motion.expression.max(-1)
            for t in torch.nonzero(weight > expression_threshold).flatten().tolist():
                expressive.append((c, t, c.motion.expression_names[int(which[t])]))
    names = []
    for i, (clip, start) in enumerate(windows):
        idx = torch.arange(start, start + window)
        frames = _resize(clip.frames[idx], size)
        cams = clip.cameras[start : start + window] if len(clip.cameras) > 1 else clip.cameras
        sx, sy = size[1] / cams.width, size[0] / cams.height
        Ks = cams.Ks.clone()
        Ks[:, 0] *= sx
        Ks[:, 1] *= sy
        from anchorsplat.gaussians.conventions import Cameras

        maps = render_body_maps(rig, clip.motion.frame(slice(start, start + window)),
                                Cameras(cams.T_cam_world, Ks, size[1], size[0]))  # fmt: skip
        pose = to_latent_grid(maps.stacked(), temporal, spatial)
        # anchor pool: the photo (global, outside), frames of other windows (outside), one frame inside
        pool, kind, slot, inside = [_resize(photo[None], size)[0]], [0], [0], [0]
        for _ in range(anchors_per_sample - 2):
            oc, os_ = windows[int(torch.randint(len(windows), (1,), generator=g))]
            t = int(torch.randint(len(oc), (1,), generator=g))
            pool.append(_resize(oc.frames[t : t + 1], size)[0])
            kind.append(1)
            slot.append(viewpoint_of(oc, t))
            inside.append(int(oc is clip and start <= t < start + window))
        if expressive:  # one expression anchor from anywhere in the clips (superset anchoring)
            oc, t, name = expressive[int(torch.randint(len(expressive), (1,), generator=g))]
            pool.append(_resize(oc.frames[t : t + 1], size)[0])
            kind.append(2)
            slot.append(int(layout.expression_position(name) - layout.expression_t))
            inside.append(int(oc is clip and start <= t < start + window))
        t_in = start + int(torch.randint(window, (1,), generator=g))
        pool.append(_resize(clip.frames[t_in : t_in + 1], size)[0])
        kind.append(1)
        slot.append(viewpoint_of(clip, t_in))
        inside.append(1)
        tensors = {
            "frames": (frames * 255 + 0.5).to(torch.uint8), "pose": pose.half(),
            "anchors": (torch.stack(pool) * 255 + 0.5).to(torch.uint8), "anchor_kind": torch.tensor(kind),
            "anchor_slot": torch.tensor(slot), "anchor_inside": torch.tensor(inside),
        }  # fmt: skip
        t_key = start + window - 1 + keyframe_distance * temporal
        if t_key < len(clip):
            tensors["keyframe"] = (_resize(clip.frames[t_key : t_key + 1], size)[0] * 255 + 0.5).to(torch.uint8)
            tensors["keyframe_distance"] = torch.tensor(keyframe_distance)
        if audio and clip.name in audio:
            wave, sr = audio[clip.name]
            s0 = int(start / clip.motion.fps * sr)
            tensors["audio"] = audio_for_clip(wave[s0:], sr, window, clip.motion.fps, temporal=temporal).half()
        name = f"{i:06d}"
        write_safetensors(out / f"{name}.safetensors", SAMPLE_FILE, tensors)
        names.append(name)
    write_json(out / "dataset.json", DATASET_FILE, {"window": window, "size": list(size), "samples": names})
    return out


class DiffusionDataset(torch.utils.data.Dataset):
    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        index = self.folder / "dataset.json"
        if not index.is_file():
            raise ValueError(f"{folder}: no dataset.json; write one with anchorsplat.diffusion.dataset.write_dataset")
        meta = read_json(index, DATASET_FILE)
        self.names = meta["samples"]

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> Sample:
        _, t = read_safetensors(self.folder / f"{self.names[i]}.safetensors", SAMPLE_FILE)
        key = t["keyframe"].float() / 255 if "keyframe" in t else None
        return Sample(t["frames"].float() / 255, t["pose"].float(), t["audio"].float() if "audio" in t else None,
                      t["anchors"].float() / 255, t["anchor_kind"], t["anchor_slot"], t["anchor_inside"], key,
                      int(t["keyframe_distance"]) if "keyframe_distance" in t else 0)  # fmt: skip
