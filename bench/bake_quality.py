"""Bake quality against a known ground truth. Prints one JSON line.

The ground-truth subject is a textured rig: the default Anny body avatar (``assets/body.anchorsplat``: skin,
hair, shirt, trousers, shoes). Its single front image (arms relaxed, 384 x 512) goes through the whole bake
(detection + subject fit, clip script, proxy generation, identity scoring, Gaussian fit) and the baked avatar
is compared with the ground truth on held-out views (front, three-quarter, sides, back) and poses (rest,
talking with the jaw open, an arm raised), rendered at the same cameras: PSNR and SSIM over the image.
Reference measured in the same run: the ground-truth geometry painted one flat mean colour (what a bake that
learned no texture at all would score). With ``--photo`` (repeatable: the real-photo set,
tests/data/photos/README.md) it also bakes each photo and reports the dlib identity distance between the photo
and the baked avatar at the photo's camera and in portrait views at yaw 0, +-30, +-60 degrees (same person
below 0.6; goal 0.45), the share of generated frames in which the score stage found a face (MediaPipe's detector,
over all frames and over those facing the camera), the frames dlib's frontal detector also identified and their
mean distance to the photo.

With ``--synthetic bob,long,skirt`` it also bakes synthetic subjects with hair and loose clothing from one
front render and scores unseen views and poses against their ground truth (:mod:`anchorsplat.bake.synthetic`;
the bake is given the true subject fit, so the bake is scored, not the body fit): PSNR, SSIM, silhouette IoU;
``--volume-baseline`` bakes each once more without the volume shell (before/after in the same run).

    python bench/bake_quality.py [--preset preview] [--out /tmp/bq] [--skip-ground-truth]
        [--photo assets/sample/astronaut.png --photo tests/data/bake/grace_hopper.jpg ...]
        [--synthetic bob,long,skirt [--volume-baseline]]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import tempfile
from pathlib import Path

import numpy as np
import torch

from anchorsplat.bake.job import JobSettings
from anchorsplat.bake.losses import psnr, ssim
from anchorsplat.bake.pipeline import run_bake
from anchorsplat.gaussians.assets import assets_dir
from anchorsplat.gaussians.conventions import framing_cameras
from anchorsplat.gaussians.io import Avatar, load_avatar
from anchorsplat.gaussians.motion import SMPLX_JOINT_NAMES, Motion
from anchorsplat.gaussians.render import render
from anchorsplat.gaussians.rigged import RiggedGaussians, pose
from anchorsplat.gaussians.video import to_uint8, write_image

ASSETS = assets_dir()
VIEWS = {"front": 0.0, "three-quarter": 35.0, "left": 90.0, "back": 180.0, "right": -90.0}
WHITE = torch.ones(3)


def _motion(**joints: tuple[float, float, float]) -> Motion:
    full = torch.zeros(1, 55, 3)
    for name, aa in joints.items():
        full[0, SMPLX_JOINT_NAMES.index(name)] = torch.tensor(aa)
    return Motion.from_full_pose(full)


RELAXED = {"left_shoulder": (0.0, 0.0, -1.2), "right_shoulder": (0.0, 0.0, 1.2)}
POSES = {
    "relaxed": _motion(**RELAXED),
    "talking": _motion(**RELAXED, jaw=(0.35, 0.0, 0.0)),
    "arm_raised": _motion(left_shoulder=(0.0, 0.0, 0.6), right_shoulder=(0.0, 0.0, 1.2), left_elbow=(0.0, -1.2, 0.0)),
}


def ground_truth_photo(gt: Avatar) -> np.ndarray:
    posed = pose(gt.gaussians, gt.rig, POSES["relaxed"])
    camera = framing_cameras(posed.means[0], torch.tensor([0.0]), width=384, height=512)
    with torch.no_grad():
        out = render(posed, camera, background=torch.tensor([0.86, 0.88, 0.9]))
    return to_uint8(out.rgb[0, 0])


def flat_coloured(gt: Avatar) -> Avatar:
    g = gt.gaussians
    mean = g.sh_coeffs[:, :1].mean(0, keepdim=True).expand_as(g.sh_coeffs[:, :1])
    flat = RiggedGaussians(g.face_ids, g.barycentric, g.normal_offsets, g.quats_canonical_wxyz, g.log_scales,
                           g.opacity_logits, mean.clone())  # fmt: skip
    return Avatar(gt.rig, flat, {})


def compare(gt: Avatar, candidates: dict[str, Avatar], size: int) -> dict[str, dict]:
    scores: dict[str, dict[str, list[float]]] = {k: {"psnr": [], "ssim": []} for k in candidates}
    by_view: dict[str, dict[str, float]] = {k: {} for k in candidates}
    with torch.no_grad():
        for pose_name, motion in POSES.items():
            gt_posed = pose(gt.gaussians, gt.rig, motion)
            for view, yaw in VIEWS.items():
                camera = framing_cameras(gt_posed.means[0], torch.tensor([yaw]), width=size, height=size)
                target = render(gt_posed, camera, background=WHITE).rgb[0]
                for name, avatar in candidates.items():
                    posed = pose(avatar.gaussians, avatar.rig, motion)
                    # One photo cannot tell a larger body far away from a smaller one near: each avatar is
                    # framed on itself (same yaw and margin), which removes that scale and keeps the rest.
                    own = framing_cameras(posed.means[0], torch.tensor([yaw]), width=size, height=size)
                    image = render(posed, own, background=WHITE).rgb[0]
                    scores[name]["psnr"].append(psnr(image, target))
                    scores[name]["ssim"].append(float(ssim(image, target)))
                    if pose_name == "relaxed":
                        by_view[name][view] = round(scores[name]["psnr"][-1], 2)
    return {
        name: {"psnr": round(float(np.mean(s["psnr"])), 2), "ssim": round(float(np.mean(s["ssim"])), 4),
               "psnr_by_view_relaxed": by_view[name]}
        for name, s in scores.items()
    }  # fmt: skip


def identity_of(job: Path, photo: Path) -> dict:
    """dlib distances between the photo and the baked avatar: rendered from the photo's fitted camera and pose,
    and in portrait views (head and shoulders, rest pose) at yaw 0, +-30, +-60 degrees (views the fit never saw
    as such); plus the share of generated frames the score stage found a face in. The portraits are saved as
    one strip (``bench_portraits.png``) to look at."""
    from anchorsplat.bake.identity import face_embedding, identity_distance
    from anchorsplat.bake.photo import load_photo
    from anchorsplat.bake.score import portrait_scores
    from anchorsplat.bake.subject import load_subject

    fit = load_subject(job / "subject" / "subject.json")
    avatar = load_avatar(job / "avatar.anchorsplat")
    image = load_photo(photo)
    reference = face_embedding(image)
    out: dict = {}
    with torch.no_grad():
        front = to_uint8(render(pose(avatar.gaussians, avatar.rig, fit.motion), fit.camera, background=WHITE).rgb[0, 0])
    write_image(job / "bench_front.png", front)
    e = face_embedding(front)
    out["photo_camera"] = None if e is None or reference is None else round(identity_distance(reference, e), 4)
    portraits = portrait_scores(avatar, image)
    write_image(job / "bench_portraits.png", np.concatenate([p.image for p in portraits], axis=1))
    for p in portraits:
        out[f"yaw_{p.yaw_deg:+.0f}"] = None if p.distance is None else round(p.distance, 4)
    summary = json.loads((job / "score" / "scores.json").read_text())["summary"]
    out["faces_found_share"] = round(summary["frames_with_face"] / max(1, summary["frames"]), 3)
    # the share among frames whose camera sees the face side of the head (the back of a turntable cannot show one)
    facing = summary.get("frames_facing", summary["frames"])
    out["faces_found_facing"] = f"{summary.get('facing_frames_with_face', summary['frames_with_face'])}/{facing}"
    out["faces_found_facing_share"] = round(summary.get("facing_frames_with_face", 0) / max(1, facing), 3)
    # the frames dlib's frontal detector also finds (their identity distance weights the fit), and their mean
    out["faces_identified_facing"] = f"{summary.get('facing_frames_identified', 0)}/{facing}"
    out["mean_frame_distance"] = None if summary["mean_distance"] is None else round(summary["mean_distance"], 4)
    return out


def stage_seconds(job: Path) -> dict[str, float]:
    return {p.stem: json.loads(p.read_text()).get("seconds", 0.0) for p in sorted((job / "stages").glob("*.json"))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="preview")
    parser.add_argument("--out", type=Path, default=None, help="keep the job folders here (default: a temp folder)")
    parser.add_argument(
        "--photo",
        type=Path,
        action="append",
        default=[],
        help="also bake this photo and report identity (repeatable: the real-photo set)",
    )
    parser.add_argument("--skip-ground-truth", action="store_true", help="only the --photo bakes")
    parser.add_argument(
        "--synthetic",
        default="",
        help="comma-separated synthetic subjects with hair/clothing ground truth (bob,long,skirt): bake each from "
        "one front render and score unseen views and poses (PSNR, SSIM, silhouette IoU)",
    )
    parser.add_argument(
        "--volume-baseline",
        action="store_true",
        help="also bake each synthetic subject without the hair/clothing volume shell (before/after)",
    )
    parser.add_argument("--size", type=int, default=256, help="side of the held-out comparison renders")
    args = parser.parse_args(argv)
    root = args.out or Path(tempfile.mkdtemp(prefix="bake_quality_"))
    root.mkdir(parents=True, exist_ok=True)
    report = {"bench": "bake_quality", "device": "cuda" if torch.cuda.is_available() else f"cpu ({platform.machine()})",
              "threads": torch.get_num_threads(), "preset": args.preset}  # fmt: skip
    if not args.skip_ground_truth:
        report.update(ground_truth_report(root, args.preset, args.size))
    photos = []
    for photo in args.photo:
        photo_job = root / f"photo_{photo.stem}"
        run_bake(JobSettings(photo=str(photo.resolve()), preset=args.preset, export_dataset=False), photo_job,
                 echo=lambda s: None)  # fmt: skip
        seconds = round(sum(stage_seconds(photo_job).values()), 1)
        photos.append({"file": photo.name, "bake_seconds": seconds, "identity_distances": identity_of(photo_job, photo),
                       "same_person_below": 0.6, "job": str(photo_job)})  # fmt: skip
    if photos:
        report["photos"] = photos
    if args.synthetic:
        kinds = [k.strip() for k in args.synthetic.split(",") if k.strip()]
        report["synthetic"] = synthetic_report(root, args.preset, kinds, args.size, baseline=args.volume_baseline)
    report["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(report, default=lambda v: None if isinstance(v, float) and math.isnan(v) else v))


def ground_truth_report(root: Path, preset: str, size: int) -> dict:
    """Bake the ground-truth body's front image and compare unseen views and poses with the ground truth."""
    gt = load_avatar(ASSETS / "body.anchorsplat")
    photo_path = root / "ground_truth_front.png"
    write_image(photo_path, ground_truth_photo(gt))
    job = root / "ground_truth_job"
    run_bake(JobSettings(photo=str(photo_path), preset=preset, export_dataset=False), job, echo=lambda s: None)
    baked = load_avatar(job / "avatar.anchorsplat")
    metrics = compare(gt, {"baked": baked, "flat_colour_reference": flat_coloured(gt)}, size)
    stages = stage_seconds(job)
    bake_seconds = sum(stages.values())  # from the job's stage records, so a resumed job reports its real cost
    return {
        "bake_seconds": round(bake_seconds, 1), "stage_seconds": stages, "heldout": metrics["baked"],
        "reference_flat_colour": metrics["flat_colour_reference"],
        "psnr_gain_over_reference_db": round(metrics["baked"]["psnr"] - metrics["flat_colour_reference"]["psnr"], 2),
        "gaussians": len(baked.gaussians), "views": list(VIEWS), "poses": list(POSES), "job": str(job),
    }  # fmt: skip


