"""The scene adapter of one tab (:class:`TabScene`): what a posed frame becomes in the tab's browser.

Server render: the render as the background image (JPEG + depth); client mode draws in the browser
(:mod:`.clientmode`), so the background is cleared. Overlays:
the skeleton as line segments and the rig as a skinned wireframe mesh. The conversions are the pure functions of
:mod:`.scene`; this class only keeps the tab's scene handles so it can update or remove them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from anchorsplat.gaussians.render import render
from anchorsplat.gaussians.rig import Rig
from anchorsplat.gaussians.rigged import PosedGaussians
from anchorsplat.gaussians.video import to_uint8

from .scene import background_depth, bone_frames, skeleton_segments, viser_camera


@dataclass(frozen=True)
class RenderOptions:
    backend: str
    device: torch.device
    background: tuple[float, float, float]
    jpeg_quality: int


class TabScene:
    def __init__(self, client, options: RenderOptions):
        self.client, self.options = client, options
        self._skeleton = self._mesh = None

    def send_render(self, posed: PosedGaussians, width: int, height: int) -> None:
        """Render ``posed`` from the tab's camera at ``width`` x ``height`` and show it as the background."""
        camera, opts = self.client.camera, self.options
        cams = viser_camera(torch.tensor(camera.wxyz), torch.tensor(camera.position), float(camera.fov), width, height)
        background = torch.tensor(opts.background, dtype=torch.float32, device=opts.device)
        out = render(posed, cams.to(opts.device), backend=opts.backend, background=background)
        image = to_uint8(out.rgb[0, 0])
        depth = background_depth(out.depth[0, 0], out.alpha[0, 0])
        self.client.scene.set_background_image(image, format="jpeg", jpeg_quality=opts.jpeg_quality, depth=depth)

    def clear_background(self) -> None:
        """No server image (client mode draws the avatar in the browser)."""
        self.client.scene.set_background_image(None)

    def send_overlays(self, T_world_joint, rig: Rig, *, skeleton: bool, mesh: bool) -> None:
        if skeleton:
            points = skeleton_segments(T_world_joint, rig.parents).float().cpu().numpy()
            if self._skeleton is None:
                self._skeleton = self.client.scene.add_line_segments(
                    "/anchorsplat/skeleton", points, (255, 60, 30), thickness=4.0, thickness_units="screen"
                )
            else:
                self._skeleton.points = points
        elif self._skeleton is not None:
            self._skeleton.remove()
            self._skeleton = None
        if mesh:
            if self._mesh is None:
                self._mesh = self._add_mesh(rig)
            frames = bone_frames(T_world_joint)
            for bone, wxyz, position in zip(self._mesh.bones, frames.wxyzs, frames.positions, strict=True):
                bone.wxyz, bone.position = wxyz, position
        elif self._mesh is not None:
            self._mesh.remove()
            self._mesh = None

    def _add_mesh(self, rig: Rig):
        rig = rig.to("cpu")
        weights = torch.zeros(rig.num_vertices, rig.num_joints, dtype=torch.float32)
        weights.scatter_add_(1, rig.skin_indices, rig.skin_weights.float())
        joints = rig.joints_rest.float().numpy()
        return self.client.scene.add_mesh_skinned(
            "/anchorsplat/mesh", rig.vertices_rest.float().numpy(), rig.faces.numpy(),
            bone_wxyzs=np.tile([1.0, 0.0, 0.0, 0.0], (rig.num_joints, 1)), bone_positions=joints,
            skin_weights=weights.numpy(), color=(90, 160, 255), wireframe=True,
        )  # fmt: skip

    def reset(self) -> None:
        """Remove every node (a new avatar was opened)."""
        for handle in (self._skeleton, self._mesh):
            if handle is not None:
                handle.remove()
        self._skeleton = self._mesh = None

    def forget(self) -> None:
        """Drop the handles without messages (the tab is gone)."""
        self._skeleton = self._mesh = None
