"""Stage 1b: fit the body rig to the photo: camera, global orientation, body pose and shape, plus the person mask.

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
- limbs: the 3D direction of each upper arm, forearm, thigh and shin from mediapipe's metric landmarks
  (:func:`.landmarks.bone_targets`; 1 - cosine): a forearm pointing at the camera and one pointing away project
  alike, and only the first is in front of the torso;
- priors: squared joint angles (per-joint weights) and squared shape coefficients.

Where mediapipe Hands found a hand, its wrist and knuckles replace the pose's hand landmarks as keypoints, and
after the fit its fingers are curled to the hand's 21 landmarks (:func:`.fingerfit.fit_fingers`); elsewhere the
fingers keep the rest pose.
"""

from __future__ import annotations

import dataclasses
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float, UInt8
from torch import Tensor

from anchorsplat.gaussians.conventions import Cameras, axis_angle_to_matrix, project_points
from anchorsplat.gaussians.device import to_device
from anchorsplat.gaussians.motion import SMPLX_JOINT_NAMES, Motion
from anchorsplat.gaussians.retarget import motion_to_rig
from anchorsplat.gaussians.rig import Rig, pose_mesh

from .detect import Detections
from .fingerfit import fit_fingers, with_palm_targets
from .headfit import HEAD_JOINTS, face_shape_offsets, head_target, head_target_from_pose
from .landmarks import BoneTargets, Targets, bone_targets, keypoint_targets
from .photo import check_rgb8
from .segment import body_part_map, segment
from .subject import R_CAM_WORLD, FaceShape, SubjectFit

DEFAULT_FOV_DEG = 45.0
FIT_JOINTS: dict[str, float] = {
    "spine1": 4.0, "spine2": 4.0, "spine3": 4.0, "neck": 2.0, "head": 1.0,
    "left_shoulder": 0.3, "right_shoulder": 0.3, "left_elbow": 0.2, "right_elbow": 0.2,
    "left_wrist": 4.0, "right_wrist": 4.0, "left_hip": 1.0, "right_hip": 1.0, "left_knee": 0.5, "right_knee": 0.5,
}  # fmt: skip

RELAXED_ARMS = {"left_shoulder": (0.0, 0.0, -1.2), "right_shoulder": (0.0, 0.0, 1.2)}
"""Where the pose prior pulls the arms (hanging at the sides, as in most photos): a portrait shows no elbows,
and arms left in the rig's T-pose would stick out of every generated frame."""
HEAD_WEIGHT = 20.0
"""Weight of the head-rotation target (squared Frobenius distance; 10 degrees off costs ~0.06 x this)."""


BONE_WEIGHT = 5.0
"""Weight of the limb-direction term (1 - cosine per limb, times its visibility squared, summed; a limb 30
degrees off costs ~0.13 x this). Weaker (1.0), a body fitted a little too large foreshortens an upper arm
toward the camera to keep its 2D length, and a forearm pointing at the camera may still bend backward."""


def rest_pose_prior(relaxed_arms: bool, device: torch.device | str = "cpu") -> Float[Tensor, "P 3"]:
    """The pose the prior pulls :data:`FIT_JOINTS` toward (and the fit starts from): zero, with the arms
    hanging when ``relaxed_arms`` (no elbow in the photo)."""
    out = torch.zeros(len(FIT_JOINTS), 3, device=device)
    for name, aa in RELAXED_ARMS.items() if relaxed_arms else ():
        out[list(FIT_JOINTS).index(name)] = torch.tensor(aa, device=device)
    return out


class _Params(torch.nn.Module):
    """What the fit optimises: camera translation, global orientation, :data:`FIT_JOINTS` rotations, shape."""

    def __init__(self, num_shape: int, yaw: float, cam_t: Tensor, body: Tensor) -> None:
        super().__init__()
        device = cam_t.device
        self.cam_t = torch.nn.Parameter(cam_t.clone())
        self.global_orient = torch.nn.Parameter(torch.tensor([0.0, yaw, 0.0], device=device))
        self.body = torch.nn.Parameter(body.clone())
        self.shape = torch.nn.Parameter(torch.zeros(num_shape, device=device))
        self.joint_ids = torch.tensor([SMPLX_JOINT_NAMES.index(n) for n in FIT_JOINTS], device=device)

    def motion(self) -> Motion:
        device = self.body.device
        full = torch.zeros(1, 55, 3, device=device).index_copy(1, self.joint_ids, self.body[None])
        full = full.index_copy(1, torch.zeros(1, dtype=torch.long, device=device), self.global_orient[None, None])
        return Motion.from_full_pose(full)

    def T_cam_world(self) -> Tensor:
        top = torch.cat([torch.tensor(R_CAM_WORLD, device=self.cam_t.device), self.cam_t[:, None]], 1)
        return torch.cat([top, torch.tensor([[0.0, 0.0, 0.0, 1.0]], device=self.cam_t.device)], 0)[None]


