"""Flow-matching fine-tuning of the anchored transformer (accelerate: one script, one GPU or many).

Per step ("Gloria"'s recipe): sigma from a logit-normal, ``x = (1 - sigma) x0 + sigma noise``, target velocity
``noise - x0``; with ``prefix_probability`` the first ``prefix`` latent frames are given clean (timestep 0, no
loss) as in chunked inference; anchors are drawn from the sample's pool, which reaches outside the clip
(superset anchoring), with random dropout of each anchor and of the whole set (mixed anchor types); audio and
text are dropped for classifier-free guidance. The VAE is frozen; ``train_backbone`` also trains the Wan blocks.

    accelerate launch -m anchorsplat.diffusion.train --weights WAN_DIR --data DATASET --out OUT
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .anchors import VIEWPOINTS, AnchorLayout
from .dataset import DiffusionDataset, Sample
from .latents import encode_video
from .model import AnchorTokens
from .weights import PROMPT_EMBEDS


@dataclass(frozen=True)
class TrainConfig:
    weights: Path
    """Local diffusers Wan folder (transformer/ and vae/) to start from."""
    data: Path
    """Dataset folder written by anchorsplat.diffusion.dataset.write_dataset."""
    out: Path
    """Output folder (transformer/ + vae/), loadable with load_anchored_generator."""
    steps: int = 1000
    lr: float = 1e-4
    train_backbone: bool = False
    """Also train the whole Wan backbone (default: only the new pose / audio modules, plus LoRA if set)."""
    lora_rank: int = 0
    """> 0: LoRA adapters of this rank (peft) on the backbone's self- and cross-attention projections, merged into
    the saved weights (so the output loads like any checkpoint)."""
    gradient_checkpointing: bool = True
    """Recompute each block in the backward pass (activation memory of one block instead of all)."""
    prefix: int = 4
    prefix_probability: float = 0.3
    anchor_dropout: float = 0.3
    """Probability of dropping each anchor."""
    all_anchor_dropout: float = 0.1
    """Probability of dropping every anchor."""
    cond_dropout: float = 0.1
    """Probability of dropping audio and text together (classifier-free guidance)."""
    lookahead_max: int = 8
    """The lookahead anchor's distance is drawn from 1..lookahead_max latent frames."""
    save_every: int = 500
    seed: int = 0
    mixed_precision: str = "no"
    """accelerate's autocast: "no", "bf16" (GPU training), "fp16"."""


def sample_anchors(sample: Sample, latents: Tensor, cfg: TrainConfig, layout: AnchorLayout, window_frames: int,
                   g: torch.Generator, keyframe: Tensor | None = None) -> list[AnchorTokens]:  # fmt: skip
    """Anchor tokens for one step: dropout per anchor, mixed types, a lookahead anchor (the sample's real future
    keyframe at its distance, ``keyframe`` being its latent, or the photo at a random distance)."""
    out: list[AnchorTokens] = []
    if float(torch.rand(1, generator=g)) < cfg.all_anchor_dropout:
        return out
    used: set[float] = set()
    for i in range(latents.shape[0]):
        if float(torch.rand(1, generator=g)) < cfg.anchor_dropout:
            continue
        kind = int(sample.anchor_kind[i])
        if kind == 0:
            pos = layout.global_t
        elif kind == 2:  # the slot is the expression's offset from the expression block (see dataset.py)
            pos = layout.expression_t + int(sample.anchor_slot[i])
        else:
            pos = layout.viewpoint_position(VIEWPOINTS[int(sample.anchor_slot[i])])
        if pos in used:  # one anchor per RoPE slot
            continue
        used.add(pos)
        out.append(AnchorTokens(latents[i : i + 1], pos, 0.0, layout.w_shift))
    if latents.shape[0] and float(torch.rand(1, generator=g)) < 0.5:
        if keyframe is not None and float(torch.rand(1, generator=g)) < 0.5:  # a real future frame, its distance
            out.append(AnchorTokens(keyframe, float(window_frames - 1 + sample.keyframe_distance)))
        else:  # self-keyframing with the photo at a random distance
            d = int(torch.randint(1, cfg.lookahead_max + 1, (1,), generator=g))
            out.append(AnchorTokens(latents[:1], float(window_frames - 1 + d)))
    return out


@dataclass(frozen=True, eq=False)
class TrainBatch:
    """One training input: noisy latents with an optional clean prefix, the velocity target, the conditioning."""

    x: Tensor
    target: Tensor
    sigma: Tensor
    prefix: int
    """Leading latent frames given clean (timestep 0, excluded from the loss)."""
    prompt: Tensor
    audio: Tensor | None
    anchors: list[AnchorTokens]


def make_batch(x0: Tensor, anchor_latents: Tensor, sample: Sample, cfg: TrainConfig, layout: AnchorLayout,
               g: torch.Generator, text: Tensor, keyframe: Tensor | None = None) -> TrainBatch:  # fmt: skip
    """Noise, prefix, condition dropout and anchors for one sample's latents ``x0`` (1 C F h w)."""
    dev = x0.device
    n = x0.shape[2]
    sigma = torch.sigmoid(torch.randn(1, generator=g)).to(dev)
    noise = torch.randn(x0.shape, generator=g).to(dev)
    x = (1 - sigma) * x0 + sigma * noise
    prefix = cfg.prefix if n > cfg.prefix + 1 and float(torch.rand(1, generator=g)) < cfg.prefix_probability else 0
    if prefix:
        x = torch.cat([x0[:, :, :prefix], x[:, :, prefix:]], dim=2)
    drop = float(torch.rand(1, generator=g)) < cfg.cond_dropout
    audio = None if drop or sample.audio is None else sample.audio[None, None].to(dev)
    prompt = torch.zeros_like(text) if drop else text
    anchors = sample_anchors(sample, anchor_latents, cfg, layout, n, g, keyframe)
    return TrainBatch(x, noise - x0, sigma, prefix, prompt, audio, anchors)


