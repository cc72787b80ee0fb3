"""The CLI's CPU thread policy under load: fit steps per second alone and next to a competing process.

    python bench/threads.py [--seconds 8]

Each configuration runs in a fresh process (OpenMP reads its settings once): torch's default (a thread per
CPU, OpenMP's default waiting), one thread, and the CLI's policy (:mod:`anchorsplat.threads`: passive waiting,
threads from the CPUs left free). The workload is the CPU bake's inner loop: ``fit_avatar`` steps (torch
renderer, forward + backward + Adam) on the synthetic rig. The competitor is another process doing the same
with torch's default threads, as another bake or test run on a shared machine would. Prints one JSON line; the
figures are ratios to torch's default measured in the same run. The machine's own background load is reported
(``loadavg``): on a shared machine "alone" means without our competitor, not idle.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CONFIGS = {
    "torch_default": {},
    "one_thread": {"ANCHORSPLAT_BENCH_THREADS": "1"},
    "policy": {"ANCHORSPLAT_BENCH_POLICY": "1"},
}


def worker(seconds: float) -> None:
    """Fit steps for ``seconds``; prints steps per second (after a warm-up step)."""
    if os.environ.get("ANCHORSPLAT_BENCH_POLICY"):
        from anchorsplat.threads import apply_thread_policy

        apply_thread_policy()
    import torch

    if os.environ.get("ANCHORSPLAT_BENCH_THREADS"):
        torch.set_num_threads(int(os.environ["ANCHORSPLAT_BENCH_THREADS"]))
    from anchorsplat.bake.fit import FitSettings, View, fit_avatar
    from anchorsplat.gaussians.conventions import framing_cameras
    from anchorsplat.gaussians.motion import Motion
    from anchorsplat.gaussians.render import render
    from anchorsplat.gaussians.rigged import bind_to_surface, pose, pose_motion_mesh
    from anchorsplat.gaussians.synthetic import synthetic_rig

    rig = synthetic_rig()
    known = bind_to_surface(rig, 1000, generator=torch.Generator().manual_seed(0))
    motion = Motion.zeros(1)
    posed = pose(known, rig, motion)
    camera = framing_cameras(posed.means[0], torch.tensor([20.0]), width=64, height=64)
    with torch.no_grad():
        out = render(posed, camera, backend="torch", background=torch.ones(3))
    view = View(out.rgb[0, 0], out.alpha[0, 0, ..., 0], pose_motion_mesh(rig, motion).vertices[0], camera)
    init = bind_to_surface(rig, 1000, generator=torch.Generator().manual_seed(1))
    steps, start = 0, None

    def tick(step: int, loss: float) -> None:
        nonlocal steps, start
        if start is None:
            start = time.perf_counter()  # after the first (warm-up) step
            return
        steps += 1
        if time.perf_counter() - start > seconds:
            raise StopIteration

    settings = FitSettings(iterations=100000, densify_every=10**9, checkpoint_every=10**9, backend="torch")
    try:
        fit_avatar(rig, [view], init, settings, on_step=tick)
    except StopIteration:
        pass
    print(json.dumps({"steps_per_s": steps / (time.perf_counter() - start), "threads": torch.get_num_threads()}))


def measure(name: str, seconds: float, competitor: bool) -> dict:
    env = {**os.environ, **CONFIGS[name]}
    for key in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "ANCHORSPLAT_THREADS"):
        env.pop(key, None)
    other = None
    if competitor:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "ANCHORSPLAT_"))}
        other = subprocess.Popen([sys.executable, __file__, "--worker", "--seconds", str(seconds + 30)], env=clean,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(3.0)  # let it start working
    try:
        out = subprocess.run([sys.executable, __file__, "--worker", "--seconds", str(seconds)], env=env,
                             capture_output=True, text=True, check=True)  # fmt: skip
    finally:
        if other is not None:
            other.kill()
            other.wait()
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per configuration")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.seconds)
    from anchorsplat.threads import available_cpus

    load_before = os.getloadavg()[0]
    results = {}
    for competitor in (False, True):
        for name in CONFIGS:
            r = measure(name, args.seconds, competitor)
            results[f"{name}_{'contended' if competitor else 'alone'}"] = r
    line = {
        "bench": "threads",
        "cpus": available_cpus(),
        "loadavg_1min_at_start": round(load_before, 2),
        "workload": "fit_avatar steps, torch renderer, 1000 Gaussians, 64x64",
        "reference": "torch_default",
        **{f"{k}_steps_per_s": round(v["steps_per_s"], 2) for k, v in results.items()},
        **{f"{k}_threads": v["threads"] for k, v in results.items()},
    }
    for situation in ("alone", "contended"):
        ref = results[f"torch_default_{situation}"]["steps_per_s"]
        for name in ("one_thread", "policy"):
            line[f"{name}_{situation}_ratio"] = round(results[f"{name}_{situation}"]["steps_per_s"] / ref, 2)
    print(json.dumps(line))


if __name__ == "__main__":
    main()
