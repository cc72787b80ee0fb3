"""The exports in headless Chromium: three.js loads the glb (joints, morph targets, points, animation, and its
KHR_gaussian_splatting plugin), its SPZ and Gaussian-splat PLY loaders read our files, three's animation system
poses the glb like we do, and the web export draws the avatar. One browser session for all of it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from jstools import run_node

from anchorsplat.gaussians.conventions import quat_to_matrix
from anchorsplat.gaussians.ply import load_ply
from anchorsplat.gaussians.retarget import motion_to_rig
from anchorsplat.gaussians.rig import pose_mesh
from anchorsplat.gaussians.rigged import SH_C0, pose_lbs, to_lbs
from anchorsplat.gaussians.spz import load_spz

KEYS = (0, 2, 4)  # motion frames checked (10 fps: t = 0, 0.2, 0.4 s)


@pytest.fixture(scope="session")
def browser(chromium, tmp_path_factory, exported, body_glb, motion) -> dict:
    job = {
        "glb": [
            {"path": str(exported["glb"]), "times": [k / motion.fps for k in KEYS]},
            {"path": str(body_glb), "times": [], "details": False},
        ],
        "spz": str(exported["spz"]),
        "ply": str(exported["ply"]),
        "web": str(exported["web"]),
        "webTimes": [k / motion.fps for k in KEYS],
    }
    path = tmp_path_factory.mktemp("browser") / "job.json"
    path.write_text(json.dumps(job))
    result = run_node("browser_checks.mjs", path, timeout=180)
    assert result["pageErrors"] == []
    return result


def _covariances(quats_wxyz: torch.Tensor, scales: torch.Tensor) -> np.ndarray:
    """Upper triangles (c00 c01 c02 c11 c12 c22) of R diag(s^2) R^T, three.js's layout."""
    R = quat_to_matrix(quats_wxyz / quats_wxyz.norm(dim=-1, keepdim=True)).double()
    cov = R @ torch.diag_embed(scales.double() ** 2) @ R.transpose(-1, -2)
    return cov[:, [0, 0, 0, 1, 1, 2], [0, 1, 2, 1, 2, 2]].numpy()


def _rgba_bytes(sh_dc: torch.Tensor, opacities: torch.Tensor) -> np.ndarray:
    rgb = (sh_dc.double() * SH_C0 + 0.5).clamp(0, 1)
    return (torch.cat([rgb, opacities.double()[:, None]], 1) * 255).numpy()


def test_three_loads_the_glb_with_the_expected_counts(browser, avatar, motion):
    out = browser["glb"][0]
    rig = avatar.rig
    assert out["bones"] == rig.num_joints
    (body,) = out["skinnedMeshes"]
    assert body["bones"] == rig.num_joints and body["boneNames"] == list(rig.joint_names)
    assert body["vertices"] == rig.num_vertices and body["morphTargets"] == list(rig.expression_names)
    (points,) = out["points"]
    assert points["count"] == len(avatar.gaussians) and points["morphTargets"] == list(rig.expression_names)
    assert {"skinIndex", "skinWeight"} <= set(points["attributes"])
    (clip,) = out["animations"]
    assert clip["duration"] == pytest.approx((len(motion) - 1) / motion.fps, rel=1e-6)
    assert clip["tracks"] == rig.num_joints + 1 + 2  # joint rotations, root translation, two morph-weight tracks
    assert out["warnings"] == []


def test_three_loads_the_anny_body_glb(browser, body_avatar):
    out = browser["glb"][1]
    rig = body_avatar.rig
    assert out["bones"] == rig.num_joints == 104
    assert out["skinnedMeshes"][0]["morphTargets"] == list(rig.expression_names) and len(rig.expression_names) == 52
    assert out["points"][0]["count"] == len(body_avatar.gaussians) == out["splat"]["count"]
    assert out["warnings"] == []


