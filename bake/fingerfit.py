"""Stage 1b, hands: finger curl from the photo's hand landmarks (:mod:`.hands`), after the body fit.

Each finger gets one curl angle shared by its three joints (a flexion about the axis across the finger, toward
the palm; the thumb's is across the palm, toward the little finger, and its base joint takes half) and a swing of
its base joint in the palm's plane, all bounded to :data:`ANGLE_RANGE`, and the wrist a small extra rotation.
They are fitted with Adam, camera and body fixed, to the hand's 21 landmarks: the posed wrist, finger joints and
fingertip vertices projected with the photo camera against the 2D landmarks (after the best 2D shift and scale,
so the arm fit's leftover error at the wrist does not bend the fingers; residuals in hand sizes), plus the 3D
direction of each finger bone from mediapipe's metric hand landmarks (a finger curled toward the camera and one
stretched out project alike; their depth tells them apart), plus a prior toward the rest hand. A hand without
landmarks keeps the rest pose.

Before that, in the body fit, a found hand's wrist and knuckles (:data:`PALM`) replace the pose's four coarser hand
landmarks as keypoints (:func:`with_palm_targets`): they place the hand and turn the wrist.

The angles live in the motion's ``left_hand_pose`` / ``right_hand_pose`` (SMPL-X format), so the subject file
stores them and the clip script keeps them.

The hand's size is not fitted: the rig's hand is in proportion with its body (wrist to middle fingertip over the
outer eye corners: 1.81 at rest; 1.86 in the V-sign photo, hand and face at about one depth). That the fitted hand
projects ~1.3-1.4x the photo's (``bench/hand_size.py``) comes from where the arm fit puts it: ~0.2 m in front of
the face, its fingers toward the camera (mediapipe's metric landmarks say so too). Shrinking the hand would make
it too small in every other view; a hand-size term in the body fit moved the camera back (face 0.90 -> 0.82 of
the photo's) or, without the arms' metric directions, put the arm behind the body.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from anchorsplat.gaussians.conventions import Cameras, axis_angle_to_matrix, project_points
from anchorsplat.gaussians.motion import SMPLX_JOINT_NAMES, Motion
from anchorsplat.gaussians.retarget import motion_to_rig
from anchorsplat.gaussians.rig import Rig, apply_transforms, blend_transforms, forward_kinematics, skinning_transforms

from .detect import Detections
from .hands import SIDES, HandLandmarks
from .landmarks import Targets
from .subject import SubjectFit

FINGERS = ("thumb", "index", "middle", "ring", "pinky")
"""Finger order of the curls; the landmarks of finger ``k`` are mediapipe Hands' ``1 + 4k .. 4 + 4k``."""
ANGLES = (*FINGERS, *(f"{f}_swing" for f in FINGERS))
"""What a hand's fit sets: each finger's curl, then each finger's swing at its base in the palm's plane (about the
palm's normal, toward the little finger): a thumb folded over the palm is swung and curled, a V sign's index and
middle finger swing apart."""
ANGLE_RANGE: dict[str, tuple[float, float]] = {
    "thumb": (-0.3, 1.0), "index": (-0.2, 1.4), "middle": (-0.2, 1.4), "ring": (-0.2, 1.4), "pinky": (-0.2, 1.4),
    "thumb_swing": (-0.5, 0.9), "index_swing": (-0.35, 0.35), "middle_swing": (-0.35, 0.35),
    "ring_swing": (-0.35, 0.35), "pinky_swing": (-0.35, 0.35),
}  # fmt: skip
"""Plausible angles (radians; a curl is per joint, negative bends backward): on the rig, a curl of 0.8 at each
joint is a loose fist."""
JOINT_SHARE = {"thumb": (0.5, 1.0, 1.0)}
"""Fraction of the curl each of a finger's three joints takes (1 where not listed): the thumb's base turns less."""
BONES: tuple[tuple[int, int], ...] = tuple(
    (0 if p == 0 else 1 + 4 * k + p - 1, 1 + 4 * k + p) for k in range(5) for p in range(4)
)
"""Parent -> child landmark of each of the hand's 20 bones (wrist -> finger base, then along the finger)."""
PRIOR_WEIGHT = 0.02
"""Pull of each curl (radians squared) toward the rest hand."""
WRIST_WEIGHT = 0.2
"""Pull of the wrist's extra rotation (radians squared) toward the body fit's wrist."""
DIRECTION_WEIGHT = 1.0
"""Weight of the bone directions (mean 1 - cosine) against the landmarks' residual (mean, in hand sizes)."""
STEPS = 100
LEARNING_RATE = 0.08
PALM = {"wrist": 0, "thumb1": 1, "index1": 5, "middle1": 9, "pinky1": 17}
"""Hand landmarks that are body-fit targets (SMPL-X joint suffix -> landmark): the wrist and the knuckles, which
the finger curls do not move. Where a hand is found they replace the pose's coarser hand landmarks."""
POSE_HAND = ("wrist", "index", "pinky", "thumb")
"""The pose's hand landmarks that :data:`PALM` replaces."""
PALM_WEIGHT = 1.0


