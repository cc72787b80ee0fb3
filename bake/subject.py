"""Stage 1: fit the body rig to the photo: camera, global orientation, body pose and shape, plus the person mask.

The world is the body's: the rig stands at its rest position (``Motion.transl`` = 0) and the camera is placed
in front of it. The camera is level and looks along -Z (``R_cam_world = diag(1, -1, -1)``), so the person's
left (+X) appears on the image's right; everything that turns the body relative to the camera (yaw, lean,
roll) is the body's ``global_orient``. The focal length comes from an assumed field of view
(:data:`DEFAULT_FOV_DEG` over the long side, a phone's portrait crop) unless given.

Objective, minimised with Adam (a rigid stage on the torso and face, then everything):

- keypoints: mediapipe Pose landmarks -> rig joints (:data:`BODY_KEYPOINTS`; the person's left is the rig's
  ``.L`` side), weighted by visibility; face landmarks (FaceMesh, else dlib's 68) -> rig vertices found on the
  rest mesh by :func:`face_landmark_vertices`. Residuals are in percent of the image's long side, robust
  (Charbonnier);
- silhouette: projected vertices outside the person mask pay their squared distance to it, and the mask's
  outline pulls the nearest projected vertex (capped, so hair and loose clothing do not inflate the body);
- priors: squared joint angles (per-joint weights) and squared shape coefficients.
"""

from __future__ import annotations

import io
import json
import math
import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float, UInt8
from torch import Tensor

from anchorsplat.gaussians.conventions import Cameras, axis_angle_to_matrix, project_points
from anchorsplat.gaussians.fileio import FileFormat, read_json
from anchorsplat.gaussians.motion import SMPLX_JOINT_NAMES, Motion
from anchorsplat.gaussians.retarget import motion_to_rig
from anchorsplat.gaussians.rig import Rig, pose_mesh

from .detect import POSE_LANDMARK_NAMES, Detections, check_rgb8

DEFAULT_FOV_DEG = 45.0
R_CAM_WORLD = ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, -1.0))

# mediapipe landmark -> rig joint (Anny name first, then SMPL-X/synthetic name).
BODY_KEYPOINTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("left_shoulder", ("upperarm01.L", "left_shoulder")), ("right_shoulder", ("upperarm01.R", "right_shoulder")),
    ("left_elbow", ("lowerarm01.L", "left_elbow")), ("right_elbow", ("lowerarm01.R", "right_elbow")),
    ("left_wrist", ("wrist.L", "left_wrist")), ("right_wrist", ("wrist.R", "right_wrist")),
    ("left_hip", ("upperleg01.L", "left_hip")), ("right_hip", ("upperleg01.R", "right_hip")),
    ("left_knee", ("lowerleg01.L", "left_knee")), ("right_knee", ("lowerleg01.R", "right_knee")),
    ("left_ankle", ("foot.L", "left_ankle")), ("right_ankle", ("foot.R", "right_ankle")),
)  # fmt: skip
# face landmark -> (FaceMesh index, dlib 68 index); "left" is the person's left.
FACE_KEYPOINTS: dict[str, tuple[int, int]] = {
    "nose_tip": (1, 30), "chin": (152, 8), "mouth_left": (291, 54), "mouth_right": (61, 48),
    "eye_left_outer": (263, 45), "eye_left_inner": (362, 42), "eye_right_inner": (133, 39),
    "eye_right_outer": (33, 36),
}  # fmt: skip
# SMPL-X joints the fit poses, with the weight of their prior (larger: stiffer).
FIT_JOINTS: dict[str, float] = {
    "spine1": 4.0, "spine2": 4.0, "spine3": 4.0, "neck": 2.0, "head": 1.0,
    "left_shoulder": 0.3, "right_shoulder": 0.3, "left_elbow": 0.2, "right_elbow": 0.2,
    "left_wrist": 4.0, "right_wrist": 4.0, "left_hip": 1.0, "right_hip": 1.0, "left_knee": 0.5, "right_knee": 0.5,
}  # fmt: skip
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
class SubjectFit:
    """The fitted subject (see the module docstring for the world and camera conventions).

    ``shape`` holds coefficients for ``rig.with_shape`` (empty for a rig without a shape basis); ``motion`` is
    one SMPL-X-format frame; ``mask`` is the person mask (uint8, 255 = person); ``targets`` are the 2D keypoints
    the fit used; ``reprojection_error_px`` is their weighted mean error after the fit.
    """

    width: int
    height: int
    framing: str
    camera: Cameras
    shape_names: tuple[str, ...]
    shape: Float[Tensor, " S"]
    motion: Motion
    mask: UInt8[np.ndarray, "H W"]
    targets: Targets
    rig_kind: str
    reprojection_error_px: float
    seconds: float = 0.0


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
    ``eyeBlink*`` moves (on its side of the face) and the eye's corners are the lid's extremes along X; a mouth
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
    return Targets(names, torch.tensor(np.array(xy), dtype=torch.float32), torch.tensor(weights), joints, vertices)


