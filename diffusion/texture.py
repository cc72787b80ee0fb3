"""Visibility-aware texturing of the fitted body from the photo: which Gaussians the photo sees, their colours,
and a completion of everything it does not see.

1. **Visibility.** A Gaussian is seen when it projects inside the photo, its surface normal faces the camera
   beyond a grazing angle (:data:`MIN_FACING_COS`), and it is not occluded (its depth agrees with the depth
   map of the opaque proxy rendered from the photo's camera: a z-buffer of the fitted body).
2. **Segmentation.** The photo's pixels carry labels (:data:`LABEL_BACKGROUND` .. :data:`LABEL_FACE`, made by
   the bake's segmentation stage). A Gaussian may take colour only from pixels whose label its body part
   allows: every part from plain person pixels, only the hands and forearms from hand pixels (a hand in
   front of the chest does not paint the chest), only the head from the face. Sampling is normalised by the
   allowed pixels' bilinear weights, so a masked-out pixel (background, a held object, a table) contributes
   exactly nothing; a Gaussian whose footprint is mostly disallowed is not seen.
3. **Completion.** An unseen Gaussian takes the colour of its left-right mirror image when that one is seen
   and of the same part (the hidden side of a face or body looks like the seen side); otherwise the
   inverse-distance weighted colour of the nearest seen Gaussians of the same body part, which softens seams.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float, Int
from torch import Tensor

from anchorsplat.gaussians.conventions import Cameras
from anchorsplat.gaussians.render import render
from anchorsplat.gaussians.rig import Rig
from anchorsplat.gaussians.rigged import (
    RiggedGaussians,
    canonical_means,
    pose_from_vertices,
    pose_motion_mesh,
    region_density,
    triangle_frames,
)

from .generator import Subject

LABEL_BACKGROUND, LABEL_PERSON, LABEL_HAND, LABEL_FACE = 0, 1, 2, 3
"""Pixel labels of a subject's part map (``Subject.parts``): not the person, the person, a hand, the face."""
PART_NAMES = ("other", "head", "neck", "torso", "arm", "hand", "leg")
# Joint-name fragment -> part (Anny names and SMPL-X names); the first fragment found in a joint's name wins.
_PART_FRAGMENTS = (
    ("finger", "hand"), ("metacarpal", "hand"), ("wrist", "hand"), ("index", "hand"), ("middle", "hand"),
    ("ring", "hand"), ("pinky", "hand"), ("thumb", "hand"), ("eye", "head"), ("jaw", "head"), ("head", "head"),
    ("neck", "neck"), ("upperarm", "arm"), ("lowerarm", "arm"), ("elbow", "arm"), ("shoulder", "arm"),
    ("collar", "torso"), ("clavicle", "torso"), ("spine", "torso"), ("pelvis", "torso"), ("root", "torso"),
    ("upperleg", "leg"), ("lowerleg", "leg"), ("hip", "leg"), ("knee", "leg"), ("ankle", "leg"),
    ("foot", "leg"), ("toe", "leg"),
)  # fmt: skip
# Which pixel labels each part may take its colour from.
_ALLOWED = {"hand": (LABEL_PERSON, LABEL_HAND), "arm": (LABEL_PERSON, LABEL_HAND), "head": (LABEL_PERSON, LABEL_FACE)}
MIN_FACING_COS = 0.2
"""A Gaussian is seen only when the cosine between its normal and the direction to the camera exceeds this
(about 78 degrees): grazing surface is smeared in the photo."""
MIRROR_RADIUS = 0.015
"""Meters: a seen Gaussian this close to an unseen one's mirror image lends it its colour."""


@dataclass(frozen=True, eq=False)
class PhotoTexture:
    """The photo's colours on the Gaussians: ``seen`` by the photo, ``colours`` (completed where unseen)."""

    seen: Bool[Tensor, " N"]
    colours: Float[Tensor, "N 3"]


