"""Head pose from the face mesh: the head's rotation in the world from FaceMesh's 3D landmarks.

FaceMesh gives every landmark in pixels plus a relative depth in the same scale (z away from the camera), so
the face's landmarks are a 3D point set in the camera's frame up to scale (weak perspective). The rigid
rotation that best maps the rig's rest-pose face landmarks (:func:`.landmarks.face_landmark_vertices`) onto
them (Kabsch / Umeyama, least squares) is the head's rotation seen by the camera; with the fit's camera
(``R_cam_world``) it becomes the head's world rotation, a target of the body fit: a 3/4-view photo lands on a
turned head instead of a frontal head on a turned body.

The face's shape (:func:`face_shape_offsets`): the same 3D landmarks, all 478 of them, pull the head's rest
vertices by smooth, Laplacian-regularised offsets, so profile views keep the person's nose, jaw and brow.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from anchorsplat.gaussians.conventions import Cameras
from anchorsplat.gaussians.rig import Rig

from .detect import POSE_LANDMARK_NAMES, VISIBLE, Detections
from .landmarks import FACE_KEYPOINTS, face_landmark_vertices
from .subject import FaceShape

HEAD_JOINTS = ("head",)
"""Rig joint whose world rotation the head target constrains (Anny and SMPL-X both name it ``head``)."""


def rotation_between(
    source: Float[Tensor, "K 3"], target: Float[Tensor, "K 3"], weights: Float[Tensor, " K"] | None = None
) -> Float[Tensor, "3 3"]:
    """The rotation R minimising sum_k w_k |(t_k - t̄) - s R (s_k - s̄)|^2 over R and a scale s (Kabsch)."""
    w = torch.ones(len(source), dtype=source.dtype, device=source.device) if weights is None else weights.to(source)
    w = w / w.sum()
    s = source - (w[:, None] * source).sum(0)
    t = target - (w[:, None] * target).sum(0)
    H = (w[:, None, None] * s[:, :, None] * t[:, None, :]).sum(0)
    U, _, Vt = torch.linalg.svd(H)
    d = torch.sign(torch.linalg.det(Vt.T @ U.T))
    D = torch.diag(torch.tensor([1.0, 1.0, float(d)], dtype=source.dtype, device=source.device))
    return Vt.T @ D @ U.T


def head_target(detections: Detections, rig: Rig, R_cam_world: Float[Tensor, "3 3"]) -> Float[Tensor, "3 3"] | None:
    """The head's world rotation relative to the rest pose, from the photo's face mesh; None without a 3D face
    mesh or face landmarks on the rig."""
    if detections.face_mesh_xy is None or detections.face_mesh_z is None:
        return None
    vertices = face_landmark_vertices(rig)
    names = [n for n in FACE_KEYPOINTS if n in vertices]
    if len(names) < 4:
        return None
    ids = [FACE_KEYPOINTS[n][0] for n in names]
    xyz = np.concatenate([detections.face_mesh_xy[ids], detections.face_mesh_z[ids, None]], axis=1)
    rest = rig.vertices_rest.detach().float().cpu()[[vertices[n] for n in names]]
    R_cam_head = rotation_between(rest, torch.from_numpy(xyz).float())
    return R_cam_world.float().T @ R_cam_head


def head_target_from_pose(detections: Detections, R_cam_world: Float[Tensor, "3 3"]) -> Float[Tensor, "3 3"] | None:
    """The head's world rotation (a yaw) from mediapipe Pose's metric ears, for photos without a face mesh: FaceMesh
    misses near profiles (the profile test photo), and without a target the head would stay frontal on the body.
    The left-minus-right ear vector (x right, z away) gives the yaw, as the shoulders give the body's; pitch and
    roll are left at the rest pose's. None when an ear is hidden."""
    left, right = POSE_LANDMARK_NAMES.index("left_ear"), POSE_LANDMARK_NAMES.index("right_ear")
    if float(min(detections.pose_visibility[left], detections.pose_visibility[right])) < VISIBLE:
        return None
    v_cam = torch.from_numpy(np.asarray(detections.pose_world[left] - detections.pose_world[right])).double()
    v_world = R_cam_world.double().cpu().T @ v_cam  # the ears' axis, person's right to left, in the world
    if float(v_world[[0, 2]].norm()) < 1e-3:
        return None
    yaw = math.atan2(-float(v_world[2]), float(v_world[0]))
    c, s = math.cos(yaw), math.sin(yaw)
    return torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], dtype=torch.float32)


