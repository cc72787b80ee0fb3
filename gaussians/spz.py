"""Niantic's SPZ format (``.spz``): static Gaussians, quantised and gzip-compressed (about 10x smaller than PLY).

Layout (SPZ v3, little-endian, all inside one gzip stream): a 16-byte header (magic ``NGSP`` = 0x5053474E,
version, point count, SH degree, fractional bits, flags, reserved) and then one array per attribute:
positions (3 x 24-bit fixed point, 12 fractional bits), alphas (u8, sigmoid(opacity) x 255), colours (u8, SH DC
x 0.15 x 255 + 127.5), scales (u8, (log scale + 10) x 16), rotations (v3: "smallest three", u32 = 2-bit index of
the largest |component| of the unit ``xyzw`` quaternion + 3 x (sign bit, 9-bit magnitude / sqrt(1/2)); v2: 3 x u8
``xyz`` with ``w >= 0``), and the higher SH coefficients (u8, x 128 + 128; coefficient-major, RGB inner;
degree 1 rounded to 5 bits, higher degrees to 4 bits).

Axes: SPZ stores "RUB" (three.js / OpenGL: +X right, +Y up, +Z towards the default viewer), which are our
axes (+Y up, the body facing +Z), so nothing is flipped. Quaternions are ``xyzw`` in the file and converted at
this boundary. Loading returns :class:`anchorsplat.gaussians.ply.PlyGaussians` (static splats).
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import torch

from .conventions import quat_wxyz_to_xyzw, quat_xyzw_to_wxyz
from .io import atomic_write_bytes
from .ply import PlyGaussians, from_posed
from .rigged import PosedGaussians, sh_degree_of

SPZ_MAGIC = 0x5053474E
SPZ_VERSION = 3
COLOR_SCALE = 0.15
FRACTIONAL_BITS = 12
_SQRT1_2 = np.float32(0.7071067811865476)
_FLAG_ANTIALIASED, _FLAG_HAS_EXTENSIONS = 0x1, 0x2


def _to_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def pack_quaternions(quats_xyzw: np.ndarray) -> np.ndarray:
    """Unit ``xyzw`` quaternions -> SPZ v3 "smallest three" u32 words (N), as Niantic's reference packs them."""
    q = quats_xyzw / np.linalg.norm(quats_xyzw, axis=1, keepdims=True).clip(min=1e-12)
    n = len(q)
    largest = np.abs(q).argmax(1)
    negate = q[np.arange(n), largest] < 0
    comp = largest.astype(np.uint32)
    for i in range(4):
        use = largest != i  # the three smaller components, in index order, most significant first
        negbit = ((q[:, i] < 0) ^ negate).astype(np.uint32)
        mag = np.minimum(
            (np.float32(511) * (np.abs(q[:, i]).astype(np.float32) / _SQRT1_2) + 0.5).astype(np.uint32), 511
        )
        comp = np.where(use, (comp << 10) | (negbit << 9) | mag, comp)
    return comp.astype("<u4")


def unpack_quaternions(words: np.ndarray) -> np.ndarray:
    """SPZ v3 u32 words (N) -> unit ``xyzw`` quaternions (N 4)."""
    comp = words.astype(np.uint32)
    largest = (comp >> 30).astype(np.int64)
    q = np.zeros((len(comp), 4), dtype=np.float32)
    for i in range(3, -1, -1):
        use = largest != i
        mag = (comp & 511).astype(np.float32)
        value = _SQRT1_2 * mag / np.float32(511)
        value = np.where((comp >> 9) & 1, -value, value)
        q[:, i] = np.where(use, value, 0)
        comp = np.where(use, comp >> 10, comp)
    rest = (q * q).sum(1)
    q[np.arange(len(q)), largest] = np.sqrt(np.maximum(0.0, 1.0 - rest))
    return q


