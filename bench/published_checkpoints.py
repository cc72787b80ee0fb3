"""Checkpoint-shaped bench: random-init Wan 2.1 T2V 1.3B / Wan 2.2 TI2V 5B at their published configs (bfloat16
transformer, float32 VAE) written in diffusers layout, checked like ``anchorsplat bake --weights DIR``, loaded by
``load_anchored_generator`` and run for one denoising step on 5 frames at 64x64. One JSON line per model, each
with the same measurements for a 1-layer build of the same config as its reference (``ratio_*``). Each model
runs in its own process so peak memory is its own. Memory: the transformer is built directly in bfloat16 and loaded
(low_cpu_mem_usage) in bfloat16, so the 5B needs about 15 GiB free (peak RSS 14.8 GiB measured), the 1.3B about
4.3 GiB; each also writes its checkpoint to a temporary folder (12.8 GB / 3.3 GB).

    python bench/published_checkpoints.py --threads 1                     # both models
    python bench/published_checkpoints.py --threads 1 --name wan2.1-t2v-1.3b
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def measure(name: str, num_layers: int | None, folder: Path) -> dict:
    from anchorsplat.commands import _check_generator_options
    from anchorsplat.configs import BakeConfig
    from anchorsplat.diffusion.anchored import AnchoredConfig, load_anchored_generator
    from anchorsplat.diffusion.generator import Anchors, ClipSpec
    from anchorsplat.diffusion.published import write_random_checkpoint
    from anchorsplat.gaussians.conventions import framing_cameras
    from anchorsplat.gaussians.motion import Motion
    from anchorsplat.gaussians.synthetic import synthetic_rig

    t0 = time.perf_counter()
    write_random_checkpoint(folder, name, num_layers=num_layers, dtype=torch.bfloat16)
    t_write = time.perf_counter() - t0
    size = sum(f.stat().st_size for f in folder.rglob("*.safetensors"))
    t0 = time.perf_counter()
    _check_generator_options(BakeConfig(generator="anchored", weights=folder))
    config = AnchoredConfig(width=64, height=64, steps=1, chunk=8, lookahead=2)
    gen = load_anchored_generator(folder, device="cpu", dtype=torch.bfloat16, config=config)
    t_load = time.perf_counter() - t0
    rig = synthetic_rig()
    spec = ClipSpec(
        "turn", Motion.zeros(5), framing_cameras(rig.vertices_rest, torch.linspace(0, 30, 5), width=48, height=48)
    )
    t0 = time.perf_counter()
    with torch.no_grad():
        anchors = gen.encode_anchors(Anchors(torch.rand(64, 64, 3)))
        clip = gen.generate_clip(rig, spec, anchors, audio=torch.randn(16000) * 0.1)
    t_step = time.perf_counter() - t0
    assert torch.isfinite(clip.frames).all()
    params = sum(p.numel() for p in gen.transformer.parameters())
    return {"write_s": round(t_write, 1), "load_s": round(t_load, 1), "one_step_s": round(t_step, 2),
            "transformer_params": params, "checkpoint_bytes": size}  # fmt: skip


def child(name: str) -> None:
    out = {}
    for label, layers in (("reference_1_layer", 1), ("full", None)):
        with tempfile.TemporaryDirectory(prefix="wan_shaped_") as tmp:
            out[label] = measure(name, layers, Path(tmp))
    full, ref = out["full"], out["reference_1_layer"]
    line = {
        "bench": "published_checkpoints", "model": name, "device": "cpu", "threads": torch.get_num_threads(),
        **{k: v for k, v in full.items()}, "reference_1_layer": ref,
        "ratio_one_step": round(full["one_step_s"] / max(ref["one_step_s"], 1e-9), 2),
        "ratio_load": round(full["load_s"] / max(ref["load_s"], 1e-9), 2),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "resolution": "64x64x5 frames, 1 step", "python": platform.python_version(),
    }  # fmt: skip
    print(json.dumps(line), flush=True)


def main() -> None:
    from anchorsplat.diffusion.published import PUBLISHED

    ap = argparse.ArgumentParser()
    ap.add_argument("--name", choices=list(PUBLISHED), default=None, help="one model (default: each, own process)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.name:
        child(args.name)
        return
    for name in PUBLISHED:
        cmd = [sys.executable, __file__, "--name", name] + (["--threads", str(args.threads)] if args.threads else [])
        subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