@dataclass(frozen=True, eq=False)
class HandChain:
    """Where one hand's landmarks sit on a rig and how its fingers curl (rest frame of the rig)."""

    side: str
    wrist: int
    """SMPL-X index of the wrist."""
    smplx_joints: Int[Tensor, "5 3"]
    """SMPL-X indices of each finger's three joints (:data:`FINGERS` order, base to tip)."""
    points: Int[Tensor, " 21"]
    """Rig joint of each landmark (-1 for a fingertip)."""
    tips: Int[Tensor, " 5"]
    """Rig vertex at each fingertip."""
    subtree: Int[Tensor, " S"]
    """Rig joints of the hand: the wrist and every joint below it, parents first."""
    subtree_levels: tuple[Int[Tensor, " _"], ...]
    """Positions in ``subtree`` by depth below the wrist."""
    axes: Float[Tensor, "5 3"]
    """Flexion axis of each finger: a positive rotation about it bends the finger toward the palm."""
    swing_axis: Float[Tensor, " 3"]
    """The swing axis (the palm's normal): a positive rotation about it moves a finger toward the little finger."""
    shares: Float[Tensor, "5 3"]


def with_palm_targets(targets: Targets, detections: Detections, rig: Rig) -> Targets:
    """``targets`` with each found hand's wrist and knuckles (:data:`PALM`, inside the image) in place of the
    pose's landmarks of that hand: they place the hand and turn the wrist more exactly."""
    source = rig.smplx_source.tolist()
    keep = list(range(len(targets.names)))
    rows: list[tuple[str, list[float], float, int]] = []
    for side in SIDES:
        hand = detections.hand(side)
        if hand is None:
            continue
        for suffix, landmark in PALM.items():
            smplx = SMPLX_JOINT_NAMES.index(f"{side}_{suffix}")
            x, y = (float(v) for v in hand.xy[landmark])
            if smplx in source and 0 <= x < detections.width and 0 <= y < detections.height:
                rows.append((f"{side}_hand_{suffix}", [x, y], PALM_WEIGHT, source.index(smplx)))
        if any(name.startswith(f"{side}_hand_") for name, *_ in rows):
            keep = [i for i in keep if targets.names[i] not in {f"{side}_{n}" for n in POSE_HAND}]
    if not rows:
        return targets
    device = targets.xy.device
    return Targets(
        tuple(targets.names[i] for i in keep) + tuple(r[0] for r in rows),
        torch.cat([targets.xy[keep], torch.tensor([r[1] for r in rows], device=device)]),
        torch.cat([targets.weights[keep], torch.tensor([r[2] for r in rows], device=device)]),
        tuple(targets.joint_ids[i] for i in keep) + tuple(r[3] for r in rows),
        tuple(targets.vertex_ids[i] for i in keep) + (-1,) * len(rows),
    )


