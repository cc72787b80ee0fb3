"""The one way to find shipped files (default rig, sample subject and avatars, sample speech, audio-to-motion
weights, the web player), installed or checked out.

The repository's ``assets/`` folder installs as the package ``anchorsplat.assets`` (package data, see
pyproject.toml), and the web player as data of ``anchorsplat.gaussians``; both are read through
:mod:`importlib.resources`, so a wheel install works from any directory.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def package_data(package: str, *parts: str) -> Path:
    """A data file shipped inside an anchorsplat package, e.g. ``package_data("anchorsplat.viewer", "web")``."""
    # pip installs wheels unzipped, so the package's resources are real files with real paths
    return Path(str(files(package))).joinpath(*parts)


def assets_dir() -> Path:
    """The folder of the shipped assets."""
    try:
        return package_data("anchorsplat.assets")
    except ModuleNotFoundError:
        # an editable install made before assets/ became a package (reinstall with `pip install -e .` to drop
        # this): the checkout's own folder
        return Path(__file__).resolve().parent.parent / "assets"


def asset_path(*parts: str) -> Path:
    """A shipped asset, e.g. ``asset_path("sample", "astronaut.png")``."""
    return assets_dir().joinpath(*parts)


def web_dir() -> Path:
    """The web player's page and script (``index.html``, ``player.js``)."""
    return package_data("anchorsplat.gaussians", "web")
