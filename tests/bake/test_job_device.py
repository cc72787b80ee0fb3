"""The bake's --device: recorded with the job, free to change on resume, a GPU per Ray task only on CUDA."""

from __future__ import annotations

import pytest
import torch

from anchorsplat.bake.batch import gpus_per_task
from anchorsplat.bake.job import Job, JobSettings


def test_a_job_resumes_on_another_device_but_not_with_other_settings(tmp_path):
    def reopen(**settings) -> None:
        job = Job(tmp_path / "job", JobSettings(photo="p.png", **settings))
        try:
            job.open()
        finally:
            job.close()

    reopen(device="cpu")
    reopen(device="auto")  # the same bake, on another device
    with pytest.raises(ValueError, match=r"other settings \(seed differ\)"):
        reopen(device="cuda", seed=1)


def test_gpus_per_task(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert (gpus_per_task("auto"), gpus_per_task("cpu"), gpus_per_task("cuda")) == (0, 0, 1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert (gpus_per_task("auto"), gpus_per_task("cpu")) == (1, 0)


def test_bake_refuses_a_missing_cuda_before_making_the_job(tmp_path, monkeypatch):
    from anchorsplat.bake.pipeline import run_bake

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA device is available"):
        run_bake(JobSettings(photo=str(tmp_path / "p.png"), device="cuda"), tmp_path / "job")
    with pytest.raises(ValueError, match="--backend gsplat renders on CUDA only: use --device cuda"):
        run_bake(JobSettings(photo=str(tmp_path / "p.png"), backend="gsplat", device="auto"), tmp_path / "job")
    assert not (tmp_path / "job").exists()
