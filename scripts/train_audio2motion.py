"""Train the learned causal audio-to-motion model on synthetic phoneme-aligned speech (espeak-ng) and write it
to assets/audio2motion (config.json + model.safetensors, see anchorsplat.runtime.learned).

    apt-get install espeak-ng
    python scripts/train_audio2motion.py [--clips 900] [--steps 1500] [--out assets/audio2motion]

Data: --clips random clips of 1-3 sentences each from the training split of anchorsplat.runtime.speechdata
(training voices only; held-out sentences and voices stay unseen for bench/audio2motion.py), degraded like real
recordings. Loss: L1 on every look-ahead head (head h against the target h steps back), plus L1 on the lip
aperture and on frame-to-frame velocity (so the mouth neither drifts nor jitters). One CPU thread by default:
the machine is shared. The defaults reproduce the shipped weights (espeak-ng 1.51, one thread; data generation
about 5 minutes, 1500 steps 4 to 20 minutes on one core, depending on load); the run's settings are stored in
the model's config.json.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from anchorsplat.runtime.channels import CHANNEL_NAMES, NUM_VISEME, lip_aperture
from anchorsplat.runtime.learned import DEFAULT_MODEL_DIR, Audio2MotionNet, LearnedConfig, save_model
from anchorsplat.runtime.speechdata import make_clip
from anchorsplat.runtime.synthspeech import espeak_available


def build_dataset(clips: int, seed: int, cache: Path | None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    if cache is not None and cache.exists():
        data = np.load(cache, allow_pickle=False)
        n = int(data["count"])
        print(f"loaded {n} clips from {cache}", flush=True)
        return [data[f"f{i}"] for i in range(n)], [data[f"t{i}"] for i in range(n)]
    rng = np.random.default_rng(seed)
    features, targets, start, seconds = [], [], time.time(), 0.0
    for i in range(clips):
        clip = make_clip(rng, "train")
        features.append(clip.features.astype(np.float32))
        targets.append(clip.targets.astype(np.float32))
        seconds += len(clip.samples) / 16000
        if (i + 1) % 100 == 0:
            print(f"  {i + 1}/{clips} clips, {seconds / 60:.1f} min of speech, {time.time() - start:.0f} s", flush=True)
    if cache is not None:
        arrays = {f"f{i}": f for i, f in enumerate(features)} | {f"t{i}": t for i, t in enumerate(targets)}
        np.savez(cache, count=np.array(len(features)), **arrays)
    return features, targets


def sample_batch(features, targets, rng: np.random.Generator, batch: int, length: int):
    xs, ys = [], []
    for i in rng.integers(0, len(features), size=batch):
        f, t = features[i], targets[i]
        if len(f) <= length:
            pad = length - len(f)
            f = np.concatenate([f, np.repeat(f[-1:] * 0 + f.min(0, keepdims=True), pad, 0)])
            t = np.concatenate([t, np.zeros((pad, t.shape[1]), np.float32)])
            start = 0
        else:
            start = int(rng.integers(0, len(f) - length))
        xs.append(f[start : start + length])
        ys.append(t[start : start + length])
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def aperture(visemes: torch.Tensor) -> torch.Tensor:
    pad = visemes.new_zeros(*visemes.shape[:-1], len(CHANNEL_NAMES) - NUM_VISEME)
    return lip_aperture(torch.cat([visemes, pad], -1))


def loss_fn(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """out B T H V, target B T V: head h at step t is compared with the target at t - h."""
    total = out.new_zeros(())
    heads = out.shape[2]
    for h in range(heads):
        pred, tgt = out[:, h:, h], target[:, : target.shape[1] - h]
        weight = 2.0 if h == 0 else 1.0
        total = total + weight * (pred - tgt).abs().mean()
        total = total + weight * (aperture(pred) - aperture(tgt)).abs().mean()
        total = total + weight * 2.0 * ((pred[:, 1:] - pred[:, :-1]) - (tgt[:, 1:] - tgt[:, :-1])).abs().mean()
    return total / heads


def train(args) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.time()
    features, targets = build_dataset(args.clips, args.seed, args.cache)
    data_s = time.time() - t0
    # espeak-ng changes the thread's denormal handling (measured: loading --cache and generating the data trained
    # different weights); set it explicitly so both give the same weights
    torch.set_flush_denormal(False)
    print(f"data: {len(features)} clips, {sum(len(f) for f in features) / 6000:.1f} min, {data_s:.0f} s", flush=True)
    config = LearnedConfig(hidden=args.hidden, heads=args.heads)
    net = Audio2MotionNet(config)
    stacked = np.concatenate(features)
    net.feature_mean.copy_(torch.from_numpy(stacked.mean(0)))
    net.feature_std.copy_(torch.from_numpy(stacked.std(0) + 1e-3))
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    rng = np.random.default_rng(args.seed + 1)
    start, running = time.time(), None
    for step in range(1, args.steps + 1):
        lr = args.lr * 0.5 * (1 + math.cos(math.pi * (step - 1) / args.steps))
        for group in opt.param_groups:
            group["lr"] = lr
        x, y = sample_batch(features, targets, rng, args.batch, args.length)
        out, _, _ = net(x)
        loss = loss_fn(out, y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 100 == 0:
            print(f"  step {step}  loss {running:.4f}  lr {lr:.2e}  {time.time() - start:.0f} s", flush=True)
    train_s = time.time() - start
    settings = {k: v for k, v in vars(args).items() if k not in ("out", "cache")}
    info = {
        "trained_on": f"{len(features)} synthetic espeak-ng clips (training split of anchorsplat.runtime.speechdata)",
        "settings": settings,
        "final_loss": running, "data_seconds": round(data_s, 1), "train_seconds": round(train_s, 1),
    }  # fmt: skip
    save_model(args.out, net, info)
    size = sum(p.stat().st_size for p in Path(args.out).iterdir())
    print(
        f"wrote {args.out} ({size / 1024:.0f} KiB): {args.steps} steps, data {data_s:.0f} s + training {train_s:.0f} s"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--clips", type=int, default=900)
    parser.add_argument("--steps", type=int, default=1500, help="optimiser steps (cosine learning-rate decay)")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--heads", type=int, default=7)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=300, help="training crop, 10 ms steps")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=None, help="an .npz to keep the generated data in")
    args = parser.parse_args(argv)
    if not espeak_available():
        sys.exit("train_audio2motion: espeak-ng is not installed: apt-get install espeak-ng")
    train(args)


if __name__ == "__main__":
    main()