@dataclass(frozen=True, eq=False)
class _Silhouette:
    outside_distance: Float[Tensor, "1 1 H W"]
    """Distance to the mask for pixels outside it, in percent of the long side (0 inside)."""
    outline: Float[Tensor, "P 2"]
    """Mask outline pixels away from the image border."""


def _silhouette(mask: np.ndarray, scale: float, device: torch.device, max_points: int = 400) -> _Silhouette:
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
    outline = torch.tensor(np.stack([xs, ys], -1) + 0.5, dtype=torch.float32, device=device)
    return _Silhouette(torch.from_numpy(distance).to(device)[None, None], outline)


def _initial_camera(targets: Targets, rig: Rig, K: Tensor, yaw: float) -> Tensor:
    """Camera translation that puts the targets' rig points at their image centroid, at the depth where their
    spread matches (with the body turned by ``yaw``)."""
    R = torch.tensor(R_CAM_WORLD, device=K.device) @ axis_angle_to_matrix(
        torch.tensor([0.0, yaw, 0.0], device=K.device)
    )
    pelvis = rig.joints_rest[0].detach().float()
    points = torch.stack([_rest_point(rig, j, v) for j, v in zip(targets.joint_ids, targets.vertex_ids, strict=True)])
    cam = (points - pelvis) @ R.T  # camera-frame offsets, up to translation
    w = targets.weights.clamp_min(1e-3)[:, None]
    spread_3d = ((cam[:, :2] - (w * cam[:, :2]).sum(0) / w.sum()).norm(dim=-1) * w[:, 0]).sum()
    centroid = (w * targets.xy).sum(0) / w.sum()
    spread_px = ((targets.xy - centroid).norm(dim=-1) * w[:, 0]).sum()
    z = float(K[0, 0]) * float(spread_3d) / max(float(spread_px), 1e-3)
    ray = torch.linalg.solve(K, torch.cat([centroid, torch.ones(1, device=K.device)]))
    centre_cam = ray * z - (w * cam).sum(0) / w.sum()  # where the pelvis sits in the camera frame
    return centre_cam - torch.tensor(R_CAM_WORLD, device=K.device) @ pelvis


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
    face_shape: bool = False,
) -> SubjectFit:
    """Fit ``rig`` to the one person in ``image`` (see the module docstring).

    Args:
        image: the photo, uint8 RGB (as :func:`anchorsplat.bake.detect.load_photo` returns it).
        rig: the body rig (the default Anny rig, or any rig with the joints of :data:`BODY_KEYPOINTS`).
        detections: precomputed detections; detected when None.
        iterations: optimisation steps after the rigid stage.
        fov_deg: the camera's field of view over the image's long side.
        face_shape: also fit the face's shape (:func:`.headfit.face_shape_offsets`). Off by default: on the
            real-photo bench (preview) it raised grace_hopper's portrait identity distances (yaw 0 / -30 / +30:
            0.264 / 0.407 / 0.417 without, 0.316 / 0.444 / 0.432 with) though it lowered the photo camera's.

    Raises:
        ValueError: the detector's errors (no person, several people, ...), or too few landmarks.
    """
    check_rgb8(image, what="photo")
    if detections is None:
        from .detect import detect_person

        detections = detect_person(image)
    if (detections.width, detections.height) != (image.shape[1], image.shape[0]):
        raise ValueError("the detections were made on an image of another size than the photo")
    targets = with_palm_targets(keypoint_targets(detections, rig), detections, rig)
    mask = np.clip(detections.mask * 255 + 0.5, 0, 255).astype(np.uint8)
    head = head_target(detections, rig, torch.tensor(R_CAM_WORLD, device="cpu"))  # from the landmarks, on the host
    if head is None:  # no face mesh (a near profile): the ears say where the head turns
        head = head_target_from_pose(detections, torch.tensor(R_CAM_WORLD, device="cpu"))
    bones = bone_targets(detections, rig, torch.tensor(R_CAM_WORLD, device="cpu"))
    fit = fit_targets(targets, mask, rig, framing=detections.framing, iterations=iterations, fov_deg=fov_deg,
                      yaw=_initial_yaw(detections), head=head, bones=bones)  # fmt: skip
    fit = fit_fingers(fit, rig, {"left": detections.left_hand, "right": detections.right_hand})
    face = fitted_face_shape(fit, rig, detections) if face_shape else None
    return dataclasses.replace(fit, parts=segment(detections, image, fitted_part_map(fit, rig)), face_shape=face)


