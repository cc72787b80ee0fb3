"""A mouth for the extracted surface: the lips cut apart and a dark, closed cavity behind them.

The surface is fused from renders of the closed mouth, so it has no lip line: opening the jaw (the ``jawOpen``
morph target transferred from the body) stretches a band of triangles between the upper and the lower lip, which
shows the closed mouth's texture smeared. Here the band is cut. The band is where the *unsmoothed* transfer of
``jawOpen`` (each vertex moves like its closest body point) steps by a fifth of the jaw's drop or more within one
forward-facing triangle, in front: the body's lip line (at the cheeks and under the chin it is gradual). Near
it, the triangles across the half-drop line of the surface's own (smoothed) jaw motion are split along that line,
each point of the line made twice, one copy moving with the upper lip and one with the jaw. The copies sit where
the originals are, so the rest pose is unchanged; an opened jaw opens a gap along the line (the motion near it
steepened so the gap is about what the splats show between their lips). Behind it a small closed
ellipsoid (a "bag" of triangles), upper half moving with the upper lip and lower half with the jaw, textured with
one dark texel, fills the gap with a mouth's dark inside instead of the back of the head or the background.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_SPLIT = 60
"""Faces split along the lip line at most (each becomes three)."""
MOUTH_FACES = 80 + 2 * MAX_SPLIT
"""Triangles the mouth adds at most: the cavity (an icosphere subdivided once) and the split faces' parts."""
MOUTH_RGB = (38, 12, 14)
"""The cavity's colour (sRGB): the dark red-brown of a mouth's inside in shadow."""


@dataclass(frozen=True, eq=False)
class MeshArrays:
    """A textured, rigged mesh as numpy arrays (the surface before it becomes a SkinnedSurface)."""

    vertices: np.ndarray  # V 3
    faces: np.ndarray  # F 3
    uvs: np.ndarray  # V 2
    texture: np.ndarray  # H W 3 uint8
    skin_indices: np.ndarray  # V K
    skin_weights: np.ndarray  # V K
    expressions: np.ndarray  # E V 3


def stretched_faces(vertices: np.ndarray, faces: np.ndarray, jaw: np.ndarray, *, share: float = 0.25) -> np.ndarray:
    """Faces whose longest edge grows by more than ``share`` of the largest jaw displacement when ``jaw`` (V x 3
    offsets at jawOpen = 1) is applied: the band between the lips."""
    drop = float(np.linalg.norm(jaw, axis=1).max()) if len(jaw) else 0.0
    if drop == 0.0:
        return np.zeros(len(faces), dtype=bool)
    tri, moved = vertices[faces], (vertices + jaw)[faces]
    edges = lambda t: np.linalg.norm(t - np.roll(t, 1, axis=1), axis=2)  # noqa: E731
    return (edges(moved) - edges(tri)).max(1) > share * drop


def _forward(vertices: np.ndarray, faces: np.ndarray, facing: float) -> np.ndarray:
    tri = vertices[faces]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    return normals[:, 2] > facing * np.linalg.norm(normals, axis=1)


def lip_band(
    vertices: np.ndarray, faces: np.ndarray, jaw: np.ndarray, *, step: float = 0.2, facing: float = 0.2,
    reach: float = 0.04,
) -> np.ndarray:  # fmt: skip
    """The lip line (F bool): forward-facing (+Z) faces across which ``jaw`` (V x 3 offsets at jawOpen = 1,
    unsmoothed) changes by more than ``step`` of its largest drop, within ``reach`` metres of the frontmost such
    face (the jaw's edge under the chin steps too, further back)."""
    moving = np.linalg.norm(jaw, axis=1)
    peak = float(moving.max(initial=0.0))
    if peak == 0.0 or len(faces) == 0:
        return np.zeros(len(faces), dtype=bool)
    t = moving[faces] / peak
    band = _forward(vertices, faces, facing) & (t.max(1) - t.min(1) > step)
    if not band.any():
        return band
    centres = vertices[faces].mean(1)
    front = centres[np.nonzero(band)[0][np.argmax(centres[band, 2])]]
    return band & (np.linalg.norm(centres - front, axis=1) < reach)


