"""Player speed: frames per second and audio-to-frame latency of a baked avatar driven by speech; ONE JSON line.

    python bench/play.py                                        # 20k and 100k Gaussians x 512^2 and 1024^2
    python bench/play.py --sizes 20000 --resolutions 512 --frames 10
    python bench/play.py --threads 1                            # a CPU shared with other work: see below

The avatar is the shipped demo (``assets/body.anchorsplat``, Anny rig, 30k Gaussians baked on the body): a random
subset for sizes below its count, its Gaussians repeated for sizes above (the rasterizer's cost is the same as for
distinct splats at the same places). The player runs its live loop: the sample speech arrives in chunks of
``--chunk-ms`` (a microphone's buffer), each chunk is pushed through causal audio-to-motion (look-ahead 0 unless
``--lookahead-ms``), and every frame it completes is posed and rendered before the next chunk is taken.

Per configuration:
- ``fps``: frames rendered per wall-clock second of the loop (``real_time``: fps over the target --fps);
- ``latency_ms`` (median, p95): from the moment the chunk that completes a frame's audio is handed to the player
  to the frame's pixels being ready on the host (motion + pose + render + copy); the audio-to-frame latency of a
  live stream adds the capture buffer (``chunk_ms``, at most) and the algorithmic look-ahead (``lookahead_ms``);
- ``motion_ms``: audio-to-motion compute per chunk (features + model + procedural + retrieval);
- ``pose_ms`` / ``render_ms``: posing the rig and the Gaussians, and rendering + copy, per frame;
- reference, measured in the same run: ``bare_render_ms``, rendering the rest-pose Gaussians alone
  (``render`` on pre-posed splats: gsplat on CUDA, the torch rasterizer on CPU).

On a CPU that other processes keep busy, torch's intra-op thread pool can be many times slower than one thread
(measured on 2 shared cores: 1.66 s vs 0.07 s for the same render), so such runs should pass ``--threads 1``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from anchorsplat.gaussians.assets import assets_dir
from anchorsplat.gaussians.io import Avatar, load_avatar
from anchorsplat.gaussians.render import render
from anchorsplat.gaussians.rigged import canonical_posed, pose
from anchorsplat.runtime.audio import SAMPLE_RATE, load_audio
from anchorsplat.runtime.channels import motion_for_rig
from anchorsplat.runtime.player import StreamingPlayer

ASSETS = assets_dir()


def sized(avatar: Avatar, count: int, seed: int = 0) -> Avatar:
    generator = torch.Generator().manual_seed(seed)
    n = len(avatar.gaussians)
    if count <= n:
        index = torch.randperm(n, generator=generator)[:count]
    else:
        index = torch.cat([torch.arange(n).repeat(count // n), torch.randperm(n, generator=generator)[: count % n]])
    return Avatar(avatar.rig, avatar.gaussians.subset(index))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _stats(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 3), "p95": round(float(np.percentile(values, 95)), 3)}


def run_config(avatar: Avatar, speech: np.ndarray, resolution: int, args, device: torch.device) -> dict:
    player = StreamingPlayer(
        avatar, fps=args.fps, resolution=resolution, view="front", backend=args.backend, device=device,
        model=args.model, lookahead_ms=args.lookahead_ms,
    )  # fmt: skip
    chunk = max(1, round(SAMPLE_RATE * args.chunk_ms / 1000))
    latency, motion_ms, pose_ms, render_ms, frames, warm = [], [], [], [], 0, 1
    start = None
    for offset in range(0, len(speech), chunk):
        if frames >= args.frames + warm:
            break
        player.feed(speech[offset : offset + chunk])
        motion_ms.append(player.audio.last_compute_ms)
        for frame in player.frames():
            frames += 1
            if frames == warm:  # the first frame pays for lazy initialisation (JIT, caches)
                start = time.perf_counter()
                continue
            if frames > warm:
                latency.append(frame.latency_ms)
    elapsed = time.perf_counter() - start
    # split one frame's cost into pose and render (the loop above measures them together)
    face = player.frame_motion(0, None)
    for _ in range(max(1, min(3, args.frames))):
        t0 = time.perf_counter()
        motion = motion_for_rig(face, player.rig).to(device=player.device, dtype=player.rig.vertices_rest.dtype)
        with torch.no_grad():
            posed = pose(player.gaussians, player.rig, motion)
        _sync(device)
        t1 = time.perf_counter()
        with torch.no_grad():
            out = render(posed, player.cameras, backend=args.backend, background=player.background)
        out.rgb.cpu()
        t2 = time.perf_counter()
        pose_ms.append(1000 * (t1 - t0))
        render_ms.append(1000 * (t2 - t1))
    return {
        "gaussians": len(avatar.gaussians),
        "resolution": resolution,
        "frames": len(latency),
        "fps": round(len(latency) / elapsed, 2),
        "real_time": round(len(latency) / elapsed / args.fps, 3),
        "latency_ms": _stats(latency),
        "motion_ms": _stats(motion_ms[5:] or motion_ms),
        "pose_ms": _stats(pose_ms),
        "render_ms": _stats(render_ms),
        "bare_render_ms": bare_render(player, args),
    }


def bare_render(player: StreamingPlayer, args) -> dict:
    posed = canonical_posed(player.gaussians, player.rig)
    times = []
    with torch.no_grad():
        for i in range(max(2, min(4, args.frames)) + 1):
            t0 = time.perf_counter()
            out = render(posed, player.cameras, backend=args.backend, background=player.background)
            out.rgb.cpu()
            if i:  # the first call warms up
                times.append(1000 * (time.perf_counter() - t0))
    return _stats(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--avatar", type=Path, default=ASSETS / "body.anchorsplat")
    parser.add_argument("--audio", type=Path, default=ASSETS / "sample_speech.flac")
    parser.add_argument("--sizes", type=int, nargs="+", default=[20000, 100000])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--frames", type=int, default=None, help="timed frames per configuration (CUDA 90, CPU 3)")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--chunk-ms", type=float, default=10.0)
    parser.add_argument("--lookahead-ms", type=float, default=0.0)
    parser.add_argument("--model", default="learned")
    parser.add_argument("--backend", default="auto", choices=["auto", "gsplat", "torch"])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() and args.device != "cpu" else "cpu")
    if args.device == "cuda" and device.type != "cuda":
        sys.exit("bench/play.py: --device cuda but no CUDA device is available")
    if args.frames is None:
        args.frames = 90 if device.type == "cuda" else 3
    speech = load_audio(args.audio).samples
    speech = np.tile(speech, 1 + int(args.frames / args.fps * SAMPLE_RATE * 2) // len(speech))  # enough audio
    avatar = load_avatar(args.avatar)
    began = time.time()
    results = [
        run_config(sized(avatar, n), speech, r, args, device) for n in args.sizes for r in args.resolutions
    ]  # fmt: skip
    if device.type == "cuda":
        where = torch.cuda.get_device_name(device)
    else:
        where = f"cpu ({platform.processor() or platform.machine()}), {torch.get_num_threads()} threads"
    result = {
        "bench": "play", "device": where, "backend": args.backend, "model": args.model, "fps_target": args.fps,
        "chunk_ms": args.chunk_ms, "lookahead_ms": args.lookahead_ms, "configs": results,
        "seconds": round(time.time() - began, 1),
    }  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
