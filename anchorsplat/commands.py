"""What the CLI's subcommands do, once their configs are parsed (see :mod:`anchorsplat.cli`)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from anchorsplat.gaussians.assets import asset_path
from anchorsplat.gaussians.conventions import VIEW_YAWS_DEG, Cameras, framing_cameras
from anchorsplat.gaussians.device import resolve_device
from anchorsplat.gaussians.io import Avatar, load_avatar
from anchorsplat.gaussians.motion import Motion, load_motion
from anchorsplat.gaussians.rigged import PosedGaussians, pose
from anchorsplat.gaussians.video import IMAGE_SUFFIXES, VIDEO_SUFFIXES, to_uint8, write_image, write_video

if TYPE_CHECKING:
    from anchorsplat.configs import BakeConfig, RenderConfig


MAX_SECONDS = 600.0
"""Longest turntable (10 minutes): longer asks are typos (``--seconds 1e9``), not videos."""


def check_number(flag: str, value: float, low: float, high: float, *, low_open: bool = False) -> None:
    """One line for a number out of its range (NaN included): ``--fps 0``, ``--seconds -1``."""
    below = value <= low if low_open else value < low
    if not math.isfinite(value) or below or value > high:
        side = "above" if low_open else "at least"
        raise ValueError(f"{flag} {value:g} must be {side} {low:g} and at most {high:g}")


def check_background(background: tuple[float, ...]) -> None:
    if not all(math.isfinite(c) and 0.0 <= c <= 1.0 for c in background):
        shown = " ".join(f"{c:g}" for c in background)
        raise ValueError(f"--background {shown}: give three numbers in [0, 1] (red green blue), e.g. 1 1 1 for white")


def _motion_frames(motion_path: Path | None, avatar: Avatar) -> Motion:
    if motion_path is None:
        return Motion.zeros(1, dtype=avatar.rig.vertices_rest.dtype)
    return load_motion(motion_path)


def _select_frame(motion: Motion, frame: int) -> Motion:
    if not -len(motion) <= frame < len(motion):
        raise ValueError(f"--frame {frame} is out of range: the motion has {len(motion)} frames")
    return motion.frame(frame % len(motion))


def render_command(config: RenderConfig) -> Path:
    from anchorsplat.bake.views import portrait_cameras, portrait_motion
    from anchorsplat.gaussians.render import render

    suffix = config.out.suffix.lower()
    if suffix not in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
        raise ValueError(
            f"--out {config.out}: use an image ({sorted(IMAGE_SUFFIXES)}) or a video ({sorted(VIDEO_SUFFIXES)})"
        )
    if config.resolution < 16 or config.resolution > 4096:
        raise ValueError(f"--resolution {config.resolution} must be between 16 and 4096")
    check_number("--fps", config.fps, 0.0, 240.0, low_open=True)
    check_number("--seconds", config.seconds, 0.0, MAX_SECONDS, low_open=True)
    check_background(config.background)
    device = resolve_device(config.device)
    avatar = load_avatar(config.avatar)
    rig, gaussians = avatar.rig.to(device), avatar.gaussians.to(device)
    if config.motion is None and config.view == "portrait":  # arms hanging, as in a portrait photo
        motion = portrait_motion(rig)
    else:
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
        frames = _render_frames(render, posed_all, cameras, background, config.backend)
        if is_video:  # frames stream into the encoder: a long video never sits in memory
            return write_video(config.out, frames, config.fps if turntable else motion.fps)
        return write_image(config.out, next(frames))


def _head_position(rig, motion: Motion) -> torch.Tensor | None:
    """The head joint of the motion's first frame (None for a rig without one: the whole body is framed)."""
    from anchorsplat.bake.views import head_position
    from anchorsplat.gaussians.rigged import pose_motion_mesh

    return head_position(rig, pose_motion_mesh(rig, motion.frame(0)).T_world_joint[0])


