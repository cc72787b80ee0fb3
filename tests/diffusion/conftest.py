"""Tiny random Wan transformer + VAE saved as a local diffusers folder (built in code, offline)."""

from __future__ import annotations

import pytest
import torch


def stock_config() -> dict:
    from anchorsplat.diffusion.model import tiny_config

    return {k: v for k, v in tiny_config().items() if k not in ("pose_channels", "audio_in_dim")}


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """A folder laid out like a diffusers Wan checkpoint: a *stock* transformer (no new modules) and a VAE."""
    from diffusers import AutoencoderKLWan
    from diffusers.models.transformers.transformer_wan import WanTransformer3DModel

    from anchorsplat.diffusion.latents import tiny_vae_config

    root = tmp_path_factory.mktemp("wan_tiny")
    torch.manual_seed(1)
    stock = WanTransformer3DModel(**stock_config()).eval()
    stock.save_pretrained(root / "transformer")
    AutoencoderKLWan(**tiny_vae_config()).save_pretrained(root / "vae")
    return root
