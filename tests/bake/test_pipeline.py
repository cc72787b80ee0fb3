"""The bake job end to end on a tiny synthetic subject (synthetic rig, 48^2 frames, a few fit steps): stages,
outputs, resume, --force, refusal of a changed config, the kill-and-resume of the fit, the clip script and the
nerfstudio export."""

import json
import math
import shutil

import numpy as np
import pytest
import torch

from anchorsplat.bake import fit as fit_module
from anchorsplat.bake.batch import run_batch
from anchorsplat.bake.fit import FitSettings, View, fit_avatar
from anchorsplat.bake.job import STAGES, JobSettings
from anchorsplat.bake.landmarks import Targets
from anchorsplat.bake.pipeline import run_bake
from anchorsplat.bake.presets import BakePreset
from anchorsplat.bake.script import clip_script, face_framing_points, load_script
from anchorsplat.bake.subject import SubjectFit, save_subject
from anchorsplat.bake.views import FACE_CROP_PX
from anchorsplat.diffusion.generator import Subject
from anchorsplat.gaussians.conventions import framing_cameras, project_points
from anchorsplat.gaussians.io import load_avatar, save_rig
from anchorsplat.gaussians.motion import Motion
from anchorsplat.gaussians.render import render
from anchorsplat.gaussians.rigged import bind_to_surface, pose, pose_motion_mesh, rgb_to_sh_dc
from anchorsplat.gaussians.synthetic import synthetic_rig
from anchorsplat.gaussians.video import to_uint8, write_image

TINY = BakePreset("tiny", resolution=32, frames_per_clip=3, proxy_gaussians=800, gaussians=200, iterations=10,
                  holdout_every=3, densify_every=4, checkpoint_every=4)  # fmt: skip


def _photo_of(rig, size=64):
    """A front photo of the synthetic body painted with a left/right colour gradient, and its mask."""
    g = bind_to_surface(rig, 3000, generator=torch.Generator().manual_seed(0))
    colour = torch.stack([0.5 + 2 * g.barycentric[:, 0] * 0 + 0.4 * torch.sign(torch.arange(len(g)) % 2 - 0.5),
                          torch.full((len(g),), 0.3), torch.full((len(g),), 0.6)], dim=-1).clamp(0, 1)  # fmt: skip
    g = type(g)(g.face_ids, g.barycentric, g.normal_offsets, g.quats_canonical_wxyz, g.log_scales, g.opacity_logits,
                rgb_to_sh_dc(colour)[:, None])  # fmt: skip
    motion = Motion.zeros(1)
    posed = pose(g, rig, motion)
    camera = framing_cameras(posed.means[0], torch.tensor([0.0]), width=size, height=size)
    out = render(posed, camera, backend="torch", background=torch.ones(3))
    return (
        to_uint8(out.rgb[0, 0]),
        (out.alpha[0, 0].reshape(size, size) > 0.5).numpy().astype(np.uint8) * 255,
        camera,
        motion,
    )


@pytest.fixture(scope="module")
def subject_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("subject")
    rig = synthetic_rig()
    rig_path = root / "synthetic.rig.safetensors"
    save_rig(rig_path, rig)
    photo, mask, camera, motion = _photo_of(rig, size=128)
    write_image(root / "photo.png", photo)
    targets = Targets((), torch.zeros(0, 2), torch.zeros(0), (), ())
    fit = SubjectFit(128, 128, "full_body", camera, (), torch.zeros(0), motion, mask, targets, "synthetic", 0.0)
    subject_path = save_subject(root / "subject.json", fit)
    return root, rig_path, subject_path


def _settings(photos, subject_path, **kw):
    return JobSettings(photo=str(photos / "photo.png"), subject_params=str(subject_path), backend="torch", **kw)


