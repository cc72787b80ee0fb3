"""Bake presets: Python objects, not YAML. ``preview`` is sized for a 2-core CPU in under ~10 minutes;
``standard`` and ``full`` are for a GPU."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BakePreset:
    name: str
    resolution: int
    """Side of the square synthetic frames, pixels."""
    frames_per_clip: int
    proxy_gaussians: int
    """Gaussians on the photo-textured proxy the default generator renders."""
    gaussians: int
    """Gaussians of the baked avatar at the start of the fit (densify/prune change it within [0.5x, 2x])."""
    iterations: int
    photo_probability: float = 0.25
    """Balanced sampling: the share of fit steps that use the real photo (see bake/fit.py)."""
    holdout_every: int = 6
    """Every k-th frame of every clip is held out of the fit and used for the held-out PSNR."""
    densify_every: int = 100
    checkpoint_every: int = 100
    head_density: float = 10.0
    """Gaussian density on the head relative to the body on the baked avatar."""
    proxy_head_density: float = 8.0
    """The same on the photo-textured proxy: its face Gaussians should be about the photo's pixels in size, or the
    generated face clips blur the eyes and mouth that carry the identity."""
    volume_share: float = 0.25
    """Hair and loose-clothing volume (:mod:`anchorsplat.diffusion.volume`): up to this share of Gaussians is
    added, on the proxy and the avatar, as a shell off the body where the photo's silhouette shows volume; 0
    turns it off (the avatar stays on the body surface)."""


PRESETS: dict[str, BakePreset] = {
    "preview": BakePreset("preview", resolution=128, frames_per_clip=12, proxy_gaussians=120000, gaussians=12000,
                          iterations=500),
    "standard": BakePreset("standard", resolution=512, frames_per_clip=48, proxy_gaussians=200000, gaussians=60000,
                           iterations=6000, densify_every=200, checkpoint_every=500),
    "full": BakePreset("full", resolution=1024, frames_per_clip=96, proxy_gaussians=400000, gaussians=150000,
                       iterations=20000, densify_every=300, checkpoint_every=1000),
}  # fmt: skip
