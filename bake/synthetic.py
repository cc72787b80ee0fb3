"""Synthetic subjects with ground truth: the default Anny body with Gaussian hair or loose clothing.

A subject is the shipped body avatar (``assets/body.anchorsplat``: the default Anny rig painted by region) plus
extra Gaussians bound to its triangles at distances from the skin, so they pose with the body:

- ``bob``: a hair cap over the scalp (not the face) that hangs to the jaw at the sides and the back;
- ``long``: the cap, hair down the back of the neck to the shoulder blades, over the shoulder tops and in two
  locks in front of the chest;
- ``curly``: a cloud of curly hair round the head (the scalp's cap 7 cm off the skin, the sides and back hanging
  to the shoulders), as wide beside the face as the head itself: a photo's silhouette that the volume shell must
  fill without covering the face;
- ``skirt``: a striped skirt from the waist to above the knees that flares with the distance below the waist.

:func:`synthetic_photo` renders the subject from one camera (the "photo") and returns the ground-truth subject
fit for it (the body's shape, pose and camera are known), so a bake can start from the photo file alone with
``--subject-params`` and its result can be scored against the ground truth in any view and pose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from anchorsplat.gaussians.assets import asset_path
from anchorsplat.gaussians.conventions import Cameras, framing_cameras
from anchorsplat.gaussians.io import Avatar, load_avatar
from anchorsplat.gaussians.motion import SMPLX_JOINT_NAMES, Motion
from anchorsplat.gaussians.render import render
from anchorsplat.gaussians.rig import Rig
from anchorsplat.gaussians.rigged import RiggedGaussians, bind_to_surface, pose, rgb_to_sh_dc, triangle_frames

from .landmarks import Targets
from .subject import SubjectFit

KINDS = ("bob", "long", "curly", "skirt")
PHOTO_BACKGROUND = (0.86, 0.88, 0.9)
HAIR_RGB = (0.28, 0.17, 0.1)
SKIRT_RGB = (0.72, 0.16, 0.2)
SKIRT_WAIST = 0.6
"""Meters from the head's centre down to the skirt's waist."""
SKIRT_LENGTH = 0.4
"""Meters from the skirt's waist to its hem."""


def relaxed_motion(**extra: tuple[float, float, float]) -> Motion:
    """Arms down (the photo's pose), plus any other SMPL-X joint rotations (axis-angle)."""
    joints = {"left_shoulder": (0.0, 0.0, -1.2), "right_shoulder": (0.0, 0.0, 1.2), **extra}
    full = torch.zeros(1, 55, 3)
    for name, aa in joints.items():
        full[0, SMPLX_JOINT_NAMES.index(name)] = torch.tensor(aa)
    return Motion.from_full_pose(full)


@dataclass(frozen=True)
class _Layer:
    """Extra Gaussians on the triangles ``select`` keeps, at ``offset`` meters along the normal."""

    select: object  # (rest points F 3, normals F 3, {part name: bool F}) -> bool F
    offset: object  # rest points N 3 -> meters N
    count: int


def _head_centre(rig: Rig) -> Tensor:
    from anchorsplat.diffusion.texture import PART_NAMES, triangle_parts

    head = rig.faces[triangle_parts(rig) == PART_NAMES.index("head")].reshape(-1)
    v = rig.vertices_rest[head]
    return (v.min(0).values + v.max(0).values) / 2


def _layers(kind: str, hc: Tensor) -> list[_Layer]:
    cx, cy, cz = (float(c) for c in hc)

    def scalp(p, n, part):  # the head but not the face (front, below the hairline)
        face = (p[:, 2] > cz + 0.005) & (p[:, 1] < cy + 0.055)
        return part["head"] & ~face

    def nape(p, n, part):  # back and sides of the neck
        return part["neck"] & (p[:, 2] < cz - 0.02)

    cap = _Layer(scalp, lambda p: 0.018 + 0.02 * (p[:, 1] < cy).float(), 5000)
    if kind == "bob":
        return [cap, _Layer(nape, lambda p: torch.full_like(p[:, 0], 0.055), 1500)]
    if kind == "long":

        def back(p, n, part):
            return part["torso"] & (p[:, 2] < cz - 0.05) & (p[:, 1] > cy - 0.36)

        def shoulders(p, n, part):  # tops of the shoulders and two locks in front of the chest
            top = (p[:, 1] > cy - 0.2) & (n[:, 1] > 0.3)
            lock = (p[:, 0].abs() > cx + 0.05) & (p[:, 0].abs() < cx + 0.13) & (p[:, 1] > cy - 0.32)
            return part["torso"] & (top | (lock & (p[:, 2] > cz - 0.03)))

        return [
            cap,
            _Layer(nape, lambda p: torch.full_like(p[:, 0], 0.06), 1500),
            _Layer(back, lambda p: 0.03 + 0.04 * (p[:, 1] - (cy - 0.36)).clamp(0, 0.2) / 0.2, 3000),
            _Layer(shoulders, lambda p: torch.full_like(p[:, 0], 0.03), 2500),
        ]
    if kind == "curly":

        def hanging(p, n, part):  # the sides and back of the neck and the shoulder tops next to it
            return (part["neck"] & (p[:, 2] < cz + 0.01)) | (
                part["torso"] & (p[:, 1] > cy - 0.2) & (n[:, 1] > 0.3) & (p[:, 0].abs() < cx + 0.12)
            )

        return [
            _Layer(scalp, lambda p: torch.full_like(p[:, 0], 0.07), 6000),
            _Layer(hanging, lambda p: torch.full_like(p[:, 0], 0.07), 3000),
        ]
    if kind == "skirt":
        waist = cy - SKIRT_WAIST  # a little above the hip joints of the default body

        def skirt(p, n, part):
            return (part["leg"] | part["torso"]) & (p[:, 1] < waist) & (p[:, 1] > waist - SKIRT_LENGTH)

        return [_Layer(skirt, lambda p: 0.012 + 0.3 * (waist - p[:, 1]).clamp_min(0), 7000)]
    raise ValueError(f"synthetic subject {kind!r}: unknown; choose one of {', '.join(KINDS)}")


