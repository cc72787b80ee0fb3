"""Regenerates tests/data/golden_v1.anchorsplat (only when the v1 layout itself is meant to change: the
golden file pins what v1 files in the wild look like, so normally it is never regenerated)."""

import torch

from anchorsplat.gaussians.io import Avatar, save_avatar
from anchorsplat.gaussians.rigged import bind_to_surface
from anchorsplat.gaussians.synthetic import synthetic_rig

if __name__ == "__main__":
    rig = synthetic_rig()
    g = bind_to_surface(rig, 32, sh_degree=1, generator=torch.Generator().manual_seed(7))
    save_avatar("tests/data/golden_v1.anchorsplat", Avatar(rig, g, {"note": "golden v1 test file"}))
