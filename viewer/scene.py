"""What the viewer sends to the browser, as plain functions: viser cameras -> :class:`Cameras`, posed Gaussians ->
viser's splat arrays, a posed skeleton -> line segments and bone frames, a render -> an image + depth.

viser's camera message is ``T_world_camera`` in the OpenCV convention (+Z forward, +Y down) with a vertical
field of view in radians, the same convention as :mod:`anchorsplat.gaussians.conventions`, so the conversion is
one matrix inverse. viser's background depth is camera-space z in meters (0 .. 167.77), the render's ``depth``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from anchorsplat.gaussians.conventions import Cameras, matrix_to_quat, quat_to_matrix
from anchorsplat.gaussians.rigged import PosedGaussians, sh_dc_to_rgb

FAR_DEPTH = 167.0
"""Depth written where nothing was hit: behind every overlay (viser's fixed-point depth tops out at 167.77 m)."""


def viser_camera(
    wxyz: Float[Tensor, "4"], position: Float[Tensor, "3"], fov_y_rad: float, width: int, height: int
) -> Cameras:
    """One :class:`Cameras` from a viser client camera (``T_world_camera`` as wxyz + position, OpenCV axes)."""
    if width <= 0 or height <= 0 or not 0 < fov_y_rad < math.pi:
        raise ValueError(f"bad viewer camera: {width}x{height} pixels, fov {fov_y_rad} rad")
    T_world_cam = torch.eye(4, dtype=torch.float32)
    T_world_cam[:3, :3] = quat_to_matrix(wxyz.float())
    T_world_cam[:3, 3] = position.float()
    f = 0.5 * height / math.tan(fov_y_rad / 2)
    K = torch.tensor([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]])
    return Cameras(torch.linalg.inv(T_world_cam)[None], K[None], width, height)


@dataclass(frozen=True, eq=False)
class SplatArrays:
    """One frame of Gaussians in the layout of viser's ``add_gaussian_splats`` / ``set_gaussians`` (numpy)."""

    centers: np.ndarray  # N 3 float32
    covariances: np.ndarray  # N 3 3 float32
    rgbs: np.ndarray  # N 3 float32 in [0, 1]
    opacities: np.ndarray  # N 1 float32 in [0, 1]


def splat_arrays(posed: PosedGaussians, frame: int = 0) -> SplatArrays:
    """Frame ``frame`` of ``posed`` as centres, world covariances ``R diag(s^2) R^T``, colours and opacities.

    viser's splat renderer has no spherical harmonics, so colour is the SH DC term (the view-independent base
    colour); the server render mode shows the view-dependent colour."""
    R = quat_to_matrix(posed.quats_wxyz[frame].float())
    s2 = posed.scales[frame].float() ** 2
    cov = (R * s2[:, None, :]) @ R.transpose(-1, -2)
    rgb = sh_dc_to_rgb(posed.sh_coeffs[:, 0].float()).clamp(0.0, 1.0)

    def np32(t: Tensor) -> np.ndarray:
        return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)

    return SplatArrays(
        np32(posed.means[frame]), np32(cov), np32(rgb), np32(posed.opacities[frame][:, None].clamp(0.0, 1.0))
    )


def skeleton_segments(T_world_joint: Float[Tensor, "J 4 4"], parents: Int[Tensor, " J"]) -> Float[Tensor, "S 2 3"]:
    """A line from every joint's parent to the joint (roots have none)."""
    child = torch.nonzero(parents >= 0)[:, 0]
    positions = T_world_joint[:, :3, 3]
    return torch.stack([positions[parents[child]], positions[child]], dim=1)


@dataclass(frozen=True, eq=False)
class BoneFrames:
    """World frames of a skinned mesh's bones, as viser wants them (wxyz, position)."""

    wxyzs: np.ndarray  # J 4
    positions: np.ndarray  # J 3


def bone_frames(T_world_joint: Float[Tensor, "J 4 4"]) -> BoneFrames:
    """Bones of viser's skinned mesh are world frames whose rest value is (identity, rest joint position); the
    rig's ``T_world_joint`` has exactly that form (rotations are world-aligned, identity at rest), so viser's
    ``bone * inverse(bone_rest)`` is the rig's own skinning transform."""
    q = matrix_to_quat(T_world_joint[:, :3, :3].float())
    return BoneFrames(
        q.cpu().numpy().astype(np.float64), T_world_joint[:, :3, 3].float().cpu().numpy().astype(np.float64)
    )


def background_depth(depth: Float[Tensor, "H W 1"], alpha: Float[Tensor, "H W 1"]) -> np.ndarray:
    """Depth for ``set_background_image``: the render's z where the avatar covers the pixel, far elsewhere, so
    overlays (skeleton, mesh) are hidden behind the avatar and drawn over the empty background."""
    covered = alpha > 0.5
    z = torch.where(covered, depth, torch.full_like(depth, FAR_DEPTH)).clamp(0.0, FAR_DEPTH)
    return z[..., 0].float().cpu().numpy()
