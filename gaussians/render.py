"""Render posed Gaussians: gsplat on CUDA, and a pure-torch twin that follows gsplat's conventions.

Both backends compute the same image (gsplat 1.5.3, ``rasterize_mode="classic"``, ``packed=True``):

- EWA projection: ``cov2d = J W cov3d W^T J^T`` with gsplat's Jacobian (the point is clamped to 1.3x the
  field of view before the Jacobian is taken), plus ``eps2d = 0.3`` on the diagonal (low-pass filter).
- Culling: depth outside ``[near, far]``, opacity below 1/255, non-positive determinant, or a bounding box
  off the image. The box is gsplat's opacity-aware one, ``ceil(extend * sqrt(cov2d_ii))`` with
  ``extend = min(3.33, sqrt(2 ln(255 opacity)))``: every pixel outside it has alpha < 1/255, so the result
  does not depend on the tile size.
- Per pixel (centres at +0.5): ``alpha = min(0.999, opacity * exp(-0.5 d^T conic d))``, skipped when below
  1/255; front-to-back compositing by camera-space depth; a pixel stops before the Gaussian that would take
  its transmittance to 1e-4 or below. Colour comes from SH along camera centre -> mean (:mod:`.sh`).
- Outputs: colour + ``T * background``, alpha = ``1 - T``, expected depth ``sum(w z) / alpha`` (0 where
  nothing was hit).

The alpha cap is gsplat's 0.999 (Inria's reference rasterizer uses 0.99).

The torch backend is tile based and vectorised: (tile, Gaussian) pairs are sorted by tile then depth, tiles
with similar list lengths are padded into buckets of bounded size, and one autograd function composites a
bucket at a time (forward and an analytic backward that recomputes alpha), so memory stays bounded and a
20k-Gaussian 256^2 frame takes well under a second forward + backward on two CPU cores.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Literal

import torch
from jaxtyping import Float
from torch import Tensor

from .conventions import Cameras, quat_to_matrix
from .rigged import PosedGaussians
from .sh import eval_sh

ALPHA_MAX = 0.999  # gsplat's cap on a single Gaussian's alpha
ALPHA_MIN = 1.0 / 255.0  # gsplat's ALPHA_THRESHOLD: weaker contributions are skipped
T_MIN = 1e-4  # compositing stops before transmittance would reach this
EPS2D = 0.3  # gsplat's default low-pass filter added to the 2D covariance
EXTEND_MAX = 3.33  # gsplat's cap on the bounding box half-size, in standard deviations
PAD_RATIO = 1.25  # a bucket's lists are padded by at most this factor (or 4 pairs)
BUCKET_ELEMENTS = 1 << 22  # (pair, pixel) elements composited at once; bounds memory at ~10 such tensors

Backend = Literal["auto", "gsplat", "torch"]


@dataclass(frozen=True, eq=False)
class RenderOutput:
    """Images of every posed frame (B) from every camera (C)."""

    rgb: Float[Tensor, "B C H W 3"]
    alpha: Float[Tensor, "B C H W 1"]
    depth: Float[Tensor, "B C H W 1"]
    """Expected camera-space depth (z) of the visible Gaussians, 0 where alpha is 0."""
    backend: str


def render(
    posed: PosedGaussians,
    cameras: Cameras,
    *,
    backend: Backend = "auto",
    background: Float[Tensor, "*#BC 3"] | None = None,
    near: float = 0.01,
    far: float = 1e10,
) -> RenderOutput:
    """Render every frame of ``posed`` from every camera, differentiably.

    Args:
        posed: B frames of N activated Gaussians (see :class:`PosedGaussians`).
        cameras: C OpenCV pinhole cameras sharing one image size.
        backend: ``"gsplat"`` (CUDA), ``"torch"`` (any device), or ``"auto"``: gsplat when the Gaussians are on
            CUDA and gsplat imports, else torch.
        background: colour behind the Gaussians, ``3``, ``C 3`` or ``B C 3``; black when None.
        near, far: camera-space depth range; Gaussians whose centre is outside are culled.
    """
    if backend not in ("auto", "gsplat", "torch"):
        raise ValueError(f"backend must be 'auto', 'gsplat' or 'torch', got {backend!r}")
    _check_inputs(posed, cameras)
    if backend == "auto":
        backend = "gsplat" if _gsplat_problem(posed.means) is None else "torch"
    elif backend == "gsplat" and (problem := _gsplat_problem(posed.means)) is not None:
        raise ValueError(
            f"backend='gsplat' is not usable: {problem}. gsplat needs a CUDA GPU, float32 CUDA tensors and "
            "`pip install anchorsplat[cuda]`; use backend='torch' (or 'auto') to render anywhere."
        )
    (b, _), c = posed.means.shape[:2], len(cameras)
    dtype, device = posed.means.dtype, posed.means.device
    cameras = Cameras(
        cameras.T_cam_world.to(device, dtype), cameras.Ks.to(device, dtype), cameras.width, cameras.height
    )
    bg = None
    if background is not None:
        if background.shape[-1:] != (3,) or background.ndim > 3 or not _broadcasts(background.shape[:-1], (b, c)):
            raise ValueError(f"background must be 3, C 3 or B C 3 (B={b}, C={c}), got {tuple(background.shape)}")
        bg = background.to(device, dtype).expand(b, c, 3)
    if backend == "gsplat":
        return _render_gsplat(posed, cameras, bg, near, far)
    return _render_torch(posed, cameras, bg, near, far)


def _broadcasts(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    return len(shape) <= len(target) and all(s in (1, t) for s, t in zip(shape[::-1], target[::-1], strict=False))


def _check_inputs(posed: PosedGaussians, cameras: Cameras) -> None:
    if posed.means.ndim != 3 or posed.means.shape[-1] != 3:
        raise ValueError(f"posed.means must be B N 3, got {tuple(posed.means.shape)}")
    b, n = posed.means.shape[:2]
    expected = {"quats_wxyz": (b, n, 4), "scales": (b, n, 3), "opacities": (b, n)}
    for name, shape in expected.items():
        if tuple(getattr(posed, name).shape) != shape:
            raise ValueError(f"posed.{name} has shape {tuple(getattr(posed, name).shape)}, expected {shape}")
    if posed.sh_coeffs.ndim != 3 or posed.sh_coeffs.shape[0] != n or posed.sh_coeffs.shape[2] != 3:
        raise ValueError(f"posed.sh_coeffs must be N K 3 with N={n}, got {tuple(posed.sh_coeffs.shape)}")
    if posed.sh_degree > 3:
        raise ValueError(f"SH degree {posed.sh_degree} is not supported: at most 3 (16 coefficients per channel)")


def _gsplat_problem(means: Tensor) -> str | None:
    """Why gsplat cannot render these tensors, or None when it can."""
    if means.device.type != "cuda":
        return f"the Gaussians are on {means.device}, not on a CUDA device"
    if means.dtype != torch.float32:
        return f"gsplat renders float32 only, the Gaussians are {means.dtype}"
    return _gsplat_import_error()


@functools.cache
def _gsplat_import_error() -> str | None:
    try:
        import gsplat  # noqa: F401
    except Exception as e:  # noqa: BLE001 - a broken CUDA build fails with many exception types
        return f"gsplat does not import ({type(e).__name__}: {e})"
    return None


def _render_gsplat(
    posed: PosedGaussians, cameras: Cameras, background: Tensor | None, near: float, far: float
) -> RenderOutput:
    import gsplat

    b, c = posed.means.shape[0], len(cameras)
    colors, alphas, _ = gsplat.rasterization(
        posed.means, posed.quats_wxyz, posed.scales, posed.opacities,
        colors=posed.sh_coeffs.expand(b, *posed.sh_coeffs.shape),
        viewmats=cameras.T_cam_world.expand(b, c, 4, 4).contiguous(), Ks=cameras.Ks.expand(b, c, 3, 3).contiguous(),
        width=cameras.width, height=cameras.height, sh_degree=posed.sh_degree, render_mode="RGB+ED",
        near_plane=near, far_plane=far, backgrounds=background,
    )  # fmt: skip
    return RenderOutput(colors[..., :3], alphas, colors[..., 3:], "gsplat")


# ---------------------------------------------------------------------------------------------------------
# torch backend: projection


@dataclass(frozen=True, eq=False)
class _Projected:
    """The M visible (image, Gaussian) entries; images are numbered frame-major, ``b * C + c``."""

    image_ids: Tensor  # M, long
    means2d: Tensor  # M 2
    conics: Tensor  # M 3: inverse 2D covariance (xx, xy, yy)
    depths: Tensor  # M
    radii: Tensor  # M 2, pixels (no grad)
    opacities: Tensor  # M
    colors: Tensor  # M 3


def _project(posed: PosedGaussians, cameras: Cameras, near: float, far: float) -> _Projected:
    """gsplat's ``fully_fused_projection`` + SH colours, on the entries that survive culling."""
    c = len(cameras)
    R_cw, t_cw = cameras.T_cam_world[:, :3, :3], cameras.T_cam_world[:, :3, 3]
    with torch.no_grad():
        z = torch.einsum("cj,bnj->bcn", R_cw[:, 2], posed.means) + t_cw[None, :, 2, None]
        keep = (z >= near) & (z <= far) & (posed.opacities[:, None] >= ALPHA_MIN)
        bi, ci, ni = keep.nonzero(as_tuple=True)
    means = posed.means[bi, ni]
    p_cam = (R_cw[ci] @ means[..., None])[..., 0] + t_cw[ci]
    fx, fy, cx, cy = (cameras.Ks[ci, i, j] for i, j in ((0, 0), (1, 1), (0, 2), (1, 2)))
    x, y, z = p_cam.unbind(-1)
    means2d = torch.stack([fx * x / z + cx, fy * y / z + cy], -1)
    # gsplat clamps the point to 1.3x the field of view before taking the Jacobian
    lim_x = 0.3 * 0.5 * cameras.width / fx
    lim_y = 0.3 * 0.5 * cameras.height / fy
    tx = z * torch.minimum(torch.maximum(x / z, -cx / fx - lim_x), (cameras.width - cx) / fx + lim_x)
    ty = z * torch.minimum(torch.maximum(y / z, -cy / fy - lim_y), (cameras.height - cy) / fy + lim_y)
    zero = torch.zeros_like(z)
    J = torch.stack([fx / z, zero, -fx * tx / z**2, zero, fy / z, -fy * ty / z**2], -1).reshape(-1, 2, 3)
    RS = quat_to_matrix(posed.quats_wxyz[bi, ni]) * posed.scales[bi, ni, None, :]  # cov3d = RS RS^T
    T = J @ R_cw[ci] @ RS
    cov = T @ T.transpose(-1, -2)
    a, bxy, d = cov[:, 0, 0] + EPS2D, cov[:, 0, 1], cov[:, 1, 1] + EPS2D
    det = a * d - bxy * bxy
    det_safe = torch.where(det > 0, det, torch.ones_like(det))
    conics = torch.stack([d / det_safe, -bxy / det_safe, a / det_safe], -1)
    opacities = posed.opacities[bi, ni]
    with torch.no_grad():
        extend = torch.sqrt(2 * torch.log(opacities * 255).clamp_min(0)).clamp_max(EXTEND_MAX)
        radii = torch.ceil(extend[:, None] * torch.stack([a, d], -1).clamp_min(0).sqrt())
        m2 = means2d.detach()
        size = torch.tensor([cameras.width, cameras.height], dtype=m2.dtype, device=m2.device)
        on_image = ((m2 + radii > 0) & (m2 - radii < size)).all(-1)
        visible = (det > 0) & on_image & (radii > 0).any(-1)
        sel = visible.nonzero()[:, 0]
    campos = -(R_cw.transpose(-1, -2) @ t_cw[..., None])[..., 0]  # C 3
    bi, ci, ni = bi[sel], ci[sel], ni[sel]
    colors = eval_sh(posed.sh_degree, posed.sh_coeffs[ni], means[sel] - campos[ci])
    return _Projected(bi * c + ci, means2d[sel], conics[sel], z[sel], radii[sel], opacities[sel], colors)


