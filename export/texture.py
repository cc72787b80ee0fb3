"""UVs and a colour texture for the extracted surface: xatlas (through trimesh) unwraps it, and each texel takes
the colour the splat renders show at its surface point.

Baking: every texel centre is mapped to its point on the surface through the UV layout
(:func:`~anchorsplat.export.raycast.rasterize_uv`), projected into every render, and kept where that render saw
it (the render's depth agrees with the point's within a few voxels and the splats are opaque there). Views blend
with weight ``alpha * cos^4`` of the angle between the surface normal and the view ray, so each texel comes
mostly from the views that face it. Texels no view saw (and the gutter between charts, so that mip-mapping does
not bleed black in) take the colour of the nearest texel that was seen.

The renders resolve about 5 mm on a body (384 pixels for 1.8 m), far coarser than a 2048^2 atlas's texels, so
textures larger than ``BAKE_MAX`` are baked at ``BAKE_MAX`` and upsampled (bilinear): same detail, a quarter of
the time per doubling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .extract import FusedMesh, RGBDViews
from .raycast import rasterize_uv

BAKE_MAX = 1024


@dataclass(frozen=True, eq=False)
class UVMesh:
    """A mesh with one UV per vertex (seams split), glTF UV convention (v down)."""

    vertices: np.ndarray  # V 3
    faces: np.ndarray  # F 3
    uvs: np.ndarray  # V 2
    source_vertex: np.ndarray  # V: the vertex of the unwrapped mesh each one was split from


def unwrap(mesh: FusedMesh) -> UVMesh:
    """Charts and a packed UV atlas from xatlas, through trimesh."""
    import trimesh

    tm = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    import xatlas

    vmap, faces, uvs = xatlas.parametrize(tm.vertices.astype(np.float32), tm.faces.astype(np.uint32))
    # xatlas's v axis points up (OpenGL); glTF's texture origin is the top-left corner.
    uvs = np.stack([uvs[:, 0], 1.0 - uvs[:, 1]], axis=1).astype(np.float64)
    vmap = vmap.astype(np.int64)
    return UVMesh(mesh.vertices[vmap], faces.astype(np.int64), uvs, vmap)


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    tri = vertices[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def bake_texture(mesh: UVMesh, views: RGBDViews, size: int, tolerance: float, *, alpha_min: float = 0.5) -> np.ndarray:
    """An sRGB ``size`` x ``size`` x 3 uint8 texture of ``mesh`` from the renders ``views`` (see the module doc)."""
    if size > BAKE_MAX:
        from PIL import Image

        small = bake_texture(mesh, views, BAKE_MAX, tolerance, alpha_min=alpha_min)
        return np.asarray(Image.fromarray(small).resize((size, size), Image.Resampling.BILINEAR))
    hits = rasterize_uv(mesh.uvs, mesh.faces, size)
    inside = np.nonzero(hits.face >= 0)[0]
    faces = hits.face[inside]
    points = np.einsum("rk,rkc->rc", hits.barycentric[inside], mesh.vertices[mesh.faces[faces]])
    normals = face_normals(mesh.vertices, mesh.faces)[faces]
    total = np.zeros((len(inside), 3))
    weight = np.zeros(len(inside))
    cams = views.cameras
    rgb, alpha, depth = (t.detach().cpu().float().numpy() for t in (views.rgb, views.alpha, views.depth))
    T = cams.T_cam_world.detach().cpu().double().numpy()
    Ks = cams.Ks.detach().cpu().double().numpy()
    for c in range(len(cams)):
        p_cam = points @ T[c, :3, :3].T + T[c, :3, 3]
        z = p_cam[:, 2]
        uvw = p_cam @ Ks[c].T
        with np.errstate(divide="ignore", invalid="ignore"):
            px, py = uvw[:, 0] / uvw[:, 2], uvw[:, 1] / uvw[:, 2]
        col, row = np.floor(px).astype(np.int64), np.floor(py).astype(np.int64)
        ok = (z > 0) & (col >= 0) & (col < cams.width) & (row >= 0) & (row < cams.height)
        idx = np.nonzero(ok)[0]
        a = alpha[c, row[idx], col[idx]]
        seen = (a >= alpha_min) & (np.abs(depth[c, row[idx], col[idx]] - z[idx]) < tolerance)
        idx, a = idx[seen], a[seen]
        ray = p_cam[idx] / np.linalg.norm(p_cam[idx], axis=1, keepdims=True) @ T[c, :3, :3]  # world direction
        facing = np.clip(-(normals[idx] * ray).sum(1), 0, None)
        w = a * facing**4
        total[idx] += w[:, None] * rgb[c, row[idx], col[idx]] / a[:, None]  # un-premultiplied colour
        weight[idx] += w
    seen = weight > 1e-6
    texture = np.zeros((size * size, 3))
    texture[inside[seen]] = total[seen] / weight[seen, None]
    known = np.zeros(size * size, dtype=bool)
    known[inside[seen]] = True
    return _fill_from_nearest(texture.reshape(size, size, 3), known.reshape(size, size))


def _fill_from_nearest(texture: np.ndarray, known: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    if not known.any():
        raise ValueError("no texel of the surface was seen by any render: the texture would be empty")
    _, (rows, cols) = ndimage.distance_transform_edt(~known, return_indices=True)
    filled = texture[rows, cols]
    return (np.clip(filled, 0, 1) * 255 + 0.5).astype(np.uint8)