def fitted_face_shape(fit: SubjectFit, rig: Rig, detections: Detections) -> FaceShape | None:
    """The face's shape offsets (:func:`.headfit.face_shape_offsets`) on the fitted body; None without a 3D face
    mesh or a head joint. On the rig's device."""
    head = next((rig.joint_names.index(n) for n in HEAD_JOINTS if n in rig.joint_names), None)
    if detections.face_mesh_xy is None or detections.face_mesh_z is None or head is None:
        return None
    with torch.no_grad():
        rig32 = rig.to(dtype=torch.float32)
        shaped = rig32.with_shape(fit.shape.to(rig32.vertices_rest)) if len(fit.shape) else rig32
        device = shaped.vertices_rest.device
        posed = motion_to_rig(fit.motion.to(device), shaped)
        posed = pose_mesh(shaped, posed.joint_rotations, posed.root_translation)
        rest = motion_to_rig(Motion.zeros(1, device=device), shaped)
        rest = pose_mesh(shaped, rest.joint_rotations, rest.root_translation)
        R_world_head = posed.T_world_joint[0, head, :3, :3] @ rest.T_world_joint[0, head, :3, :3].T
    face = face_shape_offsets(
        detections.face_mesh_xy, detections.face_mesh_z, shaped, posed.vertices[0], R_world_head, fit.camera
    )
    return to_device(face, device)


def fitted_part_map(fit: SubjectFit, rig: Rig) -> np.ndarray:
    """The fitted body's part labels in the photo camera (:func:`.segment.body_part_map`), on the host."""
    from anchorsplat.diffusion.texture import triangle_parts

    with torch.no_grad():
        rig32 = rig.to(dtype=torch.float32)
        shaped = rig32.with_shape(fit.shape.to(rig32.vertices_rest)) if len(fit.shape) else rig32
        inputs = motion_to_rig(fit.motion.to(shaped.vertices_rest.device), shaped)
        vertices = pose_mesh(shaped, inputs.joint_rotations, inputs.root_translation).vertices[0]
        T = fit.camera.T_cam_world[0].to(vertices)
        depth = (vertices @ T[:3, :3].T + T[:3, 3])[:, 2]
        xy = project_points(vertices, Cameras(T[None], fit.camera.Ks.to(vertices), fit.width, fit.height))[0]
        parts = triangle_parts(shaped)
    return body_part_map(xy, depth, rig.faces, parts, (fit.height, fit.width))


