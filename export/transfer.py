"""Rig transfer: skinning weights and expression blendshapes from the body mesh onto the extracted surface.

Each surface vertex takes the values of its closest point on the rest-pose body mesh, interpolated with that
point's barycentric coordinates; then the weights and offsets are smoothed over the surface (a few Jacobi steps of
uniform Laplacian smoothing), so a vertex whose closest point jumps between two body parts (the lips, the armpit,
hair over the ear) does not tear. Expression offsets fade out with distance from the body beyond a few
centimetres: a hair tip 10 cm from the scalp should not follow the eyebrows' fine motion.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from anchorsplat.gaussians.rig import Rig


def closest_on_body(rig: Rig, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(face, barycentric, distance) of each point's closest point on the rig's rest mesh (open3d, exact)."""
    import open3d as o3d

    vertices = rig.vertices_rest.detach().cpu().double().numpy()
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(
        o3d.core.Tensor(vertices.astype(np.float32)),
        o3d.core.Tensor(rig.faces.detach().cpu().numpy().astype(np.uint32)),
    )
    out = scene.compute_closest_points(o3d.core.Tensor(np.ascontiguousarray(points, np.float32)))
    face = out["primitive_ids"].numpy().astype(np.int64)
    uv = out["primitive_uvs"].numpy().astype(np.float64)  # weights of the triangle's vertices 1 and 2
    barycentric = np.clip(np.stack([1.0 - uv[:, 0] - uv[:, 1], uv[:, 0], uv[:, 1]], axis=1), 0.0, 1.0)
    barycentric /= barycentric.sum(1, keepdims=True)
    distance = np.linalg.norm(out["points"].numpy().astype(np.float64) - points, axis=1)
    return face, barycentric, distance


def smoothing_operator(faces: np.ndarray, num_vertices: int) -> sparse.csr_matrix:
    """Row-normalised adjacency (each vertex and its edge neighbours, equal weights) as a sparse matrix."""
    i = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2], faces[:, 1], faces[:, 2], faces[:, 0]])
    j = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0], faces[:, 0], faces[:, 1], faces[:, 2]])
    diag = np.arange(num_vertices)
    a = sparse.coo_matrix(
        (np.ones(len(i) + num_vertices), (np.concatenate([i, diag]), np.concatenate([j, diag]))),
        shape=(num_vertices, num_vertices),
    ).tocsr()
    a.data[:] = 1.0  # duplicate edges count once
    return sparse.diags(1.0 / np.asarray(a.sum(1)).ravel()) @ a


def transfer_skinning(
    rig: Rig, vertices: np.ndarray, faces: np.ndarray, *, top_k: int = 4, smooth_steps: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Skinning of the surface (V x top_k joint indices and weights summing to 1) from the rig's body."""
    face, bary, _ = closest_on_body(rig, vertices)
    body_faces = rig.faces.detach().cpu().numpy()
    indices = rig.skin_indices.detach().cpu().numpy()
    weights = rig.skin_weights.detach().cpu().double().numpy()
    dense_body = np.zeros((rig.num_vertices, rig.num_joints))
    np.add.at(dense_body, (np.repeat(np.arange(rig.num_vertices), indices.shape[1]), indices.ravel()), weights.ravel())
    dense = np.einsum("vk,vkj->vj", bary, dense_body[body_faces[face]])
    op = smoothing_operator(faces, len(vertices))
    for _ in range(smooth_steps):
        dense = op @ dense
    k = min(top_k, rig.num_joints)
    top = np.argsort(-dense, axis=1, kind="stable")[:, :k]
    w = np.take_along_axis(dense, top, axis=1).clip(min=0)
    w /= np.maximum(w.sum(1, keepdims=True), 1e-12)
    return top.astype(np.int64), w


def transfer_expressions(
    rig: Rig, vertices: np.ndarray, faces: np.ndarray, *, smooth_steps: int = 2, falloff: float = 0.03
) -> np.ndarray:
    """Expression offsets of the surface (E x V x 3): the body's at the closest point, faded to zero over
    ``falloff`` metres beyond ``falloff`` from the body, then smoothed."""
    face, bary, distance = closest_on_body(rig, vertices)
    body_faces = rig.faces.detach().cpu().numpy()
    dirs = rig.expression_dirs.detach().cpu().double().numpy()  # E V 3
    corners = dirs[:, body_faces[face]]  # E V 3 3
    out = np.einsum("vk,evkc->evc", bary, corners)
    fade = np.clip(2.0 - distance / falloff, 0.0, 1.0)
    out *= fade[None, :, None]
    op = smoothing_operator(faces, len(vertices))
    for _ in range(smooth_steps):
        out = np.stack([op @ o for o in out]) if len(out) else out
    return out