def hand_chain(rig: Rig, side: str) -> HandChain | None:
    """The ``side`` hand of ``rig`` (found through its SMPL-X retarget map); None when the rig has no fingers."""
    source = rig.smplx_source.tolist()

    def rig_joint(smplx_name: str) -> int | None:
        i = SMPLX_JOINT_NAMES.index(smplx_name)
        return source.index(i) if i in source else None

    names = [f"{side}_wrist"] + [f"{side}_{f}{p}" for f in FINGERS for p in (1, 2, 3)]
    ids = [rig_joint(n) for n in names]
    if any(i is None for i in ids):
        return None
    joints = rig.joints_rest.detach().float()
    wrist, fingers = ids[0], torch.tensor(ids[1:]).reshape(5, 3)
    tips = torch.stack([_tip_vertex(rig, int(f[1]), int(f[2])) for f in fingers])
    points = torch.cat([torch.tensor([wrist]), torch.cat([fingers, torch.full((5, 1), -1)], 1).reshape(-1)])
    # The palm's normal (out of the palm) from the wrist and the index and pinky bases; mirrored sides flip it.
    to_index, to_pinky = joints[fingers[1, 0]] - joints[wrist], joints[fingers[4, 0]] - joints[wrist]
    normal = torch.linalg.cross(to_index, to_pinky) * (-1.0 if side == "left" else 1.0)
    normal = normal / normal.norm()
    along = joints[fingers[:, 2]] - joints[fingers[:, 0]]
    along = along / along.norm(dim=-1, keepdim=True)
    toward = normal.expand(5, 3).clone()
    across = joints[fingers[4, 0]] - joints[fingers[1, 0]]  # index -> pinky base: where the thumb folds to
    toward[0] = normal + across / across.norm()
    axes = torch.linalg.cross(along, toward)
    axes = axes / axes.norm(dim=-1, keepdim=True)
    swing_axis = normal if float(torch.linalg.cross(normal, along[0]) @ across) > 0 else -normal
    shares = torch.tensor([JOINT_SHARE.get(f, (1.0, 1.0, 1.0)) for f in FINGERS])
    smplx = torch.tensor([[SMPLX_JOINT_NAMES.index(f"{side}_{f}{p}") for p in (1, 2, 3)] for f in FINGERS])
    subtree, levels = _subtree(rig, wrist)
    wrist_smplx = SMPLX_JOINT_NAMES.index(f"{side}_wrist")
    return HandChain(side, wrist_smplx, smplx, points, tips, subtree, levels, axes, swing_axis, shares)


def _subtree(rig: Rig, root: int) -> tuple[Tensor, tuple[Tensor, ...]]:
    """``root`` and its descendants, parents first (breadth first), and their positions by depth below ``root``."""
    parents = rig.parents.tolist()
    levels, order = [[root]], [root]
    while True:
        below = [k for k in range(rig.num_joints) if parents[k] in levels[-1]]
        if not below:
            break
        levels.append(below)
        order += below
    positions, start = [], 0
    for level in levels:
        positions.append(torch.arange(start, start + len(level)))
        start += len(level)
    return torch.tensor(order), tuple(positions)


def _tip_vertex(rig: Rig, middle: int, last: int) -> Tensor:
    """The vertex furthest along the last phalanx among those it moves most."""
    weights = (rig.skin_weights.cpu() * (rig.skin_indices.cpu() == last)).sum(1)
    candidates = torch.nonzero(weights >= 0.5)[:, 0]
    if len(candidates) == 0:
        candidates = torch.nonzero(weights > 0)[:, 0]
    joints = rig.joints_rest.detach().cpu().float()
    direction = joints[last] - joints[middle]
    along = (rig.vertices_rest.detach().cpu().float()[candidates] - joints[last]) @ direction
    return candidates[int(torch.argmax(along))]


def curl_axis_angles(angles: Float[Tensor, " 10"], chain: HandChain) -> Float[Tensor, "5 3 3"]:
    """Axis-angle of each finger joint for the given :data:`ANGLES` (SMPL-X world-aligned joint frames)."""
    axes, shares = chain.axes.to(angles), chain.shares.to(angles)
    out = angles[:5, None, None] * shares[:, :, None] * axes[:, None, :]
    base = torch.zeros_like(out)
    base[:, 0] = angles[5:, None] * chain.swing_axis.to(angles)  # the swing turns each finger's base joint
    return out + base


def with_angles(
    full_pose: Float[Tensor, "B 55 3"], chain: HandChain, angles: Float[Tensor, " 10"]
) -> Float[Tensor, "B 55 3"]:
    """``full_pose`` with the fingers of ``chain``'s hand set to ``angles`` (:data:`ANGLES`)."""
    ids = chain.smplx_joints.to(full_pose.device).reshape(-1)
    aa = curl_axis_angles(angles, chain).reshape(1, 15, 3).expand(len(full_pose), 15, 3)
    return full_pose.index_copy(1, ids, aa.to(full_pose))