def test_three_splat_plugin_reads_scales_rotations_opacities_and_colours(browser, avatar):
    splat = browser["glb"][0]["splat"]
    g = avatar.gaussians
    assert splat["type"] == "GaussianSplat" and splat["count"] == len(g)
    expected = _covariances(g.quats_canonical_wxyz, torch.exp(g.log_scales))
    np.testing.assert_allclose(np.reshape(splat["covariances"], (-1, 6)), expected, rtol=1e-4, atol=1e-10)
    colours = np.reshape(splat["colors"], (-1, 4))
    np.testing.assert_allclose(colours, _rgba_bytes(g.sh_coeffs[:, 0], torch.sigmoid(g.opacity_logits)), atol=1.01)


@pytest.mark.parametrize("index", range(len(KEYS)))
def test_three_poses_the_glb_like_we_do(browser, avatar, motion, index):
    posed = browser["glb"][0]["posed"][index]
    key = KEYS[index]
    assert posed["time"] == pytest.approx(key / motion.fps)
    inputs = motion_to_rig(motion.frame(slice(key, key + 1)), avatar.rig)
    body = pose_mesh(avatar.rig, inputs.joint_rotations, inputs.root_translation, inputs.expression).vertices[0]
    np.testing.assert_allclose(np.reshape(posed["body"], (-1, 3)), body.numpy(), atol=2e-5)
    splats = pose_lbs(to_lbs(avatar.gaussians, avatar.rig), avatar.rig, inputs).means[0]
    np.testing.assert_allclose(np.reshape(posed["splats"], (-1, 3)), splats.numpy(), atol=2e-5)
    if key:
        assert np.abs(body.numpy() - avatar.rig.vertices_rest.numpy()).max() > 0.05  # the pose really moves it


def _assert_three_geometry(out, ours, count: int) -> None:
    """three.js read as many splats as we wrote, at our centres, with our covariances."""
    assert out["count"] == count
    np.testing.assert_allclose(np.reshape(out["centers"], (-1, 3)), ours.means.numpy(), atol=1e-6)
    expected = _covariances(ours.quats_wxyz, torch.exp(ours.log_scales))
    np.testing.assert_allclose(np.reshape(out["covariances"], (-1, 6)), expected, rtol=1e-4, atol=1e-10)


def test_three_reads_our_spz_like_we_do(browser, exported, avatar):
    out = browser["spz"]
    ours = load_spz(exported["spz"])
    _assert_three_geometry(out, ours, len(avatar.gaussians))
    colours = np.reshape(out["colors"], (-1, 4))
    np.testing.assert_allclose(
        colours, _rgba_bytes(ours.sh_coeffs[:, 0], torch.sigmoid(ours.opacity_logits)), atol=1.01
    )


def test_three_reads_our_ply(browser, exported, avatar):
    _assert_three_geometry(browser["ply"], load_ply(exported["ply"]), len(avatar.gaussians))


def test_web_export_renders_the_avatar(browser):
    web = browser["web"]
    assert web["title"] == "anchorsplat: rendered", web["status"]
    assert web["nonBackground"] > 0.02 * web["width"] * web["height"]  # the avatar covers part of the view
    assert web["nonBackground"] < 0.9 * web["width"] * web["height"]  # ... and not all of it
    assert web["corner"][:3] == [31, 31, 36]  # the background colour where the avatar is not


@pytest.mark.parametrize("index", range(len(KEYS)))
def test_web_player_poses_like_we_do(browser, avatar, motion, index):
    posed = browser["web"]["posed"][index]
    key = KEYS[index]
    inputs = motion_to_rig(motion.frame(slice(key, key + 1)), avatar.rig)
    splats = pose_lbs(to_lbs(avatar.gaussians, avatar.rig), avatar.rig, inputs).means[0]
    np.testing.assert_allclose(np.reshape(posed["centers"], (-1, 3)), splats.numpy(), atol=2e-5)
