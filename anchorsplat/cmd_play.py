"""``anchorsplat play``: an avatar driven by speech and/or an SMPL-X motion, written to a video with the audio."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from anchorsplat.commands import check_background, check_number
from anchorsplat.gaussians.fileio import require_file
from anchorsplat.gaussians.video import AUDIO_SUFFIXES, VIDEO_SUFFIXES

if TYPE_CHECKING:
    from anchorsplat.configs import PlayConfig


def reference_pairs(paths: tuple[Path, ...]) -> list[tuple[Path, Path]]:
    """``--references``: motion ``.npz`` files (or folders of them), each with its audio next to it under the
    same name (``clip.npz`` + ``clip.wav``/``.flac``/...). Returns (audio, motion) pairs.

    Raises:
        ValueError: a path that does not exist, a folder without motions, or a motion without its audio.
    """
    motions: list[Path] = []
    for path in paths:
        if not path.exists():
            raise ValueError(f"--references {path} does not exist")
        if path.is_dir():
            found = sorted(path.glob("*.npz"))
            if not found:
                raise ValueError(f"--references {path}: the folder holds no motion .npz files")
            motions += found
        elif path.suffix.lower() == ".npz":
            motions.append(path)
        else:
            raise ValueError(
                f"--references {path}: pass motion .npz files (each with its audio under the same name) or folders"
            )
    pairs = []
    for motion in motions:
        audio = next((motion.with_suffix(s) for s in AUDIO_SUFFIXES if motion.with_suffix(s).exists()), None)
        if audio is None:
            raise ValueError(
                f"reference {motion} has no audio next to it: put its speech at {motion.with_suffix('.wav')} "
                f"(or {', '.join(AUDIO_SUFFIXES[1:])})"
            )
        pairs.append((audio, motion))
    return pairs


def play_command(config: PlayConfig) -> Path:
    from anchorsplat.runtime.player import play

    if config.out.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"--out {config.out}: the player writes a video ({', '.join(sorted(VIDEO_SUFFIXES))})")
    if config.audio is None and config.motion is None:
        raise ValueError("nothing to play: pass --audio SPEECH (wav/flac/ogg/mp3) and/or --motion MOTION.npz")
    if config.references and config.audio is None:
        raise ValueError("--references personalise the audio-driven face: pass --audio too")
    check_number("--fps", config.fps, 1.0, 240.0)
    check_number("--lookahead-ms", config.lookahead_ms, 0.0, 2000.0)
    check_number("--head-motion", config.head_motion, 0.0, 10.0)
    check_background(config.background)
    require_file(config.avatar, "avatar file")
    if config.audio is not None:
        require_file(config.audio, "--audio file")
    if config.threads is not None:
        if config.threads < 1:
            raise ValueError(f"--threads {config.threads} must be at least 1")
        import torch

        torch.set_num_threads(config.threads)
    model = str(config.model_dir) if config.model_dir is not None else config.model
    path = play(
        config.avatar, audio=config.audio, motion=config.motion, out=config.out, resolution=config.resolution,
        fps=config.fps, view=config.view, backend=config.backend, device=config.device, model=model,
        references=reference_pairs(config.references), lookahead_ms=config.lookahead_ms,
        background=config.background, seed=config.seed, head_motion=config.head_motion, progress=True,
    )  # fmt: skip
    print(f"wrote {path}")
    return path
