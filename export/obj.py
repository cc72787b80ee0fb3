"""Wavefront OBJ for DCC tools: the textured surface in one pose as ``NAME.obj`` + ``NAME.mtl`` + ``NAME.png``.

One vertex, one UV and one normal per OBJ index (seams are already split), so every face corner is ``i/i/i``.
OBJ's texture origin is the bottom-left corner, glTF's (ours) the top-left: ``vt`` stores ``1 - v``. Each file
is written atomically; the three are written only after all three are made.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from anchorsplat.gaussians.io import atomic_write_bytes
from anchorsplat.gaussians.rig import vertex_normals
from anchorsplat.gaussians.surface import SkinnedSurface


def _rows(prefix: str, values: np.ndarray, fmt: str) -> str:
    buffer = io.StringIO()
    np.savetxt(buffer, values, fmt=f"{prefix} {fmt}")
    return buffer.getvalue()


def write_obj(
    path: str | os.PathLike, surface: SkinnedSurface, vertices: Float[Tensor, "V 3"] | None = None
) -> list[Path]:
    """Write the surface (at ``vertices``, default its rest pose) as OBJ + MTL + PNG; returns the three paths."""
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() != ".obj":
        raise ValueError(f"an OBJ export must end in .obj: got {path}")
    mtl, png = path.with_suffix(".mtl"), path.with_suffix(".png")
    v = (surface.vertices_rest if vertices is None else vertices).detach().cpu().double()
    normals = vertex_normals(v, surface.faces.cpu()).numpy()
    normals = np.nan_to_num(normals, nan=0.0)
    uvs = surface.uvs.detach().cpu().double().numpy()
    faces = surface.faces.cpu().numpy() + 1
    corners = np.repeat(faces, 3, axis=1)  # v/vt/vn of each corner: the same index
    text = (
        "# anchorsplat surface: meters, +Y up, the body faces +Z\n"
        f"mtllib {mtl.name}\no surface\n"
        + _rows("v", v.numpy(), "%.6f %.6f %.6f")
        + _rows("vt", np.stack([uvs[:, 0], 1.0 - uvs[:, 1]], 1), "%.6f %.6f")
        + _rows("vn", normals, "%.5f %.5f %.5f")
        + "usemtl surface\n"
        + _rows("f", corners, "%d/%d/%d %d/%d/%d %d/%d/%d")
    )
    material = f"newmtl surface\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nd 1\nillum 1\nmap_Kd {png.name}\n"
    image = io.BytesIO()
    Image.fromarray(surface.texture).save(image, format="PNG")
    atomic_write_bytes(png, image.getvalue())
    atomic_write_bytes(mtl, material.encode())
    atomic_write_bytes(path, text.encode())
    return [path, mtl, png]


def posed_surface_vertices(surface: SkinnedSurface, rig, inputs) -> Float[Tensor, "V 3"]:
    """The surface's vertices in frame 0 of ``inputs`` (a Motion or RigInputs), posed like the Gaussians."""
    from anchorsplat.gaussians.rigged import pose_motion_mesh

    with torch.no_grad():
        return pose_motion_mesh(surface.as_rig(rig), inputs).vertices[0]
