"""Body maps for pose conditioning: camera-space normals, depth, part colours and a face mask of the posed rig.

A plain-torch z-buffer rasteriser (no gradients needed): every triangle is sampled on a barycentric grid
denser than one sample per pixel (its subdivision follows its projected edge length), the nearest sample
per pixel wins (``scatter_reduce`` amin on depth), and the winner's triangle and barycentric coordinates
interpolate the vertex attributes. Body maps are computed from the clip script's motion and cameras, so a
generated frame is conditioned on exactly the pose and camera it is supposed to show.

Channels of :meth:`BodyMaps.stacked` (``POSE_CHANNELS`` = 8): normal xyz in [-1, 1], inverse depth in [0, 1]
(``near / depth``), part colour rgb in [0, 1] (one fixed colour per skinning joint), face mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

from anchorsplat.gaussians.conventions import Cameras
from anchorsplat.gaussians.motion import Motion
from anchorsplat.gaussians.rig import Rig, vertex_normals
from anchorsplat.gaussians.rigged import pose_motion_mesh

POSE_CHANNELS = 8
MAX_SUBDIVISION = 96


@dataclass(frozen=True, eq=False)
class BodyMaps:
    normals: Float[Tensor, "T H W 3"]
    depth: Float[Tensor, "T H W"]
    parts: Float[Tensor, "T H W 3"]
    face: Float[Tensor, "T H W"]
    mask: Float[Tensor, "T H W"]

    def stacked(self, near: float = 0.5) -> Float[Tensor, "T 8 H W"]:
        inv_depth = torch.where(self.mask > 0, near / self.depth.clamp_min(near), torch.zeros_like(self.depth))
        maps = torch.cat([self.normals, inv_depth[..., None], self.parts, self.face[..., None]], dim=-1)
        return maps.permute(0, 3, 1, 2).contiguous()


def part_colours(num_joints: int) -> Float[Tensor, "J 3"]:
    """A fixed pseudo-random colour per joint index (same on every machine)."""
    return torch.rand(num_joints, 3, generator=torch.Generator().manual_seed(20251023))


def vertex_part_and_face(rig: Rig) -> tuple[Int[Tensor, " V"], Float[Tensor, " V"]]:
    """Dominant skinning joint per vertex, and 1 for face vertices (moved by any expression blendshape; when a
    rig has none, vertices bound to a joint named like head/jaw)."""
    part = rig.skin_indices.gather(1, rig.skin_weights.argmax(dim=1, keepdim=True))[:, 0]
    if rig.expression_dirs.shape[0] > 0:
        face = (rig.expression_dirs.norm(dim=-1).amax(dim=0) > 1e-6).float()
    else:
        heads = torch.tensor([("head" in n.lower() or "jaw" in n.lower()) for n in rig.joint_names])
        face = heads[part].float()
    return part, face


def _barycentric_grid(k: int) -> Float[Tensor, "P 3"]:
    i, j = torch.meshgrid(torch.arange(k + 1), torch.arange(k + 1), indexing="ij")
    keep = (i + j) <= k
    u, v = i[keep].float() / k, j[keep].float() / k
    return torch.stack([1 - u - v, u, v], dim=-1)


def rasterise(
    vertices_cam: Float[Tensor, "V 3"], faces: Int[Tensor, "F 3"], K: Float[Tensor, "3 3"], width: int, height: int
) -> tuple[Int[Tensor, "H W"], Float[Tensor, "H W 3"], Float[Tensor, "H W"]]:
    """Visible triangle id (-1: background), barycentric coordinates and depth per pixel."""
    device = vertices_cam.device
    z = vertices_cam[:, 2]
    uv = (vertices_cam @ K.T)[:, :2] / z.clamp_min(1e-6)[:, None]
    tri_uv, tri_z = uv[faces], z[faces]  # F 3 2, F 3
    in_front = (tri_z > 1e-3).all(dim=1)
    edge = (tri_uv - tri_uv.roll(1, dims=1)).norm(dim=-1).amax(dim=1)
    subdivision = (edge * 1.5).ceil().clamp(1, MAX_SUBDIVISION).long()
    pix_all, z_all, face_all, bary_all = [], [], [], []
    for k in torch.unique(subdivision[in_front]).tolist():
        ids = (in_front & (subdivision == k)).nonzero()[:, 0]
        grid = _barycentric_grid(k).to(device)  # P 3
        p_uv = torch.einsum("pk,fkc->fpc", grid, tri_uv[ids])
        p_z = torch.einsum("pk,fk->fp", grid, tri_z[ids])
        px = p_uv[..., 0].floor().long()
        py = p_uv[..., 1].floor().long()
        ok = (px >= 0) & (px < width) & (py >= 0) & (py < height)
        pix_all.append((py * width + px)[ok])
        z_all.append(p_z[ok])
        face_all.append(ids[:, None].expand_as(px)[ok])
        bary_all.append(grid[None].expand(len(ids), -1, -1)[ok])
    face_id = torch.full((height * width,), -1, dtype=torch.long, device=device)
    bary = torch.zeros(height * width, 3, device=device)
    zbuf = torch.full((height * width,), float("inf"), device=device)
    if pix_all:
        pix, zs, fid, bc = (torch.cat(x) for x in (pix_all, z_all, face_all, bary_all))
        zbuf = zbuf.scatter_reduce(0, pix, zs, "amin")
        win = (zs <= zbuf[pix]).nonzero()[:, 0]
        order = torch.full((height * width,), -1, dtype=torch.long, device=device)
        order = order.scatter_reduce(0, pix[win], win, "amax")
        hit = order >= 0
        face_id[hit] = fid[order[hit]]
        bary[hit] = bc[order[hit]]
    zbuf = torch.where(face_id >= 0, zbuf, torch.zeros_like(zbuf))
    return face_id.view(height, width), bary.view(height, width, 3), zbuf.view(height, width)


def render_body_maps(rig: Rig, motion: Motion, cameras: Cameras) -> BodyMaps:
    """Body maps of ``rig`` posed by each motion frame, seen by the matching camera (one camera per frame, or
    one camera for all frames)."""
    if len(cameras) not in (1, len(motion)):
        raise ValueError(f"{len(motion)} motion frames need 1 or {len(motion)} cameras, got {len(cameras)}")
    with torch.no_grad():
        verts = pose_motion_mesh(rig, motion).vertices.float()
        normals = vertex_normals(verts, rig.faces)
    part, face = vertex_part_and_face(rig)
    colours = part_colours(len(rig.joint_names))[part].to(verts.device)
    faces = rig.faces.to(verts.device)
    out = {k: [] for k in ("normals", "depth", "parts", "face", "mask")}
    for t in range(len(motion)):
        c = 0 if len(cameras) == 1 else t
        T = cameras.T_cam_world[c].to(verts)
        v_cam = verts[t] @ T[:3, :3].T + T[:3, 3]
        n_cam = normals[t] @ T[:3, :3].T
        fid, bary, depth = rasterise(v_cam, faces, cameras.Ks[c].to(verts), cameras.width, cameras.height)
        hit = (fid >= 0).float()
        tri = faces[fid.clamp_min(0)]  # H W 3

        def interp(attr: Tensor, tri: Tensor = tri, bary: Tensor = bary, hit: Tensor = hit) -> Tensor:
            value = (attr[tri] * bary[..., None]).sum(dim=2)
            return value * hit[..., None]

        out["normals"].append(F.normalize(interp(n_cam), dim=-1) * hit[..., None])
        out["depth"].append(depth)
        out["parts"].append(interp(colours))
        out["face"].append(interp(face.to(verts)[:, None])[..., 0].round())
        out["mask"].append(hit)
    return BodyMaps(**{k: torch.stack(v) for k, v in out.items()})


def to_latent_grid(maps: Float[Tensor, "T C H W"], temporal: int = 4, spatial: int = 8) -> Float[Tensor, "C Fl Hl Wl"]:
    """Pixel-rate maps -> latent grid of a causal video VAE: latent frame 0 is frame 0, latent f averages frames
    ``temporal*(f-1)+1 .. temporal*f``; space is average-pooled by ``spatial``."""
    t = maps.shape[0]
    if (t - 1) % temporal:
        raise ValueError(f"{t} frames: a causal VAE needs {temporal}*n+1 frames")
    pooled = F.avg_pool2d(maps, spatial)  # T C h w
    rest = pooled[1:].reshape((t - 1) // temporal, temporal, *pooled.shape[1:]).mean(dim=1)
    return torch.cat([pooled[:1], rest], dim=0).permute(1, 0, 2, 3).contiguous()
