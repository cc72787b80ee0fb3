"""Export speed, size and surface quality for a shipped avatar; prints ONE JSON line.

    python bench/export.py [--avatar assets/sample.anchorsplat] [--frames 90] [--max-triangles 30000]
                           [--texture-size 2048]

The surface (``anchorsplat.export``): seconds per stage of one extraction (render, tsdf, decimate, unwrap,
texture, rig transfer), triangle count, and the texture's fidelity: masked PSNR of the textured mesh rendered
(CPU ray casting) against the splats rendered, at 8 views around the avatar (yaw every 45 degrees, level), over
the pixels where the splats are opaque (alpha > 0.9) and the mesh is hit; ``surface_coverage`` is the share of
those opaque pixels the mesh covers; the same at 8 close-up views of the head (``*_head``), where the texture's
full size shows. Then the surface glb and the OBJ writes (time, size).
For each other format (the splats glb with a ``--frames``-frame animation, ply, spz, web with the same
animation): wall time of the export call (median of 3) and the output size. The reference measured in the
same run is one call of :func:`anchorsplat.gaussians.rigged.pose` on the whole motion (the posing every
exporter builds on), so ``*_vs_pose`` ratios compare across machines. Also: the round-trip error of
:func:`import_glb` (max |means| difference after posing the last frame) and the file's top-4 LBS error against
the triangle-bound posing (median and 99th percentile over the Gaussians, last frame).
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

from anchorsplat.gaussians.assets import asset_path
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


DEFAULT_AVATAR = asset_path("sample.anchorsplat")


def surface_figures(avatar, out: Path, motion, max_triangles: int, texture_size: int) -> dict:
    """Extract the surface once; its stage times, size, texture PSNR at 8 views, and the glb / obj writes."""
    import numpy as np

    from anchorsplat.export.extract import head_points, surround_cameras
    from anchorsplat.export.obj import write_obj
    from anchorsplat.export.raycast import render_mesh
    from anchorsplat.export.surface import StageTimes, SurfaceOptions, extract_surface
    from anchorsplat.gaussians.render import render

    times = StageTimes()
    start = time.perf_counter()
    surface = extract_surface(avatar, SurfaceOptions(max_triangles, texture_size), times)
    result = {"surface_s": round(time.perf_counter() - start, 2), "surface_stages_s": times.seconds}
    result.update(surface_triangles=surface.num_faces, surface_vertices=surface.num_vertices)
    with torch.no_grad():
        rest = canonical_posed(avatar.gaussians, avatar.rig)
    points = rest.means[0]
    views = {"": surround_cameras(points, 256, yaws=8, pitches_deg=(0.0,))[:8]}
    if "head" in avatar.rig.joint_names:  # close-ups: where a texture's full size shows
        head = head_points(points, avatar.rig.joints_rest[avatar.rig.joint_names.index("head")].to(points))
        views["_head"] = surround_cameras(head, 256, yaws=8, pitches_deg=(0.0,))[:8]
    for suffix, cameras in views.items():
        with torch.no_grad():
            splats = render(rest, cameras)
        alpha = splats.alpha[0, ..., 0].numpy()
        reference = (splats.rgb[0] / splats.alpha[0].clamp_min(1e-6)).numpy()
        rgb, cover = render_mesh(
            surface.vertices_rest.numpy(), surface.faces.numpy(), surface.uvs.numpy(), surface.texture, cameras
        )
        opaque = alpha > 0.9
        mask = opaque & (cover > 0)
        mse = float(((rgb - reference) ** 2)[mask].mean())
        result[f"texture_psnr{suffix}_8_views_db"] = round(10 * np.log10(1 / mse), 2)
        result[f"surface_coverage{suffix}"] = round(float(mask.sum() / opaque.sum()), 4)
    start = time.perf_counter()
    export_glb(avatar, out / "surface.glb", motion=motion, surface=surface, splats=False)
    result["glb_surface_write_s"] = round(time.perf_counter() - start, 3)
    result["glb_surface_bytes"] = _size(out / "surface.glb")
    start = time.perf_counter()
    paths = write_obj(out / "surface.obj", surface)
    result["obj_write_s"] = round(time.perf_counter() - start, 3)
    result["obj_bytes"] = sum(_size(p) for p in paths)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--avatar", type=Path, default=DEFAULT_AVATAR)
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--max-triangles", type=int, default=30000)
    parser.add_argument("--texture-size", type=int, default=2048)
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
            "glb_splats": (out / "a.glb", lambda: export_glb(avatar, out / "a.glb", motion=motion)),
            "ply": (out / "a.ply", lambda: save_ply(out / "a.ply", rest)),
            "spz": (out / "a.spz", lambda: save_spz(out / "a.spz", rest)),
            "web": (out / "web", lambda: export_web(avatar, out / "web", motion=motion)),
        }
        result = {"bench": "export", "device": f"cpu ({platform.processor() or platform.machine()}, 1 thread)"}
        result.update(gaussians=len(avatar.gaussians), joints=avatar.rig.num_joints, frames=args.frames)
        result["reference_pose_all_frames_s"] = round(reference_s, 4)
        result.update(surface_figures(avatar, out, motion, args.max_triangles, args.texture_size))
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