def hand_points(
    rig: Rig,
    full_pose: Float[Tensor, "1 55 3"],
    chain: HandChain,
    T_world_joint: Float[Tensor, "1 J 4 4"] | None = None,
) -> Float[Tensor, "21 3"]:
    """The posed hand's 21 landmark points in the world (joints, and the fingertip vertices).

    ``T_world_joint``: the whole rig's joint transforms for ``full_pose`` (only those above the wrist are read),
    when known; with them only the hand's joints are posed again (the fit's inner loop)."""
    if T_world_joint is None:
        T_world_joint = forward_kinematics(rig, motion_to_rig(Motion.from_full_pose(full_pose), rig).joint_rotations)
    else:
        T_world_joint = _pose_hand(rig, full_pose, chain, T_world_joint)
    device = full_pose.device
    joints = T_world_joint[0, chain.points.to(device).clamp_min(0), :3, 3]
    tips = chain.tips.to(device)
    A = skinning_transforms(T_world_joint, rig.joints_rest)
    M = blend_transforms(A, rig.skin_indices[tips], rig.skin_weights[tips])
    return joints.index_copy(0, torch.arange(4, 21, 4, device=device), apply_transforms(M, rig.vertices_rest[tips])[0])


def _pose_hand(
    rig: Rig, full_pose: Float[Tensor, "1 55 3"], chain: HandChain, T_world_joint: Float[Tensor, "1 J 4 4"]
) -> Float[Tensor, "1 J 4 4"]:
    """``T_world_joint`` with the joints of the hand (the wrist and below) posed again for ``full_pose``."""
    device = full_pose.device
    subtree = chain.subtree.to(device)
    source = rig.smplx_source[subtree].to(device)
    aa = full_pose[0, source.clamp_min(0)] * (rig.smplx_fraction[subtree].to(full_pose) * (source >= 0))[:, None]
    local = torch.zeros(len(subtree), 4, 4, dtype=full_pose.dtype, device=device)
    local[:, :3, :3] = axis_angle_to_matrix(aa)
    parents = rig.parents[subtree].to(device)
    local[:, :3, 3] = (rig.joints_rest[subtree] - rig.joints_rest[parents]).to(full_pose)
    local[:, 3, 3] = 1.0
    out = T_world_joint[0]
    for level in chain.subtree_levels:  # each level's parents are final already
        rows = subtree[level.to(device)]
        out = out.index_copy(0, rows, out[parents[level.to(device)]] @ local[level.to(device)])
    return out[None]


@dataclass(frozen=True, eq=False)
class HandFit:
    """One hand fitted to its landmarks."""

    full_pose: Float[Tensor, "1 55 3"]
    """The fit's pose with this hand's fingers curled and its wrist turned."""
    angles: Float[Tensor, " 10"]
    """:data:`ANGLES` in radians."""
    error_before_px: float
    """Mean landmark distance (after the best 2D shift and scale) with the rest fingers and the body fit's wrist."""
    error_px: float
    """The same after the fit."""


def _angles_from(raw: Tensor) -> Tensor:
    lo, hi = (torch.tensor([ANGLE_RANGE[a][i] for a in ANGLES], device=raw.device) for i in (0, 1))
    return lo + (hi - lo) * torch.sigmoid(raw)


def _raw_for(angles: Tensor) -> Tensor:
    lo, hi = (torch.tensor([ANGLE_RANGE[a][i] for a in ANGLES], device=angles.device) for i in (0, 1))
    return torch.logit(((angles - lo) / (hi - lo)).clamp(1e-3, 1 - 1e-3))


def _aligned(xy: Tensor, target: Tensor) -> Tensor:
    """``xy`` shifted and scaled (least squares) onto ``target``."""
    xc, tc = xy - xy.mean(0), target - target.mean(0)
    scale = ((xc * tc).sum() / xc.square().sum().clamp_min(1e-9)).clamp(0.5, 2.0)
    return scale * xc + target.mean(0)


