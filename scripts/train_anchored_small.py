"""Train a small anchored model on synthetic clips of our own rig (for a GPU; ``--smoke`` runs in a minute on CPU).

1. subject: the sample photo on the default Anny rig (synthetic rig with --smoke), camera framing the body;
2. clips: ProxyGenerator renders orbiting / turning clips (known poses and cameras) -> dataset (write_dataset);
3. model: a small random Wan transformer + VAE built from code (or --weights, a local Wan folder), trained with
   diffusion/train.py; the result loads with ``load_anchored_generator(OUT)`` and feeds bench/identity_drift.py.

    python scripts/train_anchored_small.py --out /tmp/anchored_small --steps 4000          # GPU
    python scripts/train_anchored_small.py --out /tmp/anchored_smoke --smoke                # CPU smoke test
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch

from anchorsplat.gaussians.assets import asset_path

ROOT = Path(__file__).resolve().parent.parent


def small_folder(root: Path, smoke: bool) -> Path:
    from diffusers import AutoencoderKLWan
    from diffusers.models.transformers.transformer_wan import WanTransformer3DModel

    from anchorsplat.diffusion.latents import tiny_vae_config
    from anchorsplat.diffusion.model import tiny_config

    cfg = tiny_config() if smoke else tiny_config(num_attention_heads=8, attention_head_dim=64, ffn_dim=2048,
                                                  num_layers=8, text_dim=64, freq_dim=128, in_channels=16,
                                                  out_channels=16, rope_max_seq_len=1024)  # fmt: skip
    cfg = {k: v for k, v in cfg.items() if k not in ("pose_channels", "audio_in_dim")}
    WanTransformer3DModel(**cfg).save_pretrained(root / "transformer")
    vae = tiny_vae_config() if smoke else {**tiny_vae_config(), "base_dim": 32, "z_dim": 16,
                                          "latents_mean": [0.0] * 16, "latents_std": [1.0] * 16}  # fmt: skip
    AutoencoderKLWan(**vae).save_pretrained(root / "vae")
    return root


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--weights", type=Path, default=None)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from PIL import Image

    from anchorsplat.diffusion.dataset import write_dataset
    from anchorsplat.diffusion.generator import Anchors, ClipSpec, Subject
    from anchorsplat.diffusion.proxy import ProxyConfig, ProxyGenerator
    from anchorsplat.diffusion.train import TrainConfig, train
    from anchorsplat.gaussians.conventions import framing_cameras
    from anchorsplat.gaussians.motion import Motion

    size, frames, clips = (32, 9, 2) if args.smoke else (args.size, 49, args.clips)
    if args.smoke:
        from anchorsplat.gaussians.synthetic import synthetic_rig

        rig = synthetic_rig()
    else:
        from anchorsplat.gaussians.io import load_rig

        rig = load_rig(asset_path("anny_default.rig.safetensors"))
    img = Image.open(asset_path("sample", "astronaut.png")).convert("RGB").resize((size, size))
    photo = torch.from_numpy(np.asarray(img).copy()).float() / 255
    cam0 = framing_cameras(rig.vertices_rest, torch.zeros(1), width=size, height=size)
    subject = Subject(photo, torch.ones(size, size), rig, Motion.zeros(1), cam0)
    g = torch.Generator().manual_seed(0)
    script = []
    for i in range(clips):
        start = float(torch.rand(1, generator=g)) * 360
        yaw = torch.linspace(start, start + float(torch.randn(1, generator=g)) * 120, frames)
        script.append(ClipSpec(f"orbit{i}", Motion.zeros(frames),
                               framing_cameras(rig.vertices_rest, yaw, width=size, height=size)))  # fmt: skip
    proxy = ProxyGenerator(ProxyConfig(num_gaussians=2000 if args.smoke else 60000))
    rendered = proxy.generate(subject, script, Anchors(photo))
    args.out.mkdir(parents=True, exist_ok=True)
    data = write_dataset(args.out / "data", rendered, rig, photo, window=9 if args.smoke else 17, size=(size, size))
    weights = args.weights or small_folder(args.out / "init", args.smoke)
    gpu = torch.cuda.is_available()
    # from scratch: train everything; from a real Wan backbone: LoRA on its attention + the new modules
    train(TrainConfig(weights, data, args.out / "model", steps=3 if args.smoke else args.steps,
                      train_backbone=args.weights is None, lr=1e-3 if args.weights is None else 1e-4,
                      lora_rank=0 if args.weights is None else 16, mixed_precision="bf16" if gpu else "no",
                      gradient_checkpointing=args.weights is not None))  # fmt: skip
    print(f"trained model in {args.out / 'model'}; try: python bench/identity_drift.py --weights {args.out / 'model'}")


if __name__ == "__main__":
    main()
