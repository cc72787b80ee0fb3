"""The core: conventions, body models -> Rig, rigged Gaussians, posing, rendering, file formats.

Imports none of its siblings (bake, diffusion, runtime, viewer) and no heavy optional dependency at import time.
"""

from .conventions import Cameras, look_at, orbit_cameras
from .motion import Motion, load_motion, save_motion
from .retarget import RigInputs, motion_to_rig
from .rig import Rig, pose_mesh
from .rigged import PosedGaussians, RiggedGaussians, bind_to_surface, pose

__all__ = [
    "Cameras", "Motion", "PosedGaussians", "Rig", "RigInputs", "RiggedGaussians", "bind_to_surface", "load_motion",
    "look_at", "motion_to_rig", "orbit_cameras", "pose", "pose_mesh", "save_motion",
]  # fmt: skip
