"""What the CLI's subcommands do, once their configs are parsed (see :mod:`anchorsplat.cli`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from anchorsplat.gaussians.conventions import VIEW_YAWS_DEG, Cameras, framing_cameras
from anchorsplat.gaussians.io import Avatar, load_avatar
from anchorsplat.gaussians.motion import Motion, load_motion
from anchorsplat.gaussians.rigged import PosedGaussians, pose
from anchorsplat.gaussians.video import IMAGE_SUFFIXES, VIDEO_SUFFIXES, to_uint8, write_image, write_video

if TYPE_CHECKING:
    from anchorsplat.cli import ExportConfig, RenderConfig


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no CUDA device is available; use --device cpu")
    return torch.device(device)


def _motion_frames(motion_path: Path | None, avatar: Avatar) -> Motion:
    if motion_path is None:
        return Motion.zeros(1, dtype=avatar.rig.vertices_rest.dtype)
    return load_motion(motion_path)


def _select_frame(motion: Motion, frame: int) -> Motion:
    if not -len(motion) <= frame < len(motion):
        raise ValueError(f"--frame {frame} is out of range: the motion has {len(motion)} frames")
    return motion.frame(frame % len(motion))


def render_command(config: RenderConfig) -> Path:
    from anchorsplat.gaussians.render import render

    suffix = config.out.suffix.lower()
    if suffix not in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
        raise ValueError(f"--out {config.out}: use an image ({sorted(IMAGE_SUFFIXES)}) or a video ({sorted(VIDEO_SUFFIXES)})")
    if config.resolution < 16 or config.resolution > 4096:
        raise ValueError(f"--resolution {config.resolution} must be between 16 and 4096")
    device = resolve_device(config.device)
    avatar = load_avatar(config.avatar)
    rig, gaussians = avatar.rig.to(device), avatar.gaussians.to(device)
    motion = _motion_frames(config.motion, avatar).to(device=device, dtype=rig.vertices_rest.dtype)
    is_video = suffix in VIDEO_SUFFIXES
    turntable = config.turntable if config.turntable is not None else (is_video and config.motion is None)
    if not is_video:
        motion = _select_frame(motion, config.frame)
    background = torch.tensor(config.background, dtype=torch.float32, device=device)

    with torch.no_grad():
        posed_all = pose(gaussians, rig, motion)
        yaw0 = VIEW_YAWS_DEG[config.view]
        if turntable and is_video:
            count = max(1, round(config.seconds * config.fps))
            yaws = yaw0 + torch.arange(count, dtype=torch.float32) * (360.0 / count)
        else:
            yaws = torch.tensor([yaw0])
        cameras = framing_cameras(
            posed_all.means.reshape(-1, 3).float(), yaws.to(device), width=config.resolution, height=config.resolution
        )
        frames = _render_frames(render, posed_all, cameras, background, config.backend, turntable)

    if is_video:
        fps = config.fps if turntable else motion.fps
        return write_video(config.out, frames, fps)
    return write_image(config.out, frames[0])


def _render_frames(render, posed: PosedGaussians, cameras: Cameras, background, backend: str, turntable: bool) -> np.ndarray:
    """Frame t = pose t seen by camera t (a single pose or a single camera is broadcast)."""
    count = max(len(posed), len(cameras))
    frames = []
    for t in range(count):
        p = posed if len(posed) == 1 else _posed_frame(posed, t)
        cam = cameras[t if len(cameras) > 1 else 0]
        out = render(p, cam, backend=backend, background=background)
        frames.append(to_uint8(out.rgb[0, 0]))
    return np.stack(frames)


def _posed_frame(posed: PosedGaussians, t: int) -> PosedGaussians:
    return PosedGaussians(
        posed.means[t : t + 1], posed.quats_wxyz[t : t + 1], posed.scales[t : t + 1], posed.opacities[t : t + 1],
        posed.sh_coeffs,
    )  # fmt: skip


def export_command(config: ExportConfig) -> Path:
    if config.format != "ply":
        raise ValueError(
            f"--format {config.format} is not available yet in this version; --format ply works now"
        )
    from anchorsplat.gaussians.ply import save_ply

    out = config.out if config.out is not None else config.avatar.with_suffix(".ply")
    if out.suffix.lower() != ".ply":
        raise ValueError(f"--out {out}: a PLY export must end in .ply")
    avatar = load_avatar(config.avatar)
    motion = _select_frame(_motion_frames(config.motion, avatar), config.frame)
    with torch.no_grad():
        posed = pose(avatar.gaussians, avatar.rig, motion.to(dtype=avatar.rig.vertices_rest.dtype))
    path = save_ply(out, posed)
    print(f"wrote {path} ({len(avatar.gaussians)} Gaussians)")
    return path