def _quantize_sh(x: np.ndarray, bucket: int) -> np.ndarray:
    q = np.round(x * 128.0).astype(np.int64) + 128
    q = (q + bucket // 2) // bucket * bucket
    return np.clip(q, 0, 255).astype(np.uint8)


def save_spz(path: str | os.PathLike, gaussians: PlyGaussians | PosedGaussians, *, antialiased: bool = False) -> Path:
    """Write static Gaussians (one posed frame or :class:`PlyGaussians`) as SPZ v3, atomically."""
    path = Path(path)
    if path.suffix.lower() != ".spz":
        raise ValueError(f"an SPZ export must end in .spz: got {path}")
    g = from_posed(gaussians) if isinstance(gaussians, PosedGaussians) else gaussians
    means = g.means.detach().cpu().double().numpy()
    n, k = g.sh_coeffs.shape[:2]
    degree = sh_degree_of(k)
    limit = (1 << 23) / (1 << FRACTIONAL_BITS)
    if n and np.abs(means).max() >= limit:
        raise ValueError(f"SPZ positions must lie within +-{limit:.0f} m of the origin (24-bit fixed point)")
    fixed = np.round(means * (1 << FRACTIONAL_BITS)).astype(np.int64).reshape(-1) & 0xFFFFFF
    positions = np.stack([fixed & 0xFF, (fixed >> 8) & 0xFF, (fixed >> 16) & 0xFF], axis=1).astype(np.uint8)
    opacity = torch.sigmoid(g.opacity_logits.detach().cpu().double()).numpy()
    sh = g.sh_coeffs.detach().cpu().double().numpy()
    colors = _to_u8(sh[:, 0] * (COLOR_SCALE * 255.0) + 0.5 * 255.0)
    scales = _to_u8((g.log_scales.detach().cpu().double().numpy() + 10.0) * 16.0)
    rotations = pack_quaternions(quat_wxyz_to_xyzw(g.quats_wxyz.detach().cpu().double()).numpy())
    rest = sh[:, 1:]  # N (K-1) 3: coefficient-major, RGB inner
    buckets = np.array([8 if c < 3 else 16 for c in range(k - 1)], dtype=np.int64)[None, :, None]
    higher = np.zeros_like(rest, dtype=np.uint8)
    for bucket in (8, 16):
        mask = np.broadcast_to(buckets == bucket, rest.shape)
        higher[mask] = _quantize_sh(rest[mask], bucket)
    header = struct.pack(
        "<IIIBBBB", SPZ_MAGIC, SPZ_VERSION, n, degree, FRACTIONAL_BITS, _FLAG_ANTIALIASED if antialiased else 0, 0
    )
    payload = b"".join(
        [header, positions.tobytes(), _to_u8(opacity * 255.0).tobytes(), colors.tobytes(), scales.tobytes(),
         rotations.tobytes(), higher.tobytes()]
    )  # fmt: skip
    atomic_write_bytes(path, gzip.compress(payload, compresslevel=6, mtime=0))
    return path


def load_spz(path: str | os.PathLike) -> PlyGaussians:
    """Read an SPZ file (versions 2 and 3); a clear ValueError for a missing, damaged or unsupported file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"SPZ file {path} does not exist")
    try:
        data = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path} is not a gzip-compressed SPZ file ({exc}); it may be truncated") from None
    if len(data) < 16:
        raise ValueError(f"{path}: the SPZ header is truncated")
    magic, version, n, degree, frac_bits, flags, _ = struct.unpack_from("<IIIBBBB", data, 0)
    if magic != SPZ_MAGIC:
        raise ValueError(f"{path} is not an SPZ file (magic {magic:#x}, expected {SPZ_MAGIC:#x})")
    if version not in (2, 3):
        raise ValueError(f"{path} is SPZ version {version}; versions 2 and 3 are supported (upgrade anchorsplat?)")
    if flags & _FLAG_HAS_EXTENSIONS:
        raise ValueError(f"{path} uses SPZ extensions, which anchorsplat does not read; re-save it without them")
    if degree > 3:
        raise ValueError(f"{path}: SH degree {degree} is not supported (0 to 3)")
    k = (degree + 1) ** 2
    rot_bytes = 4 if version >= 3 else 3
    sizes = [9 * n, n, 3 * n, 3 * n, rot_bytes * n, 3 * (k - 1) * n]
    if len(data) < 16 + sum(sizes):
        raise ValueError(f"{path}: the SPZ data is truncated ({len(data)} bytes, expected {16 + sum(sizes)})")
    offsets = np.cumsum([16, *sizes])
    arrays = [np.frombuffer(data, np.uint8, count=s, offset=int(o)) for s, o in zip(sizes, offsets[:-1], strict=True)]
    pos_b, alpha_b, color_b, scale_b, rot_b, sh_b = arrays
    p = pos_b.reshape(n, 3, 3).astype(np.int32)
    fixed = p[..., 0] | (p[..., 1] << 8) | (p[..., 2] << 16)
    fixed = np.where(fixed & 0x800000, fixed - (1 << 24), fixed)
    means = fixed.astype(np.float32) / np.float32(1 << frac_bits)
    if version >= 3:
        quats = unpack_quaternions(rot_b.view("<u4"))
    else:
        xyz = rot_b.reshape(n, 3).astype(np.float32) / 127.5 - 1.0
        quats = np.concatenate([xyz, np.sqrt(np.maximum(0.0, 1.0 - (xyz * xyz).sum(1, keepdims=True)))], axis=1)
    alpha = (alpha_b.astype(np.float64) / 255.0).clip(1e-6, 1 - 1e-6)
    sh = np.zeros((n, k, 3), dtype=np.float32)
    sh[:, 0] = (color_b.reshape(n, 3).astype(np.float32) / 255.0 - 0.5) / COLOR_SCALE
    sh[:, 1:] = (sh_b.reshape(n, k - 1, 3).astype(np.float32) - 128.0) / 128.0
    return PlyGaussians(
        torch.from_numpy(means),
        quat_xyzw_to_wxyz(torch.from_numpy(quats)),
        torch.from_numpy(scale_b.reshape(n, 3).astype(np.float32) / 16.0 - 10.0),
        torch.from_numpy(np.log(alpha / (1 - alpha)).astype(np.float32)),
        torch.from_numpy(sh),
    )
