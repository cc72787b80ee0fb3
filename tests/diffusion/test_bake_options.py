"""``anchorsplat bake --generator anchored``: bad --weights / --refine-strength are refused before the job folder
exists (so before the subject fit), and --refine-strength reaches the generator's SDEdit pass."""

from __future__ import annotations

import shutil

import pytest

from anchorsplat.cli import main
from anchorsplat.gaussians.assets import asset_path

PHOTO = str(asset_path("sample", "astronaut.png"))


def _refused(argv: list[str], capsys, job) -> str:
    with pytest.raises(SystemExit) as info:
        main(["bake", PHOTO, "--out", str(job), *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("anchorsplat: error: ") and "\n" not in err and "Traceback" not in err
    assert not job.exists()  # refused before the job folder (and the subject fit)
    return err


def test_bad_weights_refused_before_stage_one(tmp_path, capsys, tiny_weights):
    job = tmp_path / "job"
    assert "needs --weights" in _refused(["--generator", "anchored"], capsys, job)
    assert "no such folder" in _refused(["--generator", "anchored", "--weights", str(tmp_path / "nope")], capsys, job)
    partial = tmp_path / "partial"
    shutil.copytree(tiny_weights / "transformer", partial / "transformer")
    assert "no vae/config.json" in _refused(["--generator", "anchored", "--weights", str(partial)], capsys, job)
    (partial / "vae").mkdir()
    shutil.copy(tiny_weights / "vae" / "config.json", partial / "vae" / "config.json")
    assert "no weights" in _refused(["--generator", "anchored", "--weights", str(partial)], capsys, job)
    assert "only read by --generator anchored" in _refused(["--weights", str(tiny_weights)], capsys, job)
    assert "only read by --generator anchored" in _refused(["--refine-strength", "0.5"], capsys, job)
    argv = ["--generator", "anchored", "--weights", str(tiny_weights), "--refine-strength", "1.5"]
    assert "(0, 1]" in _refused(argv, capsys, job)


def test_refine_strength_reaches_the_generator(tiny_weights):
    from anchorsplat.bake.job import JobSettings
    from anchorsplat.bake.pipeline import make_generator
    from anchorsplat.bake.presets import PRESETS

    settings = JobSettings(photo="p.png", generator="anchored", weights=str(tiny_weights), refine_strength=0.4)
    assert make_generator(settings, PRESETS["preview"]).config.refine_strength == 0.4
