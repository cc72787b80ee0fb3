"""The command as a user runs it (a child process): parse errors, a bake refused for its photo with no third-party
log lines and no job folder left, SIGTERM during ``play`` leaving no partial video, and the bake job lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from clitools import PHOTO, cli_error, run_cli

from anchorsplat.bake.job import LOCK_NAME, Job, JobSettings
from anchorsplat.gaussians.fileio import TEMP_MARK


def test_parse_error_in_a_real_process(tmp_path):
    done = run_cli(["render", "a.anchorsplat", "--resolution", "abc"], tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "anchorsplat: error: Error parsing --resolution: invalid literal for int() with base 10: 'abc' "
        "(see anchorsplat --help)"
    ]


def test_photo_without_a_person_one_line_no_logs_no_job(tmp_path):
    from PIL import Image

    Image.new("RGBA", (320, 320), (0, 0, 0, 0)).save(tmp_path / "clear.png")  # fully transparent: no person
    done = run_cli(["bake", "clear.png", "--out", "job"], tmp_path, timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [done.stderr.strip()], done.stderr  # no MediaPipe / absl / TFLite lines
    assert done.stderr.startswith("anchorsplat: error: no person found in the photo")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clear.png"]  # the corrected rerun starts clean


def test_sigterm_during_play_leaves_no_partial_video(files, tmp_path):
    import soundfile

    soundfile.write(str(tmp_path / "long.wav"), np.zeros(16000 * 60, np.float32), 16000)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, "-m", "anchorsplat", "play", str(files / "ok.anchorsplat"), "--audio", "long.wav",
            "--out", "talk.mp4", "--resolution", "16", "--model", "baseline", "--threads", "1"]  # fmt: skip
    child = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(TEMP_MARK in p.name for p in tmp_path.iterdir()):  # the encoder is writing its temp file
        assert child.poll() is None and time.monotonic() < deadline, child.communicate()
        time.sleep(0.05)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 143 and err.splitlines()[-1].endswith("anchorsplat: terminated"), err
    assert "Traceback" not in err and "Exception" not in err, err  # the progress bar's line may precede it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.wav"]


def test_a_running_bake_holds_the_job_lock(tmp_path, capsys):
    job = tmp_path / "job"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from anchorsplat.bake.job import Job, JobSettings; "
         "Job(sys.argv[1], JobSettings(photo='x')).open(); print('locked', flush=True); time.sleep(120)", str(job)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        line = cli_error(["bake", PHOTO, "--out", job], capsys)
        assert f"another anchorsplat bake (pid {holder.pid}) is running in {job}" in line
    finally:
        holder.kill()
        holder.wait()
    assert (job / LOCK_NAME).read_text().strip() == str(holder.pid)  # killed: its lock file stays, stale
    taker = Job(job, JobSettings(photo="x"))
    assert taker.open() is False  # the stale lock is taken over
    assert (job / LOCK_NAME).read_text().strip() == str(os.getpid())
    taker.close()
    assert not (job / LOCK_NAME).exists()


def test_job_open_sweeps_what_a_killed_run_left(tmp_path):
    job = Job(tmp_path / "job", JobSettings(photo="x"))
    assert job.open() is True
    job.close()
    leftovers = [
        tmp_path / "job" / f".dataset{TEMP_MARK}abc",
        tmp_path / "job" / "clips" / f".turn{TEMP_MARK}x.safetensors",
    ]
    leftovers[0].mkdir()
    (leftovers[0] / "images").mkdir()
    leftovers[1].parent.mkdir()
    leftovers[1].write_bytes(b"half a clip")
    job.open()
    job.close()
    assert not any(p.exists() for p in leftovers)
    assert (tmp_path / "job" / "config.json").exists() and (tmp_path / "job" / "clips").is_dir()


def test_a_job_with_other_settings_or_foreign_folder_is_refused(tmp_path):
    Job(tmp_path / "job", JobSettings(photo="x")).open()  # never closed: the process still holds it
    other = Job(tmp_path / "job2", JobSettings(photo="x"))
    other.open()
    other.close()
    with pytest.raises(ValueError, match="seed differ"):
        Job(tmp_path / "job2", JobSettings(photo="x", seed=1)).open()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(ValueError, match="not a bake job folder"):
        Job(tmp_path / "mine", JobSettings(photo="x")).open()
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]