def _render_frames(render, posed: PosedGaussians, cameras: Cameras, background, backend: str) -> Iterator[np.ndarray]:
    """Frame t = pose t seen by camera t (a single pose or a single camera is broadcast)."""
    count = max(len(posed), len(cameras))
    for t in range(count):
        p = posed if len(posed) == 1 else _posed_frame(posed, t)
        cam = cameras[t if len(cameras) > 1 else 0]
        out = render(p, cam, backend=backend, background=background)
        yield to_uint8(out.rgb[0, 0])


def _posed_frame(posed: PosedGaussians, t: int) -> PosedGaussians:
    return PosedGaussians(
        posed.means[t : t + 1], posed.quats_wxyz[t : t + 1], posed.scales[t : t + 1], posed.opacities[t : t + 1],
        posed.sh_coeffs,
    )  # fmt: skip


SAMPLE_PHOTO = asset_path("sample", "astronaut.png")


def _check_generator_options(config: BakeConfig) -> None:
    """--generator / --weights / --refine-strength agree, and the weights folder is complete (JSON reads only)."""
    if config.generator != "anchored":
        for flag, value in (("--weights", config.weights), ("--refine-strength", config.refine_strength)):
            if value is not None:
                raise ValueError(
                    f"{flag} is only read by --generator anchored; add --generator anchored or drop {flag}"
                )
        return
    if config.weights is None:
        raise ValueError("--generator anchored needs --weights DIR (a local diffusers-format Wan model folder)")
    if config.refine_strength is not None and not 0 < config.refine_strength <= 1:
        raise ValueError(f"--refine-strength {config.refine_strength}: must be in (0, 1] (e.g. 0.6)")
    from anchorsplat.diffusion.weights import check_weights_folder

    check_weights_folder(config.weights)


def bake_command(config: BakeConfig) -> Path | None:
    from anchorsplat.bake.job import JobSettings
    from anchorsplat.gaussians.fileio import require_file

    if config.photo is not None and config.batch is not None:
        raise ValueError("give one photo (anchorsplat bake PHOTO --out JOB) or --batch FOLDER, not both")
    # every input is checked before a job folder exists (run_bake checks the photo and subject themselves)
    if config.photo is not None:
        require_file(config.photo, "photo")
    if config.subject_params is not None:
        require_file(config.subject_params, "--subject-params file")
    if config.batch is not None and not config.batch.is_dir():
        raise ValueError(f"--batch {config.batch} is not a folder: pass a folder of photos")
    if config.out.exists() and not config.out.is_dir():
        raise ValueError(f"--out {config.out} is a file, not a folder: choose another --out")
    if config.generator == "anchored" and config.weights is None:
        raise ValueError("--generator anchored needs --weights DIR (a local diffusers-format model folder)")
    photo = config.photo
    if photo is None:  # no photo and no batch: the bundled sample subject
        photo = SAMPLE_PHOTO if config.batch is None else Path("batch")
        if config.batch is None:
            print(f"no photo given: baking the bundled sample {SAMPLE_PHOTO.relative_to(SAMPLE_PHOTO.parents[2])}")
    _check_generator_options(config)  # before the job folder exists and before the subject fit
    from anchorsplat.bake.pipeline import DEFAULT_RIG
    from anchorsplat.bake_speech import load_bake_speech

    speech = load_bake_speech(config.speech, DEFAULT_RIG)  # a bad --speech is refused before any job folder exists
    settings = JobSettings(
        photo=str(photo.resolve()), preset=config.preset, generator=config.generator,
        weights=None if config.weights is None else str(config.weights.resolve()),
        refine_strength=config.refine_strength,
        subject_params=None if config.subject_params is None else str(config.subject_params.resolve()),
        seed=config.seed, backend=config.backend, export_dataset=config.export_dataset, device=config.device,
        person=config.person, speech=None if config.speech is None else str(config.speech.resolve()),
    )  # fmt: skip
    if config.batch is not None:
        from anchorsplat.bake.batch import run_batch

        results = run_batch(
            config.batch, config.out, settings, ray_address=config.ray_address, force=config.force, speech=speech
        )
        if not any(r.ok for r in results):
            raise ValueError("every subject of the batch failed (see the summary above)")
        return None
    from anchorsplat.bake.pipeline import run_bake

    return run_bake(settings, config.out, force=config.force, speech=speech)