def skirt_hem_height(rig: Rig) -> float:
    """Rest-pose height (meters, +Y up) of the ``skirt``'s hem on ``rig``."""
    return float(_head_centre(rig)[1]) - SKIRT_WAIST - SKIRT_LENGTH


def _colours(kind: str, points: Float[Tensor, "N 3"], generator: torch.Generator) -> Float[Tensor, "N 3"]:
    noise = torch.rand(len(points), 1, generator=generator) - 0.5
    if kind == "skirt":  # white stripes every 8 cm: texture that a blur or a shift shows
        base = torch.tensor(SKIRT_RGB).expand(len(points), 3)
        stripe = (torch.remainder(points[:, 1], 0.08) < 0.02)[:, None]
        return torch.where(stripe, torch.tensor([0.92, 0.9, 0.85]), base) + 0.05 * noise
    # hair: darker strands and lighter streaks around a brown
    return (torch.tensor(HAIR_RGB) * (1 + 0.6 * noise)).clamp(0, 1)


def hair_and_clothes(rig: Rig, kind: str, seed: int = 0) -> RiggedGaussians:
    """The extra Gaussians of a synthetic subject ``kind`` (one of :data:`KINDS`), bound to ``rig``."""
    from anchorsplat.diffusion.texture import PART_NAMES, triangle_parts

    tri = rig.vertices_rest[rig.faces]
    centres = tri.mean(1)
    normals = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1)
    normals = normals / normals.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    parts = triangle_parts(rig)
    part_names = {name: parts == i for i, name in enumerate(PART_NAMES)}
    generator = torch.Generator().manual_seed(seed)
    out = []
    for layer in _layers(kind, _head_centre(rig)):
        keep = torch.as_tensor(layer.select(centres, normals, part_names))
        g = bind_to_surface(rig, layer.count, generator=generator, face_density=keep.float(), thickness=0.6)
        points = triangle_frames(rig.vertices_rest, rig.faces, g.face_ids, g.barycentric).points
        offsets = layer.offset(points)
        rgb = _colours(kind, points, generator).clamp(0, 1)
        out.append(RiggedGaussians(g.face_ids, g.barycentric, offsets, g.quats_canonical_wxyz, g.log_scales + 0.3,
                                   torch.full_like(g.opacity_logits, 3.0), rgb_to_sh_dc(rgb)[:, None]))  # fmt: skip
    names = ("face_ids", "barycentric", "normal_offsets", "quats_canonical_wxyz", "log_scales", "opacity_logits",
             "sh_coeffs")  # fmt: skip
    return RiggedGaussians(*(torch.cat([getattr(g, k) for g in out]) for k in names))


def synthetic_avatar(kind: str, seed: int = 0) -> Avatar:
    """The ground truth: the shipped body avatar plus :func:`hair_and_clothes` of ``kind``."""
    body = load_avatar(asset_path("body.anchorsplat"))
    extra = hair_and_clothes(body.rig, kind, seed)
    g = body.gaussians
    sh = extra.sh_coeffs
    if g.sh_coeffs.shape[1] > 1:
        sh = torch.cat([sh, sh.new_zeros(len(sh), g.sh_coeffs.shape[1] - 1, 3)], dim=1)
    names = ("face_ids", "barycentric", "normal_offsets", "quats_canonical_wxyz", "log_scales", "opacity_logits")
    merged = RiggedGaussians(*(torch.cat([getattr(g, k), getattr(extra, k).to(getattr(g, k))]) for k in names),
                             torch.cat([g.sh_coeffs, sh]))  # fmt: skip
    return Avatar(body.rig, merged, {"synthetic": kind})


@dataclass(frozen=True, eq=False)
class SyntheticPhoto:
    """The photo of a synthetic subject (uint8 RGB) and the ground-truth subject fit it was rendered with."""

    image: np.ndarray
    fit: SubjectFit


