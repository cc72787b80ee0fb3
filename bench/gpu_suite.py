"""The GPU suite: one command on a CUDA machine, ONE JSON line, within ~8 minutes including gsplat's first compile.

    pip install -e ".[dev,cuda]"          # gsplat 1.5.3 (JIT-compiled on first use, cached afterwards)
    python bench/gpu_suite.py             # CUDA: the figures below
    python bench/gpu_suite.py --dry-run   # anywhere: every step at toy sizes on the CPU (torch renderer), to
                                          # check the script itself before it meets a GPU

Sections, in order (each one's failure is reported in its own field; the others still run):
- ``gsplat_first_use_s``: the first ``gsplat.rasterization`` call (its JIT compile unless cached);
- ``gpu_tests``: ``pytest -m gpu`` (gsplat against the torch renderer: images and gradients);
- ``backends``: the same comparison on the shipped body, as figures: the largest pixel difference (target
  <= 1e-3) and the gradients' cosine;
- ``play``: the live player (audio -> motion -> pose -> render -> host) on 100k Gaussians at 1024^2, frames per
  second and audio-to-frame latency, with bare ``gsplat.rasterization`` of the same posed splats at the same
  size in the same run: ``play_over_bare`` is the ratio of frame times (target <= 1.5);
- ``bake``: a ``standard`` bake of the bundled sample portrait on the GPU, wall time per stage and in total;
- ``peak_gpu_memory_mb`` per section.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def _bench_module(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Section:
    """Times a section, records its peak GPU memory, and turns an exception into an ``error`` field."""

    def __init__(self, report: dict, name: str, device: torch.device) -> None:
        self.report, self.name, self.device = report, name, device

    def __enter__(self) -> dict:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self.start = time.perf_counter()
        self.out: dict = {}
        return self.out

    def __exit__(self, kind, exc, tb) -> bool:
        self.out["seconds"] = round(time.perf_counter() - self.start, 2)
        if self.device.type == "cuda":
            self.out["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)
        if exc is not None:
            self.out["error"] = f"{kind.__name__}: {exc}"
            self.out["where"] = traceback.format_tb(tb)[-1].strip().splitlines()[0]
        self.report[self.name] = self.out
        return kind is None or issubclass(kind, Exception)  # the next section still runs (not after Ctrl-C)


def gsplat_first_use(device: torch.device) -> float:
    import gsplat

    means = torch.randn(1000, 3, device=device) * 0.2 + torch.tensor([0.0, 0.0, 3.0], device=device)
    quats = torch.nn.functional.normalize(torch.randn(1000, 4, device=device), dim=-1)
    scales = torch.full((1000, 3), 0.02, device=device)
    opacities = torch.full((1000,), 0.8, device=device)
    colors = torch.rand(1000, 3, device=device)
    K = torch.tensor([[100.0, 0, 64], [0, 100.0, 64], [0, 0, 1]], device=device)[None]
    start = time.perf_counter()
    gsplat.rasterization(means, quats, scales, opacities, colors, torch.eye(4, device=device)[None], K, 128, 128)
    _sync(device)
    return round(time.perf_counter() - start, 2)


def gpu_tests(dry_run: bool) -> dict:
    """``pytest -m gpu``; a dry run only collects them (there is no GPU to run them on)."""
    command = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", "tests"]
    if dry_run:
        command.append("--collect-only")
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    tail = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr.strip()[-300:]
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)", tail)}
    if dry_run:  # "N/M tests collected (K deselected)" or "N tests collected"
        found = re.search(r"(\d+)(?:/\d+)? tests? collected", tail)
        counts["collected"] = int(found.group(1)) if found else 0
    return {"exit_code": done.returncode, "summary": tail, **counts}


def backends(device: torch.device, dry_run: bool) -> dict:
    """gsplat against the torch renderer on the shipped body (20k Gaussians, 256^2): the largest pixel
    difference (target <= 1e-3) and the cosine of their gradients. A dry run compares torch with itself."""
    from anchorsplat.gaussians.assets import asset_path
    from anchorsplat.gaussians.conventions import framing_cameras
    from anchorsplat.gaussians.io import load_avatar
    from anchorsplat.gaussians.motion import Motion
    from anchorsplat.gaussians.render import render
    from anchorsplat.gaussians.rigged import PosedGaussians, pose

    size, resolution = (1500, 48) if dry_run else (20_000, 256)
    avatar = _bench_module("play").sized(load_avatar(asset_path("body.anchorsplat")), size)
    with torch.no_grad():
        posed = pose(avatar.gaussians.to(device), avatar.rig.to(device), Motion.zeros(1, device=device))
    cams = framing_cameras(posed.means[0], torch.tensor([0.0, 35.0], device=device), width=resolution,
                           height=resolution)  # fmt: skip
    background = torch.ones(3, device=device)
    outs, grads = {}, {}
    for backend in ("torch", "torch" if dry_run else "gsplat"):
        leaves = [t.detach().clone().requires_grad_(True) for t in (posed.means, posed.quats_wxyz, posed.scales,
                                                                     posed.opacities, posed.sh_coeffs)]  # fmt: skip
        out = render(PosedGaussians(*leaves), cams, backend=backend, background=background)
        weights = torch.rand(out.rgb.shape, generator=torch.Generator(device=device).manual_seed(0), device=device)
        (out.rgb * weights).sum().backward()
        outs[out.backend], grads[out.backend] = out, [leaves[i].grad for i in (0, 3, 4)]
    a, b = outs["torch"], outs["torch" if dry_run else "gsplat"]
    cosine = [float(torch.nn.functional.cosine_similarity(x.flatten(), y.flatten(), dim=0))
              for x, y in zip(grads["torch"], grads[b.backend], strict=True)]  # fmt: skip
    return {
        "gaussians": size, "resolution": resolution, "compared": f"torch vs {b.backend}",
        "max_abs_rgb_diff": float((a.rgb - b.rgb).abs().max()),
        "max_abs_alpha_diff": float((a.alpha - b.alpha).abs().max()),
        "grad_cosine_means_opacity_sh": [round(c, 5) for c in cosine],
    }  # fmt: skip


def play(device: torch.device, dry_run: bool) -> dict:
    """The live player and bare gsplat rasterization of the same splats at the same size."""
    from anchorsplat.gaussians.assets import asset_path
    from anchorsplat.gaussians.io import load_avatar
    from anchorsplat.gaussians.rigged import pose
    from anchorsplat.runtime.audio import SAMPLE_RATE, load_audio
    from anchorsplat.runtime.channels import motion_for_rig

    bench_play = _bench_module("play")
    size, resolution, frames = (2000, 64, 3) if dry_run else (100_000, 1024, 120)
    args = argparse.Namespace(
        fps=30.0, backend="torch" if dry_run else "gsplat", model="learned", lookahead_ms=0.0, chunk_ms=10.0,
        frames=frames,
    )  # fmt: skip
    speech = load_audio(asset_path("sample_speech.flac")).samples
    speech = np.tile(speech, 1 + int(frames / args.fps * SAMPLE_RATE * 2) // len(speech))
    avatar = bench_play.sized(load_avatar(asset_path("body.anchorsplat")), size)
    row = bench_play.run_config(avatar, speech, resolution, args, device)
    # bare rasterization of the player's own posed splats, same camera, same size
    player = bench_play.StreamingPlayer(avatar, fps=args.fps, resolution=resolution, view="front",
                                        backend=args.backend, device=device, model="baseline")  # fmt: skip
    motion = motion_for_rig(player.frame_motion(0, None), player.rig).to(device=device, dtype=torch.float32)
    with torch.no_grad():
        posed = pose(player.gaussians, player.rig, motion)
    if dry_run:
        from anchorsplat.gaussians.render import render

        def bare():
            return render(posed, player.cameras, backend="torch", background=player.background)
    else:
        bare = _bench_module("render").bare_gsplat(posed, player.cameras)
    times = []
    for i in range(4 if dry_run else 51):
        _sync(device)
        t0 = time.perf_counter()
        with torch.no_grad():
            bare()
        _sync(device)
        if i:
            times.append(1000 * (time.perf_counter() - t0))
    bare_ms = float(np.median(times))
    play_ms = 1000.0 / row["fps"]
    return {
        "gaussians": size, "resolution": resolution, "fps": row["fps"], "latency_ms": row["latency_ms"],
        "pose_ms": row["pose_ms"], "render_ms": row["render_ms"], "bare_ms": round(bare_ms, 3),
        "bare_fps": round(1000.0 / bare_ms, 1), "play_over_bare": round(play_ms / bare_ms, 2),
        "bare": "torch render (dry run)" if dry_run else "gsplat.rasterization",
    }  # fmt: skip


def bake(device: torch.device, dry_run: bool) -> dict:
    """A ``standard`` bake of the bundled sample (a toy preset on a dry run), seconds per stage."""
    from anchorsplat.bake.job import STAGES, Job, JobSettings
    from anchorsplat.bake.pipeline import run_bake
    from anchorsplat.bake.presets import PRESETS
    from anchorsplat.gaussians.assets import asset_path

    preset = PRESETS["standard"]
    if dry_run:
        preset = replace(preset, name="dry-run", resolution=32, frames_per_clip=3, proxy_gaussians=1500,
                         gaussians=400, iterations=8, holdout_every=3, densify_every=4,
                         checkpoint_every=4)  # fmt: skip
    settings = JobSettings(photo=str(asset_path("sample", "astronaut.png")), preset="standard", device=device.type,
                           export_dataset=False)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_bake(settings, Path(tmp) / "job", preset=preset, echo=lambda *_: None)
        total = time.perf_counter() - start
        job = Job(Path(tmp) / "job", settings)
        stages = {s: job.stage_record(s).get("seconds") for s in STAGES}
        fit = job.stage_record("fit")
    return {"preset": preset.name, "iterations": preset.iterations, "total_s": round(total, 1), "stages_s": stages,
            "heldout_psnr": fit.get("heldout_psnr"), "gaussians": fit.get("gaussians")}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="toy sizes on the CPU (checks the script)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["tests", "backends", "play", "bake"])
    args = parser.parse_args(argv)
    if args.dry_run:
        device = torch.device("cpu")
    elif not torch.cuda.is_available():
        sys.exit("bench/gpu_suite.py: no CUDA device here; run it on a GPU machine, or pass --dry-run")
    else:
        device = torch.device("cuda")
    began = time.perf_counter()
    report: dict = {"bench": "gpu_suite", "dry_run": args.dry_run, "torch": torch.__version__}
    report["device"] = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (dry run)"
    if device.type == "cuda":
        with Section(report, "gsplat", device) as out:
            import gsplat

            out["version"] = gsplat.__version__
            out["first_use_s"] = gsplat_first_use(device)
    if "tests" not in args.skip:
        with Section(report, "gpu_tests", device) as out:
            out.update(gpu_tests(args.dry_run))
    if "backends" not in args.skip:
        with Section(report, "backends", device) as out:
            out.update(backends(device, args.dry_run))
    if "play" not in args.skip:
        with Section(report, "play", device) as out:
            out.update(play(device, args.dry_run))
    if "bake" not in args.skip:
        with Section(report, "bake", device) as out:
            out.update(bake(device, args.dry_run))
    if device.type == "cuda":
        report["peak_gpu_memory_mb"] = max(s.get("peak_gpu_memory_mb", 0.0) for s in report.values()
                                           if isinstance(s, dict))  # fmt: skip
    report["seconds"] = round(time.perf_counter() - began, 1)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
