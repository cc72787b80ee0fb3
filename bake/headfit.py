"""Head pose from the face mesh: the head's rotation in the world from FaceMesh's 3D landmarks.

FaceMesh gives every landmark in pixels plus a relative depth in the same scale (z away from the camera), so
the face's landmarks are a 3D point set in the camera's frame up to scale (weak perspective). The rigid
rotation that best maps the rig's rest-pose face landmarks (:func:`.landmarks.face_landmark_vertices`) onto
them (Kabsch / Umeyama, least squares) is the head's rotation seen by the camera; with the fit's camera
(``R_cam_world``) it becomes the head's world rotation, a target of the body fit: a 3/4-view photo lands on a
turned head instead of a frontal head on a turned body.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from anchorsplat.gaussians.rig import Rig

from .detect import Detections
from .landmarks import FACE_KEYPOINTS, face_landmark_vertices

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


def yaw_pitch_deg(R_world_head: Float[Tensor, "3 3"]) -> tuple[float, float]:
    """Yaw (positive: the face turns toward the person's left, +X) and pitch (positive: looking up) of a head
    rotation, from where it sends the rest face's forward direction (+Z)."""
    forward = R_world_head.detach().double().cpu() @ torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    yaw = math.degrees(math.atan2(float(forward[0]), float(forward[2])))
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, float(forward[1])))))
    return yaw, pitch