def batch_loss(v: Tensor, batch: TrainBatch) -> Tensor:
    """Mean squared velocity error over the frames that were noised (the clean prefix carries no loss)."""
    return ((v - batch.target)[:, :, batch.prefix :].float() ** 2).mean()


def train_step(model, vae, sample: Sample, cfg: TrainConfig, layout: AnchorLayout, g: torch.Generator,
               text: Tensor) -> Tensor:  # fmt: skip
    """The flow-matching loss of one sample (batch 1)."""
    dev = next(model.parameters()).device
    with torch.no_grad():
        x0 = encode_video(vae, sample.frames.to(dev))
        anchor_lat = torch.cat([encode_video(vae, a[None].to(dev)) for a in sample.anchors]) if len(
            sample.anchors) else x0[:, :, :0]  # fmt: skip
        key = None if sample.keyframe is None else encode_video(vae, sample.keyframe[None].to(dev))
    batch = make_batch(x0, anchor_lat, sample, cfg, layout, g, text, key)
    v = model(batch.x, batch.sigma * 1000, batch.prompt, pose_maps=sample.pose[None].to(dev), audio=batch.audio,
              anchors=batch.anchors, clean_prefix=batch.prefix).sample  # fmt: skip
    return batch_loss(v, batch)


def train(cfg: TrainConfig) -> Path:
    from accelerate import Accelerator
    from diffusers import AutoencoderKLWan

    from .model import AnchoredWanTransformer

    acc = Accelerator(mixed_precision=cfg.mixed_precision)
    model = AnchoredWanTransformer.from_pretrained(Path(cfg.weights) / "transformer")
    vae = AutoencoderKLWan.from_pretrained(Path(cfg.weights) / "vae").to(acc.device).eval().requires_grad_(False)
    prepare_model(model, cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    data = DiffusionDataset(cfg.data)
    model, opt = acc.prepare(model, opt)
    g = torch.Generator().manual_seed(cfg.seed + acc.process_index)
    text_dim = acc.unwrap_model(model).config.text_dim
    text = torch.zeros(1, 512, text_dim)
    if (Path(cfg.weights) / PROMPT_EMBEDS).is_file():  # the prompt the generator will use (scripts/prompt_embeds.py)
        from .anchored import load_prompt_embeds

        text = load_prompt_embeds(Path(cfg.weights) / PROMPT_EMBEDS, text_dim)[0][None]
    text = text.to(acc.device)
    layout = AnchorLayout()
    model.train()
    losses = []
    for step in range(cfg.steps):
        sample = data[int(torch.randint(len(data), (1,), generator=g))]
        with acc.accumulate(model):
            loss = train_step(model, vae, sample, cfg, layout, g, text)
            acc.backward(loss)
            opt.step()
            opt.zero_grad()
        losses.append(float(loss))
        if acc.is_main_process and (step + 1) % max(1, cfg.steps // 20) == 0:
            print(f"step {step + 1}/{cfg.steps} loss {sum(losses[-50:]) / len(losses[-50:]):.4f}", flush=True)
        if acc.is_main_process and ((step + 1) % cfg.save_every == 0 or step + 1 == cfg.steps):
            save(acc.unwrap_model(model), cfg)
    return Path(cfg.out)


LORA_TARGETS = r"blocks\.\d+\.attn[12]\.(to_q|to_k|to_v|to_out\.0)"


def prepare_model(model, cfg: TrainConfig):
    """Which parameters train (new modules always; the backbone fully, or through LoRA), and checkpointing."""
    from .model import NEW_MODULE_PREFIXES

    if cfg.lora_rank > 0:
        from peft import LoraConfig

        model.add_adapter(LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_rank, target_modules=LORA_TARGETS,
                                     init_lora_weights=True))  # fmt: skip
    for name, p in model.named_parameters():
        p.requires_grad_(cfg.train_backbone or name.startswith(NEW_MODULE_PREFIXES) or ".lora_" in name)
    if cfg.gradient_checkpointing:
        model.enable_gradient_checkpointing()
    return model


def merged_state_dict(model) -> dict[str, Tensor]:
    """The model's weights with every LoRA adapter folded into its base layer, under the plain layer names."""
    from peft.tuners.lora import LoraLayer

    state = {k.replace(".base_layer.", "."): v for k, v in model.state_dict().items() if ".lora_" not in k}
    for name, module in model.named_modules():
        if isinstance(module, LoraLayer):
            for adapter in module.active_adapters:
                state[f"{name}.weight"] = state[f"{name}.weight"] + module.get_delta_weight(adapter).to(
                    state[f"{name}.weight"].dtype
                )
    return state


def save(model, cfg: TrainConfig) -> None:
    out = Path(cfg.out)
    if cfg.lora_rank > 0:
        plain = type(model)(**{k: v for k, v in model.config.items() if not k.startswith("_")})
        plain.load_state_dict(merged_state_dict(model))
        model = plain
    model.save_pretrained(out / "transformer")
    if not (out / "vae").exists():
        shutil.copytree(Path(cfg.weights) / "vae", out / "vae")
    if (Path(cfg.weights) / PROMPT_EMBEDS).is_file() and not (out / PROMPT_EMBEDS).exists():
        shutil.copy(Path(cfg.weights) / PROMPT_EMBEDS, out / PROMPT_EMBEDS)


def main() -> None:
    import tyro

    train(tyro.cli(TrainConfig))


if __name__ == "__main__":
    main()