def yaw_pitch_deg(R_world_head: Float[Tensor, "3 3"]) -> tuple[float, float]:
    """Yaw (positive: the face turns toward the person's left, +X) and pitch (positive: looking up) of a head
    rotation, from where it sends the rest face's forward direction (+Z)."""
    forward = R_world_head.detach().double().cpu() @ torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    yaw = math.degrees(math.atan2(float(forward[0]), float(forward[2])))
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, float(forward[1])))))
    return yaw, pitch


# --- face shape ---------------------------------------------------------------------------------------------------

MAX_FACE_OFFSET = 0.02
"""Meters: the face-shape offsets are capped here (a face differs from the body model's by millimetres to a
couple of centimetres; more is a bad landmark)."""
LANDMARK_OUTLIER = 0.012
"""Meters: a landmark whose target is farther than this from its vertex is not face shape but a landmark on
hidden surface (or a bad one): it is dropped."""
FACE_SMOOTHNESS = 1.0
"""Weight of the Laplacian term against the landmark term of :func:`face_shape_offsets`."""
MIN_FACING = 0.3
"""A rig vertex takes a landmark only when its normal faces the camera beyond this cosine."""


def head_vertices(rig: Rig) -> Int[Tensor, " M"]:
    """Vertices skinned mostly to the head (head, jaw, eyes: ``diffusion.texture.joint_parts``)."""
    from anchorsplat.diffusion.texture import PART_NAMES, joint_parts

    dominant = rig.skin_indices.gather(1, rig.skin_weights.argmax(1, keepdim=True))[:, 0].long()
    return torch.nonzero(joint_parts(rig)[dominant] == PART_NAMES.index("head"))[:, 0]


def face_shape_offsets(
    mesh_xy: Float[np.ndarray, "L 2"],
    mesh_z: Float[np.ndarray, " L"],
    rig: Rig,
    vertices_posed: Float[Tensor, "V 3"],
    R_world_head: Float[Tensor, "3 3"],
    camera: Cameras,
    *,
    smoothness: float = FACE_SMOOTHNESS,
) -> FaceShape:
    """Smooth offsets of the head's vertices toward the face mesh's 3D shape (nose, jaw, brow), in the rest frame.

    Each landmark takes the camera-facing head vertex that projects nearest to it (within a few millimetres at
    the face). Its 3D target in the camera's frame is the landmark's pixel back-projected at the vertices' mean
    depth plus FaceMesh's relative depth (pixels, so times depth / focal length: weak perspective at the face);
    the residual, rotated into the head's rest frame by ``R_world_head`` (the posed head's rotation relative to
    the rest pose), is what the vertex should move. The offsets D of all head vertices minimise
    sum_k |D_k - r_k|^2 + smoothness * sum over edges |D_i - D_j|^2 (graph Laplacian, the non-head vertices
    fixed at zero), one sparse linear solve; they are capped at :data:`MAX_FACE_OFFSET`.
    """
    import scipy.sparse as sp
    from scipy.sparse.linalg import spsolve
    from scipy.spatial import cKDTree

    head = head_vertices(rig).cpu().numpy()
    v = vertices_posed.detach().double().cpu()
    T = camera.T_cam_world[0].detach().double().cpu()
    K = camera.Ks[0].detach().double().cpu()
    p_cam = (v @ T[:3, :3].T + T[:3, 3]).numpy()
    normals = _vertex_normals(v, rig.faces.cpu()) @ T[:3, :3].T
    to_camera = -p_cam / np.linalg.norm(p_cam, axis=1, keepdims=True)
    facing = (normals.numpy() * to_camera).sum(1) > MIN_FACING
    f = float(K[0, 0])
    xy_all = p_cam[:, :2] / np.maximum(p_cam[:, 2:3], 1e-6) * f + K[:2, 2].numpy()
    visible = _visible(xy_all, p_cam[:, 2], rig.faces.cpu().numpy(), (camera.height, camera.width))
    candidates = head[facing[head] & visible[head]]
    if len(candidates) < 10:
        return FaceShape(torch.zeros(0, dtype=torch.long, device="cpu"), torch.zeros(0, 3, device="cpu"))
    depth_ref = float(np.median(p_cam[candidates, 2]))
    radius = 0.004 * f / depth_ref  # 4 mm at the face, in pixels
    distance, nearest = cKDTree(xy_all[candidates]).query(mesh_xy.astype(np.float64))
    keep = distance < radius
    ids = candidates[nearest[keep]]
    lm_xy, lm_z = mesh_xy[keep].astype(np.float64), mesh_z[keep].astype(np.float64) * depth_ref / f
    # FaceMesh also places landmarks it cannot see (the far cheek of a turned head, behind the nose): their
    # nearest visible vertex is centimetres off. Its depth is relative: aligned by a median, then on inliers.
    inlier = np.ones(len(ids), bool)
    for _ in range(3):
        if inlier.sum() < 10:
            return FaceShape(torch.zeros(0, dtype=torch.long, device="cpu"), torch.zeros(0, 3, device="cpu"))
        depth = lm_z + np.median(p_cam[ids[inlier], 2] - lm_z[inlier])
        target = np.concatenate([(lm_xy - K[:2, 2].numpy()) * depth[:, None] / f, depth[:, None]], 1)
        inlier = np.linalg.norm(target - p_cam[ids], axis=1) < LANDMARK_OUTLIER
    ids, target = ids[inlier], target[inlier]
    R_rest_cam = (R_world_head.detach().double().cpu().T @ T[:3, :3].T).numpy()
    residual = (target - p_cam[ids]) @ R_rest_cam.T
    # Several landmarks may share a vertex: average them.
    index = {int(h): i for i, h in enumerate(head)}
    rows = np.array([index[int(i)] for i in ids])
    m = len(head)
    count = np.bincount(rows, minlength=m).astype(np.float64)
    mean = np.stack([np.bincount(rows, weights=residual[:, c], minlength=m) for c in range(3)], 1)
    mean /= np.maximum(count, 1)[:, None]
    data = sp.diags((count > 0).astype(np.float64))
    laplacian = _laplacian(rig.faces.cpu().numpy(), head, rig.num_vertices)
    # The small identity term keeps detached pieces (eyeballs, teeth) that no landmark reaches at zero.
    system = (data + smoothness * laplacian + 1e-4 * sp.identity(m)).tocsc()
    offsets = np.stack([spsolve(system, data @ mean[:, c]) for c in range(3)], 1)
    norm = np.linalg.norm(offsets, axis=1, keepdims=True)
    offsets *= np.minimum(1.0, MAX_FACE_OFFSET / np.maximum(norm, 1e-12))
    return FaceShape(torch.from_numpy(head).long(), torch.from_numpy(offsets).float())


