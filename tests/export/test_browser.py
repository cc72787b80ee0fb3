"""The exports in headless Chromium: three.js loads the glb (joints, morph targets, points, animation, and its
KHR_gaussian_splatting plugin), its SPZ and Gaussian-splat PLY loaders read our files, three's animation system
poses the glb like we do, three.js and Babylon.js draw the textured surface like our splat render, Babylon.js
loads the splats glb through KHR_gaussian_splatting, and the web export draws the avatar. One browser session for
all of it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from jstools import run_node
from shots import compare, decode_png, render_shot, save_side_by_side

from anchorsplat.gaussians.conventions import quat_to_matrix
from anchorsplat.gaussians.ply import load_ply
from anchorsplat.gaussians.retarget import motion_to_rig
from anchorsplat.gaussians.rig import pose_mesh
from anchorsplat.gaussians.rigged import SH_C0, canonical_posed, pose_lbs, to_lbs
from anchorsplat.gaussians.spz import load_spz

KEYS = (0, 2, 4)  # motion frames checked (10 fps: t = 0, 0.2, 0.4 s)
SHOT_KEYS = (0, 2)  # frames three.js draws (rest, and a posed frame with the jaw and a blink)
SHOT_SIZE, SHOT_FOV = 128, 30.0


def _shot_camera(avatar) -> dict:
    """A front camera framing the avatar's rest pose (three.js PerspectiveCamera terms)."""
    means = canonical_posed(avatar.gaussians, avatar.rig).means[0]
    centre = (means.min(0).values + means.max(0).values) / 2
    return {"eye": (centre + torch.tensor([0.0, 0.0, 4.2])).tolist(), "target": centre.tolist(), "fovY": SHOT_FOV,
            "size": SHOT_SIZE}  # fmt: skip


@pytest.fixture(scope="session")
def browser(chromium, tmp_path_factory, exported, body_glb, surface_glb, dense_avatar, motion) -> dict:
    shots = [{"time": k / motion.fps, **_shot_camera(dense_avatar)} for k in SHOT_KEYS]
    job = {
        "glb": [
            {"path": str(exported["glb"]), "times": [k / motion.fps for k in KEYS]},
            {"path": str(body_glb), "times": [], "details": False},
            {
                "path": str(surface_glb),
                "times": [k / motion.fps for k in KEYS],
                "details": False,
                "shots": shots,
            },
        ],
        "babylon": [{"path": str(surface_glb), "shots": shots}, {"path": str(exported["glb"]), "details": True}],
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
    assert out["skinnedMeshes"] == []  # the rig's body mesh is kept off-scene: no mannequin over the splats
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
    assert out["bones"] == rig.num_joints == 104 and out["skinnedMeshes"] == []
    assert out["points"][0]["morphTargets"] == list(rig.expression_names) and len(rig.expression_names) == 52
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
    splats = pose_lbs(to_lbs(avatar.gaussians, avatar.rig), avatar.rig, inputs).means[0]
    np.testing.assert_allclose(np.reshape(posed["splats"], (-1, 3)), splats.numpy(), atol=2e-5)
    if key:
        assert np.abs(splats.numpy() - posed_rest(avatar)).max() > 0.05  # the pose really moves it


def posed_rest(avatar) -> np.ndarray:
    return canonical_posed(avatar.gaussians, avatar.rig).means[0].numpy()


def test_three_loads_the_textured_surface(browser, dense_avatar, surface):
    out = browser["glb"][2]
    assert out["points"] == [] and out["warnings"] == []
    (mesh,) = out["skinnedMeshes"]
    assert mesh["name"] == "surface" and mesh["vertices"] == surface.num_vertices and mesh["uv"]
    assert mesh["boneNames"] == list(dense_avatar.rig.joint_names)
    assert mesh["morphTargets"] == list(dense_avatar.rig.expression_names)
    assert mesh["texture"] == {"width": surface.texture.shape[1], "height": surface.texture.shape[0]}


@pytest.mark.parametrize("index", range(len(KEYS)))
def test_three_poses_the_surface_like_we_do(browser, dense_avatar, surface, motion, index):
    posed = browser["glb"][2]["posed"][index]
    inputs = motion_to_rig(motion.frame(slice(KEYS[index], KEYS[index] + 1)), dense_avatar.rig)
    rig = surface.as_rig(dense_avatar.rig)
    ours = pose_mesh(rig, inputs.joint_rotations, inputs.root_translation, inputs.expression).vertices[0]
    np.testing.assert_allclose(np.reshape(posed["mesh"], (-1, 3)), ours.numpy(), atol=2e-5)


def _engine_shots(browser, engine: str) -> list[str]:
    return browser["glb"][2]["shots"] if engine == "three" else browser["babylon"][0]["shots"]


@pytest.mark.parametrize("engine", ["three", "babylon"])
@pytest.mark.parametrize("index", range(len(SHOT_KEYS)))
def test_engine_draws_the_surface_like_our_splat_render(browser, dense_avatar, motion, engine, index, tmp_path):
    """The engine's screenshot of the textured surface against our render of the splats in the same pose and
    camera: masked PSNR (where the splats are opaque) >= 20 dB, and the silhouettes agree."""
    shot = decode_png(_engine_shots(browser, engine)[index])
    reference = render_shot(dense_avatar, motion, {"time": SHOT_KEYS[index] / motion.fps, **_shot_camera(dense_avatar)})
    save_side_by_side(tmp_path / f"{engine}_vs_ours.png", shot, reference)
    result = compare(shot, reference)
    assert result.covered > 0.85  # the engine draws the surface where the splats are
    assert result.spill < 0.1  # ... and little where they are not
    assert result.psnr >= 20.0, result


def test_babylon_loads_the_textured_surface(browser, dense_avatar, surface):
    out = browser["babylon"][0]
    assert out["splats"] == [] and out["animationGroups"] == ["motion"]
    (mesh,) = out["meshes"]
    assert mesh["name"] == "surface" and mesh["vertices"] == surface.num_vertices
    assert mesh["boneNames"] == list(dense_avatar.rig.joint_names)
    assert mesh["morphTargets"] == list(dense_avatar.rig.expression_names)
    assert mesh["texture"] == {"width": surface.texture.shape[1], "height": surface.texture.shape[0]}


def test_babylon_loads_the_splats_through_khr_gaussian_splatting(browser, avatar):
    """Babylon.js 9 reads the glb's KHR_gaussian_splatting primitive as a Gaussian-splat mesh at our centres (its
    splat buffer is padded to a multiple of 16; the padding is not drawn). Its right-handed scene keeps glTF's
    axes."""
    out = browser["babylon"][1]
    assert out["meshes"] == []  # the splats glb holds no mesh: the splat mesh is all Babylon shows
    (splat,) = out["splats"]
    n = len(avatar.gaussians)
    assert splat["className"] == "GaussianSplattingMesh" and n <= splat["count"] < n + 16
    centres = np.reshape(splat["positions"], (-1, 4))[:n, :3]
    np.testing.assert_allclose(centres, posed_rest(avatar), atol=1e-5)


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