def fit_targets(
    targets: Targets,
    mask: UInt8[np.ndarray, "H W"],
    rig: Rig,
    *,
    framing: str = "portrait",
    iterations: int = 300,
    fov_deg: float = DEFAULT_FOV_DEG,
    yaw: float = 0.0,
    head: Float[Tensor, "3 3"] | None = None,
    bones: BoneTargets | None = None,
) -> SubjectFit:
    """The optimisation behind :func:`fit_subject`, on given 2D targets and a person mask (uint8, 255 = in).
    ``head``: the head's world rotation relative to the rest pose (:func:`.headfit.head_target`), if known.
    ``bones``: limb directions from the metric landmarks (:func:`.landmarks.bone_targets`), if known.
    Runs on the rig's device (the detections and the mask come from the host); the result is on it too."""
    start = time.perf_counter()
    device = rig.vertices_rest.device
    rig32 = rig.to(dtype=torch.float32)
    on_host_targets, targets = targets, to_device(targets, device)
    head = None if head is None else head.to(device)
    h, w = mask.shape
    scale = 100.0 / max(w, h)  # residuals in percent of the long side
    f = 0.5 * max(w, h) / math.tan(math.radians(fov_deg) / 2)
    K = torch.tensor([[f, 0.0, w / 2], [0.0, f, h / 2], [0.0, 0.0, 1.0]], device=device)
    silhouette = _silhouette(mask, scale, device)
    num_shape = len(rig32.shape_names) if rig32.shape_dirs is not None else 0
    prior = torch.tensor(list(FIT_JOINTS.values()), device=device)[:, None]
    relaxed = rest_pose_prior(not any(name.endswith("_elbow") for name in targets.names), device)
    # Start with the arms down either way (where most photos have them); the prior keeps them there only when
    # the photo shows no elbow.
    params = _Params(num_shape, yaw, _initial_camera(targets, rig32, K, yaw), rest_pose_prior(True, device))
    joint_ids = torch.tensor(targets.joint_ids, device=device).clamp_min(0)
    vertex_ids = torch.tensor(targets.vertex_ids, device=device).clamp_min(0)
    is_joint = torch.tensor(targets.joint_ids, device=device)[:, None] >= 0
    outline_vertices = torch.arange(0, rig32.num_vertices, max(1, rig32.num_vertices // 3000), device=device)
    head_id = next((rig32.joint_names.index(n) for n in HEAD_JOINTS if n in rig32.joint_names), None)
    if head is not None and head_id is not None:
        with torch.no_grad():
            rest = motion_to_rig(Motion.zeros(1, device=device), rig32)
            R_rest_head = pose_mesh(rig32, rest.joint_rotations, rest.root_translation).T_world_joint[
                0, head_id, :3, :3
            ]
    else:
        head = None

    def head_loss(T_world_joint: Tensor) -> Tensor:
        if head is None:
            return torch.zeros((), device=device)
        return (T_world_joint[0, head_id, :3, :3] @ R_rest_head.T - head).square().sum()

    bones = None if bones is None or len(bones.names) == 0 else to_device(bones, device)

    def bone_loss(T_world_joint: Tensor) -> Tensor:
        if bones is None:
            return torch.zeros((), device=device)
        positions = T_world_joint[0, :, :3, 3]
        d = positions[list(bones.end_ids)] - positions[list(bones.start_ids)]
        cos = (d * bones.directions_world).sum(-1) / d.norm(dim=-1).clamp_min(1e-6)
        return (bones.weights * (1.0 - cos)).sum()

    def project(with_silhouette: bool):
        shaped = rig32.with_shape(params.shape) if num_shape else rig32
        inputs = motion_to_rig(params.motion(), shaped)
        posed = pose_mesh(shaped, inputs.joint_rotations, inputs.root_translation)
        cameras = Cameras(params.T_cam_world(), K[None], w, h)
        points = torch.where(is_joint, posed.T_world_joint[0, joint_ids, :3, 3], posed.vertices[0, vertex_ids])
        xy = project_points(points, cameras)[0]
        vertices_xy = project_points(posed.vertices[0], cameras)[0] if with_silhouette else None
        return xy, vertices_xy, posed.T_world_joint

    def loss_fn(rigid: bool) -> Tensor:
        xy, vertices_xy, T_world_joint = project(not rigid)
        r2 = ((xy - targets.xy) * scale).square().sum(-1)
        loss = (targets.weights * (torch.sqrt(r2 + 0.25) - 0.5)).sum() / targets.weights.sum()
        if rigid:
            return loss
        loss = loss + 0.5 * _outside_loss(vertices_xy, silhouette, w, h)
        loss = loss + 0.1 * _outline_loss(vertices_xy[outline_vertices], silhouette.outline, scale)
        loss = loss + 0.05 * (prior * (params.body - relaxed).square()).sum() + 1.0 * params.shape.square().sum()
        return loss + HEAD_WEIGHT * head_loss(T_world_joint) + BONE_WEIGHT * bone_loss(T_world_joint)

    # The graph is small: one thread is faster than two, and much faster when other processes load the cores.
    with _torch_threads(1):
        _adam([params.cam_t, params.global_orient], lambda: loss_fn(True), steps=max(40, iterations // 5), lr=0.03)
        _adam(list(params.parameters()), lambda: loss_fn(False), steps=iterations, lr=0.02)

    with torch.no_grad():
        motion = params.motion()
        xy, _, _ = project(False)
        errors = (xy - targets.xy).norm(dim=-1)
        error = float((targets.weights * errors).sum() / targets.weights.sum())
    camera = Cameras(params.T_cam_world().detach(), K[None].clone(), w, h)
    return SubjectFit(
        width=w, height=h, framing=framing, camera=camera, shape_names=tuple(rig32.shape_names) if num_shape else (),
        shape=params.shape.detach().clone(), motion=motion,
        mask=mask, targets=on_host_targets, rig_kind=rig.kind, reprojection_error_px=error,
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
