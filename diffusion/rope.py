"""3D rotary position embedding at arbitrary (t, h, w) positions, matching diffusers' ``WanRotaryPosEmbed``.

Wan's RoPE table only covers positions ``0..rope_max_seq_len-1`` of a regular grid. Content anchors live at
temporal positions *outside* the generated window (negative, or beyond its end for the lookahead anchor) and
may carry a spatial shift ("AnyAvatar"'s ``RoPE(-1, i + w, j + h)``), so the cos/sin are computed here from the
same frequencies for any positions. For the regular grid ``t = 0..F-1`` the values are bit-identical to the
stock table (same float64 frequencies, same interleaving), which the tests check through the whole model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float, Shaped
from torch import Tensor


@dataclass(frozen=True)
class RopeSplit:
    """How Wan splits a head's channels between the t, h and w axes."""

    t_dim: int
    h_dim: int
    w_dim: int
    theta: float = 10000.0

    @staticmethod
    def for_head_dim(attention_head_dim: int) -> RopeSplit:
        h_dim = w_dim = 2 * (attention_head_dim // 6)
        return RopeSplit(attention_head_dim - h_dim - w_dim, h_dim, w_dim)


def axis_cos_sin(dim: int, positions: Shaped[Tensor, " N"], theta: float) -> tuple[Tensor, Tensor]:
    """Interleaved cos/sin of one axis (``get_1d_rotary_pos_embed(use_real=True, repeat_interleave_real=True)``)."""
    from diffusers.models.embeddings import get_1d_rotary_pos_embed

    return get_1d_rotary_pos_embed(
        dim, positions.to(torch.float64), theta, use_real=True, repeat_interleave_real=True, freqs_dtype=torch.float64
    )


def grid_rope(
    split: RopeSplit,
    t_positions: Shaped[Tensor, " F"],
    height: int,
    width: int,
    h_offset: float = 0.0,
    w_offset: float = 0.0,
) -> tuple[Float[Tensor, "1 L 1 D"], Float[Tensor, "1 L 1 D"]]:
    """cos/sin for an ``F x height x width`` token grid (token order t, h, w like Wan's patchify).

    Args:
        split: channel split of one attention head.
        t_positions: temporal RoPE index of each latent frame (any real values).
        height, width: post-patch token grid size.
        h_offset, w_offset: spatial RoPE shift of the whole grid.
    """
    device = t_positions.device
    f = t_positions.shape[0]
    ct, st = axis_cos_sin(split.t_dim, t_positions, split.theta)
    ch, sh = axis_cos_sin(split.h_dim, torch.arange(height, device=device) + h_offset, split.theta)
    cw, sw = axis_cos_sin(split.w_dim, torch.arange(width, device=device) + w_offset, split.theta)

    def grid(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
        a = a.view(f, 1, 1, -1).expand(f, height, width, -1)
        b = b.view(1, height, 1, -1).expand(f, height, width, -1)
        c = c.view(1, 1, width, -1).expand(f, height, width, -1)
        return torch.cat([a, b, c], dim=-1).reshape(1, f * height * width, 1, -1)

    return grid(ct, ch, cw), grid(st, sh, sw)


def concat_rope(parts: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """Token-axis concatenation of several grids' cos/sin (video tokens first, then anchors)."""
    if len(parts) == 1:
        return parts[0]
    return torch.cat([p[0] for p in parts], dim=1), torch.cat([p[1] for p in parts], dim=1)
