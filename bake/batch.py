"""``anchorsplat bake --batch SUBJECTS_DIR``: many subjects as a Ray job, one bake per task.

Locally Ray starts on this machine; ``--ray-address`` submits to a running cluster instead. Each task asks for
one GPU when the bakes run on CUDA (``--device cuda``, or ``auto`` where this machine has CUDA), so a multi-GPU
node runs one bake per GPU; a CPU bake reserves none. A subject that fails does not stop
the others; the summary (printed, and written to ``OUT/summary.json``) says which failed and why.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from anchorsplat.gaussians.io import atomic_write_bytes

from .job import JobSettings

PHOTO_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


@dataclass(frozen=True)
class SubjectResult:
    subject: str
    ok: bool
    avatar: str | None = None
    error: str | None = None


def list_subjects(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise ValueError(f"--batch {folder}: not a folder of photos")
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
    if not photos:
        raise ValueError(f"--batch {folder}: no photos ({', '.join(sorted(PHOTO_SUFFIXES))}) in it")
    return photos


def gpus_per_task(device: str) -> int:
    """GPUs a bake task reserves. ``cuda`` is not checked here: on a cluster the driver may have no GPU."""
    if device == "auto":
        import torch

        return 1 if torch.cuda.is_available() else 0
    return 1 if device.startswith("cuda") else 0


def _bake_one(photo: str, out: str, settings: dict, force: str | None, options: dict) -> SubjectResult:
    from .pipeline import run_bake

    try:
        avatar = run_bake(JobSettings(**settings), Path(out), force=force, echo=lambda *_: None, **options)
        return SubjectResult(Path(photo).stem, True, str(avatar))
    except Exception as exc:  # noqa: BLE001 - one subject's failure, whatever it is, must not stop the batch
        return SubjectResult(Path(photo).stem, False, error=f"{type(exc).__name__}: {exc}")


def run_batch(
    folder: Path, out: Path, template: JobSettings, *, ray_address: str | None = None, force: str | None = None,
    num_cpus: int | None = None, echo=print, **bake_options,
) -> list[SubjectResult]:  # fmt: skip
    """Bake every photo of ``folder`` as a Ray task; ``bake_options`` (``rig_path``, ``preset``) go to each
    :func:`~anchorsplat.bake.pipeline.run_bake` (for tests and experiments)."""
    try:
        import ray
    except ImportError:
        raise ValueError("--batch runs on Ray: pip install 'ray>=2.30' (or anchorsplat[fit])") from None
    photos = list_subjects(Path(folder))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    gpus = gpus_per_task(template.device)
    started_here = not ray.is_initialized()
    if started_here:
        kwargs = {"address": ray_address} if ray_address else {"num_cpus": num_cpus, "include_dashboard": False}
        ray.init(log_to_driver=False, configure_logging=False, **kwargs)
    try:
        task = ray.remote(num_gpus=gpus, max_retries=0)(_bake_one)
        refs = [
            task.remote(
                str(p), str(out / p.stem), asdict(replace(template, photo=str(p.resolve()))), force, bake_options
            )
            for p in photos
        ]
        results = ray.get(refs)
    finally:
        if started_here:
            ray.shutdown()
    summary = {"ok": [r.subject for r in results if r.ok], "failed": {r.subject: r.error for r in results if not r.ok},
               "results": [asdict(r) for r in results]}  # fmt: skip
    atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=1).encode())
    echo(f"batch: {len(summary['ok'])} of {len(results)} subjects baked into {out}")
    for name, error in summary["failed"].items():
        echo(f"  failed {name}: {error}")
    return results
