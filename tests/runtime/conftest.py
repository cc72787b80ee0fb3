"""Shared fixtures of the runtime tests: a tiny avatar, the shipped sample speech, speech-like test signals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from anchorsplat.gaussians.assets import assets_dir

ASSETS = assets_dir()
SAMPLE_SPEECH = ASSETS / "sample_speech.flac"
SAMPLE_TIMING = ASSETS / "sample_speech.json"


def vowel_bursts(seconds: float = 2.0, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """Speech-like audio without a synthesiser: 120 Hz glottal pulses through two formant resonators, in
    syllables of 150-300 ms separated by short gaps, at a speaking level."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    out = np.zeros(n)
    t = 0.1
    while t < seconds - 0.2:
        length = rng.uniform(0.15, 0.3)
        i0, i1 = int(t * rate), int(min(seconds, t + length) * rate)
        pulses = np.zeros(i1 - i0)
        pulses[:: rate // 120] = 1.0
        sig = pulses
        for f, bw in ((rng.uniform(300, 800), 80.0), (rng.uniform(900, 2200), 120.0)):
            r = np.exp(-np.pi * bw / rate)
            a1, a2 = -2 * r * np.cos(2 * np.pi * f / rate), r * r
            y = np.zeros_like(sig)
            for k in range(len(sig)):
                y[k] = sig[k] - a1 * (y[k - 1] if k else 0) - a2 * (y[k - 2] if k > 1 else 0)
            sig = y
        env = np.sin(np.linspace(0, np.pi, len(sig))) ** 0.5
        out[i0:i1] = sig * env
        t += length + rng.uniform(0.05, 0.25)
    return (0.3 * out / np.abs(out).max()).astype(np.float32)


@pytest.fixture(scope="session")
def speech() -> np.ndarray:
    """The shipped sample speech (espeak-ng, 16 kHz mono), first 3 s."""
    from anchorsplat.runtime.audio import load_audio

    return load_audio(SAMPLE_SPEECH).samples[: 3 * 16000]


@pytest.fixture(scope="session")
def sample_timing() -> dict:
    return json.loads(SAMPLE_TIMING.read_text())


@pytest.fixture(scope="session")
def bursts() -> np.ndarray:
    return vowel_bursts()


@pytest.fixture(scope="session")
def tiny_avatar():
    from anchorsplat.gaussians.io import Avatar
    from anchorsplat.gaussians.rigged import bind_to_surface
    from anchorsplat.gaussians.synthetic import synthetic_rig

    rig = synthetic_rig()
    return Avatar(rig, bind_to_surface(rig, 200, generator=torch.Generator().manual_seed(0)))
