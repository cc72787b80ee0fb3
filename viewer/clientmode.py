"""Client mode ("client splats"): the browser draws and animates the avatar; the server sends poses only.

The avatar goes to the tab once, as the web export's payload (``web_avatar_data``: Gaussians with top-4 joint
weights and expression deltas), with the web export's player (one implementation) and ``web/client.js``, which
lays the player's canvas over viser's. Every frame the tab's motion (audio, microphone, controls, motion file:
the same :class:`~anchorsplat.gaussians.motion.Motion` the server render poses) goes out as joint rotations +
root + expression weights (:class:`PoseSender`, a few KB), and the viser camera whenever it moves
(:func:`camera_payload`), both through the tab's localStorage.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import torch

from anchorsplat.gaussians.assets import package_data
from anchorsplat.gaussians.conventions import quat_to_matrix
from anchorsplat.gaussians.export_web import TEMPLATES, web_avatar_data, web_motion_arrays
from anchorsplat.gaussians.io import Avatar
from anchorsplat.gaussians.motion import Motion
from anchorsplat.gaussians.rig import Rig

from .inject import read_source, run_html, script_html
from .talk import SLOTS

CLIENT_SCRIPT = package_data("anchorsplat.viewer", "web", "client.js")
STOP_HTML = run_html("if(window.anchorsplatClient&&window.anchorsplatClient.stop)window.anchorsplatClient.stop()")


def client_html(avatar: Avatar, motion_key: str, camera_key: str) -> str:
    """The markup that starts the browser's player on ``avatar`` (rest pose until the first pose arrives)."""
    config = {"motionKey": motion_key, "cameraKey": camera_key, "slots": SLOTS}
    sources = [read_source(TEMPLATES / "player.js"), read_source(CLIENT_SCRIPT)]
    return script_html("anchorsplat-client", sources, {"config": config, "avatar": web_avatar_data(avatar)})


def camera_payload(wxyz, position, fov_y_rad: float) -> str:
    """viser's camera (``T_world_camera``, OpenCV axes) as the player wants it: world -> camera rows and t."""
    R_world_cam = quat_to_matrix(torch.tensor(wxyz, dtype=torch.float64))
    R_cam_world = R_world_cam.T
    t = -R_cam_world @ torch.tensor(position, dtype=torch.float64)
    return json.dumps({"rows": R_cam_world.tolist(), "t": t.tolist(), "fovY": float(fov_y_rad)})


class PoseSender:
    """Per-frame poses to one tab, rotating through :data:`~.talk.SLOTS` localStorage keys (viser keeps only the
    newest value of a key when messages bunch up; the page takes the highest ``n``)."""

    def __init__(self, client, key: str, rig: Rig):
        self.client, self.key = client, key
        self.rig = rig.to("cpu", torch.float64)
        self.sent = 0
        self.last_bytes = 0

    def send(self, motion: Motion) -> None:
        quats, root, weights = web_motion_arrays(self.rig, motion.frame(len(motion) - 1))

        def b64(a: np.ndarray) -> str:
            return base64.b64encode(a.tobytes()).decode("ascii")

        payload = json.dumps({"n": self.sent, "r": b64(quats[0]), "t": root[0].tolist(), "w": b64(weights[0])})
        self.client.local_storage.set_item(f"{self.key}.{self.sent % SLOTS}", payload)
        self.sent += 1
        self.last_bytes = len(payload)
