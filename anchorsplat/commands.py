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
    from anchorsplat.configs import BakeConfig, RenderConfig


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
    from anchorsplat.bake.views import portrait_cameras
    from anchorsplat.gaussians.render import render

    suffix = config.out.suffix.lower()
    if suffix not in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
        raise ValueError(
            f"--out {config.out}: use an image ({sorted(IMAGE_SUFFIXES)}) or a video ({sorted(VIDEO_SUFFIXES)})"
        )
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
        yaw0 = VIEW_YAWS_DEG.get(config.view, 0.0)
        if turntable and is_video:
            count = max(1, round(config.seconds * config.fps))
            yaws = yaw0 + torch.arange(count, dtype=torch.float32) * (360.0 / count)
        else:
            yaws = torch.tensor([yaw0])
        means = posed_all.means.reshape(-1, 3).float()
        head = _head_position(rig, motion) if config.view == "portrait" else None
        if head is not None:
            cameras = portrait_cameras(posed_all.means[0].float(), head.float(), yaws.to(device), config.resolution)
        else:
            cameras = framing_cameras(means, yaws.to(device), width=config.resolution, height=config.resolution)
        frames = _render_frames(render, posed_all, cameras, background, config.backend, turntable)

    if is_video:
        fps = config.fps if turntable else motion.fps
        return write_video(config.out, frames, fps)
    return write_image(config.out, frames[0])


def _head_position(rig, motion: Motion) -> torch.Tensor | None:
    """The head joint of the motion's first frame (None for a rig without one: the whole body is framed)."""
    from anchorsplat.bake.views import head_position
    from anchorsplat.gaussians.rigged import pose_motion_mesh

    return head_position(rig, pose_motion_mesh(rig, motion.frame(0)).T_world_joint[0])


def _render_frames(
    render, posed: PosedGaussians, cameras: Cameras, background, backend: str, turntable: bool
) -> np.ndarray:
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


SAMPLE_PHOTO = Path(__file__).resolve().parent.parent / "assets" / "sample" / "astronaut.png"


def bake_command(config: BakeConfig) -> Path | None:
    from anchorsplat.bake.job import JobSettings

    if config.photo is not None and config.batch is not None:
        raise ValueError("give one photo (anchorsplat bake PHOTO --out JOB) or --batch FOLDER, not both")
    photo = config.photo
    if photo is None:  # no photo and no batch: the bundled sample subject
        photo = SAMPLE_PHOTO if config.batch is None else Path("batch")
        if config.batch is None:
            print(f"no photo given: baking the bundled sample {SAMPLE_PHOTO.relative_to(SAMPLE_PHOTO.parents[2])}")
    settings = JobSettings(
        photo=str(photo.resolve()), preset=config.preset, generator=config.generator,
        weights=None if config.weights is None else str(config.weights.resolve()),
        subject_params=None if config.subject_params is None else str(config.subject_params.resolve()),
        seed=config.seed, backend=config.backend, export_dataset=config.export_dataset, person=config.person,
    )  # fmt: skip
    if config.batch is not None:
        from anchorsplat.bake.batch import run_batch

        results = run_batch(config.batch, config.out, settings, ray_address=config.ray_address, force=config.force)
        if not any(r.ok for r in results):
            raise ValueError("every subject of the batch failed (see the summary above)")
        return None
    from anchorsplat.bake.pipeline import run_bake

    return run_bake(settings, config.out, force=config.force)
