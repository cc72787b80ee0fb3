"""The rigged glTF export: file structure, the KHR_gaussian_splatting attribute spaces, skinning in the file
against our own posing, and the round trip through the importer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gltf_skinning import skinned_positions

from anchorsplat.gaussians.conventions import quat_normalize, quat_wxyz_to_xyzw
from anchorsplat.gaussians.export_gltf import SPLAT_EXTENSION, export_glb
from anchorsplat.gaussians.import_gltf import import_glb, read_glb
from anchorsplat.gaussians.retarget import motion_to_rig
from anchorsplat.gaussians.rig import pose_mesh
from anchorsplat.gaussians.rigged import canonical_means, pose, pose_lbs, to_lbs

K = "KHR_gaussian_splatting:"


def _node(doc: dict, name: str) -> dict:
    return next(n for n in doc["nodes"] if n.get("name") == name)


def _splat_primitive(glb) -> dict:
    return glb.json["meshes"][_node(glb.json, "gaussians")["mesh"]]["primitives"][0]


def test_skeleton_joint_names_hierarchy_and_inverse_bind_matrices(exported, avatar):
    glb = read_glb(exported["glb"])
    doc, rig = glb.json, avatar.rig
    skin = doc["skins"][0]
    assert [doc["nodes"][j]["name"] for j in skin["joints"]] == list(rig.joint_names)
    parents = {c: p for p, node in enumerate(doc["nodes"]) for c in node.get("children", [])}
    assert [parents.get(j, -1) for j in skin["joints"]] == rig.parents.tolist()
    ibm = glb.accessor(skin["inverseBindMatrices"]).reshape(-1, 4, 4).transpose(0, 2, 1)  # column-major in glTF
    expected = np.tile(np.eye(4), (rig.num_joints, 1, 1))
    expected[:, :3, 3] = -rig.joints_rest.numpy()
    np.testing.assert_allclose(ibm, expected, atol=1e-7)
    assert doc["asset"]["version"] == "2.0" and doc["extensionsUsed"] == [SPLAT_EXTENSION]


def test_body_mesh_is_skinned_with_named_expression_morph_targets(exported, avatar):
    glb = read_glb(exported["glb"])
    body = glb.json["meshes"][_node(glb.json, "body")["mesh"]]
    assert body["extras"]["targetNames"] == list(avatar.rig.expression_names)
    primitive = body["primitives"][0]
    np.testing.assert_allclose(glb.accessor(primitive["attributes"]["POSITION"]), avatar.rig.vertices_rest.numpy())
    for target, dirs in zip(primitive["targets"], avatar.rig.expression_dirs, strict=True):
        np.testing.assert_allclose(glb.accessor(target["POSITION"]), dirs.numpy(), atol=1e-7)
    weights = glb.accessor(primitive["attributes"]["WEIGHTS_0"])
    np.testing.assert_allclose(weights.sum(1), 1.0, atol=1e-6)


def test_splat_attributes_follow_the_extension(exported, avatar):
    glb = read_glb(exported["glb"])
    primitive = _splat_primitive(glb)
    g, a = avatar.gaussians, primitive["attributes"]
    assert primitive["mode"] == 0 and primitive["extensions"][SPLAT_EXTENSION]["kernel"] == "ellipse"
    assert primitive["extensions"][SPLAT_EXTENSION]["colorSpace"] == "srgb_rec709_display"
    np.testing.assert_allclose(glb.accessor(a["POSITION"]), canonical_means(g, avatar.rig).numpy(), atol=1e-6)
    # linear scales, post-sigmoid opacity, unit xyzw rotations, raw SH per coefficient (m from -l to l)
    np.testing.assert_allclose(glb.accessor(a[K + "SCALE"]), torch.exp(g.log_scales).numpy(), rtol=1e-6)
    np.testing.assert_allclose(glb.accessor(a[K + "OPACITY"]), torch.sigmoid(g.opacity_logits).numpy(), rtol=1e-6)
    xyzw = quat_wxyz_to_xyzw(quat_normalize(g.quats_canonical_wxyz)).numpy()
    np.testing.assert_allclose(glb.accessor(a[K + "ROTATION"]), xyzw, atol=1e-7)
    np.testing.assert_allclose(glb.accessor(a[K + "SH_DEGREE_0_COEF_0"]), g.sh_coeffs[:, 0].numpy())
    for n in range(3):
        np.testing.assert_allclose(glb.accessor(a[f"{K}SH_DEGREE_1_COEF_{n}"]), g.sh_coeffs[:, 1 + n].numpy())
    assert f"{K}SH_DEGREE_2_COEF_0" not in a
    joints, weights = glb.accessor(a["JOINTS_0"]), glb.accessor(a["WEIGHTS_0"])
    lbs = to_lbs(g, avatar.rig)
    dense_file = np.zeros((len(g), avatar.rig.num_joints))
    np.add.at(dense_file, (np.arange(len(g))[:, None].repeat(4, 1), joints.astype(np.int64)), weights)
    dense_ours = np.zeros_like(dense_file)
    np.add.at(
        dense_ours, (np.arange(len(g))[:, None].repeat(4, 1), lbs.joint_indices.numpy()), lbs.joint_weights.numpy()
    )
    np.testing.assert_allclose(dense_file, dense_ours, atol=1e-6)


@pytest.mark.parametrize("key", [0, 2, 4])
def test_skinning_in_the_file_equals_our_posing(exported, avatar, motion, key):
    """glTF's own posing of the file (morphs, then skinning with the animated nodes) against pose_mesh for the
    body, pose_lbs exactly and the triangle-bound pose() within the LBS approximation for the splats."""
    glb = read_glb(exported["glb"])
    inputs = motion_to_rig(motion.frame(slice(key, key + 1)), avatar.rig)
    body = pose_mesh(avatar.rig, inputs.joint_rotations, inputs.root_translation, inputs.expression).vertices[0]
    np.testing.assert_allclose(skinned_positions(glb, "body", key), body.numpy(), atol=1e-5)
    splats = skinned_positions(glb, "gaussians", key)
    lbs = pose_lbs(to_lbs(avatar.gaussians, avatar.rig), avatar.rig, inputs).means[0]
    np.testing.assert_allclose(splats, lbs.numpy(), atol=1e-5)
    bound = pose(avatar.gaussians, avatar.rig, inputs).means[0].numpy()
    error = np.linalg.norm(splats - bound, axis=1)
    # On a triangle that one joint moves rigidly the two representations agree exactly; elsewhere LBS of the
    # blended weights approximates the binding (second order in the triangle size: the synthetic rig's triangles
    # are whole box sides, up to 45 cm, and every joint here turns by ~0.4 rad).
    rig = avatar.rig
    dense = torch.zeros(rig.num_vertices, rig.num_joints).scatter_add_(1, rig.skin_indices, rig.skin_weights)
    corners = dense[rig.faces[avatar.gaussians.face_ids]]  # N 3 J
    rigid = ((corners - corners[:, :1]).abs().amax(dim=(1, 2)) < 1e-6) & (corners[:, 0].amax(-1) > 1 - 1e-6)
    # ... and no blendshape moves it (engines blend the deltas linearly; the binding follows the bent triangle).
    moved = rig.expression_dirs.abs().amax(dim=(0, 2)) > 0
    rigid = (rigid & ~moved[rig.faces[avatar.gaussians.face_ids]].any(-1)).numpy()
    assert rigid.sum() > 10 and (~rigid).sum() > 10
    assert error[rigid].max() < 1e-5
    assert error.max() < (1e-5 if key == 0 else 0.08) and np.median(error) < 0.01, (np.median(error), error.max())


def test_animation_keys_at_the_motion_frame_rate(exported, avatar, motion):
    glb = read_glb(exported["glb"])
    (animation,) = glb.json["animations"]
    times = glb.accessor(animation["samplers"][0]["input"])
    np.testing.assert_allclose(times, np.arange(len(motion)) / motion.fps, rtol=1e-6)
    paths = [(c["target"]["node"], c["target"]["path"]) for c in animation["channels"]]
    j = avatar.rig.num_joints
    assert sorted(paths) == sorted(
        [(k, "rotation") for k in range(j)] + [(0, "translation"), (j, "weights"), (j + 1, "weights")]
    )
    assert "animations" not in read_glb(exported["glb_rest"]).json


def test_import_round_trip_reproduces_the_avatar(exported, avatar, motion):
    back = import_glb(exported["glb"])
    rig, g = avatar.rig, avatar.gaussians
    assert back.rig.joint_names == rig.joint_names and back.rig.expression_names == rig.expression_names
    assert back.info == avatar.info and back.rig.kind == rig.kind
    for name in ("vertices_rest", "joints_rest", "skin_weights", "expression_dirs", "smplx_fraction"):
        torch.testing.assert_close(getattr(back.rig, name), getattr(rig, name), atol=1e-7, rtol=0)
    for name in ("faces", "parents", "skin_indices", "smplx_source"):
        assert torch.equal(getattr(back.rig, name), getattr(rig, name)), name
    assert torch.equal(back.gaussians.face_ids, g.face_ids)
    torch.testing.assert_close(back.gaussians.barycentric, g.barycentric, atol=0, rtol=0)
    torch.testing.assert_close(back.gaussians.sh_coeffs, g.sh_coeffs, atol=0, rtol=0)
    torch.testing.assert_close(torch.exp(back.gaussians.log_scales), torch.exp(g.log_scales), rtol=1e-6, atol=0)
    torch.testing.assert_close(
        torch.sigmoid(back.gaussians.opacity_logits), torch.sigmoid(g.opacity_logits), atol=1e-6, rtol=0
    )
    a, b = pose(g, rig, motion), pose(back.gaussians, back.rig, motion)
    torch.testing.assert_close(b.means, a.means, atol=1e-5, rtol=0)
    torch.testing.assert_close(b.scales, a.scales, atol=1e-6, rtol=1e-5)
    assert ((b.quats_wxyz * a.quats_wxyz).sum(-1).abs() > 1 - 1e-6).all()


def test_max_gaussians_keeps_the_most_opaque(tmp_path, avatar):
    path = export_glb(avatar, tmp_path / "small.glb", max_gaussians=10)
    back = import_glb(path)
    assert len(back.gaussians) == 10
    kept = torch.sort(torch.sigmoid(back.gaussians.opacity_logits), descending=True).values
    expected = torch.sort(torch.sigmoid(avatar.gaussians.opacity_logits), descending=True).values[:10]
    torch.testing.assert_close(kept, expected, atol=1e-6, rtol=0)


def test_user_errors_are_clear(tmp_path, avatar, exported):
    with pytest.raises(ValueError, match="must end in .glb"):
        export_glb(avatar, tmp_path / "x.gltf")
    with pytest.raises(ValueError, match="max_gaussians must be at least 1"):
        export_glb(avatar, tmp_path / "x.glb", max_gaussians=0)
    with pytest.raises(ValueError, match="not a glTF binary"):
        import_glb(exported["ply"])
    truncated = tmp_path / "truncated.glb"
    truncated.write_bytes(exported["glb"].read_bytes()[:200])
    with pytest.raises(ValueError, match="truncated"):
        import_glb(truncated)


def test_points_without_our_binding_are_bound_to_the_nearest_triangle(avatar):
    """Another exporter's splats on our rig (no _FACE_ID / _BARYCENTRIC / _NORMAL_OFFSET) get a binding that puts
    them back exactly where they were."""
    from anchorsplat.gaussians.import_gltf import bind_to_nearest_triangle

    points = canonical_means(avatar.gaussians, avatar.rig) + 0.003 * torch.randn(len(avatar.gaussians), 3)
    binding = bind_to_nearest_triangle(points, avatar.rig)
    rebound = type(avatar.gaussians)(
        binding.face_ids, binding.barycentric, binding.normal_offsets, avatar.gaussians.quats_canonical_wxyz,
        avatar.gaussians.log_scales, avatar.gaussians.opacity_logits, avatar.gaussians.sh_coeffs,
    )  # fmt: skip
    torch.testing.assert_close(canonical_means(rebound, avatar.rig), points, atol=1e-5, rtol=0)
    torch.testing.assert_close(binding.barycentric.sum(-1), torch.ones(len(points)), atol=1e-5, rtol=0)
