"""Export generated clips as a nerfstudio-format dataset (``transforms.json`` + images), so other methods
can train on them. nerfstudio's ``transform_matrix`` is camera-to-world in the OpenGL convention
(+X right, +Y up, +Z backward), ours is OpenCV: the two differ by a flip of the camera's Y and Z axes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from anchorsplat.diffusion.generator import Clip
from anchorsplat.gaussians.fileio import staged_folder

OPENCV_TO_OPENGL = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0]))


def export_nerfstudio(clips: list[Clip], out_dir: Path) -> Path:
    """Write ``out_dir/transforms.json`` and ``out_dir/images/*.png``; the folder appears whole or not at all."""
    from PIL import Image

    with staged_folder(out_dir) as tmp:
        (tmp / "images").mkdir()
        frames = []
        for clip in clips:
            T_world_cam = torch.linalg.inv(clip.cameras.T_cam_world.double()).float()
            for t in range(len(clip)):
                name = f"images/{clip.name}_{t:04d}.png"
                rgba = torch.cat([clip.frames[t], clip.masks[t][..., None]], dim=-1)
                Image.fromarray((rgba.clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8), "RGBA").save(tmp / name)
                K = clip.cameras.Ks[t]
                frames.append({
                    "file_path": name,
                    "transform_matrix": (T_world_cam[t] @ OPENCV_TO_OPENGL).tolist(),
                    "fl_x": float(K[0, 0]), "fl_y": float(K[1, 1]), "cx": float(K[0, 2]), "cy": float(K[1, 2]),
                    "w": clip.cameras.width, "h": clip.cameras.height,
                })  # fmt: skip
        meta = {"camera_model": "OPENCV", "frames": frames}
        (tmp / "transforms.json").write_text(json.dumps(meta, indent=1))
    return Path(out_dir)
