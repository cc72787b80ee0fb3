"""Ray casting on triangle meshes with open3d (Embree, CPU): what texture baking and mesh renders are built on.

:func:`rasterize_uv` finds, for each texel centre, the triangle of the UV layout under it and its barycentric
coordinates (the layout is a flat mesh at z = 0 hit by rays along -z). :func:`render_mesh` draws a textured mesh
from OpenCV pinhole cameras (nearest texel, no lighting: the texture already holds the lit colour the splats
show), for comparisons against splat renders.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from anchorsplat.gaussians.conventions import Cameras


@dataclass(frozen=True, eq=False)
class MeshHits:
    """Per-ray hits: the triangle (-1: none), the barycentric coordinates of the hit and its distance."""

    face: np.ndarray  # R int64
    barycentric: np.ndarray  # R 3 float64
    distance: np.ndarray  # R float64, inf where nothing was hit


def cast(vertices: np.ndarray, faces: np.ndarray, origins: np.ndarray, directions: np.ndarray) -> MeshHits:
    """Cast rays (R x 3 origins and directions) at the mesh; the first hit of each."""
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(
        o3d.core.Tensor(np.ascontiguousarray(vertices, np.float32)),
        o3d.core.Tensor(np.ascontiguousarray(faces, np.uint32)),
    )
    rays = np.concatenate([origins, directions], axis=1).astype(np.float32)
    out = scene.cast_rays(o3d.core.Tensor(rays))
    face = out["primitive_ids"].numpy().astype(np.int64)
    face[face == np.iinfo(np.uint32).max] = -1
    uv = out["primitive_uvs"].numpy().astype(np.float64)  # weights of vertices 1 and 2
    barycentric = np.stack([1.0 - uv[:, 0] - uv[:, 1], uv[:, 0], uv[:, 1]], axis=1)
    return MeshHits(face, barycentric, out["t_hit"].numpy().astype(np.float64))


def rasterize_uv(uvs: np.ndarray, faces: np.ndarray, size: int) -> MeshHits:
    """The UV triangle under each texel centre of a ``size`` x ``size`` texture (row-major, glTF's top-left
    origin: texel (row, col) is at u = (col + 0.5) / size, v = (row + 0.5) / size)."""
    flat = np.concatenate([uvs, np.zeros((len(uvs), 1))], axis=1)
    centres = (np.arange(size) + 0.5) / size
    v, u = np.meshgrid(centres, centres, indexing="ij")
    origins = np.stack([u.ravel(), v.ravel(), np.ones(size * size)], axis=1)
    directions = np.broadcast_to(np.array([0.0, 0.0, -1.0]), origins.shape)
    return cast(flat, faces, origins, directions)


def camera_rays(cameras: Cameras, index: int) -> tuple[np.ndarray, np.ndarray]:
    """World-space origins and unit directions of camera ``index``'s pixel centres (row-major)."""
    K = cameras.Ks[index].detach().cpu().double().numpy()
    T_world_cam = torch.linalg.inv(cameras.T_cam_world[index].detach().cpu().double()).numpy()
    ys, xs = np.meshgrid(np.arange(cameras.height) + 0.5, np.arange(cameras.width) + 0.5, indexing="ij")
    d_cam = np.stack([(xs - K[0, 2]) / K[0, 0], (ys - K[1, 2]) / K[1, 1], np.ones_like(xs)], axis=-1).reshape(-1, 3)
    d_world = d_cam @ T_world_cam[:3, :3].T
    d_world /= np.linalg.norm(d_world, axis=1, keepdims=True)
    return np.broadcast_to(T_world_cam[:3, 3], d_world.shape).copy(), d_world


def render_mesh(
    vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray, texture: np.ndarray, cameras: Cameras
) -> tuple[np.ndarray, np.ndarray]:
    """Colour (C H W 3 in [0, 1]) and coverage (C H W) of a textured mesh seen from each camera."""
    rgb = np.zeros((len(cameras), cameras.height, cameras.width, 3))
    cover = np.zeros((len(cameras), cameras.height, cameras.width))
    size_v, size_u = texture.shape[:2]
    for c in range(len(cameras)):
        origins, directions = camera_rays(cameras, c)
        hits = cast(vertices, faces, origins, directions)
        hit = hits.face >= 0
        uv = np.einsum("rk,rkc->rc", hits.barycentric[hit], uvs[faces[hits.face[hit]]])
        col = np.clip((uv[:, 0] * size_u).astype(np.int64), 0, size_u - 1)
        row = np.clip((uv[:, 1] * size_v).astype(np.int64), 0, size_v - 1)
        flat = np.zeros((len(hit), 3))
        flat[hit] = texture[row, col] / 255.0
        rgb[c] = flat.reshape(cameras.height, cameras.width, 3)
        cover[c] = hit.reshape(cameras.height, cameras.width)
    return rgb, cover
