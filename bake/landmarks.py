"""The fit's 2D targets: which rig joint or vertex each detected landmark (mediapipe Pose, FaceMesh, dlib 68)
stands for, found on the rig itself, and the targets of one photo's detections."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from anchorsplat.gaussians.rig import Rig

from .detect import POSE_LANDMARK_NAMES, Detections

# mediapipe landmark -> rig joint (Anny name first, then SMPL-X/synthetic name).
BODY_KEYPOINTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("left_shoulder", ("upperarm01.L", "left_shoulder")), ("right_shoulder", ("upperarm01.R", "right_shoulder")),
    ("left_elbow", ("lowerarm01.L", "left_elbow")), ("right_elbow", ("lowerarm01.R", "right_elbow")),
    ("left_wrist", ("wrist.L", "left_wrist")), ("right_wrist", ("wrist.R", "right_wrist")),
    ("left_hip", ("upperleg01.L", "left_hip")), ("right_hip", ("upperleg01.R", "right_hip")),
    ("left_knee", ("lowerleg01.L", "left_knee")), ("right_knee", ("lowerleg01.R", "right_knee")),
    ("left_ankle", ("foot.L", "left_ankle")), ("right_ankle", ("foot.R", "right_ankle")),
    # The hand: mediapipe's index and pinky landmarks are those fingers' first knuckles, its thumb the thumb's
    # second; they turn the wrist (the hand's plane).
    ("left_index", ("finger2-1.L", "left_index1")), ("right_index", ("finger2-1.R", "right_index1")),
    ("left_pinky", ("finger5-1.L", "left_pinky1")), ("right_pinky", ("finger5-1.R", "right_pinky1")),
    ("left_thumb", ("finger1-2.L", "left_thumb2")), ("right_thumb", ("finger1-2.R", "right_thumb2")),
)  # fmt: skip
BONES: tuple[tuple[str, str], ...] = (
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"), ("right_shoulder", "right_elbow"),
    ("right_elbow", "right_wrist"), ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
    ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
)  # fmt: skip
"""Limb segments whose 3D direction mediapipe's metric landmarks give: an arm in front of the body and one
behind it project alike; the metric landmarks' depth tells them apart."""
# face landmark -> (FaceMesh index, dlib 68 index); "left" is the person's left.
FACE_KEYPOINTS: dict[str, tuple[int, int]] = {
    "nose_tip": (1, 30), "chin": (152, 8), "mouth_left": (291, 54), "mouth_right": (61, 48),
    "eye_left_outer": (263, 45), "eye_left_inner": (362, 42), "eye_right_inner": (133, 39),
    "eye_right_outer": (33, 36),
}  # fmt: skip
EYE_LINE_HALF_HEIGHT = 0.008
"""Meters: the eye's corners are lid vertices this close to the lid's height (Anny's blink also moves the skin
under the eye, whose nose-side extreme lies 2 cm below and 3 cm behind the inner corner)."""
FACE_WEIGHT = 0.5
"""Weight of each face landmark relative to a fully visible body keypoint."""


@dataclass(frozen=True, eq=False)
class Targets:
    """2D targets of a fit: K image points, each tied to a rig joint or a rig vertex."""

    names: tuple[str, ...]
    xy: Float[Tensor, "K 2"]
    weights: Float[Tensor, " K"]
    joint_ids: tuple[int, ...]
    """Rig joint index of each target, -1 where the target is a vertex."""
    vertex_ids: tuple[int, ...]
    """Rig vertex index of each target, -1 where the target is a joint."""


@dataclass(frozen=True, eq=False)
class BoneTargets:
    """3D directions of limb segments (world frame, unit) between two rig joints, with weights."""

    names: tuple[str, ...]
    start_ids: tuple[int, ...]
    end_ids: tuple[int, ...]
    directions_world: Float[Tensor, "B 3"]
    weights: Float[Tensor, " B"]


# --- rig landmarks ------------------------------------------------------------------------------------------------


def body_joint_ids(rig: Rig) -> dict[str, int]:
    """mediapipe landmark name -> rig joint index, for the landmarks this rig has a joint for."""
    out = {}
    for landmark, candidates in BODY_KEYPOINTS:
        found = [rig.joint_names.index(c) for c in candidates if c in rig.joint_names]
        if found:
            out[landmark] = found[0]
    return out