def sharpen(jaw: np.ndarray, peak: float, gain: float = 2.0) -> np.ndarray:
    """``jaw`` offsets (V x 3) with their lengths pushed away from half of ``peak`` by ``gain``: the lips part
    along the cut instead of stretching the rows beside it."""
    length = np.linalg.norm(jaw, axis=1, keepdims=True)
    target = np.clip((length / peak - 0.5) * gain + 0.5, 0.0, 1.0) * peak
    return np.where(length > 0, jaw * target / np.maximum(length, 1e-12), 0.0)


def split_lips(mesh: MeshArrays, jaw_index: int, band: np.ndarray, level: float) -> MeshArrays:
    """Cut the ``band`` faces (F bool, each with vertices on both sides of ``level``, a drop of ``jawOpen``) along
    that level line: each is split where the line crosses its two edges into a triangle on one side and two on
    the other, and each crossing point is made twice, once moving like the edge's upper-lip end and once like its
    jaw end. The rest pose is unchanged (the two copies coincide); the face order is kept, the split faces' parts
    appended."""
    moving = np.linalg.norm(mesh.expressions[jaw_index], axis=1)
    lower = moving > level
    crossings: dict[tuple[int, int, bool], int] = {}
    points, uvs, movers = [], [], []  # per new vertex: position, UV, and the vertex whose motion it takes
    start = len(mesh.vertices)

    def crossing(u: int, v: int, side: bool) -> int:
        key = (min(u, v), max(u, v), side)
        if key not in crossings:
            s = float(np.clip((level - moving[u]) / max(moving[v] - moving[u], 1e-12), 0.0, 1.0))
            crossings[key] = start + len(points)
            points.append(mesh.vertices[u] + s * (mesh.vertices[v] - mesh.vertices[u]))
            uvs.append(mesh.uvs[u] + s * (mesh.uvs[v] - mesh.uvs[u]))
            movers.append(u if lower[u] == side else v)
        return crossings[key]

    new_faces = []
    for f in np.nonzero(band)[0]:  # a few dozen faces along the lips: a loop over them reads best
        tri = mesh.faces[f]
        i = next(k for k in range(3) if lower[tri[k]] != lower[tri[(k + 1) % 3]] and lower[tri[k]] != lower[tri[k - 1]])
        a, b, c = int(tri[i]), int(tri[(i + 1) % 3]), int(tri[(i + 2) % 3])  # a alone on its side; order kept
        alone, rest = bool(lower[a]), not lower[a]
        new_faces += [[a, crossing(a, b, alone), crossing(a, c, alone)],
                      [crossing(a, b, rest), b, c], [crossing(a, b, rest), c, crossing(a, c, rest)]]  # fmt: skip
    if not new_faces:
        return mesh
    mov = np.asarray(movers, np.int64)
    return MeshArrays(
        np.concatenate([mesh.vertices, np.asarray(points)]),
        np.concatenate([mesh.faces[~band], np.asarray(new_faces, np.int64)]),
        np.concatenate([mesh.uvs, np.asarray(uvs)]),
        mesh.texture,
        np.concatenate([mesh.skin_indices, mesh.skin_indices[mov]]),
        np.concatenate([mesh.skin_weights, mesh.skin_weights[mov]]),
        np.concatenate([mesh.expressions, mesh.expressions[:, mov]], axis=1),
    )


def free_texel(uvs: np.ndarray, faces: np.ndarray, size: int) -> tuple[int, int, int] | None:
    """A block of the texture no UV chart touches: (row, col, block size) in texels at ``size``, or None."""
    from scipy import ndimage

    from .raycast import rasterize_uv

    coarse = min(size, 256)
    covered = (rasterize_uv(uvs, faces, coarse).face >= 0).reshape(coarse, coarse)
    distance = ndimage.distance_transform_edt(~covered)
    if distance.max() < 2.5:  # a coarse cell two cells from any chart is surely untouched at full resolution
        return None
    row, col = np.unravel_index(int(np.argmax(distance)), distance.shape)
    block = size // coarse
    return int(row) * block, int(col) * block, block