# --- the fit ------------------------------------------------------------------------------------------------------


class _Params(torch.nn.Module):
    """What the fit optimises: camera translation, global orientation, :data:`FIT_JOINTS` rotations, shape."""

    def __init__(self, num_shape: int, yaw: float, cam_t: Tensor) -> None:
        super().__init__()
        self.cam_t = torch.nn.Parameter(cam_t.clone())
        self.global_orient = torch.nn.Parameter(torch.tensor([0.0, yaw, 0.0]))
        self.body = torch.nn.Parameter(torch.zeros(len(FIT_JOINTS), 3))
        self.shape = torch.nn.Parameter(torch.zeros(num_shape))
        self.joint_ids = torch.tensor([SMPLX_JOINT_NAMES.index(n) for n in FIT_JOINTS])

    def motion(self) -> Motion:
        full = torch.zeros(1, 55, 3).index_copy(1, self.joint_ids, self.body[None])
        full = full.index_copy(1, torch.tensor([0]), self.global_orient[None, None])
        return Motion.from_full_pose(full)

    def T_cam_world(self) -> Tensor:
        top = torch.cat([torch.tensor(R_CAM_WORLD), self.cam_t[:, None]], 1)
        return torch.cat([top, torch.tensor([[0.0, 0.0, 0.0, 1.0]])], 0)[None]


@dataclass(frozen=True, eq=False)
class _Silhouette:
    outside_distance: Float[Tensor, "1 1 H W"]
    """Distance to the mask for pixels outside it, in percent of the long side (0 inside)."""
    outline: Float[Tensor, "P 2"]
    """Mask outline pixels away from the image border."""


