"""Fixtures of the viewer tests: a tiny synthetic avatar and a running viewer on a free port."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from anchorsplat.gaussians.assets import assets_dir

ASSETS = assets_dir()
SAMPLE_SPEECH = ASSETS / "sample_speech.flac"


@pytest.fixture(scope="module")
def avatar():
    from anchorsplat.gaussians.io import Avatar
    from anchorsplat.gaussians.rigged import bind_to_surface
    from anchorsplat.gaussians.synthetic import synthetic_rig

    rig = synthetic_rig()
    gaussians = bind_to_surface(rig, 800, generator=torch.Generator().manual_seed(0))
    return Avatar(rig, gaussians)


@pytest.fixture()
def app(avatar):
    pytest.importorskip("viser")
    from anchorsplat.viewer.app import ViewerApp, ViewerSettings

    viewer = ViewerApp(avatar, ViewerSettings(port=0, model="baseline", max_resolution=192, fps=20.0))
    yield viewer
    viewer.stop()


@pytest.fixture()
def front_view(app):
    """Camera position and look-at of a client looking at the avatar's front."""
    target = app.avatar.target
    return (float(target[0]), float(target[1]), float(target[2] + app.avatar.distance)), tuple(float(v) for v in target)


@pytest.fixture(scope="session")
def speech_path() -> Path:
    assert SAMPLE_SPEECH.is_file(), f"{SAMPLE_SPEECH} is missing (it ships with the repository)"
    return SAMPLE_SPEECH