def synthetic_photo(
    avatar: Avatar, *, width: int = 384, height: int = 512, yaw_deg: float = 0.0, portrait: bool = False
) -> SyntheticPhoto:
    """Render ``avatar`` in the relaxed pose from a camera at ``yaw_deg`` (the photo) with its true subject fit;
    ``portrait``: framed on the head and shoulders (:func:`~anchorsplat.bake.views.portrait_points`), as most
    real photos are, instead of the whole body."""
    from anchorsplat.gaussians.video import to_uint8

    motion = relaxed_motion()
    posed = pose(avatar.gaussians, avatar.rig, motion)
    points = posed.means[0]
    if portrait:
        from anchorsplat.gaussians.rigged import pose_motion_mesh

        from .views import head_position, portrait_points

        head = head_position(avatar.rig, pose_motion_mesh(avatar.rig, motion).T_world_joint[0])
        points = points if head is None else portrait_points(points, head)
    camera = framing_cameras(points, torch.tensor([yaw_deg]), width=width, height=height)
    with torch.no_grad():
        out = render(posed, camera, background=torch.tensor(PHOTO_BACKGROUND))
    mask = (out.alpha[0, 0, ..., 0] > 0.5).numpy().astype(np.uint8) * 255
    names = tuple(avatar.rig.shape_names) if avatar.rig.shape_dirs is not None else ()
    framing = "portrait" if portrait else "full_body"
    fit = SubjectFit(
        width, height, framing, Cameras(camera.T_cam_world, camera.Ks, width, height), names,
        torch.zeros(len(names)), motion, mask, Targets((), torch.zeros(0, 2), torch.zeros(0), (), ()), "anny",
        0.0,
    )  # fmt: skip
    return SyntheticPhoto(to_uint8(out.rgb[0, 0]), fit)


SCORE_VIEWS_DEG = {"three-quarter": 35.0, "left": 90.0, "back": 180.0, "right": -90.0}
"""The unseen views a bake from the front photo is scored at (camera yaw, degrees)."""
SCORE_POSES = {
    "relaxed": {},
    "talking": {"jaw": (0.35, 0.0, 0.0)},
    "arm_raised": {"left_shoulder": (0.0, 0.0, 0.6), "left_elbow": (0.0, -1.2, 0.0)},
}


@dataclass(frozen=True)
class GroundTruthScore:
    """Means over the unseen views and poses, and the relaxed pose's figures per view."""

    psnr: float
    ssim: float
    silhouette_iou: float
    psnr_by_view: dict[str, float]
    iou_by_view: dict[str, float]


def silhouette_iou(alpha_a: Float[Tensor, "H W"], alpha_b: Float[Tensor, "H W"]) -> float:
    """Intersection over union of the two silhouettes (alpha > 0.5)."""
    a, b = alpha_a > 0.5, alpha_b > 0.5
    union = int((a | b).sum())
    return float((a & b).sum()) / union if union else 1.0


def score_against(
    truth: Avatar, baked: Avatar, *, size: int = 256, views: dict[str, float] | None = None, strip=None
) -> GroundTruthScore:
    """PSNR, SSIM and silhouette IoU of ``baked`` against ``truth`` at unseen views and poses, both rendered by
    the same cameras (the bake used the true subject fit, so both live in the same world). ``strip``: a path
    to save the relaxed pose's renders (truth above, bake below) as one PNG to look at."""
    from anchorsplat.gaussians.video import to_uint8, write_image

    from .losses import psnr, ssim

    views = SCORE_VIEWS_DEG if views is None else views
    white = torch.ones(3)
    values: dict[str, list[float]] = {"psnr": [], "ssim": [], "iou": []}
    by_view_psnr, by_view_iou, rows = {}, {}, ([], [])
    with torch.no_grad():
        for pose_name, joints in SCORE_POSES.items():
            motion = relaxed_motion(**joints)
            truth_posed = pose(truth.gaussians, truth.rig, motion)
            baked_posed = pose(baked.gaussians, baked.rig, motion)
            yaws = torch.tensor(list(views.values()))
            cameras = framing_cameras(truth_posed.means[0], yaws, width=size, height=size)
            a = render(truth_posed, cameras, background=white)
            b = render(baked_posed, cameras, background=white)
            for i, name in enumerate(views):
                values["psnr"].append(psnr(b.rgb[0, i], a.rgb[0, i]))
                values["ssim"].append(float(ssim(b.rgb[0, i][None], a.rgb[0, i][None])))
                values["iou"].append(silhouette_iou(b.alpha[0, i, ..., 0], a.alpha[0, i, ..., 0]))
                if pose_name == "relaxed":
                    by_view_psnr[name] = round(values["psnr"][-1], 2)
                    by_view_iou[name] = round(values["iou"][-1], 4)
                    rows[0].append(to_uint8(a.rgb[0, i]))
                    rows[1].append(to_uint8(b.rgb[0, i]))
    if strip is not None:
        write_image(strip, np.concatenate([np.concatenate(r, axis=1) for r in rows], axis=0))
    return GroundTruthScore(
        round(float(np.mean(values["psnr"])), 2), round(float(np.mean(values["ssim"])), 4),
        round(float(np.mean(values["iou"])), 4), by_view_psnr, by_view_iou,
    )  # fmt: skip