def test_bake_end_to_end_resume_force_and_batch(subject_files, tmp_path):
    root, rig_path, subject_path = subject_files
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(root / "photo.png", photos / "photo.png")
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    root = photos
    job = tmp_path / "batch" / "photo"
    lines = []
    avatar_path = run_bake(_settings(root, subject_path), job, rig_path=rig_path, preset=TINY, echo=lines.append)
    assert [line for line in lines if line.startswith("[")] == [f"[{i + 1}/6] {s}" for i, s in enumerate(STAGES)]
    avatar = load_avatar(avatar_path)
    assert avatar.rig.kind == "synthetic" and 100 <= len(avatar.gaussians) <= 400
    report = (job / "report.html").read_text()
    assert "<svg" in report and "held-out PSNR" in report.replace("Held-out", "held-out")
    assert (job / "turntable.mp4").stat().st_size > 1000
    metrics = json.loads((job / "fit" / "metrics.json").read_text())
    assert len(metrics["losses"]) == TINY.iterations and math.isfinite(metrics["heldout_psnr"])
    assert metrics["heldout_psnr"] > 12.0  # far above a blank image against the body
    scores = json.loads((job / "score" / "scores.json").read_text())
    # The synthetic body has no face: the score stage says so in the log, the console and the report, in red.
    assert scores["summary"]["frames_with_face"] == 0 and "found a face in only 0 of" in scores["summary"]["warning"]
    assert any(line.startswith("warning: the score stage found a face in only 0") for line in lines)
    assert "warning: the score stage" in (job / "log.txt").read_text()
    assert 'class="warning" style="color:#c00' in report and report.count("no face found") == 5
    assert scores["summary"]["frames"] == sum(len(s.motion) for s in load_script(job / "script" / "script.safetensors"))
    transforms = json.loads((job / "dataset" / "transforms.json").read_text())
    assert len(transforms["frames"]) == scores["summary"]["frames"]
    assert (job / "dataset" / transforms["frames"][0]["file_path"]).is_file()
    assert not list(job.rglob("*.tmp*")) and not list(job.rglob(".*.tmp"))

    # A finished job rerun does nothing.
    before = {p: p.stat().st_mtime_ns for p in job.rglob("*") if p.is_file() and p.name != "log.txt"}
    lines.clear()
    run_bake(_settings(root, subject_path), job, rig_path=rig_path, preset=TINY, echo=lines.append)
    assert any("nothing to do" in line for line in lines)
    assert before == {p: p.stat().st_mtime_ns for p in job.rglob("*") if p.is_file() and p.name != "log.txt"}

    # --force fit reruns the fit and the report only.
    lines.clear()
    run_bake(_settings(root, subject_path), job, rig_path=rig_path, preset=TINY, echo=lines.append, force="fit")
    assert [line for line in lines if line.startswith("[")] == ["[5/6] fit", "[6/6] report"]
    assert (job / "clips" / "turn.safetensors").stat().st_mtime_ns == before[job / "clips" / "turn.safetensors"]

    # Other settings in the same folder are refused, naming what differs.
    with pytest.raises(ValueError, match="seed"):
        run_bake(_settings(root, subject_path, seed=1), job, rig_path=rig_path, preset=TINY, echo=lines.append)

    # A Ray batch over the folder: the finished subject stays done, the broken photo fails alone and is reported.
    lines.clear()
    template = JobSettings(photo="", subject_params=str(subject_path), backend="torch")
    results = run_batch(
        photos, tmp_path / "batch", template, num_cpus=1, echo=lines.append, rig_path=rig_path, preset=TINY
    )
    assert {r.subject: r.ok for r in results} == {"broken": False, "photo": True}, [r.error for r in results]
    summary = json.loads((tmp_path / "batch" / "summary.json").read_text())
    assert summary["ok"] == ["photo"] and "not an image" in summary["failed"]["broken"]
    assert any("failed broken" in line for line in lines)


def _photo_view_and_init(rig):
    """A 24 px photo view of the synthetic body and 150 Gaussians bound to it (the fit tests' start)."""
    photo, mask, camera, motion = _photo_of(rig, size=24)
    view = View(torch.from_numpy(photo).float() / 255, torch.from_numpy(mask).float() / 255,
                pose_motion_mesh(rig, motion).vertices[0], camera, 1.0, True)  # fmt: skip
    return view, bind_to_surface(rig, 150, generator=torch.Generator().manual_seed(1))


def test_killed_fit_resumes_to_the_same_result(subject_files, tmp_path):
    rig = synthetic_rig()
    view, init = _photo_view_and_init(rig)
    settings = FitSettings(iterations=12, densify_every=6, checkpoint_every=4, backend="torch", window=16)
    whole = fit_avatar(rig, [view], init, settings)

    def crash(step, loss):
        if step == 9:
            raise KeyboardInterrupt

    checkpoint = tmp_path / "checkpoint.pt"
    with pytest.raises(KeyboardInterrupt):
        fit_avatar(rig, [view], init, settings, checkpoint=checkpoint, on_step=crash)
    assert torch.load(checkpoint, weights_only=True)["iteration"] == 8
    resumed = fit_avatar(rig, [view], init, settings, checkpoint=checkpoint)
    assert resumed.losses == pytest.approx(whole.losses, rel=1e-4)
    torch.testing.assert_close(resumed.gaussians.sh_coeffs, whole.gaussians.sh_coeffs, atol=1e-5, rtol=1e-4)
    assert whole.losses[-1] < whole.losses[0]


def test_a_view_window_is_that_window_of_the_render_and_bounds_the_step(monkeypatch):
    rig = synthetic_rig()
    view, init = _photo_view_and_init(rig)
    settings = FitSettings(iterations=6, densify_every=1000, checkpoint_every=1000, backend="torch", window=10)
    generator = torch.Generator().manual_seed(3)
    _, whole = fit_module.render_view(init, rig, view, settings)
    corners = set()
    for _ in range(4):
        part = fit_module.view_window(view, 10, generator)
        assert part.image.shape[:2] == part.mask.shape == (10, 10) and (part.camera.width, part.camera.height) == (
            10,
            10,
        )
        _, out = fit_module.render_view(init, rig, part, settings)
        x0, y0 = (view.camera.Ks[0, :2, 2] - part.camera.Ks[0, :2, 2]).round().long().tolist()
        corners.add((x0, y0))
        torch.testing.assert_close(part.image, view.image[y0 : y0 + 10, x0 : x0 + 10])
        torch.testing.assert_close(out.rgb[0, 0], whole.rgb[0, 0, y0 : y0 + 10, x0 : x0 + 10], atol=1e-5, rtol=1e-4)
    assert len(corners) > 1  # the windows move
    assert fit_module.view_window(view, 24, generator) is view
    sizes = []
    render_view = fit_module.render_view

    def recording(params, rig, view, settings):
        sizes.append(tuple(view.image.shape[:2]))
        return render_view(params, rig, view, settings)

    monkeypatch.setattr(fit_module, "render_view", recording)
    fit_avatar(rig, [view], init, settings)
    assert sizes == [(10, 10)] * 6  # every step renders the window, not the whole view


