"""Flow-matching sampling of the anchored transformer: one window, chunk-wise autoregression, time-aware
position-shift fusion, and SDEdit-style refinement.

Convention (diffusers' FlowMatch): ``x_sigma = (1 - sigma) x0 + sigma * noise``, the model predicts the
velocity ``noise - x0`` at timestep ``1000 * sigma``; Euler steps ``x += (sigma_next - sigma) * v``.

- **Chunked** ("Gloria"): windows of ``chunk`` latent frames; every window after the first starts with
  ``prefix`` clean latent frames of the previous result (timestep 0, as in training with probabilistic prefix
  latents), then re-generates ``blend`` frames that the previous chunk also produced, which are linearly
  blended at the clean-latent level; anchors are re-attached to every window. A window only ever sees the audio
  and poses of its own frames, so the generation is causal chunk by chunk.
- **Shift fusion** ("AnyAvatar", from Sonic): at every step the whole sequence is denoised segment by segment,
  the segmentation starting ``shift`` frames later at each step (circularly), so no segment boundary persists.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from jaxtyping import Float
from torch import Tensor

from .i2v import with_first_latent
from .model import AnchorTokens


@dataclass(frozen=True, eq=False)
class Conditioning:
    """Everything a window needs, over the whole sequence of N latent frames (sliced per window)."""

    prompt: Float[Tensor, "1 S D"]
    null_prompt: Float[Tensor, "1 S D"]
    pose: Float[Tensor, "1 P N h w"] | None = None
    audio: Float[Tensor, "1 K N A C"] | None = None
    face_masks: Float[Tensor, "1 K N h w"] | None = None
    anchors: Callable[[int], list[AnchorTokens]] = lambda window_frames: []
    guidance: float = 1.0
    """Classifier-free guidance scale on audio + text (1 = a single conditional pass)."""
    image_condition: Float[Tensor, "1 Cc N h w"] | None = None
    """I2V backbones: first-frame mask + latents (:mod:`.i2v`)."""
    image_embeds: Float[Tensor, "1 Si Di"] | None = None
    """I2V backbones: CLIP embedding of the first frame."""

    def window(self, start: int, end: int) -> Conditioning:
        idx = torch.arange(start, end)
        return self.take(idx)

    def take(self, idx: Tensor) -> Conditioning:
        """The conditioning of latent frames ``idx`` (time is dim 2 of every per-frame tensor)."""
        return replace(self, pose=_take(self.pose, idx), audio=_take(self.audio, idx),
                       face_masks=_take(self.face_masks, idx),
                       image_condition=_take(self.image_condition, idx))  # fmt: skip


def sigma_schedule(steps: int, shift: float = 5.0, start: float = 1.0) -> Tensor:
    """steps+1 decreasing sigmas from ``start`` to 0 with Wan's timestep shift."""
    s = torch.linspace(start, 0.0, steps + 1, dtype=torch.float64)
    return (shift * s / (1 + (shift - 1) * s)).float()


def velocity(model, x: Tensor, sigma: float, cond: Conditioning, prefix: int) -> Tensor:
    t = torch.full((x.shape[0],), sigma * 1000.0, device=x.device, dtype=x.dtype)
    anchors = cond.anchors(x.shape[2])
    kwargs = dict(pose_maps=cond.pose, anchors=anchors, clean_prefix=prefix, condition=cond.image_condition,
                  encoder_hidden_states_image=cond.image_embeds)  # fmt: skip
    v = model(x, t, cond.prompt, audio=cond.audio, face_masks=cond.face_masks, **kwargs).sample
    if cond.guidance != 1.0:
        v_null = model(x, t, cond.null_prompt, **kwargs).sample
        v = v_null + cond.guidance * (v - v_null)
    return v


