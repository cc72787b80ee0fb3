"""Views and cameras of the bake: the photo scaled to the fit's frame size, a face crop of the photo with its
crop camera (at least :data:`FACE_CROP_PX` pixels in every preset: identity lives in the face), and portrait
cameras that frame head and shoulders (``anchorsplat render --view portrait``, the report, the bench).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from anchorsplat.gaussians.conventions import Cameras, cropped_camera, framing_cameras, project_points

if TYPE_CHECKING:
    from anchorsplat.gaussians.motion import Motion

FACE_CROP_PX = 256
"""Side of the face crop view and of the generated face clip, in every preset."""
PORTRAIT_BELOW_HEAD = 0.2
"""Meters below the head joint that a portrait view still shows (the tops of the shoulders, not the chest: the
face fills about a fifth of the frame, as in a head-and-shoulders photo)."""
PORTRAIT_RADIUS = 0.18
"""Meters around the head's vertical axis that a portrait view shows (the shoulders' inner half, not the arms)."""
PORTRAIT_CLIP_BELOW_HEAD = 0.32
"""The generated clips of a portrait photo frame more: down to the chest (arms and torso move in them)."""
PORTRAIT_CLIP_RADIUS = 0.3
"""Meters around the head's vertical axis that a portrait photo's clips frame (the whole shoulders)."""


@dataclass(frozen=True, eq=False)
class PhotoCrop:
    """A crop of the photo (square for the face, the whole photo otherwise) resized to ``size``, its mask, and the
    crop's camera."""

    image: Float[Tensor, "H W 3"]
    mask: Float[Tensor, "H W"]
    camera: Cameras


def scaled_size(width: int, height: int, size: int) -> tuple[int, int]:
    """Width and height with the long side scaled to ``size``."""
    scale = size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def resized_photo(photo: Float[Tensor, "H W 3"], mask: Float[Tensor, "H W"], size: int) -> tuple[Tensor, Tensor]:
    """Photo and mask area-resampled so the long side is ``size``."""
    w, h = scaled_size(photo.shape[1], photo.shape[0], size)
    image = F.interpolate(photo.permute(2, 0, 1)[None], size=(h, w), mode="area")[0].permute(1, 2, 0)
    m = F.interpolate(mask[None, None], size=(h, w), mode="area")[0, 0]
    return image, m


def scaled_camera(camera: Cameras, width: int, height: int, size: int) -> Cameras:
    """The camera of a ``width`` x ``height`` image resized so its long side is ``size``."""
    w, h = scaled_size(width, height, size)
    K = camera.Ks.clone()
    K[:, 0] *= w / width
    K[:, 1] *= h / height
    return Cameras(camera.T_cam_world, K, w, h)


def occluders_completed(
    photo: Float[Tensor, "H W 3"],
    mask: Float[Tensor, "H W"],
    labels: Tensor,
    body_rgb: Float[Tensor, "H W 3"],
    body_alpha: Float[Tensor, "H W"],
) -> tuple[Float[Tensor, "H W 3"], Float[Tensor, "H W"]]:
    """The photo as the fit may see it: wherever the fitted body lies behind something that is not its own
    skin, clothes or face (a hand, a held object, a table, another person: pixel labels other than person and
    face), the photo shows the completed body (``body_rgb``, the photo-textured body rendered from the photo's
    camera) instead, so those pixels never colour the body; outside the body they are background."""
    from anchorsplat.diffusion.texture import LABEL_FACE, LABEL_PERSON

    own = ((labels == LABEL_PERSON) | (labels == LABEL_FACE)).to(mask)
    behind = (1 - own) * body_alpha
    image = own[..., None] * photo + (1 - own[..., None]) * body_rgb
    return image, own * mask + behind