def test_clip_script_covers_turn_talk_expressions_with_known_cameras():
    rig = synthetic_rig()
    photo, mask, camera, motion = _photo_of(rig, size=32)
    subject = Subject(torch.from_numpy(photo).float() / 255, torch.from_numpy(mask).float() / 255, rig, motion, camera)
    specs = clip_script(subject, frames=12, resolution=32, portrait=False)
    names = [s.name for s in specs]
    assert {"turn", "talk", "expressions", "face"} <= set(names)
    for spec in specs:
        size = FACE_CROP_PX if spec.name == "face" else 32
        assert len(spec.motion) == 12 and len(spec.cameras) == 12 and spec.cameras.width == size
    # The face close-up: the head fills the frame (the rest of the body is mostly out of it).
    face = specs[names.index("face")]
    head = face_framing_points(subject)
    xy = project_points(head, face.cameras[0])[0]
    extent = float((xy.max(0).values - xy.min(0).values).max())
    assert 0.6 * FACE_CROP_PX < extent <= FACE_CROP_PX
    turn = specs[names.index("turn")]
    # The turn goes round: camera centres (or the body's facing) cover front, sides and back.
    centres = turn.cameras.T_world_cam[:, :3, 3]
    yaw = torch.atan2(centres[:, 0], centres[:, 2]) - torch.atan2(
        torch.stack([torch.zeros(())] * 12), torch.ones(12)
    )  # fmt: skip
    body_yaw = turn.motion.global_orient[:, 1]
    spread = float((yaw - body_yaw).max() - (yaw - body_yaw).min())
    assert spread > math.radians(270)
    talk = specs[names.index("talk")]
    assert float(talk.motion.jaw_pose[:, 0].max()) > 0.1 or (
        "jawOpen" in talk.motion.expression_names
        and float(talk.motion.expression[:, talk.motion.expression_names.index("jawOpen")].max()) > 0.3
    )


def test_fit_reproduces_a_tiny_known_avatar():
    """Views rendered from a known avatar (left half red, right half blue); the fit starts grey, on the same
    binding, and must reproduce the colours on a view it never trained on."""
    from anchorsplat.bake.losses import psnr
    from anchorsplat.gaussians.rigged import canonical_means

    rig = synthetic_rig()
    known = bind_to_surface(rig, 300, generator=torch.Generator().manual_seed(2))
    left = canonical_means(known, rig)[:, 0] > 0
    rgb = torch.where(left[:, None], torch.tensor([0.9, 0.15, 0.1]), torch.tensor([0.1, 0.2, 0.9]))
    known = type(known)(known.face_ids, known.barycentric, known.normal_offsets, known.quats_canonical_wxyz,
                        known.log_scales, known.opacity_logits, rgb_to_sh_dc(rgb)[:, None])  # fmt: skip
    motion = Motion.zeros(1)
    vertices = pose_motion_mesh(rig, motion).vertices[0]
    posed = pose(known, rig, motion)

    def view(yaw: float) -> View:
        camera = framing_cameras(posed.means[0], torch.tensor([yaw]), width=32, height=32)
        out = render(posed, camera, backend="torch", background=torch.ones(3))
        return View(out.rgb[0, 0], out.alpha[0, 0, ..., 0], vertices, camera, 1.0, False)

    train, heldout = [view(y) for y in (0.0, 90.0, 180.0, -90.0)], view(40.0)
    grey_sh = rgb_to_sh_dc(torch.full((300, 3), 0.5))[:, None]
    grey = type(known)(known.face_ids, known.barycentric, known.normal_offsets, known.quats_canonical_wxyz,
                       known.log_scales, known.opacity_logits, grey_sh)  # fmt: skip
    # the tiny avatar's Gaussians are larger than the bake's scale prior allows; the test is about appearance
    settings = FitSettings(iterations=120, densify_every=1000, checkpoint_every=1000, backend="torch", max_scale=0.2)
    result = fit_avatar(rig, train, grey, settings)

    def score(g) -> float:
        out = render(pose(g, rig, motion), heldout.camera, backend="torch", background=torch.ones(3))
        return psnr(out.rgb[0, 0], heldout.image)

    before, after = score(grey), score(result.gaussians)
    assert after > before + 5.0 and after > 20.0, (before, after)
    assert result.losses[-1] < 0.5 * result.losses[0]
