"""ProxyGenerator: the weight-free default generator.

It textures the fitted body with the photo and renders it along the clip script:
1. dense Gaussians are bound to the fitted rig's surface and posed as in the photo;
2. a Gaussian is *visible* when it projects inside the person mask, faces the camera and is not occluded
   (its depth agrees with the proxy's rendered depth map); visible Gaussians take the photo's colour there;
3. hidden Gaussians take the colour of their left-right mirror image when that one is visible (a symmetric
   prior: the hidden side of a face or body looks like the visible side), and otherwise the mean colour of
   the nearest visible Gaussians on the surface (the back of the head takes the hair at its sides, the back
   of a shirt its sides);
4. the textured proxy is posed and rendered frame by frame with each frame's camera.
Every frame therefore has exactly the body parameters and camera of the script.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor
from tqdm import tqdm

from anchorsplat.gaussians.conventions import Cameras
from anchorsplat.gaussians.render import render
from anchorsplat.gaussians.rigged import (
    RiggedGaussians,
    bind_to_surface,
    canonical_means,
    pose,
    pose_from_vertices,
    pose_motion_mesh,
    region_density,
    rgb_to_sh_dc,
    triangle_frames,
)

from .generator import Anchors, Clip, ClipSpec, Subject


@dataclass(frozen=True)
class ProxyConfig:
    num_gaussians: int = 60000
    """Gaussians on the textured proxy (more = sharper texture, slower)."""
    depth_tolerance: float = 0.03
    """Meters a Gaussian may lie behind the rendered depth and still count as visible."""
    neighbours: int = 8
    """Visible neighbours averaged to colour a hidden Gaussian."""
    head_density: float = 4.0
    """Gaussian density on the head and neck relative to the body: the face carries the identity."""
    backend: str = "auto"
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    seed: int = 0


class ProxyGenerator:
    name = "proxy"

    def __init__(self, config: ProxyConfig = ProxyConfig()) -> None:
        self.config = config

    def texture(self, subject: Subject) -> RiggedGaussians:
        """Dense Gaussians on the subject's body, coloured from the photo (see the module docstring)."""
        cfg = self.config
        rig = subject.rig
        g = bind_to_surface(rig, cfg.num_gaussians, generator=torch.Generator().manual_seed(cfg.seed),
                            face_density=head_density(rig, cfg.head_density))  # fmt: skip
        visible, colours = photo_colours(g, subject, cfg.depth_tolerance, cfg.backend)
        colours = fill_hidden(canonical_means(g, rig), visible, colours, rig.joints_rest[0, 0].item(), cfg.neighbours)
        sh = rgb_to_sh_dc(colours)[:, None, :]
        return RiggedGaussians(
            g.face_ids, g.barycentric, g.normal_offsets, g.quats_canonical_wxyz, g.log_scales,
            torch.full_like(g.opacity_logits, 4.0), sh,
        )  # fmt: skip

    def generate(self, subject: Subject, script: list[ClipSpec], anchors: Anchors) -> list[Clip]:
        proxy = self.texture(subject)
        background = torch.tensor(self.config.background, device=subject.photo.device)
        clips = []
        for spec in script:
            frames, masks = [], []
            with torch.no_grad():
                for t in tqdm(range(len(spec.motion)), desc=f"proxy {spec.name}", leave=False, unit="frame"):
                    posed = pose(proxy, subject.rig, spec.motion.frame(t))
                    out = render(posed, spec.cameras[t], backend=self.config.backend, background=background)
                    frames.append(out.rgb[0, 0].clamp(0, 1))
                    masks.append(out.alpha[0, 0, ..., 0])
            clips.append(Clip(spec.name, torch.stack(frames), torch.stack(masks), spec.motion, spec.cameras))
        return clips


def head_density(rig, density: float) -> Tensor:
    """Per-triangle density: ``density`` on the head, eyes and jaw, half of it on the neck, 1 elsewhere."""
    return region_density(rig, {"head": density, "eye": density, "jaw": density, "neck": max(1.0, density / 2)})


def photo_colours(
    g: RiggedGaussians, subject: Subject, depth_tolerance: float, backend: str = "auto"
) -> tuple[Tensor, Float[Tensor, "N 3"]]:
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
    camera_centre = cam.T_world_cam[0, :3, 3]
    facing = ((camera_centre - means) * normals).sum(-1) > 0
    unoccluded = p_cam[:, 2] <= sample(depth_map, "nearest")[:, 0] + depth_tolerance
    in_mask = sample(subject.mask)[:, 0] > 0.5
    visible = inside & facing & unoccluded & in_mask
    colours = torch.where(visible[:, None], sample(subject.photo), torch.zeros(len(means), 3, device=means.device))
    return visible, colours


def fill_hidden(
    means_canonical: Float[Tensor, "N 3"], visible: Tensor, colours: Float[Tensor, "N 3"], mirror_x: float, k: int = 8
) -> Float[Tensor, "N 3"]:
    """Colours for unseen Gaussians: the mirror image's colour when it is seen, else the nearest seen ones'."""
    from scipy.spatial import cKDTree

    if not bool(visible.any()):
        raise ValueError("the photo shows none of the fitted body: check the subject fit (camera and pose)")
    seen = means_canonical[visible].cpu().numpy()  # the KD-tree is scipy's, on the host
    seen_colours = colours[visible].cpu().numpy()
    tree = cKDTree(seen)
    hidden = (~visible).nonzero()[:, 0]
    points = means_canonical[hidden].cpu().numpy()
    mirrored = points.copy()
    mirrored[:, 0] = 2 * mirror_x - mirrored[:, 0]
    distance, index = tree.query(mirrored, k=1)
    out = colours.clone()
    near_mirror = distance < 0.015
    kk = min(k, len(seen))
    _, neighbours = tree.query(points, k=kk)
    neighbours = neighbours.reshape(len(points), kk)
    filled = seen_colours[neighbours].mean(axis=1)
    filled[near_mirror] = seen_colours[index[near_mirror]]
    out[hidden] = torch.from_numpy(np.asarray(filled, dtype=np.float32)).to(out)
    return out