def _vertex_normals(vertices: Tensor, faces: Tensor) -> Tensor:
    a, b, c = (vertices[faces[:, i].long()] for i in range(3))
    n = torch.linalg.cross(b - a, c - a)
    out = torch.zeros_like(vertices).index_add_(0, faces.reshape(-1).long(), n.repeat_interleave(3, 0))
    out = out / out.norm(dim=1, keepdim=True).clamp_min(1e-12)
    outward = float((out * (vertices - vertices.mean(0))).sum()) >= 0  # whatever the mesh's winding
    return out if outward else -out


def _visible(
    xy: Float[np.ndarray, "V 2"], depth: Float[np.ndarray, " V"], faces: np.ndarray, shape: tuple[int, int]
) -> np.ndarray:
    """Vertices in front of the camera, inside the image and not behind the mesh's z-buffer (4 mm tolerance)."""
    import cv2

    h, w = shape
    zbuffer = np.full((h, w), np.inf, np.float32)
    corners = np.round(xy[faces] - 0.5).astype(np.int32)
    tri_depth = depth[faces].mean(1)
    for i in np.argsort(-tri_depth):  # far to near: the nearest triangle is drawn last
        if tri_depth[i] > 0:
            cv2.fillConvexPoly(zbuffer, corners[i], float(tri_depth[i]))
    px = np.floor(xy).astype(np.int64)
    inside = (depth > 0) & (px[:, 0] >= 0) & (px[:, 0] < w) & (px[:, 1] >= 0) & (px[:, 1] < h)
    out = np.zeros(len(depth), bool)
    out[inside] = depth[inside] <= zbuffer[px[inside, 1], px[inside, 0]] + 0.004
    return out


def _laplacian(faces: np.ndarray, head: np.ndarray, num_vertices: int):
    """The mesh's graph Laplacian (degree - adjacency) over the head vertices, with the neighbours off the head
    fixed at zero (they only add to the degree): D^T L D = sum over edges of |D_i - D_j|^2. Harmonic, so the
    offsets it spreads never overshoot the landmarks' (a thin-plate energy would extrapolate slopes)."""
    import scipy.sparse as sp

    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = np.unique(np.sort(edges, axis=1), axis=0)
    edges = np.concatenate([edges, edges[:, ::-1]])
    adjacency = sp.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(num_vertices,) * 2).tocsr()
    degree = np.asarray(adjacency.sum(1)).ravel()
    return sp.diags(degree[head]) - adjacency[head][:, head]
