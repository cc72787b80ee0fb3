"""The subject fit follows its rig's device (see tests/device_guard.py for the guard's scheme)."""

from __future__ import annotations

import numpy as np
from device_guard import DeviceGuard
from test_subject import _synthetic_photo

from anchorsplat.bake.bodyfit import fit_subject
from anchorsplat.gaussians.synthetic import synthetic_rig


def test_the_subject_fit_follows_its_rigs_device():
    rig = synthetic_rig()
    detections, *_ = _synthetic_photo(rig, yaw_deg=10.0, roll_deg=0.0, width=160, height=200)
    with DeviceGuard("cpu") as guard:
        fit = fit_subject(np.zeros((200, 160, 3), np.uint8), rig, detections=detections, iterations=10)
    assert fit.camera.T_cam_world.device.type == "cpu" and fit.reprojection_error_px >= 0
    assert guard.syncs_in("bake/bodyfit.py") <= 4, guard.syncs  # the final error, not one per step