def head_density(rig: Rig, density: float) -> Float[Tensor, " F"]:
    """Per-triangle density: ``density`` on the head, eyes and jaw, half of it on the neck, 1 elsewhere (the face
    carries the identity: the proxy and the baked avatar both put more, smaller Gaussians there)."""
    return region_density(rig, {"head": density, "eye": density, "jaw": density, "neck": max(1.0, density / 2)})


def joint_parts(rig: Rig) -> Int[Tensor, " J"]:
    """Index into :data:`PART_NAMES` of each joint, from its name."""
    out = []
    for name in rig.joint_names:
        lower = name.lower()
        part = next((p for frag, p in _PART_FRAGMENTS if frag in lower), "other")
        out.append(PART_NAMES.index(part))
    return torch.tensor(out, dtype=torch.long, device=rig.faces.device)


def triangle_parts(rig: Rig) -> Int[Tensor, " F"]:
    """Body part of each triangle: the part of the joint that dominates its first vertex's skinning."""
    dominant = rig.skin_indices.gather(1, rig.skin_weights.argmax(1, keepdim=True))[:, 0]
    return joint_parts(rig)[dominant.long()][rig.faces[:, 0]]


def labels_of(subject: Subject) -> Int[Tensor, "H W"]:
    """The subject's pixel labels: its part map, or the person mask alone (> 0.5) when it has none."""
    if subject.parts is not None:
        return subject.parts.long()
    return (subject.mask > 0.5).long() * LABEL_PERSON


def photo_texture(
    g: RiggedGaussians,
    subject: Subject,
    *,
    depth_tolerance: float = 0.03,
    backend: str = "auto",
    neighbours: int = 8,
) -> PhotoTexture:
    """Colour ``g`` (bound to ``subject.rig``) from the subject's photo (see the module docstring)."""
    seen, colours = photo_colours(g, subject, depth_tolerance, backend)
    rig = subject.rig
    parts = triangle_parts(rig)[g.face_ids]
    completed = fill_hidden(
        canonical_means(g, rig), seen, colours, float(rig.joints_rest[0, 0]), k=neighbours, parts=parts
    )
    return PhotoTexture(seen, completed)


def photo_colours(
    g: RiggedGaussians, subject: Subject, depth_tolerance: float, backend: str = "auto"
) -> tuple[Bool[Tensor, " N"], Float[Tensor, "N 3"]]:
    """Which Gaussians the photo sees, and the photo's colour at each (zeros where unseen)."""
    rig, cam = subject.rig, subject.camera
    mesh = pose_motion_mesh(rig, subject.motion)
    frames = triangle_frames(mesh.vertices[0], rig.faces, g.face_ids, g.barycentric)
    means, normals = frames.points, frames.rotations[..., 2]
    T = cam.T_cam_world[0]
    p_cam = means @ T[:3, :3].T + T[:3, 3]
    uvw = p_cam @ cam.Ks[0].T
    uv = uvw[:, :2] / uvw[:, 2:3].clamp_min(1e-6)
    h, w = subject.photo.shape[:2]
    # The proxy's own depth map from the photo's camera decides occlusion.
    opaque = RiggedGaussians(g.face_ids, g.barycentric, g.normal_offsets, g.quats_canonical_wxyz, g.log_scales,
                             torch.full_like(g.opacity_logits, 8.0), g.sh_coeffs)  # fmt: skip
    with torch.no_grad():
        posed = pose_from_vertices(opaque, rig, mesh.vertices)
        depth = render(posed, Cameras(cam.T_cam_world, cam.Ks, w, h), backend=backend)
    depth_map = depth.depth[0, 0, ..., 0]
    grid = torch.stack([uv[:, 0] / w * 2 - 1, uv[:, 1] / h * 2 - 1], dim=-1)[None, None]  # 1 1 N 2

    def sample(image: Tensor, mode: str = "bilinear") -> Tensor:
        chw = image.permute(2, 0, 1)[None] if image.ndim == 3 else image[None, None]
        return F.grid_sample(chw.float(), grid.float(), mode=mode, align_corners=False)[0, :, 0].T  # N C

    inside = (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h) & (p_cam[:, 2] > 0)
    to_camera = cam.T_world_cam[0, :3, 3] - means
    facing = (to_camera * normals).sum(-1) > MIN_FACING_COS * to_camera.norm(dim=-1)
    unoccluded = p_cam[:, 2] <= sample(depth_map, "nearest")[:, 0] + depth_tolerance

    # Per label: the bilinear weight of its pixels and their weighted colour; a Gaussian sums the allowed ones.
    labels = labels_of(subject).to(means.device)
    label_ids = (LABEL_PERSON, LABEL_HAND, LABEL_FACE)
    one_hot = torch.stack([(labels == lab).float() for lab in label_ids], -1)  # H W L
    photo = subject.photo.float()
    weighted = (one_hot[..., None] * photo[:, :, None, :]).reshape(h, w, -1)  # H W (L 3)
    sampled_w = sample(one_hot)  # N L
    sampled_rgb = sample(weighted).reshape(-1, len(label_ids), 3)  # N L 3
    parts = triangle_parts(rig)[g.face_ids]
    allowed = _allowed(parts, label_ids).to(means.device)  # N L
    weight = (sampled_w * allowed).sum(-1)
    rgb = (sampled_rgb * allowed[..., None]).sum(1) / weight[:, None].clamp_min(1e-6)
    seen = inside & facing & unoccluded & (weight > 0.5)
    colours = torch.where(seen[:, None], rgb, torch.zeros_like(rgb))
    return seen, colours


