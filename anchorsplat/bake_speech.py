"""The speech of a bake's talking clips: ``anchorsplat bake --speech FILE`` (default: the shipped sample speech).

The bake may not import the runtime (``gaussians <- diffusion <- bake``, ``gaussians <- runtime``), so the CLI,
which sees both, reads the speech with the runtime's one audio reader and turns it into face motion with the
runtime's shipped audio-to-motion model, then hands the bake a :class:`~anchorsplat.bake.script.Speech` (audio +
motion, types both sides know). It runs before any job folder exists, so a bad file is refused up front.
"""

from __future__ import annotations

from pathlib import Path

import torch

from anchorsplat.gaussians.assets import asset_path

SAMPLE_SPEECH = asset_path("sample_speech.flac")
"""The shipped sample speech (espeak-ng, about 9 s) the talking clips use when no ``--speech`` is given."""


def load_bake_speech(path: Path | None, rig_path: Path, *, model: str = "learned"):
    """``path`` (None: :data:`SAMPLE_SPEECH`) -> :class:`~anchorsplat.bake.script.Speech` for the rig at
    ``rig_path``.

    Raises:
        ValueError: the file is missing, not audio, empty, or holds NaN/infinite samples (one line, from
            :func:`anchorsplat.runtime.audio.load_audio`, which also resamples any rate and mixes any channels).
    """
    from anchorsplat.bake.script import SCRIPT_FPS, Speech
    from anchorsplat.diffusion.generator import ClipAudio
    from anchorsplat.gaussians.fileio import require_file
    from anchorsplat.gaussians.io import load_rig
    from anchorsplat.runtime.audio import SAMPLE_RATE, load_audio
    from anchorsplat.runtime.channels import motion_for_rig
    from anchorsplat.runtime.motion import audio_to_motion

    if path is not None:
        require_file(path, "--speech file")
    audio = load_audio(SAMPLE_SPEECH if path is None else path)
    # the whole file, as the player would animate it, at the script's frame rate; fixed seed: a rerun of the
    # same job makes the same blinks and head sway
    face = audio_to_motion(audio, model, fps=SCRIPT_FPS, seed=0)
    face = motion_for_rig(face, load_rig(rig_path))  # a rig with a jawOpen blendshape and no jaw joint: one jaw
    samples = torch.from_numpy(audio.samples).float()[None]
    return Speech(ClipAudio(samples, SAMPLE_RATE), face)