def synthetic_report(root: Path, preset: str, kinds: list[str], size: int, *, baseline: bool) -> dict:
    """Bake each synthetic subject from its front render (with the true subject fit) and score unseen views and
    poses; with ``baseline`` also without the volume shell (``volume_share=0``), measured in the same run."""
    import dataclasses

    from anchorsplat.bake.presets import PRESETS
    from anchorsplat.bake.subject import save_subject
    from anchorsplat.bake.synthetic import (
        SCORE_POSES,
        SCORE_VIEWS_DEG,
        score_against,
        synthetic_avatar,
        synthetic_photo,
    )

    out: dict = {"views": list(SCORE_VIEWS_DEG), "poses": list(SCORE_POSES), "targets": {"iou": 0.9, "psnr": 28.0}}
    variants = {"volume": PRESETS[preset]}
    if baseline:
        variants["no_volume"] = dataclasses.replace(PRESETS[preset], volume_share=0.0)
    for kind in kinds:
        truth = synthetic_avatar(kind)
        photo = synthetic_photo(truth)
        folder = root / f"synthetic_{kind}"
        folder.mkdir(parents=True, exist_ok=True)
        write_image(folder / "photo.png", photo.image)
        subject = save_subject(folder / "subject.json", photo.fit)
        entry = {}
        for name, numbers in variants.items():
            job = folder / name
            settings = JobSettings(photo=str(folder / "photo.png"), subject_params=str(subject), preset=preset,
                                   export_dataset=False)  # fmt: skip
            run_bake(settings, job, echo=lambda s: None, preset=numbers)
            baked = load_avatar(job / "avatar.anchorsplat")
            score = score_against(truth, baked, size=size, strip=job / "bench_views.png")
            stages = stage_seconds(job)
            entry[name] = {**dataclasses.asdict(score), "bake_seconds": round(sum(stages.values()), 1),
                           "fit_seconds": round(stages.get("fit", 0.0), 1), "gaussians": len(baked.gaussians),
                           "job": str(job)}  # fmt: skip
        out[kind] = entry
    return out


if __name__ == "__main__":
    main()