def face_crop(
    photo: Float[Tensor, "H W 3"],
    mask: Float[Tensor, "H W"],
    camera: Cameras,
    head_points: Float[Tensor, "P 3"],
    size: int = FACE_CROP_PX,
) -> PhotoCrop | None:
    """The photo's head, cropped square (1.4 x the projected head's extent) at full photo resolution and
    resized to ``size``, with the matching crop camera; None when the head is not inside the photo."""
    xy = project_points(head_points, camera)[0]
    h, w = photo.shape[:2]
    lo, hi = xy.min(0).values, xy.max(0).values
    centre, side = (lo + hi) / 2, float((hi - lo).max()) * 1.4
    side_px = min(round(side), w, h)
    if side_px < 16:
        return None
    x0, y0 = (centre - side_px / 2).round().long().tolist()
    x0, y0 = max(0, min(x0, w - side_px)), max(0, min(y0, h - side_px))
    crop = photo[y0 : y0 + side_px, x0 : x0 + side_px]
    image, m = resized_photo(crop, mask[y0 : y0 + side_px, x0 : x0 + side_px], size)
    crop_camera = cropped_camera(camera, x0, y0, image.shape[1], image.shape[0], image.shape[1] / side_px)
    return PhotoCrop(image, m, crop_camera)


def portrait_motion(rig) -> "Motion":
    """One frame of the rest pose with the arms hanging, as in a portrait photo (not the rig's T-pose): what a
    portrait view shows when no motion is given."""
    import torch

    from anchorsplat.gaussians.motion import SMPLX_JOINT_NAMES, Motion

    from .bodyfit import RELAXED_ARMS

    full = torch.zeros(1, 55, 3, dtype=rig.vertices_rest.dtype, device=rig.vertices_rest.device)
    for name, aa in RELAXED_ARMS.items():
        full[0, SMPLX_JOINT_NAMES.index(name)] = torch.tensor(aa, dtype=full.dtype, device=full.device)
    return Motion.from_full_pose(full)


def portrait_points(
    points: Float[Tensor, "N 3"],
    head: Float[Tensor, "3"],
    below: float = PORTRAIT_BELOW_HEAD,
    radius: float = PORTRAIT_RADIUS,
) -> Float[Tensor, "M 3"]:
    """The points a head-and-shoulders view frames: from ``below`` meters under the head joint up, within
    ``radius`` of the head's vertical axis (all points when fewer than ten qualify)."""
    keep = (points[:, 1] > head[1] - below) & ((points[:, [0, 2]] - head[[0, 2]]).norm(dim=-1) < radius)
    return points[keep] if int(keep.sum()) >= 10 else points


def portrait_cameras(
    points: Float[Tensor, "N 3"], head: Float[Tensor, "3"], yaw_deg: Float[Tensor, " C"], size: int
) -> Cameras:
    """Square cameras at the given yaws (0: in front of a body facing +Z) framing head and shoulders."""
    return framing_cameras(portrait_points(points, head), yaw_deg.to(points), width=size, height=size, margin=1.05)


def head_forward(rig, T_world_joint: Float[Tensor, "B J 4 4"]) -> Float[Tensor, "B 3"] | None:
    """Per posed frame: the world direction the face looks along (the rest face's +Z carried by the head joint's
    rotation relative to the rest pose); None for a rig without a ``head`` joint."""
    if "head" not in rig.joint_names:
        return None
    from anchorsplat.gaussians.motion import Motion
    from anchorsplat.gaussians.rigged import pose_motion_mesh

    j = rig.joint_names.index("head")
    posed = T_world_joint[:, j, :3, :3]
    rest = pose_motion_mesh(rig, Motion.zeros(1, dtype=posed.dtype, device=rig.vertices_rest.device))
    return posed @ rest.T_world_joint[0, j, 2, :3].to(posed)  # posed R @ rest R^T @ +Z


def head_position(rig, T_world_joint: Float[Tensor, "*B J 4 4"]) -> Float[Tensor, "*B 3"] | None:
    """The posed head joint's position (per frame for a batch of poses), None for a rig without a ``head`` joint."""
    if "head" not in rig.joint_names:
        return None
    return T_world_joint[..., rig.joint_names.index("head"), :3, 3]


def scaled_photo_view(photo: Tensor, mask: Tensor, camera: Cameras, size: int) -> PhotoCrop:
    """The whole photo with its long side at ``size``, and its camera."""
    image, m = resized_photo(photo, mask, size)
    return PhotoCrop(image, m, scaled_camera(camera, photo.shape[1], photo.shape[0], size))
