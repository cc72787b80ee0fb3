"""Standard 3D Gaussian splatting PLY (the INRIA layout read by common splat viewers).

Per vertex: ``x y z nx ny nz f_dc_0..2 f_rest_0..M opacity scale_0..2 rot_0..3`` as float32, where scales
are log scales, opacity is the logit, ``rot`` is a wxyz quaternion, and ``f_rest`` is channel-major: all
higher-order coefficients of red, then green, then blue. Static splats only: the rig lives in ``.anchorsplat``
and ``.glb`` files.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from .io import atomic_write_bytes
from .rigged import PosedGaussians, sh_degree_of


@dataclass(frozen=True, eq=False)
class PlyGaussians:
    """Static Gaussians as a PLY stores them (raw: log scales, opacity logits)."""

    means: Float[Tensor, "N 3"]
    quats_wxyz: Float[Tensor, "N 4"]
    log_scales: Float[Tensor, "N 3"]
    opacity_logits: Float[Tensor, " N"]
    sh_coeffs: Float[Tensor, "N K 3"]

    def to_posed(self) -> PosedGaussians:
        q = self.quats_wxyz / self.quats_wxyz.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return PosedGaussians(
            self.means[None], q[None], torch.exp(self.log_scales)[None], torch.sigmoid(self.opacity_logits)[None],
            self.sh_coeffs,
        )  # fmt: skip


def from_posed(posed: PosedGaussians, frame: int = 0) -> PlyGaussians:
    eps = 1e-6
    o = posed.opacities[frame].clamp(eps, 1 - eps)
    return PlyGaussians(
        posed.means[frame], posed.quats_wxyz[frame], torch.log(posed.scales[frame].clamp_min(1e-12)),
        torch.log(o) - torch.log1p(-o), posed.sh_coeffs,
    )  # fmt: skip


def _property_names(num_bases: int) -> list[str]:
    rest = 3 * (num_bases - 1)
    return (
        ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
        + [f"f_rest_{i}" for i in range(rest)]
        + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    )


def save_ply(path: str | os.PathLike, gaussians: PlyGaussians | PosedGaussians) -> Path:
    """Write binary little-endian 3DGS PLY, atomically (vectorised through a numpy structured array)."""
    from plyfile import PlyData, PlyElement

    g = from_posed(gaussians) if isinstance(gaussians, PosedGaussians) else gaussians
    n, k = g.sh_coeffs.shape[:2]
    names = _property_names(k)
    sh = g.sh_coeffs.detach().float().cpu()
    columns = [
        g.means.detach().float().cpu(),
        torch.zeros(n, 3),
        sh[:, 0, :],
        sh[:, 1:, :].transpose(1, 2).reshape(n, -1),  # channel-major
        g.opacity_logits.detach().float().cpu()[:, None],
        g.log_scales.detach().float().cpu(),
        g.quats_wxyz.detach().float().cpu(),
    ]
    table = torch.cat(columns, dim=1).numpy()
    vertex = np.empty(n, dtype=[(name, "<f4") for name in names])
    vertex[:] = np.rec.fromarrays(table.T, names=names) if n else vertex
    buffer = io.BytesIO()
    PlyData([PlyElement.describe(vertex, "vertex")], byte_order="<").write(buffer)
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_ply(path: str | os.PathLike) -> PlyGaussians:
    """Read a 3DGS PLY (any SH degree 0-3); a clear ValueError for a missing, truncated or non-3DGS file."""
    from plyfile import PlyData

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"PLY file {path} does not exist")
    try:
        ply = PlyData.read(str(path))
        vertex = ply["vertex"].data
    except Exception as exc:  # noqa: BLE001 - plyfile raises several types for damaged files
        raise ValueError(f"{path} is not a readable PLY file ({exc}); it may be truncated") from None
    fields = set(vertex.dtype.names or ())
    required = {"x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "rot_0"}
    if not required <= fields:
        raise ValueError(f"{path} is a PLY but not a 3D Gaussian splatting one (missing {sorted(required - fields)})")
    rest = sorted((f for f in fields if f.startswith("f_rest_")), key=lambda f: int(f.split("_")[-1]))
    num_bases = 1 + len(rest) // 3
    sh_degree_of(num_bases)  # validates the count
    n = len(vertex)

    def cols(names: list[str]) -> Tensor:
        return torch.from_numpy(np.stack([np.asarray(vertex[c], dtype=np.float32) for c in names], axis=1))

    sh = torch.zeros(n, num_bases, 3)
    sh[:, 0] = cols(["f_dc_0", "f_dc_1", "f_dc_2"])
    if rest:
        sh[:, 1:] = cols(rest).reshape(n, 3, num_bases - 1).transpose(1, 2)
    out = PlyGaussians(
        cols(["x", "y", "z"]), cols([f"rot_{i}" for i in range(4)]), cols([f"scale_{i}" for i in range(3)]),
        cols(["opacity"])[:, 0], sh,
    )  # fmt: skip
    for name in ("means", "quats_wxyz", "log_scales", "opacity_logits", "sh_coeffs"):
        if not torch.isfinite(getattr(out, name)).all():
            raise ValueError(f"{path}: the PLY's {name} contain NaN or infinite values")
    return out
