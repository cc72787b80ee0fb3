"""Niantic's SPZ format: the header, the quantised round trip, and damaged files."""

from __future__ import annotations

import gzip
import struct

import pytest
import torch

from anchorsplat.gaussians.ply import load_ply
from anchorsplat.gaussians.spz import SPZ_MAGIC, load_spz, save_spz


def test_header_says_spz_v3_with_count_and_sh_degree(exported, avatar):
    data = gzip.decompress(exported["spz"].read_bytes())
    magic, version, count, degree, fractional_bits, flags, reserved = struct.unpack_from("<IIIBBBB", data)
    assert (magic, version, count, degree, fractional_bits, flags, reserved) == (
        SPZ_MAGIC,
        3,
        len(avatar.gaussians),
        1,
        12,
        0,
        0,
    )
    k = 4  # degree 1: 3 higher coefficients per channel
    assert len(data) == 16 + count * (9 + 1 + 3 + 3 + 4 + 3 * (k - 1))


def test_round_trip_within_the_quantisation(exported):
    source, back = load_ply(exported["ply"]), load_spz(exported["spz"])
    torch.testing.assert_close(back.means, source.means, atol=0.5 / 4096 + 1e-6, rtol=0)  # 12 fractional bits
    torch.testing.assert_close(back.log_scales, source.log_scales, atol=0.5 / 16 + 1e-5, rtol=0)  # (s + 10) * 16
    alpha_in, alpha_out = torch.sigmoid(source.opacity_logits), torch.sigmoid(back.opacity_logits)
    torch.testing.assert_close(alpha_out, alpha_in, atol=0.5 / 255 + 1e-5, rtol=0)
    torch.testing.assert_close(back.sh_coeffs[:, 0], source.sh_coeffs[:, 0], atol=0.5 / (0.15 * 255) + 1e-5, rtol=0)
    torch.testing.assert_close(back.sh_coeffs[:, 1:], source.sh_coeffs[:, 1:], atol=4.5 / 128, rtol=0)  # 5-bit degree 1
    q_in = source.quats_wxyz / source.quats_wxyz.norm(dim=-1, keepdim=True)
    assert ((back.quats_wxyz * q_in).sum(-1).abs() > 0.9995).all()  # 9-bit smallest three: well under 3 degrees


def test_damaged_and_foreign_files_are_clear_errors(tmp_path, exported, avatar):
    with pytest.raises(ValueError, match="does not exist"):
        load_spz(tmp_path / "missing.spz")
    with pytest.raises(ValueError, match="not a gzip-compressed SPZ"):
        load_spz(exported["ply"])
    truncated = tmp_path / "truncated.spz"
    truncated.write_bytes(gzip.compress(gzip.decompress(exported["spz"].read_bytes())[:100]))
    with pytest.raises(ValueError, match="truncated"):
        load_spz(truncated)
    foreign = tmp_path / "foreign.spz"
    foreign.write_bytes(gzip.compress(b"\0" * 64))
    with pytest.raises(ValueError, match="not an SPZ file"):
        load_spz(foreign)
    with pytest.raises(ValueError, match="must end in .spz"):
        save_spz(tmp_path / "x.ply", load_ply(exported["ply"]))