@torch.no_grad()
def denoise_window(
    model,
    noise: Tensor,
    cond: Conditioning,
    sigmas: Tensor,
    prefix_latents: Tensor | None = None,
    init: Tensor | None = None,
) -> Tensor:
    """Euler flow-matching over one window; the first ``prefix_latents.shape[2]`` frames stay clean."""
    p = 0 if prefix_latents is None else prefix_latents.shape[2]
    x = noise if init is None else (1 - sigmas[0]) * init + sigmas[0] * noise
    if p:
        x = torch.cat([prefix_latents, x[:, :, p:]], dim=2)
    for i in range(len(sigmas) - 1):
        v = velocity(model, x, float(sigmas[i]), cond, p)
        x_new = x + (sigmas[i + 1] - sigmas[i]) * v
        x = torch.cat([x[:, :, :p], x_new[:, :, p:]], dim=2) if p else x_new
    return x


def chunk_starts(total: int, chunk: int, prefix: int, blend: int) -> list[int]:
    """Window start frames: each window begins ``prefix + blend`` frames before the previous one ends."""
    if chunk >= total:
        return [0]
    step = chunk - prefix - blend
    if step < 1:
        raise ValueError(f"chunk ({chunk}) must exceed prefix ({prefix}) + blend ({blend}) latent frames")
    starts = [0]
    while starts[-1] + chunk < total:
        starts.append(starts[-1] + step)
    return starts


@torch.no_grad()
def generate_chunked(
    model,
    noise: Float[Tensor, "1 C N h w"],
    cond: Conditioning,
    sigmas: Tensor,
    chunk: int,
    prefix: int = 4,
    blend: int = 2,
    init: Tensor | None = None,
) -> Float[Tensor, "1 C N h w"]:
    """Chunk-wise autoregressive generation (module docstring); ``init`` switches to SDEdit from those latents."""
    total = noise.shape[2]
    out = torch.zeros_like(noise)
    done = 0
    for k, s in enumerate(chunk_starts(total, chunk, prefix, blend)):
        e = min(s + chunk, total)
        p = 0 if k == 0 else prefix
        pre = out[:, :, s : s + p] if p else None
        cond_k = cond.window(s, e)
        if k and cond_k.image_condition is not None:  # I2V: this window's first frame is the previous result
            cond_k = replace(cond_k, image_condition=with_first_latent(cond_k.image_condition, out[:, :, s : s + 1]))
        x = denoise_window(model, noise[:, :, s:e], cond_k, sigmas, pre,
                           None if init is None else init[:, :, s:e])  # fmt: skip
        overlap = max(0, done - (s + p))
        if overlap:
            w = torch.arange(overlap, 0, -1, device=x.device, dtype=x.dtype) / (overlap + 1)  # previous's weight
            w = w.view(1, 1, -1, 1, 1)
            a, b = s + p, s + p + overlap
            out[:, :, a:b] = w * out[:, :, a:b] + (1 - w) * x[:, :, p : p + overlap]
        out[:, :, s + p + overlap : e] = x[:, :, p + overlap :]
        done = e
    return out


@torch.no_grad()
def generate_shift_fusion(
    model,
    noise: Float[Tensor, "1 C N h w"],
    cond: Conditioning,
    sigmas: Tensor,
    segment: int,
    shift: int = 2,
    init: Tensor | None = None,
) -> Float[Tensor, "1 C N h w"]:
    """Time-aware position-shift fusion: segment-wise steps whose start moves by ``shift`` frames each step."""
    total = noise.shape[2]
    segment = min(segment, total)
    x = noise if init is None else (1 - sigmas[0]) * init + sigmas[0] * noise
    offset = 0
    for i in range(len(sigmas) - 1):
        v_sum = torch.zeros_like(x)
        count = torch.zeros(total, device=x.device, dtype=x.dtype)
        for j in range(math.ceil(total / segment)):
            idx = (offset + j * segment + torch.arange(segment, device=x.device)) % total  # circular padding
            v = velocity(model, x[:, :, idx], float(sigmas[i]), cond.take(idx), 0)
            v_sum.index_add_(2, idx, v)
            count[idx] += 1
        x = x + (sigmas[i + 1] - sigmas[i]) * v_sum / count.clamp_min(1).view(1, 1, -1, 1, 1)
        offset = (offset + shift) % total
    return x


def _take(x: Tensor | None, idx: Tensor) -> Tensor | None:
    return None if x is None else x[:, :, idx.to(x.device)]
