"""The learned audio-to-motion model: its versioned file format, the shipped weights, and lip-sync on the shipped
sample speech (espeak-ng, with phoneme timing)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from anchorsplat.runtime.channels import NUM_CHANNELS, NUM_VISEME, lip_aperture
from anchorsplat.runtime.learned import (
    DEFAULT_MODEL_DIR,
    MODEL_VERSION,
    Audio2MotionNet,
    LearnedConfig,
    load_model,
    save_model,
)
from anchorsplat.runtime.motion import audio_to_motion_frames
from anchorsplat.runtime.visemes import phoneme_intervals, viseme_targets


def _tiny_net() -> Audio2MotionNet:
    torch.manual_seed(0)
    net = Audio2MotionNet(LearnedConfig(hidden=8, heads=2))
    net.feature_mean.normal_()
    return net


def test_save_load_round_trip(tmp_path):
    net = _tiny_net()
    save_model(tmp_path / "m", net, {"note": "test"})
    model = load_model(tmp_path / "m")
    assert model.heads == 2 and model.embedding_dim == 8 and model.info == {"note": "test"}
    x = torch.randn(1, 20, net.config.features.dim)
    a, b = net(x)[0], model.net(x)[0]
    assert a.shape == (1, 20, 2, NUM_VISEME) and torch.equal(a, b)
    # streaming through the model's state gives what a whole-sequence pass gives
    stream = model.stream()
    parts = torch.cat([stream.step(x[0, i : i + 3]).visemes for i in range(0, 20, 3)])
    assert torch.allclose(parts, b[0], atol=1e-6)


def test_bad_model_folders_are_clear_errors(tmp_path):
    folder = save_model(tmp_path / "m", _tiny_net())
    config = json.loads((folder / "config.json").read_text())

    def error(mutate) -> str:
        fresh = save_model(tmp_path / "x", _tiny_net())
        mutate(fresh)
        with pytest.raises(ValueError) as info:
            load_model(fresh)
        assert "\n" not in str(info.value)
        return str(info.value)

    assert "upgrade anchorsplat" in error(
        lambda f: (f / "config.json").write_text(json.dumps(config | {"version": MODEL_VERSION + 1}))
    )
    assert "not an anchorsplat audio-to-motion model" in error(
        lambda f: (f / "config.json").write_text(json.dumps(config | {"format": "something.else"}))
    )
    assert "not valid JSON" in error(lambda f: (f / "config.json").write_text("{"))
    assert "truncated" in error(lambda f: (f / "model.safetensors").write_bytes(b"\x10\x00"))
    wider = config | {"config": config["config"] | {"hidden": 16}}
    assert "does not match" in error(lambda f: (f / "config.json").write_text(json.dumps(wider)))
    assert "train one" in error(lambda f: (f / "model.safetensors").unlink())


def test_shipped_model_is_small_and_versioned():
    meta = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())
    assert meta["format"] == "anchorsplat.audio2motion" and meta["version"] == MODEL_VERSION
    size = sum(p.stat().st_size for p in DEFAULT_MODEL_DIR.iterdir())
    assert size < 2_000_000
    model = load_model()
    assert sum(p.numel() for p in model.net.parameters()) < 300_000
    assert meta["info"]["settings"]["steps"] > 0


@pytest.fixture(scope="module")
def sample_targets(speech, sample_timing):
    """Viseme targets of the sample speech at 100 fps (from its espeak-ng phoneme timing)."""
    full = len(speech) / 16000
    phonemes, starts = tuple(sample_timing["phonemes"]), np.array(sample_timing["starts_s"])
    intervals = phoneme_intervals(phonemes, starts, 9.0, speech)
    frames = int(np.ceil(full * 100))
    out = torch.zeros(frames, NUM_CHANNELS)
    out[:, :NUM_VISEME] = torch.from_numpy(viseme_targets(intervals, np.arange(frames) / 100))
    return out


@pytest.mark.parametrize("model,min_corr", [("baseline", 0.45), ("learned", 0.6)])
def test_mouth_follows_the_phonemes_of_the_sample_speech(model, min_corr, speech, sample_targets):
    frames = audio_to_motion_frames(speech, model, fps=100.0).channels
    pred, target = lip_aperture(frames).numpy(), lip_aperture(sample_targets).numpy()
    corr = float(np.corrcoef(pred, target)[0, 1])
    assert corr > min_corr, f"{model}: lip aperture correlates {corr:.2f} with the phoneme targets"
    assert np.abs(pred - target).mean() < 0.15


def test_lookahead_uses_the_models_heads():
    from anchorsplat.runtime.motion import AudioToMotion

    heads = load_model().heads
    assert AudioToMotion("learned").algorithmic_latency_ms == 0.0
    assert AudioToMotion("learned", lookahead_ms=30.0).algorithmic_latency_ms == 30.0
    # more look-ahead than the model has heads for is not waited for (it would only show the mouth early)
    assert AudioToMotion("learned", lookahead_ms=500.0).algorithmic_latency_ms == 10.0 * (heads - 1)
    assert AudioToMotion("baseline", lookahead_ms=500.0).algorithmic_latency_ms == 500.0