def fit_hand(
    rig: Rig, full_pose: Float[Tensor, "1 55 3"], camera: Cameras, chain: HandChain, hand: HandLandmarks
) -> HandFit:
    """Curl the fingers of ``chain``'s hand (and turn its wrist a little) so the posed hand matches ``hand`` seen
    from ``camera`` (see the module docstring). ``rig`` is the subject's (shaped); runs on its device."""
    device = rig.joints_rest.device
    full_pose = full_pose.to(device=device, dtype=torch.float32)
    target = torch.as_tensor(hand.xy, dtype=torch.float32, device=device)
    size = max(hand.size, 1.0)
    world = torch.as_tensor(hand.world, dtype=torch.float32, device=device)
    bones = torch.tensor(BONES, device=device)
    directions = world[bones[:, 1]] - world[bones[:, 0]]
    directions = directions / directions.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    R_cam_world = camera.T_cam_world[0, :3, :3].to(device)
    raw = torch.nn.Parameter(_raw_for(torch.zeros(len(ANGLES), device=device)))
    wrist = torch.nn.Parameter(torch.zeros(3, device=device))
    wrist_row = torch.zeros(1, 55, 1, device=device)
    wrist_row[0, chain.wrist] = 1.0

    with torch.no_grad():  # the arm above the wrist stays where the body fit put it
        T_world_joint = forward_kinematics(rig, motion_to_rig(Motion.from_full_pose(full_pose), rig).joint_rotations)

    def posed(angles: Tensor) -> tuple[Tensor, Tensor]:
        pose = with_angles(full_pose + wrist_row * wrist, chain, angles)
        points = hand_points(rig, pose, chain, T_world_joint)
        return points, project_points(points, camera)[0]

    def loss_fn() -> Tensor:
        angles = _angles_from(raw)
        points, xy = posed(angles)
        r2 = ((_aligned(xy, target) - target) / size).square().sum(-1)
        loss = (torch.sqrt(r2 + 0.01) - 0.1).mean()
        d = (points[bones[:, 1]] - points[bones[:, 0]]) @ R_cam_world.T
        cos = (d * directions).sum(-1) / d.norm(dim=-1).clamp_min(1e-9)
        loss = loss + DIRECTION_WEIGHT * (1.0 - cos).mean()
        return loss + PRIOR_WEIGHT * angles.square().sum() + WRIST_WEIGHT * wrist.square().sum()

    def error() -> float:
        with torch.no_grad():
            _, xy = posed(_angles_from(raw))
            return float((_aligned(xy, target) - target).norm(dim=-1).mean())

    before = error()
    optimizer = torch.optim.Adam([raw, wrist], lr=LEARNING_RATE)
    for _ in range(STEPS):
        optimizer.zero_grad(set_to_none=True)
        loss_fn().backward()
        optimizer.step()
    with torch.no_grad():
        angles = _angles_from(raw)
        pose = with_angles(full_pose + wrist_row * wrist, chain, angles)
    return HandFit(pose, angles.detach(), before, error())


def fit_fingers(fit: SubjectFit, rig: Rig, hands: dict[str, HandLandmarks | None]) -> SubjectFit:
    """``fit`` with each hand in ``hands`` (by the person's side) curled to its landmarks (:func:`fit_hand`);
    hands without landmarks, and every hand of a rig without finger joints, keep the fit's (rest) fingers."""
    found = {side: hand for side, hand in hands.items() if hand is not None}
    if not found:
        return fit
    device = rig.vertices_rest.device
    rig32 = rig.to(dtype=torch.float32)
    shaped = rig32.with_shape(fit.shape.to(rig32.vertices_rest)) if len(fit.shape) else rig32
    camera = Cameras(fit.camera.T_cam_world.to(device), fit.camera.Ks.to(device), fit.width, fit.height)
    full_pose = fit.motion.full_pose().to(device)
    for side in SIDES:
        chain = hand_chain(rig32, side) if side in found else None
        if chain is not None:
            full_pose = fit_hand(shaped, full_pose, camera, chain, found[side]).full_pose
    m = fit.motion
    motion = Motion.from_full_pose(full_pose, m.transl.to(device), m.expression.to(device), m.expression_names, m.fps)
    return dataclasses.replace(fit, motion=motion)
