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
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path

from anchorsplat.gaussians.io import atomic_write_bytes

CONFIG_FORMAT = "anchorsplat.bake-job"
CONFIG_VERSION = 1
STAGES = ("subject", "script", "generate", "score", "fit", "report")


@dataclass(frozen=True)
class JobSettings:
    """Everything that decides a bake's result (saved as the job's config)."""

    photo: str
    preset: str = "preview"
    generator: str = "proxy"
    weights: str | None = None
    subject_params: str | None = None
    seed: int = 0
    backend: str = "auto"
    export_dataset: bool = True
    person: int | None = None
    """Which person of a group photo to bake (1-based, left to right); None: the largest, most central."""


class Job:
    def __init__(self, root: Path, settings: JobSettings) -> None:
        self.root = Path(root)
        self.settings = settings

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def open(self) -> None:
        """Create the folder and its config, or check that an existing job was made with the same settings."""
        config = self.path("config.json")
        wanted = {"format": CONFIG_FORMAT, "version": CONFIG_VERSION, "settings": asdict(self.settings)}
        if config.exists():
            try:
                saved = json.loads(config.read_text())
            except json.JSONDecodeError:
                raise ValueError(f"{config} is damaged: delete the job folder {self.root} and bake again") from None
            if saved.get("format") != CONFIG_FORMAT:
                raise ValueError(f"{self.root} is not an anchorsplat bake job: choose another --out")
            if int(saved.get("version", 0)) > CONFIG_VERSION:
                raise ValueError(f"{self.root} was made by a newer anchorsplat: upgrade anchorsplat")
            # A setting added after the job was made reads as its default (older jobs keep resuming).
            defaults = {f.name: f.default for f in fields(JobSettings) if f.default is not MISSING}
            saved_settings = {**defaults, **saved.get("settings", {})}
            if saved_settings != wanted["settings"]:
                changed = sorted(k for k, v in wanted["settings"].items() if saved_settings.get(k) != v)
                raise ValueError(
                    f"{self.root} holds a bake made with other settings ({', '.join(changed)} differ): "
                    "use another --out, or delete that folder"
                )
        elif self.root.exists() and any(self.root.iterdir()):
            raise ValueError(f"--out {self.root} exists and is not a bake job folder: choose another --out")
        else:
            self.root.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(config, json.dumps(wanted, indent=1).encode())

    def is_done(self, stage: str) -> bool:
        return self.path("stages", f"{stage}.json").exists()

    def mark_done(self, stage: str, seconds: float, **info) -> None:
        record = {"stage": stage, "seconds": round(seconds, 2), "finished": time.strftime("%Y-%m-%d %H:%M:%S"), **info}
        atomic_write_bytes(self.path("stages", f"{stage}.json"), json.dumps(record, indent=1).encode())

    def stage_record(self, stage: str) -> dict:
        path = self.path("stages", f"{stage}.json")
        return json.loads(path.read_text()) if path.exists() else {}

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


def settings_hash(settings: JobSettings) -> str:
    return hashlib.sha256(json.dumps(asdict(settings), sort_keys=True).encode()).hexdigest()[:16]
