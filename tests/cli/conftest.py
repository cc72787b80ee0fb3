"""The CLI tests' inputs: small valid files and their broken variants, written in code."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from clitools import GOLDEN, motion_npz, rewrite_avatar


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_inputs")
    rewrite_avatar(root / "ok.anchorsplat")
    rewrite_avatar(
        root / "face_minus_huge.anchorsplat",
        gaussians_face_ids=lambda t: t.index_fill(0, torch.tensor([0]), -1_000_000),
    )  # noqa: E501
    rewrite_avatar(
        root / "face_minus_5.anchorsplat", gaussians_face_ids=lambda t: t.index_fill(0, torch.tensor([0]), -5)
    )  # noqa: E501
    rewrite_avatar(root / "log_scales_80.anchorsplat", gaussians_log_scales=lambda t: torch.full_like(t, 80.0))
    empty = {name: (lambda t: t[:0]) for name in ("gaussians_face_ids", "gaussians_barycentric",
             "gaussians_normal_offsets", "gaussians_quats_canonical_wxyz", "gaussians_log_scales",
             "gaussians_opacity_logits", "gaussians_sh_coeffs")}  # fmt: skip
    rewrite_avatar(root / "no_gaussians.anchorsplat", **empty)
    data = GOLDEN.read_bytes()
    (root / "truncated.anchorsplat").write_bytes(data[: len(data) // 2])
    motion_npz(root / "ok.npz")
    motion_npz(root / "vector_rate.npz", mocap_frame_rate=np.array([30.0, 60.0], np.float32))
    motion_npz(root / "angles_1e30.npz", body_pose=np.full((4, 63), 1e30, np.float32))
    motion_npz(root / "transl_1e20.npz", transl=np.full((4, 3), 1e20, np.float32))
    motion_npz(root / "bad_shape.npz", body_pose=np.zeros((4, 62), np.float32))
    (root / "text.npz").write_text("this is not a motion\n")
    (root / "a_file").write_text("in the way\n")
    (root / "a_folder").mkdir()
    return root
