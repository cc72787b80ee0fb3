"""The published diffusers configs of the Wan checkpoints the anchored generator targets, and random-init
checkpoints with exactly those shapes (for tests and benches: no weights are downloaded).

Sources (config.json values; anything not listed is the diffusers class default, which is what the published
config.json files hold):

- Wan2.1-T2V-1.3B-Diffusers transformer: ``get_transformer_config("Wan-T2V-1.3B")`` in diffusers'
  ``scripts/convert_wan_to_diffusers.py`` (the script that produced the published folder); ``rope_max_seq_len``
  1024, ``image_dim`` / ``added_kv_proj_dim`` / ``pos_embed_seq_len`` null are the class defaults.
- Wan2.1 VAE (shared by every Wan 2.1 and the Wan 2.2 A14B models): ``convert_vae()`` builds
  ``AutoencoderKLWan()`` with no arguments, so the published config is the class defaults (base_dim 96, z_dim 16,
  dim_mult [1, 2, 4, 4], 2 res blocks, temperal_downsample [False, True, True], the 16 latents mean/std).
- Wan2.2-TI2V-5B-Diffusers transformer: ``get_transformer_config("Wan2.2-TI2V-5B")`` in the same script.
- Wan2.2 VAE: ``vae22_diffusers_config`` in the same script (base_dim 160, decoder_base_dim 256, z_dim 48,
  residual, 12 in/out channels = 3 x 2x2 pixel patch, scale factors 4 / 16, the 48 latents mean/std).
"""

from __future__ import annotations

from pathlib import Path

import torch

WAN21_T2V_1_3B_TRANSFORMER = dict(
    added_kv_proj_dim=None, attention_head_dim=128, cross_attn_norm=True, eps=1e-06, ffn_dim=8960, freq_dim=256,
    in_channels=16, num_attention_heads=12, num_layers=30, out_channels=16, patch_size=[1, 2, 2],
    qk_norm="rms_norm_across_heads", text_dim=4096, image_dim=None, rope_max_seq_len=1024, pos_embed_seq_len=None,
)  # fmt: skip

WAN21_VAE = dict(
    base_dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
    temperal_downsample=[False, True, True], dropout=0.0,
    latents_mean=[-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508, 0.4134, -0.0715, 0.5517,
                  -0.3632, -0.1922, -0.9497, 0.2503, -0.2921],
    latents_std=[2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743, 3.2687, 2.1526, 2.8652, 1.5579,
                 1.6382, 1.1253, 2.8251, 1.916],
)  # fmt: skip

WAN22_TI2V_5B_TRANSFORMER = dict(
    added_kv_proj_dim=None, attention_head_dim=128, cross_attn_norm=True, eps=1e-06, ffn_dim=14336, freq_dim=256,
    in_channels=48, num_attention_heads=24, num_layers=30, out_channels=48, patch_size=[1, 2, 2],
    qk_norm="rms_norm_across_heads", text_dim=4096, image_dim=None, rope_max_seq_len=1024, pos_embed_seq_len=None,
)  # fmt: skip

WAN22_VAE = dict(
    base_dim=160, decoder_base_dim=256, z_dim=48, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
    temperal_downsample=[False, True, True], dropout=0.0, is_residual=True, in_channels=12, out_channels=12,
    patch_size=2, scale_factor_temporal=4, scale_factor_spatial=16,
    latents_mean=[-0.2289, -0.0052, -0.1323, -0.2339, -0.2799, 0.0174, 0.1838, 0.1557, -0.1382, 0.0542, 0.2813,
                  0.0891, 0.1570, -0.0098, 0.0375, -0.1825, -0.2246, -0.1207, -0.0698, 0.5109, 0.2665, -0.2108,
                  -0.2158, 0.2502, -0.2055, -0.0322, 0.1109, 0.1567, -0.0729, 0.0899, -0.2799, -0.1230, -0.0313,
                  -0.1649, 0.0117, 0.0723, -0.2839, -0.2083, -0.0520, 0.3748, 0.0152, 0.1957, 0.1433, -0.2944,
                  0.3573, -0.0548, -0.1681, -0.0667],
    latents_std=[0.4765, 1.0364, 0.4514, 1.1677, 0.5313, 0.4990, 0.4818, 0.5013, 0.8158, 1.0344, 0.5894, 1.0901,
                 0.6885, 0.6165, 0.8454, 0.4978, 0.5759, 0.3523, 0.7135, 0.6804, 0.5833, 1.4146, 0.8986, 0.5659,
                 0.7069, 0.5338, 0.4889, 0.4917, 0.4069, 0.4999, 0.6866, 0.4093, 0.5709, 0.6065, 0.6415, 0.4944,
                 0.5726, 1.2042, 0.5458, 1.6887, 0.3971, 1.0600, 0.3943, 0.5537, 0.5444, 0.4089, 0.7468, 0.7744],
)  # fmt: skip

PUBLISHED = {
    "wan2.1-t2v-1.3b": (WAN21_T2V_1_3B_TRANSFORMER, WAN21_VAE),
    "wan2.2-ti2v-5b": (WAN22_TI2V_5B_TRANSFORMER, WAN22_VAE),
}


def write_random_checkpoint(
    root: str | Path, name: str, num_layers: int | None = None, dtype: torch.dtype = torch.float32, seed: int = 0,
    **vae_overrides,
) -> Path:  # fmt: skip
    """A stock ``WanTransformer3DModel`` + ``AutoencoderKLWan`` with the published config ``name`` (random
    weights) saved in diffusers layout under ``root`` (transformer/, vae/).

    Args:
        num_layers: fewer transformer blocks than published (every other value stays published), for cheap tests.
        dtype: storage dtype of the transformer (the VAE stays float32, as the generator loads it).
        vae_overrides: VAE config values to change (e.g. narrower ``base_dim`` for cheap tests).
    """
    from diffusers import AutoencoderKLWan
    from diffusers.models.transformers.transformer_wan import WanTransformer3DModel

    if name not in PUBLISHED:
        raise ValueError(f"unknown published config {name!r}; choose one of {', '.join(PUBLISHED)}")
    tcfg, vcfg = PUBLISHED[name]
    tcfg = dict(tcfg, num_layers=num_layers or tcfg["num_layers"])
    vcfg = {**vcfg, **vae_overrides}
    root = Path(root)
    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # built directly in ``dtype``: a 5B model never exists in float32 at once
    try:
        transformer = WanTransformer3DModel(**tcfg)
    finally:
        torch.set_default_dtype(previous)
    transformer.save_pretrained(root / "transformer")
    del transformer
    AutoencoderKLWan(**vcfg).save_pretrained(root / "vae")
    return root
