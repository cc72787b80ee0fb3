"""Checkpoint-shaped: random-init Wan 2.1 T2V 1.3B and Wan 2.2 TI2V 5B with their published configs, saved in
diffusers layout, accepted by ``anchorsplat bake --generator anchored --weights DIR``'s early check, loaded by
the bake's ``make_generator``, and one denoising step run at a tiny resolution on CPU.

The default run keeps every published value but the transformer's layer count (1) and the VAEs' widths (127 M
and 705 M parameters at full size); ``slow`` builds both at full size (bench/published_checkpoints.py times them)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from anchorsplat.configs import BakeConfig
from anchorsplat.diffusion.published import PUBLISHED, write_random_checkpoint
from anchorsplat.gaussians.conventions import framing_cameras
from anchorsplat.gaussians.motion import Motion
from anchorsplat.gaussians.synthetic import synthetic_rig

CASES = {  # name -> (vae factors, VAE overrides for the default run)
    "wan2.1-t2v-1.3b": ((4, 8), {"base_dim": 16}),
    "wan2.2-ti2v-5b": ((4, 16), {"base_dim": 16, "decoder_base_dim": 32}),
}


def _bake_generator(weights):
    """The generator exactly as ``anchorsplat bake --generator anchored --weights DIR`` makes it."""
    from anchorsplat.bake.job import JobSettings
    from anchorsplat.bake.pipeline import make_generator
    from anchorsplat.bake.presets import PRESETS
    from anchorsplat.commands import _check_generator_options

    _check_generator_options(BakeConfig(generator="anchored", weights=weights))
    settings = JobSettings(photo="photo.png", generator="anchored", weights=str(weights))
    return make_generator(settings, PRESETS["preview"])


def _one_step(gen, factors):
    from anchorsplat.diffusion.generator import Anchors
    from anchorsplat.diffusion.latents import vae_factors

    assert vae_factors(gen.vae) == factors
    gen.config = replace(gen.config, width=64, height=64, steps=1, chunk=8, lookahead=2)
    rig = synthetic_rig()
    spec_cams = framing_cameras(rig.vertices_rest, torch.linspace(0, 30, 5), width=48, height=48)
    from anchorsplat.diffusion.generator import ClipSpec

    spec = ClipSpec("turn", Motion.zeros(5), spec_cams)
    photo = torch.rand(64, 64, 3, generator=torch.Generator().manual_seed(0))
    anchors = gen.encode_anchors(Anchors(photo))
    assert anchors.global_latent.shape[1:] == (gen.vae.config.z_dim, 1, 64 // factors[1], 64 // factors[1])
    with torch.no_grad():
        clip = gen.generate_clip(rig, spec, anchors, audio=torch.randn(16000) * 0.1)
    assert clip.frames.shape == (5, 48, 48, 3) and torch.isfinite(clip.frames).all()
    return clip


def _check_written(root, name, num_layers, vae_overrides):
    tcfg, vcfg = PUBLISHED[name]
    saved_t = json.loads((root / "transformer" / "config.json").read_text())
    saved_v = json.loads((root / "vae" / "config.json").read_text())
    for key, value in tcfg.items():
        want = num_layers if key == "num_layers" and num_layers else value
        assert saved_t[key] == (list(want) if isinstance(want, tuple) else want), key
    for key, value in {**vcfg, **vae_overrides}.items():
        assert saved_v[key] == value, key


@pytest.mark.parametrize("name", list(CASES))
def test_published_config_plumbing_one_step(name, tmp_path):
    factors, vae_overrides = CASES[name]
    root = write_random_checkpoint(tmp_path / name, name, num_layers=1, **vae_overrides)
    _check_written(root, name, 1, vae_overrides)
    gen = _bake_generator(root)
    cfg = gen.transformer.config
    assert (cfg.in_channels, cfg.num_attention_heads * cfg.attention_head_dim) == (
        PUBLISHED[name][0]["in_channels"],
        PUBLISHED[name][0]["num_attention_heads"] * 128,
    )
    _one_step(gen, factors)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_published_checkpoint_full_size_one_step(name, tmp_path):
    from anchorsplat.commands import _check_generator_options
    from anchorsplat.diffusion.anchored import load_anchored_generator

    root = write_random_checkpoint(tmp_path / name, name, dtype=torch.bfloat16)
    _check_written(root, name, None, {})
    _check_generator_options(BakeConfig(generator="anchored", weights=root))
    # bfloat16 as stored: the 5B transformer in float32 (20 GB) would not fit a 24 GB machine beside its checkpoint
    gen = load_anchored_generator(root, device="cpu", dtype=torch.bfloat16)
    _one_step(gen, CASES[name][0])
