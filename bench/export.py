"""Export speed and size for the shipped demo avatar; prints ONE JSON line.

    python bench/export.py [--avatar assets/body.anchorsplat] [--frames 90]

For each format (glb with a ``--frames``-frame animation, ply, spz, web with the same animation): wall time of
the export call (median of 3) and the output size. The reference measured in the same run is one call of
:func:`anchorsplat.gaussians.rigged.pose` on the whole motion (the posing every exporter builds on), so
``*_vs_pose`` ratios compare across machines. Also: the round-trip error of :func:`import_glb` (max |means|
difference after posing the last frame) and the file's top-4 LBS error against the triangle-bound posing
(median and 99th percentile over the Gaussians, last frame).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from anchorsplat.gaussians.export_gltf import export_glb
from anchorsplat.gaussians.export_web import export_web
from anchorsplat.gaussians.import_gltf import import_glb
from anchorsplat.gaussians.io import load_avatar
from anchorsplat.gaussians.motion import Motion
from anchorsplat.gaussians.ply import save_ply
from anchorsplat.gaussians.retarget import motion_to_rig
from anchorsplat.gaussians.rigged import canonical_posed, pose, pose_lbs, to_lbs
from anchorsplat.gaussians.spz import save_spz


def _median_time(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*")) if path.is_dir() else path.stat().st_size


DEFAULT_AVATAR = Path(__file__).resolve().parents[1] / "assets" / "body.anchorsplat"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--avatar", type=Path, default=DEFAULT_AVATAR)
    parser.add_argument("--frames", type=int, default=90)
    args = parser.parse_args()
    torch.set_num_threads(1)
    avatar = load_avatar(args.avatar)
    g = torch.Generator().manual_seed(0)
    t = torch.arange(args.frames, dtype=torch.float32)
    full = 0.3 * torch.randn(1, 55, 3, generator=g) * torch.sin(t / 10)[:, None, None]
    expression = torch.stack([(torch.sin(t / 3) + 1) / 2, (torch.cos(t / 7) + 1) / 2], -1)
    motion = Motion.from_full_pose(full, torch.zeros(args.frames, 3), expression, ("jawOpen", "eyeBlinkLeft"), 30.0)

    with torch.no_grad():
        reference_s = _median_time(lambda: pose(avatar.gaussians, avatar.rig, motion))
        rest = canonical_posed(avatar.gaussians, avatar.rig)
    out = Path(tempfile.mkdtemp(prefix="anchorsplat-bench-export-"))
    try:
        jobs = {
            "glb": (out / "a.glb", lambda: export_glb(avatar, out / "a.glb", motion=motion)),
            "ply": (out / "a.ply", lambda: save_ply(out / "a.ply", rest)),
            "spz": (out / "a.spz", lambda: save_spz(out / "a.spz", rest)),
            "web": (out / "web", lambda: export_web(avatar, out / "web", motion=motion)),
        }
        result = {"bench": "export", "device": f"cpu ({platform.processor() or platform.machine()}, 1 thread)"}
        result.update(gaussians=len(avatar.gaussians), joints=avatar.rig.num_joints, frames=args.frames)
        result["reference_pose_all_frames_s"] = round(reference_s, 4)
        for name, (path, fn) in jobs.items():
            seconds = _median_time(fn)
            result[f"{name}_s"] = round(seconds, 4)
            result[f"{name}_vs_pose"] = round(seconds / reference_s, 2)
            result[f"{name}_bytes"] = _size(path)
        with torch.no_grad():
            last = motion.frame(slice(args.frames - 1, args.frames))
            back = import_glb(out / "a.glb")
            a = pose(avatar.gaussians, avatar.rig, last).means
            b = pose(back.gaussians, back.rig, last).means
            result["round_trip_max_m"] = float((a - b).abs().max())
            lbs = pose_lbs(to_lbs(avatar.gaussians, avatar.rig), avatar.rig, motion_to_rig(last, avatar.rig)).means
            error = (lbs - a).norm(dim=-1)[0]
            result["lbs_vs_bound_median_m"] = float(error.median())
            result["lbs_vs_bound_p99_m"] = float(torch.quantile(error, 0.99))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
