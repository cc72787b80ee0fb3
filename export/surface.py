"""The whole surface pipeline: an avatar -> a textured surface skinned to its rig (:class:`SkinnedSurface`).

Render the rest pose (RGB-D) from cameras around it and around its head, fuse with a TSDF, clean and decimate
(:mod:`.extract`), unwrap with xatlas and bake the texture from the same renders (:mod:`.texture`), and transfer
skinning and expressions from the body (:mod:`.transfer`; on the mesh before the UV seams are split, so the split
copies of a vertex move together).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from anchorsplat.gaussians.io import Avatar
from anchorsplat.gaussians.render import Backend
from anchorsplat.gaussians.rigged import canonical_posed
from anchorsplat.gaussians.surface import SkinnedSurface

from .extract import clean_and_decimate, fuse_tsdf, render_views, view_cameras, voxel_size_for
from .mouth import MOUTH_FACES, MeshArrays, add_mouth
from .texture import bake_texture, unwrap
from .transfer import transfer_expressions, transfer_skinning


@dataclass(frozen=True)
class SurfaceOptions:
    """How the surface is made."""

    max_triangles: int = 30_000
    """Triangle budget after decimation."""
    texture_size: int = 2048
    """Width and height of the colour texture (a power of two)."""
    render_resolution: int = 384
    """Width and height of the RGB-D renders the surface and texture come from."""
    backend: Backend = "auto"
    """Renderer for the RGB-D views."""
    mouth: bool = True
    """Cut the lips apart and put a dark mouth cavity behind them (when the rig has ``jawOpen`` and the budget is at
    least 1000 triangles)."""


@dataclass
class StageTimes:
    """Seconds per stage, filled in as the pipeline runs (for the bench and the CLI's summary)."""

    seconds: dict[str, float] = field(default_factory=dict)

    def run(self, name: str, fn, *args, **kwargs):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        self.seconds[name] = round(time.perf_counter() - start, 3)
        return out


def check_options(options: SurfaceOptions) -> None:
    """ValueError for options a user can get wrong (the CLI turns it into one line)."""
    if options.max_triangles < 100:
        raise ValueError(f"--max-triangles {options.max_triangles} is too small: use at least 100 (default 30000)")
    size = options.texture_size
    if size < 16 or size > 8192 or size & (size - 1):
        raise ValueError(f"--texture-size {size} must be a power of two from 16 to 8192 (default 2048)")
    if options.render_resolution < 32 or options.render_resolution > 4096:
        raise ValueError(f"--render-resolution {options.render_resolution} must be from 32 to 4096 (default 384)")


def extract_surface(
    avatar: Avatar, options: SurfaceOptions = SurfaceOptions(), times: StageTimes | None = None
) -> SkinnedSurface:
    """The avatar's textured, skinned surface in its rest pose (see the module docstring)."""
    check_options(options)
    times = times if times is not None else StageTimes()
    rig = avatar.rig
    with torch.no_grad():
        posed = canonical_posed(avatar.gaussians, rig)
    points = posed.means[0].detach()
    head = rig.joints_rest[rig.joint_names.index("head")].to(points) if "head" in rig.joint_names else None
    cameras = view_cameras(points, options.render_resolution, head)
    views = times.run("render", render_views, posed, cameras, options.backend)
    voxel = voxel_size_for(points, options.render_resolution)
    bounds = torch.stack([points.min(0).values, points.max(0).values])
    fused = times.run("tsdf", fuse_tsdf, views, voxel, bounds)
    # Budgets under 1000 triangles leave no lips to cut (and the cavity would be a large share of them).
    mouth = options.mouth and "jawOpen" in rig.expression_names and options.max_triangles >= 1000
    budget = options.max_triangles - (MOUTH_FACES if mouth else 0)  # the cavity's triangles count too
    mesh = times.run("decimate", clean_and_decimate, fused, budget)
    uv_mesh = times.run("unwrap", unwrap, mesh)
    texture = times.run("texture", bake_texture, uv_mesh, views, options.texture_size, 3.0 * voxel)
    start = time.perf_counter()
    skin_idx, skin_w = transfer_skinning(rig, mesh.vertices, mesh.faces)
    expressions = transfer_expressions(rig, mesh.vertices, mesh.faces)
    times.seconds["rig_transfer"] = round(time.perf_counter() - start, 3)
    src = uv_mesh.source_vertex
    arrays = MeshArrays(uv_mesh.vertices, uv_mesh.faces, uv_mesh.uvs, texture, skin_idx[src], skin_w[src],
                        expressions[:, src])  # fmt: skip
    if mouth:
        start = time.perf_counter()
        jaw = rig.expression_names.index("jawOpen")
        raw = transfer_expressions(rig, mesh.vertices, mesh.faces, smooth_steps=0)[jaw]  # the sharp lip line
        arrays = add_mouth(arrays, jaw, raw[src])
        times.seconds["mouth"] = round(time.perf_counter() - start, 3)
    dtype, device = rig.vertices_rest.dtype, rig.vertices_rest.device
    return SkinnedSurface(
        torch.as_tensor(arrays.vertices, dtype=dtype, device=device),
        torch.as_tensor(arrays.faces, device=device),
        torch.as_tensor(arrays.uvs, dtype=dtype, device=device),
        np.ascontiguousarray(arrays.texture),
        torch.as_tensor(arrays.skin_indices, device=device),
        torch.as_tensor(arrays.skin_weights, dtype=dtype, device=device),
        torch.as_tensor(arrays.expressions, dtype=dtype, device=device),
    )
