"""UVs and a colour texture for the extracted surface: xatlas (through trimesh) unwraps it, and each texel takes
the colour the splat renders show at its surface point.

Baking: every texel centre is mapped to its point on the surface through the UV layout
(:func:`~anchorsplat.export.raycast.rasterize_uv`), projected into every render, and kept where that render saw
it (the render's depth agrees with the point's within a few voxels and the splats are opaque there). Views blend
with weight ``alpha * cos^4 * (f / z)^2`` (the angle between the surface normal and the view ray, and pixels per
metre squared), so each texel comes mostly from the views that face it from closest (the head close-ups).
Texels no view saw (and the gutter between charts, so that mip-mapping does not bleed black in) take the colour
of the nearest texel that was seen.

Every texel is baked at the requested size (no upsampling). To keep that fast, the views are chosen per face,
not per texel: each face takes its texels from the few views (``best``, default 6) with the largest weight at
its centre that face it and overlap their frame; a texel that none of them sees (occluded) is filled like the
gutter. A 2048^2 texture of the sample avatar bakes in tens of seconds on one CPU core.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .extract import FusedMesh, RGBDViews
from .raycast import rasterize_uv


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


def bake_texture(
    mesh: UVMesh, views: RGBDViews, size: int, tolerance: float, *, alpha_min: float = 0.5, best: int = 6
) -> np.ndarray:
    """An sRGB ``size`` x ``size`` x 3 uint8 texture of ``mesh`` from the renders ``views`` (see the module doc),
    each face's texels from its ``best`` views."""
    hits = rasterize_uv(mesh.uvs, mesh.faces, size)
    inside = np.nonzero(hits.face >= 0)[0]
    # Texels sorted by their face: a camera's work is on the texels of the faces it sees, found per face.
    order = np.argsort(hits.face[inside], kind="stable")
    inside = inside[order]
    faces = hits.face[inside]
    starts = np.searchsorted(faces, np.arange(len(mesh.faces) + 1))
    points = np.einsum("rk,rkc->rc", hits.barycentric[inside], mesh.vertices[mesh.faces[faces]]).astype(np.float32)
    face_n = face_normals(mesh.vertices, mesh.faces).astype(np.float32)
    face_c = mesh.vertices[mesh.faces].mean(1).astype(np.float32)
    face_r = np.linalg.norm(mesh.vertices[mesh.faces] - face_c[:, None].astype(np.float64), axis=2).max(1)
    total = np.zeros((len(inside), 3), np.float32)
    weight = np.zeros(len(inside), np.float32)
    cams = views.cameras
    rgb, alpha, depth = (t.detach().cpu().float().numpy() for t in (views.rgb, views.alpha, views.depth))
    T = cams.T_cam_world.detach().cpu().double().numpy()
    Ks = cams.Ks.detach().cpu().double().numpy()
    chosen = _face_views(face_c, face_n, face_r, T, Ks, cams.width, cams.height, best)
    for c in range(len(cams)):
        R, t, K = T[c, :3, :3].astype(np.float32), T[c, :3, 3].astype(np.float32), Ks[c].astype(np.float32)
        idx = _texels_of(np.nonzero(chosen[:, c])[0], starts)
        p_cam = points[idx] @ R.T + t
        z = p_cam[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            px, py = K[0, 0] * p_cam[:, 0] / z + K[0, 2], K[1, 1] * p_cam[:, 1] / z + K[1, 2]
        col, row = np.floor(px).astype(np.int64), np.floor(py).astype(np.int64)
        ok = np.nonzero((z > 0) & (col >= 0) & (col < cams.width) & (row >= 0) & (row < cams.height))[0]
        col, row, z, idx = col[ok], row[ok], z[ok], idx[ok]
        a = alpha[c, row, col]
        seen = (a >= alpha_min) & (np.abs(depth[c, row, col] - z) < tolerance)
        col, row, z, a, idx = col[seen], row[seen], z[seen], a[seen], idx[seen]
        ray = p_cam[ok[seen]] / np.linalg.norm(p_cam[ok[seen]], axis=1, keepdims=True)  # camera -> point, camera
        facing = np.clip(-(face_n[faces[idx]] @ R.T * ray).sum(1), 0.0, 1.0)
        w = a * facing**4 * (K[0, 0] / z) ** 2  # cos^4, and the pixel footprint: close views win
        total[idx] += w[:, None] * rgb[c, row, col] / a[:, None]  # un-premultiplied colour
        weight[idx] += w
    seen = weight > 1e-6
    texture = np.zeros((size * size, 3))
    texture[inside[seen]] = total[seen] / weight[seen, None]
    known = np.zeros(size * size, dtype=bool)
    known[inside[seen]] = True
    return _fill_from_nearest(texture.reshape(size, size, 3), known.reshape(size, size))


def _face_views(
    face_c: np.ndarray, face_n: np.ndarray, face_r: np.ndarray, T: np.ndarray, Ks: np.ndarray, width: int,
    height: int, best: int,
) -> np.ndarray:  # fmt: skip
    """F x C bool: for each face, the ``best`` cameras it faces and overlaps the frame of, by the bake's weight at
    its centre (``cos^4 * (f / z)^2``); a texel's colour comes almost all from those."""
    score = np.zeros((len(face_c), len(T)), np.float32)
    for c in range(len(T)):
        R, t, K = T[c, :3, :3].astype(np.float32), T[c, :3, 3].astype(np.float32), Ks[c].astype(np.float32)
        c_cam = face_c @ R.T + t
        z = np.maximum(c_cam[:, 2], 1e-6)
        margin_x, margin_y = K[0, 0] * face_r / z, K[1, 1] * face_r / z
        px, py = K[0, 0] * c_cam[:, 0] / z + K[0, 2], K[1, 1] * c_cam[:, 1] / z + K[1, 2]
        inside = (c_cam[:, 2] + face_r > 0) & (px > -margin_x) & (px < width + margin_x)
        inside &= (py > -margin_y) & (py < height + margin_y)
        facing = -((face_n @ R.T) * c_cam).sum(1) / np.linalg.norm(c_cam, axis=1)
        score[:, c] = np.where(inside & (facing > 0), np.clip(facing, 0, 1) ** 4 * (K[0, 0] / z) ** 2, 0.0)
    if len(T) > best:
        cut = np.partition(score, len(T) - best, axis=1)[:, len(T) - best][:, None]
        return (score >= cut) & (score > 0)
    return score > 0


def _texels_of(faces: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Indices of the texels (sorted by face, ``starts``: each face's first) of ``faces``: the concatenated ranges
    ``starts[f] .. starts[f + 1]``, without a Python loop."""
    counts = starts[faces + 1] - starts[faces]
    offsets = np.repeat(starts[faces] - np.cumsum(counts) + counts, counts)
    return offsets + np.arange(int(counts.sum()))


def _fill_from_nearest(texture: np.ndarray, known: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    if not known.any():
        raise ValueError("no texel of the surface was seen by any render: the texture would be empty")
    _, (rows, cols) = ndimage.distance_transform_edt(~known, return_indices=True)
    filled = texture[rows, cols]
    return (np.clip(filled, 0, 1) * 255 + 0.5).astype(np.uint8)
