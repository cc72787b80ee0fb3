"""Pixels <-> normalised latents with diffusers' ``AutoencoderKLWan`` (causal 3D VAE: 4x time; 8x space for
Wan 2.1, 16x for Wan 2.2)."""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor


def _stats(vae, like: Tensor) -> tuple[Tensor, Tensor]:
    z = vae.config.z_dim
    mean = torch.tensor(vae.config.latents_mean[:z], dtype=like.dtype, device=like.device).view(1, z, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std[:z], dtype=like.dtype, device=like.device).view(1, z, 1, 1, 1)
    return mean, std


def vae_factors(vae) -> tuple[int, int]:
    """(temporal, spatial) compression of the VAE, from its config's ``scale_factor_temporal`` /
    ``scale_factor_spatial`` (Wan 2.1: 4 and 8; Wan 2.2: 4 and 16, its 2x2 pixel patching included); configs
    saved before diffusers had those keys fall back to the downsampling stages."""
    cfg = vae.config
    temporal = getattr(cfg, "scale_factor_temporal", None) or 2 ** sum(cfg.temperal_downsample)
    spatial = getattr(cfg, "scale_factor_spatial", None)
    if not spatial:
        spatial = 2 ** len(cfg.temperal_downsample) * (getattr(cfg, "patch_size", None) or 1)
    return int(temporal), int(spatial)


@torch.no_grad()
def encode_video(vae, frames: Float[Tensor, "T H W 3"]) -> Float[Tensor, "1 C F h w"]:
    """RGB in [0, 1] (T = 4n+1 frames, or 1 for an image) -> normalised latents (the mode, deterministic)."""
    param = next(vae.parameters())
    x = frames.to(param) * 2 - 1
    x = x.permute(3, 0, 1, 2)[None]  # 1 3 T H W
    z = vae.encode(x).latent_dist.mode()
    mean, std = _stats(vae, z)
    return (z - mean) / std


@torch.no_grad()
def decode_video(vae, latents: Float[Tensor, "1 C F h w"]) -> Float[Tensor, "T H W 3"]:
    param = next(vae.parameters())
    mean, std = _stats(vae, latents.to(param))
    x = vae.decode(latents.to(param) * std + mean).sample  # 1 3 T H W
    return ((x[0].permute(1, 2, 3, 0).float() + 1) / 2).clamp(0, 1)


def tiny_vae_config() -> dict:
    """A tiny random ``AutoencoderKLWan`` for tests (4 latent channels, 4x time, 8x space)."""
    return dict(base_dim=8, z_dim=4, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True],
                latents_mean=[0.0] * 4, latents_std=[1.0] * 4)  # fmt: skip
