"""AnchoredGenerator: the anchored, pose- and audio-conditioned video diffusion model behind the ``Generator``
protocol.

Weights come from a local diffusers-format folder (nothing is downloaded; layout in :mod:`.weights`): a Wan 2.1 /
2.2 transformer (stock or fine-tuned by diffusion/train.py; new modules start at zero if absent), its VAE, and
optionally ``prompt_embeds.safetensors`` (written by ``scripts/prompt_embeds.py``, loaded when present).

Use from Python::

    from anchorsplat.diffusion.anchored import load_anchored_generator
    gen = load_anchored_generator("path/to/weights", device="auto", dtype=None)
    clips = gen.generate(subject, script, anchors)        # Generator protocol, as in the bake

Each clip's frames are generated for exactly the clip script's poses and cameras (they condition the model
through the rendered body maps) and come back with them; masks are the body silhouettes of the same render.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from anchorsplat.gaussians.conventions import Cameras
from anchorsplat.gaussians.motion import Motion
from anchorsplat.gaussians.rig import Rig

from .anchors import AnchorLatents, AnchorLayout, window_anchors
from .audio_features import audio_for_clip
from .body_maps import render_body_maps, to_latent_grid
from .generator import Anchors, Clip, ClipSpec, Subject
from .i2v import first_frame_condition
from .latents import decode_video, encode_video, vae_factors
from .sampler import Conditioning, generate_chunked, generate_shift_fusion, sigma_schedule
from .weights import check_weights_folder


@dataclass(frozen=True)
class AnchoredConfig:
    width: int = 832
    """With ``height``, the generation area in pixels (832 x 480, Wan's 480p); each clip is generated at its
    cameras' aspect ratio with about this many pixels, then resized to the cameras' size."""
    height: int = 480
    """See ``width``."""
    steps: int = 30
    """Flow-matching Euler steps."""
    flow_shift: float = 5.0
    """Wan's timestep shift of the sigma schedule."""
    mode: Literal["chunked", "shift_fusion"] = "chunked"
    """Long clips: chunk-wise autoregression, or time-aware position-shift fusion."""
    chunk: int = 21
    """Latent frames per window (21 = 81 video frames for Wan)."""
    prefix: int = 4
    """Clean latent frames carried from the previous chunk."""
    blend: int = 2
    """Latent frames re-generated and linearly blended at each chunk boundary."""
    fusion_shift: int = 2
    """Position-shift fusion: latent frames the segmentation moves per step."""
    lookahead: int | None = 8
    """Lookahead anchor distance D in latent frames beyond the window (None: no lookahead anchor)."""
    content_anchors: bool = True
    """Attach the global / viewpoint / expression anchors."""
    guidance: float = 1.0
    """Classifier-free guidance on text + audio (1 = off)."""
    refine_strength: float | None = None
    """Set (0..1] to SDEdit-refine proxy renders instead of generating from noise."""
    layout: AnchorLayout = AnchorLayout()
    seed: int = 0


class AnchoredGenerator:
    name = "anchored"

    def __init__(self, transformer, vae, config: AnchoredConfig = AnchoredConfig(), prompt: Tensor | None = None,
                 null_prompt: Tensor | None = None, image_encoder=None) -> None:  # fmt: skip
        self.transformer = transformer.eval()
        self.image_encoder = image_encoder
        """I2V backbones with image cross-attention: first frame -> CLIP embedding (:class:`.i2v.ImageEncoder`)."""
        self.vae = vae.eval()
        self.config = config
        text_dim = transformer.config.text_dim
        param = transformer.patch_embedding.weight  # the compute dtype (some modules stay float32)
        self.null_prompt = (null_prompt if null_prompt is not None else torch.zeros(1, 512, text_dim)).to(param)
        self.prompt = (prompt if prompt is not None else self.null_prompt).to(param)
        if self.prompt.ndim == 2:
            self.prompt = self.prompt[None]
        if self.null_prompt.ndim == 2:
            self.null_prompt = self.null_prompt[None]

    @property
    def is_i2v(self) -> bool:
        return self.transformer.config.in_channels > self.transformer.config.out_channels

    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    def size_for(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) to generate a ``width x height`` camera at: its aspect, the config's area."""
        _, spatial = vae_factors(self.vae)
        multiple = spatial * self.transformer.config.patch_size[1]
        return generation_size(width, height, self.config.width * self.config.height, multiple)

    def encode_image(self, image: Float[Tensor, "H W 3"]) -> Tensor:
        """An anchor image at its own aspect ratio (anchor tokens carry their own RoPE grid)."""
        w, h = self.size_for(image.shape[1], image.shape[0])
        img = F.interpolate(image.permute(2, 0, 1)[None].float(), (h, w), mode="bilinear", antialias=True,
                            align_corners=False)[0].permute(1, 2, 0)  # fmt: skip
        return encode_video(self.vae, img[None].to(self.device))

    def encode_anchors(self, anchors: Anchors, keyframe: Tensor | None = None) -> AnchorLatents:
        return AnchorLatents(
            self.encode_image(anchors.global_image),
            {k: self.encode_image(v) for k, v in anchors.viewpoints.items()},
            {k: self.encode_image(v) for k, v in anchors.expressions.items()},
            None if keyframe is None else self.encode_image(keyframe),
        )

    def generate(self, subject: Subject, script: list[ClipSpec], anchors: Anchors) -> list[Clip]:
        latents = self.encode_anchors(anchors)
        init = None
        if self.config.refine_strength is not None:
            from .proxy import ProxyGenerator

            init = ProxyGenerator().generate(subject, script, anchors)
        clips = []
        for i, spec in enumerate(script):
            audio, rate = (None, 16000) if spec.audio is None else (spec.audio.waveforms, spec.audio.sample_rate)
            frames = None if init is None else init[i].frames
            first = anchors.global_image if frames is None else None  # I2V: the photo, or the proxy's frame 0
            clips.append(self.generate_clip(subject.rig, spec, latents, audio, rate, init=frames, first_frame=first))
        return clips

    def generate_clip(
        self, rig: Rig, spec: ClipSpec, anchors: AnchorLatents, audio: Tensor | None = None,
        sample_rate: int = 16000, init: Float[Tensor, "T H W 3"] | None = None,
        face_masks: Float[Tensor, "K T H W"] | None = None, first_frame: Float[Tensor, "H W 3"] | None = None,
    ) -> Clip:  # fmt: skip
        """One clip for the script's poses and cameras.

        Args:
            audio: K x S waveforms (one track per character) or S (one), mono at ``sample_rate``.
            init: frames to refine (SDEdit at ``config.refine_strength``), e.g. the proxy's render.
            face_masks: per-track face masks at pixel rate (default: the body maps' face mask for one track).
            first_frame: I2V backbones: the image the clip starts from (default: ``init``'s first frame).
        """
        cfg = self.config
        t = len(spec.motion)
        temporal, spatial = vae_factors(self.vae)
        t_pad = temporal * -(-(t - 1) // temporal) + 1
        idx = torch.arange(t_pad).clamp_max(t - 1)
        motion = _frames(spec.motion, idx)
        width, height = self.size_for(spec.cameras.width, spec.cameras.height)
        sx, sy = width / spec.cameras.width, height / spec.cameras.height
        Ks = spec.cameras.Ks[idx.clamp_max(len(spec.cameras) - 1)].clone()
        Ks[:, 0] *= sx
        Ks[:, 1] *= sy
        cams = Cameras(spec.cameras.T_cam_world[idx.clamp_max(len(spec.cameras) - 1)], Ks, width, height)
        maps = render_body_maps(rig, motion, cams)
        dev, dtype = self.device, self.prompt.dtype
        pose = to_latent_grid(maps.stacked(), temporal, spatial)[None].to(dev, dtype)
        audio_win, gates = None, None
        if audio is not None:
            tracks = audio[None] if audio.ndim == 1 else audio
            audio_win = torch.stack([audio_for_clip(a.float().cpu(), sample_rate, t_pad, spec.motion.fps,
                                                    self.transformer.config.audio_in_dim, temporal)
                                     for a in tracks])[None].to(dev, dtype)  # fmt: skip
            masks = maps.face[None] if face_masks is None else face_masks[:, idx]
            gates = torch.stack([to_latent_grid(m[:, None], temporal, spatial)[0] for m in masks])[None].to(dev, dtype)
        n = pose.shape[2]
        c = self.transformer.config.out_channels
        gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
        noise = torch.randn(1, c, n, height // spatial, width // spatial, generator=gen).to(dev, dtype)

        def anchor_fn(window_frames: int):
            return window_anchors(anchors, cfg.layout, window_frames, cfg.lookahead, cfg.content_anchors)

        cond = Conditioning(self.prompt, self.null_prompt, pose, audio_win, gates, anchor_fn, cfg.guidance)
        if self.is_i2v:
            cond = self._with_first_frame(
                cond, first_frame if first_frame is not None else init, t_pad, (height, width)
            )
        init_latents, start = None, 1.0
        if init is not None:
            strength = cfg.refine_strength if cfg.refine_strength is not None else 0.6
            frames = F.interpolate(init[idx].permute(0, 3, 1, 2).float(), (height, width), mode="bilinear",
                                   align_corners=False).permute(0, 2, 3, 1)  # fmt: skip
            init_latents, start = encode_video(self.vae, frames.to(dev)).to(dtype), strength
        sigmas = sigma_schedule(cfg.steps, cfg.flow_shift, start)
        if cfg.mode == "chunked":
            lat = generate_chunked(self.transformer, noise, cond, sigmas, cfg.chunk, cfg.prefix, cfg.blend,
                                   init_latents)  # fmt: skip
        else:
            lat = generate_shift_fusion(self.transformer, noise, cond, sigmas, cfg.chunk, cfg.fusion_shift,
                                        init_latents)  # fmt: skip
        video = decode_video(self.vae, lat)[:t].cpu()
        size = (spec.cameras.height, spec.cameras.width)
        frames = F.interpolate(video.permute(0, 3, 1, 2), size, mode="bilinear", antialias=True, align_corners=False)
        masks = F.interpolate(maps.mask[:t, None], size, mode="bilinear", align_corners=False)[:, 0]
        return Clip(spec.name, frames.permute(0, 2, 3, 1).clamp(0, 1).contiguous(), masks, spec.motion, spec.cameras)

    def _with_first_frame(self, cond: Conditioning, first: Tensor | None, frames: int, size: tuple[int, int]):
        """I2V conditioning (:mod:`.i2v`) from the clip's first frame, at the generation size."""
        if first is None:
            raise ValueError("this image-to-video model needs the clip's first frame: pass first_frame= or init=")
        first = first[0] if first.ndim == 4 else first
        img = F.interpolate(first.permute(2, 0, 1)[None].float(), size, mode="bilinear", antialias=True,
                            align_corners=False)[0].permute(1, 2, 0).to(self.device)  # fmt: skip
        temporal, _ = vae_factors(self.vae)
        dtype = self.prompt.dtype
        condition = first_frame_condition(self.vae, img, frames, temporal).to(dtype)
        embeds = None if self.image_encoder is None else self.image_encoder(img).to(self.device, dtype)
        return replace(cond, image_condition=condition, image_embeds=embeds)


def generation_size(width: int, height: int, area: int, multiple: int) -> tuple[int, int]:
    """The (width, height) with the aspect of ``width x height`` and about ``area`` pixels, each a multiple of
    ``multiple`` (VAE factor x patch size) and at least one multiple."""
    aspect = width / height
    w = max(multiple, round((area * aspect) ** 0.5 / multiple) * multiple)
    h = max(multiple, round((area / aspect) ** 0.5 / multiple) * multiple)
    return int(w), int(h)


def _frames(motion: Motion, idx: Tensor) -> Motion:
    return Motion.from_full_pose(motion.full_pose()[idx], motion.transl[idx], motion.expression[idx],
                                 motion.expression_names, motion.fps)  # fmt: skip


def load_anchored_generator(
    weights_dir: str | os.PathLike, device: str | torch.device = "auto", dtype: torch.dtype | None = None,
    config: AnchoredConfig | None = None,
) -> AnchoredGenerator:  # fmt: skip
    """An :class:`AnchoredGenerator` from a local weights folder (module docstring for the layout).

    Args:
        weights_dir: the folder; missing parts raise a one-line ValueError saying what to fix.
        device: "auto" (cuda when available), "cpu", "cuda", ...
        dtype: weights dtype (default bfloat16 on CUDA, float32 on CPU).
        config: sampling settings (default :class:`AnchoredConfig`).
    """
    folder = check_weights_folder(weights_dir)
    root = folder.root
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if dtype is None:
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from diffusers import AutoencoderKLWan

    from .model import AnchoredWanTransformer

    transformer = AnchoredWanTransformer.from_pretrained(root / "transformer", torch_dtype=dtype).to(device)
    vae = AutoencoderKLWan.from_pretrained(root / "vae", torch_dtype=torch.float32).to(device)
    prompt, null = load_prompt_embeds(folder.prompt_embeds, transformer.config.text_dim)
    image_encoder = None
    if folder.is_i2v and transformer.config.image_dim:
        from .i2v import ImageEncoder

        image_encoder = ImageEncoder(root, device)
    return AnchoredGenerator(transformer, vae, config or AnchoredConfig(), prompt, null, image_encoder)


def load_prompt_embeds(path: Path | None, text_dim: int) -> tuple[Tensor | None, Tensor | None]:
    """("prompt", "null") embeddings (S x text_dim each) from ``prompt_embeds.safetensors``; (None, None) without
    the file (the generator then conditions on zeros)."""
    if path is None:
        return None, None
    from safetensors.torch import load_file

    embeds = load_file(str(path))
    if "prompt" not in embeds:
        raise ValueError(f"{path}: no 'prompt' tensor; rewrite it with scripts/prompt_embeds.py")
    for key, value in embeds.items():
        if value.ndim != 2 or value.shape[1] != text_dim:
            raise ValueError(f"{path}: {key!r} is {tuple(value.shape)}, the transformer wants S x {text_dim}; "
                             "rewrite it with scripts/prompt_embeds.py and this model's text encoder")  # fmt: skip
    return embeds["prompt"], embeds.get("null")