def _allowed(parts: Tensor, label_ids: tuple[int, ...]) -> Tensor:
    table = torch.zeros(len(PART_NAMES), len(label_ids), device="cpu")  # filled on the host, then moved
    for p, name in enumerate(PART_NAMES):
        for k, lab in enumerate(label_ids):
            table[p, k] = float(lab in _ALLOWED.get(name, (LABEL_PERSON,)))
    return table.to(parts.device)[parts]


def fill_hidden(
    means_canonical: Float[Tensor, "N 3"],
    visible: Bool[Tensor, " N"],
    colours: Float[Tensor, "N 3"],
    mirror_x: float,
    k: int = 8,
    parts: Int[Tensor, " N"] | None = None,
) -> Float[Tensor, "N 3"]:
    """Colours for unseen Gaussians: the mirror image's colour when it is seen (and of the same part), else
    the inverse-distance weighted colour of the ``k`` nearest seen Gaussians of the same part (of any part
    when the photo sees none of it)."""
    from scipy.spatial import cKDTree

    if not bool(visible.any()):
        raise ValueError("the photo shows none of the fitted body: check the subject fit (camera and pose)")
    parts = torch.zeros(len(means_canonical), dtype=torch.long, device="cpu") if parts is None else parts.cpu()
    points_all = means_canonical.detach().cpu().double().numpy()
    seen_mask = visible.cpu().numpy()
    part_np = parts.numpy()
    colours_np = colours.detach().cpu().double().numpy()
    out = colours_np.copy()
    for part in np.unique(part_np[~seen_mask]):
        hidden = np.nonzero(~seen_mask & (part_np == part))[0]
        donors = np.nonzero(seen_mask & (part_np == part))[0]
        if len(donors) == 0:
            donors = np.nonzero(seen_mask)[0]
        tree = cKDTree(points_all[donors])
        points = points_all[hidden]
        mirrored = points.copy()
        mirrored[:, 0] = 2 * mirror_x - mirrored[:, 0]
        mirror_distance, mirror_index = tree.query(mirrored, k=1)
        kk = min(k, len(donors))
        distance, index = tree.query(points, k=kk)
        distance, index = distance.reshape(len(points), kk), index.reshape(len(points), kk)
        weights = 1.0 / (distance + 0.005)
        filled = (weights[..., None] * colours_np[donors][index]).sum(1) / weights.sum(1, keepdims=True)
        near = mirror_distance < MIRROR_RADIUS
        filled[near] = colours_np[donors][mirror_index[near]]
        out[hidden] = filled
    return torch.from_numpy(out).to(colours)
