"""Train a small anchored model on synthetic clips of our own rig (for a GPU; ``--smoke`` runs in a minute on CPU).

1. subject: the sample photo on the default Anny rig (synthetic rig with --smoke);
2. clips: ProxyGenerator renders head-and-shoulders orbits (known poses and cameras; the face large enough for
   dlib at the default 192 px, so bench/identity_drift.py can score identity) and, for half the clips, talking
   from the front: the shipped sample speech drives the mouth through the runtime's audio-to-motion model and
   rides along as the samples' audio (so the audio branch learns) -> dataset (write_dataset);
3. model: a small random Wan transformer + VAE built from code (or --weights, a local Wan folder), trained with
   diffusion/train.py; the result loads with ``load_anchored_generator(OUT)`` and feeds bench/identity_drift.py.

    python scripts/train_anchored_small.py --out /tmp/anchored_small                       # GPU (target <= 8 min)
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


def talking_clips(rig, count: int, frames: int, fps: float = 15.0):
    """``count`` (name, face motion, 16 kHz waveform) cut one after another from the shipped sample speech, the
    face made from the audio by the runtime's shipped audio-to-motion model (as the bake's talk clips are)."""
    from anchorsplat.gaussians.motion import Motion
    from anchorsplat.runtime.audio import load_audio
    from anchorsplat.runtime.channels import motion_for_rig
    from anchorsplat.runtime.motion import audio_to_motion

    speech = load_audio(asset_path("sample_speech.flac"))
    face = motion_for_rig(audio_to_motion(speech, fps=fps, seed=0), rig)
    wave = torch.from_numpy(speech.samples).float()
    out = []
    for i in range(count):
        index = torch.arange(i * frames, (i + 1) * frames) % len(face)
        start = int(index[0]) / fps
        cut = wave[round(start * 16000) : round((start + frames / fps) * 16000)]
        motion = Motion.from_full_pose(face.full_pose()[index], face.transl[index], face.expression[index],
                                       face.expression_names, fps)  # fmt: skip
        out.append((f"talk{i}", motion, cut))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--weights", type=Path, default=None)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--size", type=int, default=192, help="frame side; dlib finds the sample's face from ~192 px")
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from PIL import Image

    from anchorsplat.bake.script import framing_points
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
    points = framing_points(subject, portrait=True)  # head and shoulders, as the sample photo is framed
    g = torch.Generator().manual_seed(0)
    script = []
    talks = max(1, clips // 2)
    for i in range(clips - talks):
        start = float(torch.rand(1, generator=g)) * 360
        yaw = torch.linspace(start, start + float(torch.randn(1, generator=g)) * 120, frames)
        script.append(ClipSpec(f"orbit{i}", Motion.zeros(frames),
                               framing_cameras(points, yaw, width=size, height=size)))  # fmt: skip
    audio = {}
    for i, (name, face, wave) in enumerate(talking_clips(rig, talks, frames)):
        yaw = torch.linspace(-30.0, 30.0, frames) * (1 if i % 2 else -1)
        script.append(ClipSpec(name, face, framing_cameras(points, yaw, width=size, height=size)))
        audio[name] = (wave, 16000)
    proxy = ProxyGenerator(ProxyConfig(num_gaussians=2000 if args.smoke else 60000))
    rendered = proxy.generate(subject, script, Anchors(photo))
    args.out.mkdir(parents=True, exist_ok=True)
    data = write_dataset(args.out / "data", rendered, rig, photo, window=9 if args.smoke else 17, size=(size, size),
                         audio=audio)  # fmt: skip
    weights = args.weights or small_folder(args.out / "init", args.smoke)
    gpu = torch.cuda.is_available()
    # from scratch: train everything; from a real Wan backbone: LoRA on its attention + the new modules
    train(TrainConfig(weights, data, args.out / "model", steps=3 if args.smoke else args.steps,
                      train_backbone=args.weights is None, lr=1e-3 if args.weights is None else 1e-4,
                      lora_rank=0 if args.weights is None else 16, mixed_precision="bf16" if gpu else "no",
                      gradient_checkpointing=args.weights is not None))  # fmt: skip
    rig_flag = " --rig synthetic --size 32" if args.smoke else f" --size {size}"
    print(f"trained model in {args.out / 'model'}; then: python bench/identity_drift.py --weights {args.out / 'model'}"
          f"{rig_flag}")  # fmt: skip


if __name__ == "__main__":
    main()
