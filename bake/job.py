"""The bake job: a directory holding inputs, config, each stage's outputs, checkpoints, log and report.

Stages run in order; each writes its outputs atomically and then a marker ``stages/NAME.json``. A rerun of the
same command skips every stage whose marker exists (a finished job does nothing), the fit resumes from its
last checkpoint, and ``force`` reruns from a stage onward. A rerun with different settings is refused (it
would mix two bakes in one folder).

    JOB/config.json            versioned settings of the job
    JOB/log.txt                what ran, when, how long
    JOB/input/photo.png        the photo as read (orientation applied, size capped)
    JOB/subject/subject.json   stage 1: fitted body, camera, framing (+ mask.png)
    JOB/clips/*.safetensors    stage 3: generated clips (frames, masks, motion, cameras)
    JOB/score/scores.json      stage 4: per-frame identity distances and weights
    JOB/fit/checkpoint.pt      stage 5: resumable fit state; JOB/avatar.anchorsplat its result
    JOB/report.html, JOB/turntable.mp4, JOB/dataset/ (nerfstudio)   stage 6
    JOB/.lock                  held (``flock``) by the running bake, holds its pid

One bake at a time per folder: :meth:`Job.open` takes an advisory lock on ``JOB/.lock`` (the kernel drops it when
the holder dies, so a stale lock from a killed bake is simply taken over; a live holder is named by its pid), then
sweeps the temp files and staging folders a killed run left behind.
"""

from __future__ import annotations

import errno
import fcntl
import math
import os
import shutil
import time
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path

from anchorsplat.gaussians.fileio import FileFormat, FileFormatError, read_json, remove_leftovers, write_json

CONFIG_FORMAT = "anchorsplat.bake-job"
CONFIG_VERSION = 1
CONFIG_FILE = FileFormat(CONFIG_FORMAT, CONFIG_VERSION, "bake job config", "delete the job folder and bake again")
STAGE_FILE = FileFormat("anchorsplat.bake-stage", 1, "stage record", "rerun the bake with --force STAGE", unversioned=1)
LOCK_NAME = ".lock"
STAGES = ("subject", "script", "generate", "score", "fit", "report")


@dataclass(frozen=True)
class JobSettings:
    """Everything that decides a bake's result (saved as the job's config)."""

    photo: str
    preset: str = "preview"
    generator: str = "proxy"
    weights: str | None = None
    refine_strength: float | None = None
    subject_params: str | None = None
    seed: int = 0
    backend: str = "auto"
    export_dataset: bool = True
    speech: str | None = None
    """The speech file that drives the talking clips (None: the shipped sample speech)."""
    person: int | None = None
    """Which person of a group photo to bake (1-based, left to right); None: the largest, most central."""
    device: str = "auto"
    """Where every stage runs: auto (CUDA when present), cpu or cuda. Not part of the result's identity: a job
    started on one device resumes on another."""


# Settings a rerun may change without making it another bake.
RESUMABLE_ELSEWHERE = ("device",)


def _setting_defaults() -> dict:
    return {f.name: f.default for f in fields(JobSettings) if f.default is not MISSING}


class Job:
    def __init__(self, root: Path, settings: JobSettings) -> None:
        self.root = Path(root)
        self.settings = settings
        self._lock_fd: int | None = None

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def open(self) -> bool:
        """Lock the folder (creating it), then create its config or check that the existing job was made with the
        same settings. Returns whether this call created the folder. Call :meth:`close` when done.

        Raises:
            ValueError: ``--out`` is a file or a foreign folder, another bake holds the lock, or the job was made
                with other settings or by a newer anchorsplat.
        """
        config = self.path("config.json")
        if self.root.exists() and not self.root.is_dir():
            raise ValueError(f"--out {self.root} is a file, not a folder: choose another --out")
        if self.root.is_dir() and not config.exists() and not self.path(LOCK_NAME).exists():
            if any(self.root.iterdir()):
                raise ValueError(f"--out {self.root} exists and is not a bake job folder: choose another --out")
        created = False
        try:
            self.root.mkdir(parents=True)
            created = True
        except FileExistsError:
            pass
        self._lock()
        try:
            remove_leftovers(self.root)
            self._check_or_write_config(config)
        except BaseException:
            self.close()
            raise
        return created

    def _lock(self) -> None:
        while True:  # the lock file may be removed between our open and our lock: then lock the new one
            fd = os.open(self.path(LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                holder = self.path(LOCK_NAME).read_text().strip() if self.path(LOCK_NAME).exists() else "?"
                raise ValueError(
                    f"another anchorsplat bake (pid {holder or '?'}) is running in {self.root}: wait for it to "
                    "finish, stop it, or choose another --out"
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path(LOCK_NAME)).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def close(self, *, remove: bool = False) -> None:
        """Release the lock; with ``remove`` (a job this run created and that finished no stage) delete the
        folder so that a corrected rerun starts clean."""
        if self._lock_fd is None:
            return
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)
        else:
            self.path(LOCK_NAME).unlink(missing_ok=True)
        os.close(self._lock_fd)  # releases the flock
        self._lock_fd = None

    def _check_or_write_config(self, config: Path) -> None:
        wanted = asdict(self.settings)
        if not config.exists():
            write_json(config, CONFIG_FILE, {"settings": wanted})
            return
        try:
            saved = read_json(config, CONFIG_FILE)
        except FileFormatError as exc:
            if "not an anchorsplat" in str(exc):
                raise ValueError(f"{self.root} is not an anchorsplat bake job: choose another --out") from None
            raise
        # settings added after a job was made hold their default in it
        saved_settings = {**_setting_defaults(), **(saved.get("settings") or {})}
        changed = sorted(k for k, v in wanted.items() if k not in RESUMABLE_ELSEWHERE and saved_settings.get(k) != v)
        if changed:
            raise ValueError(
                f"{self.root} holds a bake made with other settings ({', '.join(changed)} differ): "
                "use another --out, or delete that folder"
            )

    def any_done(self) -> bool:
        return any(self.is_done(stage) for stage in STAGES)

    def is_done(self, stage: str) -> bool:
        return self.path("stages", f"{stage}.json").exists()

    def mark_done(self, stage: str, seconds: float, **info) -> None:
        record = {"stage": stage, "seconds": round(seconds, 2), "finished": time.strftime("%Y-%m-%d %H:%M:%S"), **info}
        write_json(self.path("stages", f"{stage}.json"), STAGE_FILE, _finite_or_none(record))

    def stage_record(self, stage: str) -> dict:
        path = self.path("stages", f"{stage}.json")
        return read_json(path, STAGE_FILE) if path.exists() else {}

    def force_from(self, stage: str) -> None:
        """Forget ``stage`` and every later stage (their outputs are overwritten when they run again)."""
        if stage not in STAGES:
            raise ValueError(f"--force {stage}: not a stage; stages are {', '.join(STAGES)}")
        for later in STAGES[STAGES.index(stage) :]:
            self.path("stages", f"{later}.json").unlink(missing_ok=True)
            if later == "generate":  # the generate stage skips clips that exist, so forget them
                for clip in self.path("clips").glob("*.safetensors"):
                    clip.unlink()
            if later == "fit":
                self.path("fit", "checkpoint.pt").unlink(missing_ok=True)

    def log(self, message: str) -> None:
        self.path("log.txt").parent.mkdir(parents=True, exist_ok=True)
        with self.path("log.txt").open("a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")


def _finite_or_none(value):
    """Stage records are informational: a NaN or infinite figure (a PSNR of identical images) is stored as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value
