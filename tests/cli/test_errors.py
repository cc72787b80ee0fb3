"""Every bad input of issue 12 through the real CLI entry point: exit status 2, exactly one stderr line starting
with ``anchorsplat: error:``, no traceback, and no output file or job folder left behind."""

from __future__ import annotations

import errno
import os

import pytest
from clitools import PHOTO, cli_error

AVATAR_CASES = {
    "face_minus_huge.anchorsplat": "triangle ids",
    "face_minus_5.anchorsplat": "triangle ids",
    "log_scales_80.anchorsplat": "log-scale",
    "no_gaussians.anchorsplat": "holds no Gaussians",
    "truncated.anchorsplat": "truncated",
    "a_folder": "is a folder, not a file",
    "missing.anchorsplat": "does not exist",
}


@pytest.mark.parametrize("name", sorted(AVATAR_CASES))
def test_bad_avatar_files(files, tmp_path, capsys, name):
    out = tmp_path / "out.png"
    line = cli_error(["render", files / name, "--out", out, "--resolution", "16"], capsys)
    assert AVATAR_CASES[name] in line
    assert not any(tmp_path.iterdir())


MOTION_CASES = {
    "vector_rate.npz": "frame rate must be one number",
    "angles_1e30.npz": "joint angles reach 1e+30",
    "transl_1e20.npz": "translations reach 1e+20",
    "bad_shape.npz": "arrays of the wrong shape",
    "text.npz": "not an .npz archive",
}


@pytest.mark.parametrize("name", sorted(MOTION_CASES))
def test_bad_motion_files(files, tmp_path, capsys, name):
    line = cli_error(
        ["render", files / "ok.anchorsplat", "--motion", files / name, "--out", tmp_path / "o.png"], capsys
    )
    assert MOTION_CASES[name] in line
    assert "reshape" not in line
    assert not any(tmp_path.iterdir())


BAD_ARGUMENTS = [
    ([], "missing subcommand"),
    (["bogus"], "Unrecognized options: bogus"),
    (["render", "a.anchorsplat", "--nope"], "Unrecognized options: --nope"),
    (["render", "a.anchorsplat", "--resolution", "abc"], "--resolution"),
    (["render", "a.anchorsplat", "--view", "up"], "invalid choice 'up'"),
    (["bake", "--force", "nope"], "invalid choice 'nope'"),
    (["render"], "required"),
    (["render", "{ok}", "--out", "{tmp}/t.mp4", "--seconds", "1e9"], "--seconds 1e+09 must be above 0 and at most 600"),
    (["render", "{ok}", "--out", "{tmp}/t.mp4", "--seconds", "-1"], "--seconds -1 must be above 0"),
    (["render", "{ok}", "--out", "{tmp}/t.mp4", "--fps", "0"], "--fps 0 must be above 0"),
    (["render", "{ok}", "--out", "{tmp}/t.png", "--background", "nan", "2", "-1"], "--background nan 2 -1"),
    (["play", "{ok}", "--audio", "{tmp}/none.wav", "--out", "{tmp}/p.mp4", "--fps", "0"], "--fps 0"),
    (["play", "{ok}", "--out", "{tmp}/p.mp4"], "nothing to play"),
    (["export", "{ok}", "--audio", "{files}/ok.npz", "--fps", "0", "--out", "{tmp}/e.glb"], "--fps 0"),
    (["view", "{ok}", "--host", "999.1.1.1"], "--host 999.1.1.1 is not a valid address"),
    (["view", "{ok}", "--port", "70000"], "--port 70000"),
    (["render", "{ok}", "--out", "{files}/a_file/x.png", "--resolution", "16"], "a file is in the way"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_ARGUMENTS, ids=[" ".join(a[:3]) for a, _ in BAD_ARGUMENTS])
def test_bad_arguments_are_one_line(files, tmp_path, capsys, argv, message):
    subst = {"ok": files / "ok.anchorsplat", "tmp": tmp_path, "files": files}
    line = cli_error([a.format(**subst) for a in argv], capsys)
    assert message in line
    assert "╭" not in line and "│" not in line
    assert not any(tmp_path.iterdir())


def test_play_model_message_names_the_flag(files, tmp_path, capsys):
    import numpy as np
    import soundfile

    soundfile.write(str(files / "speech.wav"), np.zeros(1600, np.float32), 16000)
    line = cli_error(["play", files / "ok.anchorsplat", "--audio", files / "speech.wav",
                      "--model-dir", files / "a_folder", "--out", tmp_path / "p.mp4"], capsys)  # fmt: skip
    assert "--model baseline" in line and "model='baseline'" not in line


def test_read_only_output_folder(files, tmp_path, capsys, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() == 0:  # root writes anywhere: make the file system say what a read-only one says
        import tempfile

        def refuse(*args, **kwargs):
            raise OSError(errno.EROFS, "Read-only file system", kwargs.get("dir"))

        monkeypatch.setattr(tempfile, "mkstemp", refuse)
    else:
        folder.chmod(0o555)
    line = cli_error(["render", files / "ok.anchorsplat", "--out", folder / "x.png", "--resolution", "16"], capsys)
    assert str(folder / "x.png") in line and ("read-only" in line or "permission denied" in line)
    assert not any(folder.iterdir())


def test_disk_full(files, tmp_path, capsys, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    line = cli_error(["render", files / "ok.anchorsplat", "--out", tmp_path / "x.png", "--resolution", "16"], capsys)
    assert "no space left" in line and "x.png" in line
    assert not any(tmp_path.iterdir())


BAKE_CASES = [
    (["{photo}", "--subject-params", "{tmp}/missing.json"], "--subject-params file"),
    (["{photo}", "--generator", "anchored"], "needs --weights"),
    (["{files}/a_folder"], "is a folder, not a file"),
    (["{tmp}/missing.jpg"], "does not exist"),
]


@pytest.mark.parametrize(("argv", "message"), BAKE_CASES, ids=[a[-1][-20:] for a, _ in BAKE_CASES])
def test_bake_inputs_checked_before_the_job_folder(files, tmp_path, capsys, argv, message):
    job = tmp_path / "job"
    subst = {"photo": PHOTO, "tmp": tmp_path, "files": files}
    line = cli_error(["bake", *[a.format(**subst) for a in argv], "--out", job], capsys)
    assert message in line
    assert not job.exists()


def test_bake_out_is_a_file(files, tmp_path, capsys):
    line = cli_error(["bake", PHOTO, "--out", files / "a_file"], capsys)
    assert "is a file, not a folder" in line


def test_bake_subject_from_another_photo_is_refused(files, tmp_path, capsys):
    import numpy as np
    import torch

    from anchorsplat.bake.subject import SubjectFit, Targets, save_subject
    from anchorsplat.gaussians.conventions import framing_cameras
    from anchorsplat.gaussians.motion import Motion

    camera = framing_cameras(torch.rand(10, 3), torch.tensor([0.0]), width=64, height=48)
    targets = Targets((), torch.zeros(0, 2), torch.zeros(0), (), ())
    fit = SubjectFit(64, 48, "portrait", camera, (), torch.zeros(0), Motion.zeros(1), np.zeros((48, 64), np.uint8),
                     targets, "anny", 0.0)  # fmt: skip
    subject = save_subject(tmp_path / "subject.json", fit)
    line = cli_error(["bake", PHOTO, "--subject-params", subject, "--out", tmp_path / "job"], capsys)
    assert "the subject parameters are for a 64 x 48 image" in line
    assert not (tmp_path / "job").exists()