def _silhouette(mask: np.ndarray, scale: float, max_points: int = 400) -> _Silhouette:
    import cv2

    inside = (mask > 0.5).astype(np.uint8)
    distance = cv2.distanceTransform(1 - inside, cv2.DIST_L2, 5).astype(np.float32) * scale
    eroded = cv2.erode(inside, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
    ys, xs = np.nonzero(inside - eroded)
    h, w = mask.shape
    keep = (xs > 2) & (xs < w - 3) & (ys > 2) & (ys < h - 3)
    xs, ys = xs[keep], ys[keep]
    if len(xs) > max_points:
        pick = np.random.default_rng(0).choice(len(xs), max_points, replace=False)
        xs, ys = xs[pick], ys[pick]
    outline = torch.tensor(np.stack([xs, ys], -1) + 0.5, dtype=torch.float32)
    return _Silhouette(torch.from_numpy(distance)[None, None], outline)


def _initial_camera(targets: Targets, rig: Rig, K: Tensor, yaw: float) -> Tensor:
    """Camera translation that puts the targets' rig points at their image centroid, at the depth where their
    spread matches (with the body turned by ``yaw``)."""
    R = torch.tensor(R_CAM_WORLD) @ axis_angle_to_matrix(torch.tensor([0.0, yaw, 0.0]))
    pelvis = rig.joints_rest[0].detach().float()
    points = torch.stack([_rest_point(rig, j, v) for j, v in zip(targets.joint_ids, targets.vertex_ids, strict=True)])
    cam = (points - pelvis) @ R.T  # camera-frame offsets, up to translation
    w = targets.weights.clamp_min(1e-3)[:, None]
    spread_3d = ((cam[:, :2] - (w * cam[:, :2]).sum(0) / w.sum()).norm(dim=-1) * w[:, 0]).sum()
    centroid = (w * targets.xy).sum(0) / w.sum()
    spread_px = ((targets.xy - centroid).norm(dim=-1) * w[:, 0]).sum()
    z = float(K[0, 0]) * float(spread_3d) / max(float(spread_px), 1e-3)
    ray = torch.linalg.solve(K, torch.cat([centroid, torch.ones(1)]))
    centre_cam = ray * z - (w * cam).sum(0) / w.sum()  # where the pelvis sits in the camera frame
    return centre_cam - torch.tensor(R_CAM_WORLD) @ pelvis


def _rest_point(rig: Rig, joint: int, vertex: int) -> Tensor:
    return (rig.joints_rest[joint] if joint >= 0 else rig.vertices_rest[vertex]).detach().float()


def _initial_yaw(detections: Detections | None) -> float:
    """Body yaw from mediapipe's metric landmarks: the left-minus-right shoulder vector (x right, z away)."""
    if detections is None:
        return 0.0
    v = detections.pose_world[11] - detections.pose_world[12]
    return math.atan2(float(v[2]), float(v[0]))


def fit_subject(
    image: UInt8[np.ndarray, "H W 3"],
    rig: Rig,
    *,
    detections: Detections | None = None,
    iterations: int = 300,
    fov_deg: float = DEFAULT_FOV_DEG,
) -> SubjectFit:
    """Fit ``rig`` to the one person in ``image`` (see the module docstring).

    Args:
        image: the photo, uint8 RGB (as :func:`anchorsplat.bake.detect.load_photo` returns it).
        rig: the body rig (the default Anny rig, or any rig with the joints of :data:`BODY_KEYPOINTS`).
        detections: precomputed detections; detected when None.
        iterations: optimisation steps after the rigid stage.
        fov_deg: the camera's field of view over the image's long side.

    Raises:
        ValueError: the detector's errors (no person, several people, ...), or too few landmarks.
    """
    check_rgb8(image, what="photo")
    if detections is None:
        from .detect import detect_person

        detections = detect_person(image)
    if (detections.width, detections.height) != (image.shape[1], image.shape[0]):
        raise ValueError("the detections were made on an image of another size than the photo")
    targets = keypoint_targets(detections, rig)
    mask = np.clip(detections.mask * 255 + 0.5, 0, 255).astype(np.uint8)
    return fit_targets(targets, mask, rig, framing=detections.framing, iterations=iterations, fov_deg=fov_deg,
                       yaw=_initial_yaw(detections))  # fmt: skip


def fit_targets(
    targets: Targets,
    mask: UInt8[np.ndarray, "H W"],
    rig: Rig,
    *,
    framing: str = "portrait",
    iterations: int = 300,
    fov_deg: float = DEFAULT_FOV_DEG,
    yaw: float = 0.0,
) -> SubjectFit:
    """The optimisation behind :func:`fit_subject`, on given 2D targets and a person mask (uint8, 255 = in)."""
    start = time.perf_counter()
    rig32 = rig.to("cpu", torch.float32)
    h, w = mask.shape
    scale = 100.0 / max(w, h)  # residuals in percent of the long side
    f = 0.5 * max(w, h) / math.tan(math.radians(fov_deg) / 2)
    K = torch.tensor([[f, 0.0, w / 2], [0.0, f, h / 2], [0.0, 0.0, 1.0]])
    silhouette = _silhouette(mask, scale)
    num_shape = len(rig32.shape_names) if rig32.shape_dirs is not None else 0
    params = _Params(num_shape, yaw, _initial_camera(targets, rig32, K, yaw))
    prior = torch.tensor(list(FIT_JOINTS.values()))[:, None]
    joint_ids = torch.tensor(targets.joint_ids).clamp_min(0)
    vertex_ids = torch.tensor(targets.vertex_ids).clamp_min(0)
    is_joint = torch.tensor(targets.joint_ids)[:, None] >= 0
    outline_vertices = torch.arange(0, rig32.num_vertices, max(1, rig32.num_vertices // 3000))

    def project(with_silhouette: bool):
        shaped = rig32.with_shape(params.shape) if num_shape else rig32
        inputs = motion_to_rig(params.motion(), shaped)
        posed = pose_mesh(shaped, inputs.joint_rotations, inputs.root_translation)
        cameras = Cameras(params.T_cam_world(), K[None], w, h)
        points = torch.where(is_joint, posed.T_world_joint[0, joint_ids, :3, 3], posed.vertices[0, vertex_ids])
        xy = project_points(points, cameras)[0]
        vertices_xy = project_points(posed.vertices[0], cameras)[0] if with_silhouette else None
        return xy, vertices_xy

    def loss_fn(rigid: bool) -> Tensor:
        xy, vertices_xy = project(not rigid)
        r2 = ((xy - targets.xy) * scale).square().sum(-1)
        loss = (targets.weights * (torch.sqrt(r2 + 0.25) - 0.5)).sum() / targets.weights.sum()
        if rigid:
            return loss
        loss = loss + 0.5 * _outside_loss(vertices_xy, silhouette, w, h)
        loss = loss + 0.1 * _outline_loss(vertices_xy[outline_vertices], silhouette.outline, scale)
        loss = loss + 0.05 * (prior * params.body.square()).sum() + 1.0 * params.shape.square().sum()
        return loss

    # The graph is small: one thread is faster than two, and much faster when other processes load the cores.
    with _torch_threads(1):
        _adam([params.cam_t, params.global_orient], lambda: loss_fn(True), steps=max(40, iterations // 5), lr=0.03)
        _adam(list(params.parameters()), lambda: loss_fn(False), steps=iterations, lr=0.02)

    with torch.no_grad():
        motion = params.motion()
        xy, _ = project(False)
        errors = (xy - targets.xy).norm(dim=-1)
        error = float((targets.weights * errors).sum() / targets.weights.sum())
    camera = Cameras(params.T_cam_world().detach(), K[None].clone(), w, h)
    return SubjectFit(
        width=w, height=h, framing=framing, camera=camera, shape_names=tuple(rig32.shape_names) if num_shape else (),
        shape=params.shape.detach().clone(), motion=motion,
        mask=mask, targets=targets, rig_kind=rig.kind, reprojection_error_px=error,
        seconds=time.perf_counter() - start,
    )  # fmt: skip


@contextmanager
def _torch_threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(min(n, before))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _adam(parameters: list[Tensor], closure, *, steps: int, lr: float) -> None:
    optimizer = torch.optim.Adam(parameters, lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps, eta_min=lr * 0.05)
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = closure()
        loss.backward()
        optimizer.step()
        schedule.step()


def _outside_loss(vertices_xy: Tensor, silhouette: _Silhouette, w: int, h: int) -> Tensor:
    """Mean squared distance (percent) of projected vertices outside the mask; off-image vertices are free."""
    grid = torch.stack([vertices_xy[:, 0] / w * 2 - 1, vertices_xy[:, 1] / h * 2 - 1], -1)[None, None]
    d = torch.nn.functional.grid_sample(silhouette.outside_distance, grid, align_corners=False, padding_mode="zeros")
    return d.square().mean()


def _outline_loss(vertices_xy: Tensor, outline: Tensor, scale: float, cap: float = 3.0) -> Tensor:
    """Each outline pixel's distance (percent, capped) to the nearest projected vertex."""
    if len(outline) == 0:
        return vertices_xy.sum() * 0.0
    d = torch.cdist(outline, vertices_xy).min(dim=1).values * scale
    return (cap * torch.tanh(d / cap)).square().mean()


# --- file ---------------------------------------------------------------------------------------------------------

SUBJECT_FORMAT = "anchorsplat.subject"
SUBJECT_VERSION = 1
_MOTION_FIELDS = ("global_orient", "body_pose", "jaw_pose", "leye_pose", "reye_pose", "left_hand_pose",
                  "right_hand_pose", "transl", "expression")  # fmt: skip


def mask_path_for(path: Path) -> Path:
    """Where :func:`save_subject` puts the mask of ``path``: ``subject.json`` -> ``subject.mask.png``."""
    return path.with_name(f"{path.stem}.mask.png")


def save_subject(path: str | os.PathLike, fit: SubjectFit) -> Path:
    """Write the fit as versioned JSON plus its mask as an 8-bit PNG next to it, both atomically."""
    from PIL import Image

    from anchorsplat.gaussians.io import atomic_write_bytes

    path = Path(path)
    mask_path = mask_path_for(path)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(fit.mask), mode="L").save(buffer, format="PNG")
    atomic_write_bytes(mask_path, buffer.getvalue())
    motion = {k: getattr(fit.motion, k)[0].tolist() for k in _MOTION_FIELDS}
    t = fit.targets
    data = {
        "format": SUBJECT_FORMAT, "version": SUBJECT_VERSION,
        "image": {"width": fit.width, "height": fit.height}, "framing": fit.framing,
        "camera": {"Ks": fit.camera.Ks[0].tolist(), "T_cam_world": fit.camera.T_cam_world[0].tolist(),
                   "convention": "OpenCV (+X right, +Y down, +Z forward); T_cam_world maps world to camera"},
        "shape": {"names": list(fit.shape_names), "values": fit.shape.tolist()},
        "motion": {**motion, "expression_names": list(fit.motion.expression_names), "fps": fit.motion.fps,
                   "format": "SMPL-X parameters, axis-angle"},
        "mask": mask_path.name,
        "keypoints": [{"name": n, "xy": xy, "weight": wt, "joint": j, "vertex": v} for n, xy, wt, j, v in
                      zip(t.names, t.xy.tolist(), t.weights.tolist(), t.joint_ids, t.vertex_ids, strict=True)],
        "rig_kind": fit.rig_kind,
        "fit": {"reprojection_error_px": fit.reprojection_error_px, "seconds": fit.seconds},
    }  # fmt: skip
    atomic_write_bytes(path, (json.dumps(data, indent=1) + "\n").encode())
    return path


# version -> function upgrading that version's JSON to version + 1 (none yet).
_MIGRATIONS: dict[int, Callable[[dict, dict], tuple[dict, dict]]] = {}
SUBJECT_FILE = FileFormat(SUBJECT_FORMAT, SUBJECT_VERSION, "subject file", "re-run the subject stage", _MIGRATIONS)


def load_subject(path: str | os.PathLike) -> SubjectFit:
    """Read a subject file written by :func:`save_subject` (or by hand: the ``--subject-params`` input).

    Raises:
        ValueError: a missing, damaged or foreign file, a newer format version, or a missing mask.
    """
    path = Path(path)
    data = read_json(path, SUBJECT_FILE)
    try:
        return _subject_from(data, path)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        if isinstance(exc, ValueError) and str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{path}: the subject file is inconsistent ({type(exc).__name__}: {exc})") from None


def _subject_from(data: dict, path: Path) -> SubjectFit:
    from PIL import Image

    w, h = int(data["image"]["width"]), int(data["image"]["height"])
    camera = Cameras(torch.tensor(data["camera"]["T_cam_world"], dtype=torch.float32)[None],
                     torch.tensor(data["camera"]["Ks"], dtype=torch.float32)[None], w, h)  # fmt: skip
    m = data["motion"]
    names = tuple(m.get("expression_names", ()))
    parts = {k: torch.tensor(m[k], dtype=torch.float32)[None] if k in m else None for k in _MOTION_FIELDS}
    zero = Motion.zeros(1, names)
    motion = Motion(**{k: v if v is not None else getattr(zero, k) for k, v in parts.items()},
                    expression_names=names, fps=float(m.get("fps", 30.0)))  # fmt: skip
    mask_path = path.parent / data["mask"]
    if not mask_path.is_file():
        raise ValueError(f"{path}: its mask {mask_path} is missing; keep the mask PNG next to the JSON")
    with Image.open(mask_path) as img:
        mask = np.asarray(img.convert("L"))
    if mask.shape != (h, w):
        raise ValueError(f"{path}: the mask is {mask.shape[1]} x {mask.shape[0]}, the image {w} x {h}")
    points = data.get("keypoints", [])
    targets = Targets(
        tuple(p["name"] for p in points), torch.tensor([p["xy"] for p in points], dtype=torch.float32).reshape(-1, 2),
        torch.tensor([float(p["weight"]) for p in points]), tuple(int(p.get("joint", -1)) for p in points),
        tuple(int(p.get("vertex", -1)) for p in points),
    )  # fmt: skip
    framing = data.get("framing", "portrait")
    if framing not in ("portrait", "full_body"):
        raise ValueError(f"{path}: framing {framing!r} is neither 'portrait' nor 'full_body'")
    fit = data.get("fit", {})
    return SubjectFit(
        width=w, height=h, framing=framing, camera=camera, shape_names=tuple(data["shape"]["names"]),
        shape=torch.tensor(data["shape"]["values"], dtype=torch.float32).reshape(-1), motion=motion, mask=mask,
        targets=targets, rig_kind=str(data.get("rig_kind", "unknown")),
        reprojection_error_px=float(fit.get("reprojection_error_px", float("nan"))),
        seconds=float(fit.get("seconds", 0.0)),
    )  # fmt: skip


def check_subject_for(fit: SubjectFit, image: np.ndarray, rig: Rig) -> None:
    """Raise a one-line error when a (``--subject-params``) fit does not belong to this photo and rig."""
    if (fit.width, fit.height) != (image.shape[1], image.shape[0]):
        raise ValueError(
            f"the subject parameters are for a {fit.width} x {fit.height} image but the photo is "
            f"{image.shape[1]} x {image.shape[0]}: pass the photo the subject was fitted on"
        )
    expected = tuple(rig.shape_names) if rig.shape_dirs is not None else ()
    if fit.shape_names != expected:
        raise ValueError(
            f"the subject parameters have shape coefficients {fit.shape_names}, the rig {expected}: refit the "
            "subject with this rig"
        )
