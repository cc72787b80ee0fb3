"""The CLI's CPU thread policy under load: fit steps per second alone, next to a competing process, and when
one arrives mid-run.

    python bench/threads.py [--seconds 12]

Each configuration runs in a fresh process (OpenMP reads its settings once): torch's default (a thread per
CPU, OpenMP's default waiting), one thread, a thread per CPU with passive waiting, and the CLI's policy
(:mod:`anchorsplat.threads`: threads from the CPUs left free now, a longer OpenMP spin with more than one,
and the governor that re-chooses the count every 2 s). The workload is the preview bake's inner loop:
``fit_avatar`` steps (torch renderer, forward + backward + Adam) with ~13k Gaussians at 128 px on the
synthetic rig. The competitor is another process doing the same with torch's default threads, as another
bake or test run on a shared machine would: from the start (``contended``) or from a third of the way in
(``competitor_arrives``). Prints one JSON line; the ratios are to torch's default measured in the same run.
The machine's own background load is reported (``loadavg``): "alone" means without our competitor.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

GAUSSIANS, SIDE = 13000, 128  # the preview bake's fit: ~13k Gaussians, 128 px frames

CONFIGS = {
    "torch_default": {},
    "one_thread": {"ANCHORSPLAT_BENCH_THREADS": "1"},
    "passive_all_threads": {"OMP_WAIT_POLICY": "PASSIVE"},
    "policy": {"ANCHORSPLAT_BENCH_POLICY": "1"},
}


def worker(seconds: float) -> None:
    """Fit steps for ``seconds``; prints steps per second (after a warm-up step)."""
    if os.environ.get("ANCHORSPLAT_BENCH_POLICY"):
        from anchorsplat.threads import apply_thread_policy

        apply_thread_policy()
    import contextlib

    import torch

    from anchorsplat.threads import governed

    if os.environ.get("ANCHORSPLAT_BENCH_THREADS"):
        torch.set_num_threads(int(os.environ["ANCHORSPLAT_BENCH_THREADS"]))
    from anchorsplat.bake.fit import FitSettings, View, fit_avatar
    from anchorsplat.gaussians.conventions import framing_cameras
    from anchorsplat.gaussians.motion import Motion
    from anchorsplat.gaussians.render import render
    from anchorsplat.gaussians.rigged import bind_to_surface, pose, pose_motion_mesh
    from anchorsplat.gaussians.synthetic import synthetic_rig

    rig = synthetic_rig()
    known = bind_to_surface(rig, GAUSSIANS, generator=torch.Generator().manual_seed(0))
    motion = Motion.zeros(1)
    posed = pose(known, rig, motion)
    camera = framing_cameras(posed.means[0], torch.tensor([20.0]), width=SIDE, height=SIDE)
    with torch.no_grad():
        out = render(posed, camera, backend="torch", background=torch.ones(3))
    view = View(out.rgb[0, 0], out.alpha[0, 0, ..., 0], pose_motion_mesh(rig, motion).vertices[0], camera)
    init = bind_to_surface(rig, GAUSSIANS, generator=torch.Generator().manual_seed(1))
    steps, start = 0, None

    def tick(step: int, loss: float) -> None:
        nonlocal steps, start
        if start is None:
            start = time.perf_counter()  # after the first (warm-up) step
            print("started", flush=True)
            return
        steps += 1
        if time.perf_counter() - start > seconds:
            raise StopIteration

    settings = FitSettings(iterations=100000, densify_every=10**9, checkpoint_every=10**9, backend="torch")
    policy = bool(os.environ.get("ANCHORSPLAT_BENCH_POLICY"))
    with governed() if policy else contextlib.nullcontext() as governor:
        try:
            fit_avatar(rig, [view], init, settings, on_step=tick)
        except StopIteration:
            pass
    chosen = sorted({n for _, n in governor.history}) if governor is not None else []
    print(json.dumps({"steps_per_s": steps / (time.perf_counter() - start), "threads": torch.get_num_threads(),
                      "threads_chosen": chosen}))  # fmt: skip


def _competitor(seconds: float) -> subprocess.Popen:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "ANCHORSPLAT_", "GOMP_"))}
    return subprocess.Popen([sys.executable, __file__, "--worker", "--seconds", str(seconds + 30)], env=clean,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def measure(name: str, seconds: float, situation: str) -> dict:
    """Steps per second of configuration ``name``: ``alone``, ``contended`` (a competitor runs from the start)
    or ``competitor_arrives`` (it starts a third of the way into the measured seconds)."""
    env = {**os.environ, **CONFIGS[name]}
    for key in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "ANCHORSPLAT_THREADS"):
        if key not in CONFIGS[name]:
            env.pop(key, None)
    other = None
    if situation == "contended":
        other = _competitor(seconds)
        time.sleep(3.0)  # let it start working
    try:
        worker = subprocess.Popen([sys.executable, __file__, "--worker", "--seconds", str(seconds)], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
        lines = []
        for line in worker.stdout:
            lines.append(line)
            if line.startswith("started") and situation == "competitor_arrives":
                time.sleep(seconds / 3)
                other = _competitor(seconds)
        if worker.wait() != 0:
            raise RuntimeError(f"the {name} worker failed")
    finally:
        if other is not None:
            other.kill()
            other.wait()
    return json.loads(lines[-1])


SITUATIONS = ("alone", "contended", "competitor_arrives")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="measured seconds per configuration")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.seconds)
    from anchorsplat.threads import available_cpus

    load_before = os.getloadavg()[0]
    results = {
        (name, situation): measure(name, args.seconds, situation) for situation in SITUATIONS for name in CONFIGS
    }
    line = {
        "bench": "threads",
        "cpus": available_cpus(),
        "loadavg_1min_at_start": round(load_before, 2),
        "workload": f"fit_avatar steps, torch renderer, {GAUSSIANS} Gaussians, {SIDE}x{SIDE}",
        "reference": "torch_default",
        **{f"{n}_{s}_steps_per_s": round(r["steps_per_s"], 2) for (n, s), r in results.items()},
        **{f"{n}_{s}_threads": r["threads_chosen"] or r["threads"] for (n, s), r in results.items()},
    }
    for situation in SITUATIONS:
        ref = results["torch_default", situation]["steps_per_s"]
        for name in ("one_thread", "passive_all_threads", "policy"):
            line[f"{name}_{situation}_ratio"] = round(results[name, situation]["steps_per_s"] / ref, 2)
    print(json.dumps(line))


if __name__ == "__main__":
    main()