def add_mouth(mesh: MeshArrays, jaw_index: int, raw_jaw: np.ndarray | None = None) -> MeshArrays:
    """The lips cut and a dark cavity behind them (see the module doc). ``raw_jaw``: the unsmoothed ``jawOpen``
    offsets (V x 3; default the mesh's own). The mesh unchanged when no lip line is found or the texture has no
    free texel for the cavity's colour."""
    raw = mesh.expressions[jaw_index] if raw_jaw is None else raw_jaw
    band = lip_band(mesh.vertices, mesh.faces, raw)
    if not band.any():
        return mesh
    lips = mesh.vertices[np.unique(mesh.faces[band])]
    # The cut runs along the half-drop line of the surface's own (smoothed) jaw motion near the lip line, which is
    # steepened there (twice): the lips part by about what the splats show between theirs.
    near = np.zeros(len(mesh.vertices), dtype=bool)
    near[mesh.faces[band]] = True
    near[mesh.faces[near[mesh.faces].any(1)]] = True  # and one ring more
    peak = float(np.linalg.norm(mesh.expressions[jaw_index][near], axis=1).max())
    expressions = mesh.expressions.copy()
    expressions[jaw_index, near] = sharpen(expressions[jaw_index, near], peak)
    mesh = MeshArrays(mesh.vertices, mesh.faces, mesh.uvs, mesh.texture, mesh.skin_indices, mesh.skin_weights,
                      expressions)  # fmt: skip
    lower = np.linalg.norm(expressions[jaw_index], axis=1) > 0.5 * peak
    straddle = near[mesh.faces].all(1) & lower[mesh.faces].any(1) & ~lower[mesh.faces].all(1)
    straddle &= _forward(mesh.vertices, mesh.faces, 0.0)
    if straddle.sum() > MAX_SPLIT:  # the budget: keep the ones nearest the lips' middle
        centres = mesh.vertices[mesh.faces].mean(1)
        distance = np.where(straddle, np.linalg.norm(centres - lips.mean(0), axis=1), np.inf)
        straddle = np.zeros_like(straddle)
        straddle[np.argsort(distance)[:MAX_SPLIT]] = True
    cut = split_lips(mesh, jaw_index, straddle, 0.5 * peak)
    lower = np.linalg.norm(cut.expressions[jaw_index], axis=1) > 0.5 * peak
    size = mesh.texture.shape[0]
    free = free_texel(cut.uvs, cut.faces, size)
    if free is None:
        return cut
    row, col, block = free
    texture = cut.texture.copy()
    texture[row : row + block, col : col + block] = MOUTH_RGB
    uv = np.array([(col + 0.5 * block) / size, (row + 0.5 * block) / size])

    return _with_cavity(cut, texture, uv, lips, lower)


def _with_cavity(
    mesh: MeshArrays, texture: np.ndarray, uv: np.ndarray, lips: np.ndarray, lower: np.ndarray
) -> MeshArrays:
    """``mesh`` (with ``texture``) and the cavity: an ellipsoid behind the ``lips`` points (L x 3), all its UVs at
    the dark texel ``uv``, its upper half moving like the upper lip's vertex nearest its centre and its lower half
    like the jaw's (``lower``: the mesh's vertices that move with the jaw)."""
    import trimesh

    lo, hi = lips.min(0), lips.max(0)
    width = max(float(hi[0] - lo[0]), 1e-3)
    radii = np.array([0.45 * width, 0.22 * width, 0.35 * width])
    # Behind the lips (the body faces +Z) and a little below their line: the gap opens downwards.
    centre = lips.mean(0) + np.array([0.0, -0.05 * width, -0.45 * width - (hi[2] - lo[2]) * 0.25])
    sphere = trimesh.creation.icosphere(subdivisions=1)
    bag_vertices = centre + np.asarray(sphere.vertices) * radii
    bag_faces = np.asarray(sphere.faces, np.int64) + len(mesh.vertices)
    distance = np.linalg.norm(mesh.vertices - centre, axis=1)
    upper_ref = int(np.argmin(np.where(lower, np.inf, distance)))
    lower_ref = int(np.argmin(np.where(lower, distance, np.inf))) if lower.any() else upper_ref
    ref = np.where(bag_vertices[:, 1] < centre[1], lower_ref, upper_ref)
    return MeshArrays(
        np.concatenate([mesh.vertices, bag_vertices]),
        np.concatenate([mesh.faces, bag_faces]),
        np.concatenate([mesh.uvs, np.broadcast_to(uv, (len(bag_vertices), 2))]),
        texture,
        np.concatenate([mesh.skin_indices, mesh.skin_indices[ref]]),
        np.concatenate([mesh.skin_weights, mesh.skin_weights[ref]]),
        np.concatenate([mesh.expressions, mesh.expressions[:, ref]], axis=1),
    )
