"""A clothed surface from the Gaussians: RGB-D renders of the rest pose fused with open3d's TSDF, cleaned, decimated.

The avatar is rendered (colour, alpha and expected depth) from cameras on rings around its bounding box plus one
above and one below, and the same around its head. Pixels the splats cover (alpha >= ``alpha_min``) give their
depth; the others give a depth beyond the volume, which carves the space they look through, so the surface stays
inside every silhouette, and hair or loose clothing volume is kept where the body mesh has none. open3d's
``UniformTSDFVolume`` fuses the depth maps (voxel size and a thin truncation band from the render resolution),
marching cubes extracts the mesh, small floating pieces are dropped, and quadric decimation brings it to the
triangle budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from anchorsplat.gaussians.conventions import Cameras, look_at
from anchorsplat.gaussians.render import Backend, render
from anchorsplat.gaussians.rigged import PosedGaussians


@dataclass(frozen=True, eq=False)
class RGBDViews:
    """Renders of one pose from C cameras."""

    cameras: Cameras
    rgb: Float[Tensor, "C H W 3"]
    alpha: Float[Tensor, "C H W"]
    depth: Float[Tensor, "C H W"]
    """Expected camera-space depth, meters; 0 where nothing was hit."""


@dataclass(frozen=True, eq=False)
class FusedMesh:
    """A triangle mesh in the rest pose (numpy: it goes on to trimesh and xatlas)."""

    vertices: np.ndarray  # V 3 float64
    faces: np.ndarray  # F 3 int64
    voxel_size: float


def surround_cameras(
    points: Float[Tensor, "N 3"], resolution: int, *, yaws: int = 12, pitches_deg: tuple[float, ...] = (-35, 0, 35)
) -> Cameras:
    """Cameras around the points' bounding box: ``yaws`` per pitch ring, plus straight above and below, each far
    enough that the whole box fits its frame (30 degree field of view)."""
    lo, hi = points.min(0).values, points.max(0).values
    center = (lo + hi) / 2
    radius = float((hi - lo).norm()) / 2
    fov = math.radians(30.0)
    distance = 1.05 * radius / math.sin(fov / 2)
    eyes, ups = [], []
    for pitch in pitches_deg:
        for k in range(yaws):
            yaw = 2 * math.pi * (k + 0.5 * (pitch != 0)) / yaws  # the tilted rings fill the level ring's gaps
            p = math.radians(pitch)
            eyes.append([math.sin(yaw) * math.cos(p), math.sin(p), math.cos(yaw) * math.cos(p)])
            ups.append([0.0, 1.0, 0.0])
    for sign in (1.0, -1.0):  # straight above and below: +Y is the view axis, so "up" on the image is +Z
        eyes.append([0.0, sign, 0.0])
        ups.append([0.0, 0.0, -1.0])
    offsets = torch.tensor(eyes, dtype=points.dtype, device=points.device)
    eye = center + distance * offsets
    T = torch.cat([look_at(e[None], center[None], torch.tensor(u, dtype=e.dtype, device=e.device)) for e, u in
                   zip(eye, ups, strict=True)])  # fmt: skip
    f = 0.5 * resolution / math.tan(fov / 2)
    K = torch.tensor([[f, 0, resolution / 2], [0, f, resolution / 2], [0, 0, 1]], dtype=points.dtype)
    return Cameras(T, K.to(points.device).expand(len(T), 3, 3).clone(), resolution, resolution)


def head_points(points: Float[Tensor, "N 3"], head: Float[Tensor, "3"], radius: float = 0.2) -> Float[Tensor, "M 3"]:
    """The points within ``radius`` of the head joint and above its lowest point (chin to hair): what the
    close-up cameras frame."""
    return points[(points - head).norm(dim=-1) < radius]


def view_cameras(points: Float[Tensor, "N 3"], resolution: int, head: Float[Tensor, "3"] | None) -> Cameras:
    """The body ring cameras, plus the same rig of cameras framing the head when the rig has a head joint: the
    face gets about eight times the pixels, and the texture its detail (the bake prefers the closer views)."""
    cameras = surround_cameras(points, resolution)
    if head is None:
        return cameras
    near = head_points(points, head)
    if len(near) < 16:
        return cameras
    close = surround_cameras(near, resolution, yaws=8, pitches_deg=(-25.0, 0.0, 25.0))
    return Cameras(
        torch.cat([cameras.T_cam_world, close.T_cam_world]), torch.cat([cameras.Ks, close.Ks]), resolution, resolution
    )


def head_closeups(
    points: Float[Tensor, "N 3"], resolution: int, head: Float[Tensor, "3"], views: int = 8
) -> Cameras | None:
    """``views`` level cameras around the head (every ``360 / views`` degrees from the front) at ``resolution``
    pixels, for the texture only: the face gets the pixels a whole-body render cannot give it. None when the rig's
    head joint has too few points around it."""
    near = head_points(points, head)
    if len(near) < 16:
        return None
    return surround_cameras(near, resolution, yaws=views, pitches_deg=(0.0,))[:views]


def render_views(posed: PosedGaussians, cameras: Cameras, backend: Backend = "auto", chunk: int = 4) -> RGBDViews:
    """Colour, alpha and depth of frame 0 of ``posed`` from every camera (a few cameras at a time)."""
    if posed.means.shape[0] != 1:
        raise ValueError(f"render_views takes one posed frame, got {posed.means.shape[0]}")
    rgb, alpha, depth = [], [], []
    with torch.no_grad():
        for start in range(0, len(cameras), chunk):
            out = render(posed, cameras[start : start + chunk], backend=backend)
            rgb.append(out.rgb[0])
            alpha.append(out.alpha[0, ..., 0])
            depth.append(out.depth[0, ..., 0])
    return RGBDViews(cameras, torch.cat(rgb), torch.cat(alpha), torch.cat(depth))


def fuse_tsdf(
    views: RGBDViews, voxel_size: float, bounds: Float[Tensor, "2 3"], *, alpha_min: float = 0.5
) -> FusedMesh:
    """Fuse the depth maps into a TSDF over the cube around ``bounds`` (min, max corners) with open3d, and
    extract its zero level set with marching cubes."""
    import open3d as o3d

    trunc = 2.0 * voxel_size  # thin: a wider band fills the gaps between limbs from the views that see past them
    lo, hi = bounds[0].detach().cpu().double().numpy(), bounds[1].detach().cpu().double().numpy()
    length = float((hi - lo).max()) + 2 * trunc
    resolution = int(math.ceil(length / voxel_size))
    origin = (lo + hi) / 2 - length / 2
    # The uniform volume (open3d's ScalableTSDFVolume integrates nothing in open3d 0.19/0.20 on this platform).
    volume = o3d.pipelines.integration.UniformTSDFVolume(
        length=length, resolution=resolution, sdf_trunc=trunc,
        color_type=o3d.pipelines.integration.TSDFVolumeColorType.NoColor, origin=origin,
    )  # fmt: skip
    cams = views.cameras
    centre = torch.as_tensor((lo + hi) / 2, dtype=cams.T_cam_world.dtype)
    for c in range(len(cams)):
        to_centre = float((cams.T_cam_world[c, :3, :3].cpu() @ centre + cams.T_cam_world[c, :3, 3].cpu())[2])
        background = to_centre + length  # beyond the far side of the volume from every camera
        depth = views.depth[c].detach().cpu().numpy().astype(np.float32)
        # Empty pixels look through the volume at a wall behind it: that carves the free space they see, which
        # keeps the surface inside the silhouettes (without it, the band in front of each surface survives
        # wherever a side view saw nothing and limbs swell and merge).
        depth = np.where(views.alpha[c].detach().cpu().numpy() >= alpha_min, depth, background).astype(np.float32)
        colour = (views.rgb[c].detach().cpu().numpy().clip(0, 1) * 255).astype(np.uint8)
        rgbd = o3d.geometry.RGBDImage.create_from_color_and_depth(
            o3d.geometry.Image(np.ascontiguousarray(colour)), o3d.geometry.Image(depth),
            depth_scale=1.0, depth_trunc=1e6, convert_rgb_to_intensity=False,
        )  # fmt: skip
        K = cams.Ks[c].detach().cpu().double().numpy()
        intrinsic = o3d.camera.PinholeCameraIntrinsic(cams.width, cams.height, K[0, 0], K[1, 1], K[0, 2], K[1, 2])
        volume.integrate(rgbd, intrinsic, cams.T_cam_world[c].detach().cpu().double().numpy())
    mesh = volume.extract_triangle_mesh()
    return FusedMesh(np.asarray(mesh.vertices, np.float64), np.asarray(mesh.triangles, np.int64), voxel_size)


def clean_and_decimate(mesh: FusedMesh, max_triangles: int, *, min_piece: float = 0.01) -> FusedMesh:
    """Drop pieces smaller than ``min_piece`` of the largest one, merge duplicate vertices, and decimate with
    quadric error metrics to at most ``max_triangles`` triangles."""
    import open3d as o3d

    if len(mesh.faces) == 0:
        raise ValueError("the TSDF fusion found no surface: the avatar's splats are too transparent or too small")
    m = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(mesh.vertices), o3d.utility.Vector3iVector(mesh.faces))
    m = m.merge_close_vertices(1e-3 * mesh.voxel_size)
    m.remove_duplicated_triangles()
    m.remove_degenerate_triangles()
    clusters, counts, _ = m.cluster_connected_triangles()
    clusters, counts = np.asarray(clusters), np.asarray(counts)
    m.remove_triangles_by_mask(counts[clusters] < min_piece * counts.max())
    m.remove_unreferenced_vertices()
    if len(m.triangles) > max_triangles:
        m = m.simplify_quadric_decimation(target_number_of_triangles=max_triangles)
        m.remove_degenerate_triangles()
        m.remove_unreferenced_vertices()
    m.remove_non_manifold_edges()
    m.remove_unreferenced_vertices()
    return FusedMesh(np.asarray(m.vertices, np.float64), np.asarray(m.triangles, np.int64), mesh.voxel_size)


def voxel_size_for(points: Float[Tensor, "N 3"], resolution: int, max_voxels: int = 256) -> float:
    """A voxel about two render pixels wide (finer voxels than the depth maps resolve only add noise), and at
    most ``max_voxels`` along the longest side of the volume (memory)."""
    lo, hi = points.min(0).values, points.max(0).values
    return max(2.0 * 1.05 * float((hi - lo).norm()) / resolution, float((hi - lo).max()) / (max_voxels - 8))
