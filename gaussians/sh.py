"""Real spherical harmonics up to degree 3, with gsplat's constants, basis order and signs.

gsplat evaluates the bases with Sloan's "Efficient Spherical Harmonic Evaluation" (JCGT 2013) on the
normalised view direction (camera centre -> Gaussian mean) and turns the result into a colour as
``max(sh . basis + 0.5, 0)``. :func:`eval_sh` does exactly that, so the torch renderer and gsplat agree and
SH coefficients move between them (and PLY files written for the Inria / gsplat viewers) unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

SH_C0 = 0.28209479177387814
MAX_SH_DEGREE = 3


def sh_basis(degree: int, dirs: Float[Tensor, "*B 3"]) -> Float[Tensor, "*B K"]:
    """The ``(degree + 1) ** 2`` real SH bases at unit directions ``dirs``, in gsplat's order and signs."""
    if not 0 <= degree <= MAX_SH_DEGREE:
        raise ValueError(f"SH degree must be in 0..{MAX_SH_DEGREE}, got {degree}")
    out = [torch.full_like(dirs[..., 0], SH_C0)]
    if degree == 0:
        return out[0][..., None]
    x, y, z = dirs.unbind(-1)
    a = 0.48860251190292
    out += [-a * y, a * z, -a * x]
    if degree >= 2:
        z2 = z * z
        c1 = x * x - y * y  # cos(2 phi) r^2
        s1 = 2 * x * y  # sin(2 phi) r^2
        b = -1.092548430592079 * z
        a = 0.5462742152960395
        out += [a * s1, b * y, 0.9461746957575601 * z2 - 0.3153915652525201, b * x, a * c1]
    if degree >= 3:
        c = -2.285228997322329 * z2 + 0.4570457994644658
        b = 1.445305721320277 * z
        a = -0.5900435899266435
        c2 = x * c1 - y * s1
        s2 = x * s1 + y * c1
        out += [a * s2, b * s1, c * y, z * (1.865881662950577 * z2 - 1.119528997770346), c * x, b * c1, a * c2]
    return torch.stack(out, dim=-1)


def eval_sh(degree: int, sh_coeffs: Float[Tensor, "*B K 3"], dirs: Float[Tensor, "*B 3"]) -> Float[Tensor, "*B 3"]:
    """Colour seen along ``dirs`` (need not be unit) from SH coefficients, as gsplat's rasterization computes it.

    Args:
        degree: SH degree to evaluate (0..3); ``sh_coeffs`` may hold more bases, the extra ones are ignored
            (gsplat's partial activation of SH bands).
        sh_coeffs: SH coefficients per colour channel; band 0 is the DC term (see ``rigged.rgb_to_sh_dc``).
        dirs: viewing directions, from the camera centre towards the Gaussian.

    Returns:
        ``max(sum_k basis_k(dirs) * sh_coeffs[k] + 0.5, 0)``.
    """
    num_bases = (degree + 1) ** 2
    if sh_coeffs.shape[-2] < num_bases:
        raise ValueError(f"SH degree {degree} needs {num_bases} coefficients per channel, got {sh_coeffs.shape[-2]}")
    basis = sh_basis(degree, F.normalize(dirs, dim=-1))
    rgb = (basis[..., None] * sh_coeffs[..., :num_bases, :]).sum(-2)
    return torch.clamp_min(rgb + 0.5, 0.0)
