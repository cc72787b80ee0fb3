"""Render speed: pose + render per frame, for N Gaussians at square resolutions. Prints one JSON line.

Each combination binds N Gaussians (SH degree 3) to the default Anny rig (``assets/anny_default.rig.safetensors``)
when it loads, else to the synthetic rig, poses one frame with :func:`anchorsplat.gaussians.rigged.pose` and
renders it with :func:`anchorsplat.gaussians.render.render` (forward only, ``backend="auto"``) from one camera
framing the body. Also measured: the torch backend's forward and forward + backward at 20k Gaussians, 256^2 (the
CPU bake's inner loop), and on CUDA with gsplat, bare ``gsplat.rasterization`` on the same splats in the same
run (``render_over_bare_gsplat`` is our wrapper's overhead).

    python bench/render.py                                               # the default grid
    python bench/render.py --sizes 20000 --resolutions 256 --repeats 3   # quick
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable

import torch

from anchorsplat.gaussians.assets import asset_path
from anchorsplat.gaussians.conventions import Cameras, framing_cameras
from anchorsplat.gaussians.motion import Motion
from anchorsplat.gaussians.render import render
from anchorsplat.gaussians.rig import Rig
from anchorsplat.gaussians.rigged import PosedGaussians, RiggedGaussians, bind_to_surface, pose
from anchorsplat.gaussians.synthetic import synthetic_rig

ANNY_RIG = asset_path("anny_default.rig.safetensors")
CPU_MAX_WORK = 100_000 * 1024 * 1024  # N * pixels above which a CPU run needs --all (keeps the default run short)
FWD_BWD_TARGET_MS = 1000.0  # the CPU bake's budget for one 20k-Gaussian 256^2 step


def load_default_rig() -> tuple[Rig, str]:
    """The baked Anny rig when it is there and loads, else the synthetic rig; and which one it is."""
    try:
        from anchorsplat.gaussians.io import load_rig

        return load_rig(ANNY_RIG), "anny"
    except Exception as e:  # noqa: BLE001 - any failure falls back to the synthetic rig, and says why
        return synthetic_rig(), f"synthetic ({type(e).__name__}: {e})"


def timed(fn: Callable[[], object], repeats: int, sync: Callable[[], None]) -> dict[str, float]:
    """Median and min wall time in ms over ``repeats`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(1e3 * (time.perf_counter() - start))
    return {"median_ms": round(statistics.median(times), 3), "min_ms": round(min(times), 3)}


def splats(rig: Rig, n: int, device: torch.device) -> RiggedGaussians:
    rigged = bind_to_surface(rig, n, sh_degree=3, generator=torch.Generator().manual_seed(n))
    sh = rigged.sh_coeffs.clone()
    sh[:, 1:] = 0.05 * torch.randn(sh[:, 1:].shape, generator=torch.Generator().manual_seed(1))  # view dependence
    return dataclasses.replace(rigged, sh_coeffs=sh).to(device)


def camera(posed: PosedGaussians, resolution: int) -> Cameras:
    cameras = framing_cameras(posed.means[0].cpu(), torch.tensor([25.0]), width=resolution, height=resolution)
    return cameras.to(posed.means.device)


def bare_gsplat(posed: PosedGaussians, cameras: Cameras) -> Callable[[], object]:
    import gsplat

    b, c = posed.means.shape[0], len(cameras)
    kwargs = dict(
        colors=posed.sh_coeffs.expand(b, *posed.sh_coeffs.shape),
        viewmats=cameras.T_cam_world.expand(b, c, 4, 4).contiguous(), Ks=cameras.Ks.expand(b, c, 3, 3).contiguous(),
        width=cameras.width, height=cameras.height, sh_degree=posed.sh_degree, render_mode="RGB+ED",
    )  # fmt: skip
    return lambda: gsplat.rasterization(posed.means, posed.quats_wxyz, posed.scales, posed.opacities, **kwargs)


def forward_backward(posed: PosedGaussians, cameras: Cameras, repeats: int, sync) -> dict[str, object]:
    """The torch backend's forward, and forward + backward of an image loss w.r.t. every Gaussian parameter."""
    fields = (posed.means, posed.quats_wxyz, posed.scales, posed.opacities, posed.sh_coeffs)
    params = PosedGaussians(*(t.detach().clone().requires_grad_() for t in fields))

    def step() -> None:
        out = render(params, cameras, backend="torch")
        (out.rgb.square().mean() + out.alpha.mean()).backward()

    with torch.no_grad():
        forward = timed(lambda: render(params, cameras, backend="torch"), repeats, sync)
    both = timed(step, repeats, sync)
    return {
        "n": posed.means.shape[1], "resolution": cameras.width, "device": str(posed.means.device),
        "forward": forward, "forward_backward": both, "target_ms": FWD_BWD_TARGET_MS,
        "meets_target": both["median_ms"] <= FWD_BWD_TARGET_MS,
    }  # fmt: skip


def measure(rigged, rig, motion, cameras, repeats, sync) -> dict[str, object]:
    with torch.no_grad():
        posed = pose(rigged, rig, motion)
        out = render(posed, cameras)
        row: dict[str, object] = {"n": len(rigged), "resolution": cameras.width, "backend": out.backend}
        row["coverage"] = round(float(out.alpha.mean()), 4)  # fraction of the image the body covers
        row["pose"] = timed(lambda: pose(rigged, rig, motion), repeats, sync)
        row["render"] = timed(lambda: render(posed, cameras), repeats, sync)
        row["pose_plus_render_ms"] = round(row["pose"]["median_ms"] + row["render"]["median_ms"], 3)
        if out.backend == "gsplat":
            row["bare_gsplat"] = timed(bare_gsplat(posed, cameras), repeats, sync)
            row["render_over_bare_gsplat"] = round(row["render"]["median_ms"] / row["bare_gsplat"]["median_ms"], 3)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000], help="numbers of Gaussians")
    parser.add_argument("--resolutions", type=int, nargs="+", default=[256, 512, 1024], help="square image sizes")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement, after one warm-up")
    parser.add_argument("--all", action="store_true", help=f"on CPU, also run N * pixels > {CPU_MAX_WORK}")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("error: --device cuda but CUDA is not available on this machine")
    if args.threads:
        torch.set_num_threads(args.threads)
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if use_cuda else "cpu")
    sync = torch.cuda.synchronize if use_cuda else (lambda: None)

    rig, rig_kind = load_default_rig()
    full_pose = 0.15 * torch.randn(1, 55, 3, generator=torch.Generator().manual_seed(0))  # a non-rest pose
    motion = Motion.from_full_pose(full_pose).to(device)
    results, skipped, fwd_bwd = [], [], None
    for n in args.sizes:
        rigged = splats(rig, n, device)
        rig_d = rig.to(device)
        for res in args.resolutions:
            if not use_cuda and n * res * res > CPU_MAX_WORK and not args.all:
                skipped.append({"n": n, "resolution": res})
                continue
            with torch.no_grad():
                cameras = camera(pose(rigged, rig_d, motion), res)
            results.append(measure(rigged, rig_d, motion, cameras, args.repeats, sync))
            if n == 20_000 and res == 256:
                with torch.no_grad():
                    posed = pose(rigged, rig_d, motion)
                fwd_bwd = forward_backward(posed, cameras, args.repeats, sync)
    if fwd_bwd is None:  # 20k @ 256 was not in the grid: measure it on its own
        rigged, rig_d = splats(rig, 20_000, device), rig.to(device)
        with torch.no_grad():
            posed = pose(rigged, rig_d, motion)
        fwd_bwd = forward_backward(posed, camera(posed, 256), args.repeats, sync)

    report = {
        "bench": "render",
        "device": torch.cuda.get_device_name(device) if use_cuda else f"cpu ({platform.machine()})",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "rig": rig_kind,
        "repeats": args.repeats,
        "timing": "ms per frame, one camera, forward only; median and min over repeats after a warm-up",
        "results": results,
        "torch_backend_20k_256": fwd_bwd,
        "skipped": skipped,
        "skip_policy": f"CPU runs with N * pixels > {CPU_MAX_WORK} need --all",
    }
    if use_cuda and not any(r["backend"] == "gsplat" for r in results):
        from anchorsplat.gaussians.render import _gsplat_import_error

        report["gsplat_unavailable"] = _gsplat_import_error() or "not used"
    print(json.dumps(report))


if __name__ == "__main__":
    main()