def face_landmark_vertices(rig: Rig) -> dict[str, int]:
    """Rig vertex of each :data:`FACE_KEYPOINTS` landmark, found on the rest mesh from its ARKit blendshapes.

    ``rig.info["face_landmark_vertices"]`` (name -> id) takes precedence. Otherwise: an eyelid is what
    ``eyeBlink*`` moves (on its side of the face) and the eye's corners are the extremes along X of the lid's
    vertices on its line (within :data:`EYE_LINE_HALF_HEIGHT` of its weighted height, at its front); a mouth
    corner is the vertex ``mouthSmile*`` moves most; the nose tip is the most forward vertex near the midline
    between mouth and eyes; the chin is the lowest midline vertex ``jawOpen`` moves. Sides are assigned by
    geometry (+X is the person's left), not by blendshape name. A rig without these blendshapes (SMPL-X PCA
    expressions, the synthetic rig) gets an empty map and is fitted without face landmarks.
    """
    if "face_landmark_vertices" in rig.info:
        return {str(k): int(v) for k, v in rig.info["face_landmark_vertices"].items()}
    needed = ("eyeBlinkLeft", "eyeBlinkRight", "mouthSmileLeft", "mouthSmileRight", "jawOpen")
    if not all(n in rig.expression_names for n in needed):
        return {}
    v = rig.vertices_rest.detach().float().cpu()
    out = {}
    for blink in ("eyeBlinkLeft", "eyeBlinkRight"):
        disp = _displacement(rig, blink)
        sign = 1.0 if float((disp * v[:, 0]).sum()) > 0 else -1.0
        lid = torch.nonzero((disp > 0.3 * disp.max()) & (sign * v[:, 0] > 0.005))[:, 0]
        # The blink also drags skin below the eye and the lid's inside, deep in the socket: the corners are
        # on the lid's own line (its displacement-weighted height) and at its front.
        w = disp[lid]
        centre = (v[lid, 1:] * w[:, None]).sum(0) / w.sum()
        lid = lid[((v[lid, 1] - centre[0]).abs() < EYE_LINE_HALF_HEIGHT) & (v[lid, 2] > centre[1] - 0.005)]
        side = "left" if sign > 0 else "right"
        out[f"eye_{side}_outer"] = int(lid[(sign * v[lid, 0]).argmax()])
        out[f"eye_{side}_inner"] = int(lid[(sign * v[lid, 0]).argmin()])
    for smile in ("mouthSmileLeft", "mouthSmileRight"):
        corner = int(_displacement(rig, smile).argmax())
        out["mouth_left" if float(v[corner, 0]) > 0 else "mouth_right"] = corner
    if len(out) != 6:
        return {}  # left and right blendshapes on the same side: not a face we understand
    eye_y = float(v[[out["eye_left_inner"], out["eye_right_inner"]], 1].mean())
    mouth_y = float(v[[out["mouth_left"], out["mouth_right"]], 1].mean())
    width = float(v[out["eye_left_outer"], 0] - v[out["eye_right_outer"], 0])
    midline = v[:, 0].abs() < 0.08 * width
    between = torch.nonzero(midline & (v[:, 1] > mouth_y) & (v[:, 1] < eye_y))[:, 0]
    out["nose_tip"] = int(between[v[between, 2].argmax()])
    jaw = _displacement(rig, "jawOpen")
    jaw_ids = torch.nonzero(midline & (jaw > 0.5 * jaw.max()))[:, 0]
    out["chin"] = int(jaw_ids[v[jaw_ids, 1].argmin()])
    return out


def _displacement(rig: Rig, name: str) -> Tensor:
    return rig.expression_dirs[rig.expression_names.index(name)].detach().float().cpu().norm(dim=-1)


def keypoint_targets(detections: Detections, rig: Rig) -> Targets:
    """The fit's 2D targets from the detections: visible body landmarks and face landmarks inside the image."""
    rows: list[tuple[str, np.ndarray, float, int, int]] = []  # name, xy, weight, joint, vertex
    w, h = detections.width, detections.height
    inside = lambda p: bool(0 <= p[0] < w and 0 <= p[1] < h)  # noqa: E731
    for landmark, joint in body_joint_ids(rig).items():
        i = POSE_LANDMARK_NAMES.index(landmark)
        p, vis = detections.pose_xy[i], float(detections.pose_visibility[i])
        if inside(p) and vis > 0.05:
            rows.append((landmark, p, vis**2, joint, -1))
    face_vertices = face_landmark_vertices(rig)
    mesh, dlib68 = detections.face_mesh_xy, detections.face_landmarks_68
    for landmark, (mesh_i, dlib_i) in FACE_KEYPOINTS.items():
        if landmark not in face_vertices or (mesh is None and dlib68 is None):
            continue
        p = mesh[mesh_i] if mesh is not None else dlib68[dlib_i]
        if inside(p):
            rows.append((landmark, p, FACE_WEIGHT, -1, face_vertices[landmark]))
    if len(rows) < 3:
        raise ValueError(
            "too few body landmarks visible to fit the body (need shoulders or a face): use a photo showing the "
            "person's head and shoulders"
        )
    names, xy, weights, joints, vertices = zip(*rows, strict=True)
    device = rig.vertices_rest.device  # the host's detections, on the rig's device
    xy = torch.tensor(np.array(xy), dtype=torch.float32, device=device)
    return Targets(names, xy, torch.tensor(weights, device=device), joints, vertices)


def bone_targets(detections: Detections, rig: Rig, R_cam_world: Float[Tensor, "3 3"]) -> BoneTargets:
    """The :data:`BONES` both of whose ends mediapipe sees, as world directions: its metric landmarks are in
    the camera's axes (x right, y down, z away), turned into the world by ``R_cam_world``; weight: the smaller
    visibility, squared."""
    joints = body_joint_ids(rig)
    rows = []
    for a, b in BONES:
        if a not in joints or b not in joints:
            continue
        ia, ib = POSE_LANDMARK_NAMES.index(a), POSE_LANDMARK_NAMES.index(b)
        vis = float(min(detections.pose_visibility[ia], detections.pose_visibility[ib]))
        d = detections.pose_world[ib] - detections.pose_world[ia]
        if vis < 0.5 or float(np.linalg.norm(d)) < 1e-3:
            continue
        rows.append((f"{a}-{b}", joints[a], joints[b], d / np.linalg.norm(d), vis**2))
    device = rig.vertices_rest.device
    if not rows:
        return BoneTargets((), (), (), torch.zeros(0, 3, device=device), torch.zeros(0, device=device))
    names, start, end, d_cam, weights = zip(*rows, strict=True)
    d_world = torch.tensor(np.array(d_cam), dtype=torch.float32, device="cpu") @ R_cam_world.float().cpu()  # R^T d
    return BoneTargets(names, start, end, d_world.to(device), torch.tensor(weights, device=device))
