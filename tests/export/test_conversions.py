"""The conversions at the file-format boundaries, against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import torch

from anchorsplat.gaussians.conventions import quat_wxyz_to_xyzw, quat_xyzw_to_wxyz
from anchorsplat.gaussians.export_gltf import gltf_opacities, gltf_rotations, gltf_scales, srgb_to_linear, top4_weights
from anchorsplat.gaussians.spz import pack_quaternions, unpack_quaternions

S = math.sqrt(0.5)


def test_quaternion_order_wxyz_xyzw_by_hand():
    # 90 degrees about +Z: w = cos 45, z = sin 45.
    wxyz = torch.tensor([[S, 0.0, 0.0, S], [1.0, 0.0, 0.0, 0.0], [0.5, 0.5, -0.5, 0.5]])
    xyzw = torch.tensor([[0.0, 0.0, S, S], [0.0, 0.0, 0.0, 1.0], [0.5, -0.5, 0.5, 0.5]])
    torch.testing.assert_close(quat_wxyz_to_xyzw(wxyz), xyzw)
    torch.testing.assert_close(quat_xyzw_to_wxyz(xyzw), wxyz)
    torch.testing.assert_close(gltf_rotations(wxyz), xyzw)


def test_gltf_rotations_are_unit():
    # The extension lets renderers skip renormalisation, so the file must hold unit quaternions.
    out = gltf_rotations(torch.tensor([[2.0, 0.0, 0.0, 0.0], [0.0, 3.0, 0.0, 4.0]]))
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0, 0.0, 1.0], [0.6, 0.0, 0.8, 0.0]]))


def test_scales_log_to_linear_by_hand():
    log_scales = torch.tensor([[0.0, -math.log(2.0), math.log(10.0)]])
    torch.testing.assert_close(gltf_scales(log_scales), torch.tensor([[1.0, 0.5, 10.0]]))


def test_opacity_logit_to_sigmoid_by_hand():
    logits = torch.tensor([0.0, math.log(3.0), -math.log(3.0), math.log(99.0)])
    torch.testing.assert_close(gltf_opacities(logits), torch.tensor([0.5, 0.75, 0.25, 0.99]))


def test_srgb_to_linear_by_hand():
    values = srgb_to_linear(np.array([0.0, 0.04045, 0.5, 1.0]))
    np.testing.assert_allclose(values, [0.0, 0.04045 / 12.92, 0.21404114, 1.0], rtol=1e-6)


def test_top4_weights_merges_duplicates_keeps_largest_and_renormalises():
    indices = np.array([[0, 1, 2, 3, 4], [1, 1, 2, 0, 0], [5, 5, 5, 5, 5]])
    weights = np.array([[0.1, 0.2, 0.3, 0.25, 0.15], [0.3, 0.3, 0.4, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0, 0.0]])
    joints, w = top4_weights(indices, weights, num_joints=6)
    assert joints.dtype == np.uint8 and w.dtype == np.float32
    np.testing.assert_array_equal(joints[0], [2, 3, 1, 4])
    np.testing.assert_allclose(w[0], np.array([0.3, 0.25, 0.2, 0.15]) / 0.9, rtol=1e-6)
    np.testing.assert_array_equal(joints[1], [1, 2, 0, 0])  # unused slots: joint 0, weight 0
    np.testing.assert_allclose(w[1], [0.6, 0.4, 0.0, 0.0], rtol=1e-6)
    np.testing.assert_array_equal(joints[2], [5, 0, 0, 0])
    np.testing.assert_array_equal(w[2], [1.0, 0.0, 0.0, 0.0])
    assert np.all(w.sum(1, dtype=np.float32) == np.float32(1.0))  # exactly 1 in float32, as validators check


def test_spz_smallest_three_quaternion_words_by_hand():
    quats_xyzw = np.array([[0.0, 0.0, 0.0, 1.0], [S, 0.0, 0.0, S], [0.0, -1.0, 0.0, 0.0]], dtype=np.float32)
    words = pack_quaternions(quats_xyzw)
    # identity: largest is w (index 3), the three others 0 -> only the index bits.
    assert words[0] == 3 << 30
    # x = w = sqrt(1/2): the first largest (x, index 0) is dropped; w is stored last with magnitude 511.
    assert words[1] == 511
    # -y: largest is y (index 1) and negative, so the quaternion is negated; the reference sets the sign bit
    # (q < 0) ^ negate of each zero component, magnitude 0.
    assert words[2] == (1 << 30) | (1 << 29) | (1 << 19) | (1 << 9)
    decoded = unpack_quaternions(words)
    np.testing.assert_allclose(np.abs((decoded * quats_xyzw).sum(1)), 1.0, atol=1e-6)
