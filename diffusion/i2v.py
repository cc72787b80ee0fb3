"""First-frame conditioning of Wan image-to-video checkpoints (``in_channels`` = latents + temporal-factor mask
channels + latents, 36 for Wan 2.1 I2V), computed as diffusers' ``WanImageToVideoPipeline`` does:

- the condition video is the first frame followed by zeros in [-1, 1] pixel space (mid-grey), VAE-encoded and
  normalised like the latents;
- the mask has one channel per frame of a latent's temporal group: all ones on latent frame 0 (the given frame),
  zeros elsewhere;
- the CLIP image embedding of the first frame (the penultimate hidden state of a local ``CLIPVisionModel``) feeds
  the image cross-attention.

Chunked generation hands every later window its first latent frame (the previous chunk's result) the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from jaxtyping import Float
from torch import Tensor

from .latents import encode_video


def first_frame_condition(
    vae, first_frame: Float[Tensor, "H W 3"], num_frames: int, temporal: int
) -> Float[Tensor, "1 Cc F h w"]:
    """[mask (``temporal`` channels) | latents of first frame + grey] for a clip of ``num_frames`` (4n+1) frames."""
    video = torch.cat([first_frame[None], first_frame.new_full((num_frames - 1, *first_frame.shape), 0.5)])
    latents = encode_video(vae, video)
    mask = torch.zeros(1, temporal, *latents.shape[2:], dtype=latents.dtype, device=latents.device)
    mask[:, :, 0] = 1
    return torch.cat([mask, latents], dim=1)


def with_first_latent(condition: Tensor, latent: Float[Tensor, "1 C 1 h w"]) -> Tensor:
    """``condition`` whose latent frame 0 is given as ``latent`` (mask ones), e.g. a later chunk's first frame."""
    mask_channels = condition.shape[1] - latent.shape[1]
    out = condition.clone()
    out[:, :mask_channels, 0] = 1
    out[:, mask_channels:, :1] = latent.to(out.dtype)
    return out


class ImageEncoder:
    """A local CLIP vision model + its image processor (the I2V folder's ``image_encoder/``, ``image_processor/``)."""

    def __init__(self, root: str | os.PathLike, device: torch.device, dtype: torch.dtype = torch.float32) -> None:
        from transformers import CLIPImageProcessor, CLIPVisionModel

        root = Path(root)
        self.processor = CLIPImageProcessor.from_pretrained(root / "image_processor", local_files_only=True)
        self.model = CLIPVisionModel.from_pretrained(root / "image_encoder", local_files_only=True)
        self.model = self.model.to(device, dtype).eval()

    @torch.no_grad()
    def __call__(self, image: Float[Tensor, "H W 3"]) -> Float[Tensor, "1 S D"]:
        pixels = self.processor(images=[(image.clamp(0, 1) * 255).byte().cpu().numpy()], return_tensors="pt")
        param = next(self.model.parameters())
        out = self.model(pixel_values=pixels.pixel_values.to(param), output_hidden_states=True)
        return out.hidden_states[-2]