# ---------------------------------------------------------------------------------------------------------
# torch backend: tiles and compositing


@dataclass(frozen=True, eq=False)
class _Bucket:
    """Tiles whose pair lists are padded to one length L; ``entry`` indexes the M entries (M = padding)."""

    tiles: Tensor  # m, long: global tile index (image, tile row, tile column)
    origin: Tensor  # m 2: pixel coordinates of the tiles' top-left corners
    entry: Tensor  # m L, long: entry index per pair, front to back


@torch.no_grad()
def _tile_buckets(proj: _Projected, num_images: int, width: int, height: int, tile: int) -> list[_Bucket]:
    """Intersect entries with tiles, sort each tile's list by depth, and group tiles of similar list length
    into buckets of at most ``BUCKET_ELEMENTS`` (pair, pixel) elements."""
    device, m = proj.means2d.device, proj.means2d.shape[0]
    tw, th = math.ceil(width / tile), math.ceil(height / tile)
    size = torch.tensor([tw, th], device=device)
    lo = torch.minimum(torch.floor((proj.means2d - proj.radii) / tile).long().clamp_min(0), size)
    hi = torch.minimum(torch.ceil((proj.means2d + proj.radii) / tile).long().clamp_min(0), size)
    span = hi - lo
    counts = span[:, 0] * span[:, 1]
    # Pairs generated in depth order and then stably sorted by tile leave every tile's list front to back.
    order = torch.argsort(proj.depths, stable=True)
    counts_o = counts[order]
    entry = torch.repeat_interleave(order, counts_o)
    first = torch.repeat_interleave(torch.cumsum(counts_o, 0) - counts_o, counts_o)
    local = torch.arange(entry.shape[0], device=device) - first
    nx = span[entry, 0]
    txy = torch.stack([lo[entry, 0] + local % nx, lo[entry, 1] + local // nx], -1)
    hit = _touches_tile(proj.means2d[entry], proj.conics[entry], proj.opacities[entry], txy * tile, tile)
    entry, txy = entry[hit], txy[hit]
    tile_ids, perm = torch.sort((proj.image_ids[entry] * th + txy[:, 1]) * tw + txy[:, 0], stable=True)
    entry = entry[perm]
    per_tile = torch.bincount(tile_ids, minlength=num_images * th * tw)
    starts = torch.cumsum(per_tile, 0) - per_tile
    nonempty = per_tile.nonzero()[:, 0]
    lengths, by_length = torch.sort(per_tile[nonempty])
    tiles_sorted, lengths_list = nonempty[by_length], lengths.tolist()
    buckets, i, pixels, budget = [], 0, tile * tile, BUCKET_ELEMENTS
    while i < len(lengths_list):
        # take tiles (sorted by length) while padding them to the longest stays cheap and within the budget
        j, cap = i + 1, max(lengths_list[i] * PAD_RATIO, lengths_list[i] + 4)
        while j < len(lengths_list) and lengths_list[j] <= cap and (j + 1 - i) * lengths_list[j] * pixels <= budget:
            j += 1
        tiles, length = tiles_sorted[i:j], lengths_list[j - 1]
        slot = torch.arange(length, device=device)
        idx = starts[tiles, None] + slot
        pair_entry = torch.where(slot < per_tile[tiles, None], entry[idx.clamp_max(entry.shape[0] - 1)], m)
        in_image = tiles % (th * tw)
        origin = torch.stack([in_image % tw, in_image // tw], -1) * tile
        buckets.append(_Bucket(tiles, origin.to(proj.means2d.dtype), pair_entry))
        i = j
    return buckets


def _touches_tile(means2d: Tensor, conics: Tensor, opacities: Tensor, corner: Tensor, tile: int) -> Tensor:
    """Whether a Gaussian can reach alpha >= 1/255 at a pixel centre of the tile at ``corner`` (conservative:
    the minimum of sigma over the rectangle spanned by the pixel centres, from its edges when the mean is
    outside). Drops the ~25% of bounding-box tiles that the ellipse misses."""
    a, b, c = conics.t().contiguous()  # contiguous rows: strided columns make every op below 5x slower
    lo_x, lo_y = (means2d - (corner + 0.5)).t().contiguous()  # mean - pixel centre is in [lo - tile + 1, lo]
    dx0, dx1 = lo_x - (tile - 1), lo_x
    dy0, dy1 = lo_y - (tile - 1), lo_y
    inside = (dx0 <= 0) & (dx1 >= 0) & (dy0 <= 0) & (dy1 >= 0)
    sigma = lambda dx, dy: 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
    best = torch.full_like(a, math.inf)
    for dx in (dx0, dx1):  # vertical edges: the best dy on the line, clamped to the edge
        best = torch.minimum(best, sigma(dx, torch.clamp(-b * dx / c, dy0, dy1)))
    for dy in (dy0, dy1):
        best = torch.minimum(best, sigma(torch.clamp(-b * dy / a, dx0, dx1), dy))
    best = torch.where(inside, 0.0, best)
    return best <= torch.log(opacities / ALPHA_MIN) + 1e-3


def _pair_terms(bucket: _Bucket, means2d: Tensor, conics: Tensor, log_opacities: Tensor, tile: int):
    """Offsets mean - pixel centre along the tile's columns (dx) and rows (dy), and the conic, per pair."""
    offsets = torch.arange(tile, dtype=means2d.dtype, device=means2d.device) + 0.5
    u = means2d[bucket.entry] - bucket.origin[:, None, :]  # m L 2
    dx = u[..., 0, None] - offsets  # m L tile
    dy = u[..., 1, None] - offsets
    ca, cb, cc = (x[..., None] for x in conics[bucket.entry].unbind(-1))
    return dx, dy, ca, cb, cc, log_opacities[bucket.entry, None]


def _alphas(dx: Tensor, dy: Tensor, ca: Tensor, cb: Tensor, cc: Tensor, log_o: Tensor) -> Tensor:
    """alpha[m, L, row * tile + col] = min(0.999, o exp(-sigma)), and 0 where that is below 1/255."""
    rows = (log_o - 0.5 * cc * dy * dy)[..., :, None]
    cols = (-0.5 * ca * dx * dx)[..., None, :]
    x = torch.add(rows, cols).addcmul_((-cb * dy)[..., :, None], dx[..., None, :])  # log o - sigma
    alpha = x.exp_().clamp_max_(ALPHA_MAX)
    return torch.nn.functional.threshold_(alpha, ALPHA_MIN, 0.0).flatten(-2)


def _transmittance(alpha: Tensor) -> tuple[Tensor, Tensor]:
    """Transmittance before each pair, and the weights ``alpha * T`` of the pairs that are composited (a pixel
    stops before the pair that would take its transmittance to ``T_MIN`` or below)."""
    after = torch.cumprod(1 - alpha, dim=1)
    before = torch.cat([torch.ones_like(after[:, :1]), after[:, :-1]], 1)
    weights = (alpha * before).masked_fill_(after <= T_MIN, 0.0)  # after only decreases: a prefix is kept
    return before, weights


class _Composite(torch.autograd.Function):
    """Front-to-back compositing of all buckets into ``[tiles, pixels, D]``.

    ``features`` carry a last channel of ones, so the last output channel is alpha = sum of weights. The
    backward pass recomputes each bucket's alphas (memory stays bounded) and applies the analytic gradient
    ``dL/dalpha_i = T_i f_i.g - (sum_{j>i} w_j f_j.g) / (1 - alpha_i)``; clamped alphas pass none (as in gsplat).
    """

    @staticmethod
    def forward(ctx, means2d, conics, opacities, features, buckets, num_tiles, tile):
        pad = lambda t, v: torch.cat([t, t.new_full((1, *t.shape[1:]), v)])  # entry M is the padding
        log_o = pad(opacities.log(), -1e4)
        m2, con, feat = pad(means2d, 0.0), pad(conics, 1.0), pad(features, 0.0)
        out = features.new_zeros(num_tiles, tile * tile, features.shape[-1])
        for bk in buckets:
            _, w = _transmittance(_alphas(*_pair_terms(bk, m2, con, log_o, tile)))
            out[bk.tiles] = torch.bmm(feat[bk.entry].transpose(1, 2), w).transpose(1, 2)
        ctx.save_for_backward(m2, con, log_o, feat)
        ctx.buckets, ctx.tile = buckets, tile
        return out

    @staticmethod
    def backward(ctx, g_out):
        m2, con, log_o, feat = ctx.saved_tensors
        tile = ctx.tile
        g_m2, g_con, g_log_o, g_feat = (torch.zeros_like(t) for t in (m2, con, log_o, feat))
        for bk in ctx.buckets:
            dx, dy, ca, cb, cc, lo = _pair_terms(bk, m2, con, log_o, tile)
            alpha = _alphas(dx, dy, ca, cb, cc, lo)
            T, w = _transmittance(alpha)
            g = g_out[bk.tiles]  # m P D
            idx = bk.entry.flatten()
            g_feat.index_add_(0, idx, torch.bmm(w, g).flatten(0, 1))
            fg = torch.bmm(feat[bk.entry], g.transpose(1, 2))  # m L P
            later = torch.cumsum(w * fg, dim=1)
            later = later[:, -1:] - later
            g_x = (T * fg).sub_(later.div_(1 - alpha)).mul_(alpha)  # dL/d(log o - sigma)
            g_x = g_x.masked_fill_((w == 0) | (alpha >= ALPHA_MAX), 0.0).unflatten(-1, (tile, tile))
            g_rows, g_cols = g_x.sum(-1), g_x.sum(-2)  # m L tile
            g_dx = (g_x @ dx[..., None])[..., 0]  # m L row: sum over columns of g_x * dx
            sx, sy = (g_cols * dx).sum(-1), (g_rows * dy).sum(-1)
            sxx, syy, sxy = (g_cols * dx * dx).sum(-1), (g_rows * dy * dy).sum(-1), (g_dx * dy).sum(-1)
            ca, cb, cc = ca[..., 0], cb[..., 0], cc[..., 0]
            g_m2.index_add_(0, idx, torch.stack([-(ca * sx + cb * sy), -(cb * sx + cc * sy)], -1).flatten(0, 1))
            g_con.index_add_(0, idx, torch.stack([-0.5 * sxx, -sxy, -0.5 * syy], -1).flatten(0, 1))
            g_log_o.index_add_(0, idx, g_rows.sum(-1).flatten())
        g_o = g_log_o[:-1] / log_o[:-1].exp()
        return g_m2[:-1], g_con[:-1], g_o, g_feat[:-1], None, None, None


def _pick_tile(radii: Tensor) -> int:
    """Tile size for the typical splat size: 4x4 tiles waste less work on small splats, 8x8 and 16x16 tiles
    cost fewer pairs on large ones (measured on CPU, 20k-100k Gaussians at 256^2-1024^2)."""
    if radii.numel() == 0:
        return 8
    r = float(radii.amax(-1).median())
    return 4 if r < 6 else 8 if r < 24 else 16


def _render_torch(
    posed: PosedGaussians, cameras: Cameras, background: Tensor | None, near: float, far: float, tile: int | None = None
) -> RenderOutput:
    (b, _), c, h, w = posed.means.shape[:2], len(cameras), cameras.height, cameras.width
    proj = _project(posed, cameras, near, far)
    tile = _pick_tile(proj.radii) if tile is None else tile
    buckets = _tile_buckets(proj, b * c, w, h, tile)
    th, tw = math.ceil(h / tile), math.ceil(w / tile)
    # depth and alpha composite like colour channels: features are (r, g, b, z, 1)
    features = torch.cat([proj.colors, proj.depths[:, None], torch.ones_like(proj.depths[:, None])], -1)
    out = _Composite.apply(proj.means2d, proj.conics, proj.opacities, features, buckets, b * c * th * tw, tile)
    out = out.reshape(b, c, th, tw, tile, tile, -1).permute(0, 1, 2, 4, 3, 5, 6)
    out = out.reshape(b, c, th * tile, tw * tile, -1)[:, :, :h, :w]
    rgb, alpha = out[..., :3], out[..., 4:]
    depth = out[..., 3:4] / alpha.clamp_min(1e-10)
    if background is not None:
        rgb = rgb + (1 - alpha) * background[:, :, None, None, :]
    return RenderOutput(rgb, alpha, depth, "torch")
