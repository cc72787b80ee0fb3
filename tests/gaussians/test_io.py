import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from anchorsplat.gaussians.io import CURRENT_VERSION, Avatar, load_avatar, load_rig, save_avatar, save_rig
from anchorsplat.gaussians.motion import Motion, load_motion, save_motion
from anchorsplat.gaussians.ply import PlyGaussians, load_ply, save_ply
from anchorsplat.gaussians.rigged import bind_to_surface, canonical_posed
from anchorsplat.gaussians.synthetic import synthetic_rig

GOLDEN = Path(__file__).parent.parent / "data" / "golden_v1.anchorsplat"


@pytest.fixture
def avatar() -> Avatar:
    rig = synthetic_rig()
    return Avatar(rig, bind_to_surface(rig, 32, sh_degree=2, generator=torch.Generator().manual_seed(3)), {"k": 1})


def _same_avatar(a: Avatar, b: Avatar) -> None:
    for name in ("vertices_rest", "faces", "parents", "joints_rest", "skin_indices", "skin_weights",
                 "expression_dirs", "smplx_source", "smplx_fraction"):  # fmt: skip
        assert torch.equal(getattr(a.rig, name), getattr(b.rig, name)), name
    assert a.rig.joint_names == b.rig.joint_names and a.rig.expression_names == b.rig.expression_names
    for name in ("face_ids", "barycentric", "normal_offsets", "quats_canonical_wxyz", "log_scales", "opacity_logits",
                 "sh_coeffs"):  # fmt: skip
        assert torch.equal(getattr(a.gaussians, name), getattr(b.gaussians, name)), name


def test_avatar_round_trip(tmp_path, avatar):
    path = save_avatar(tmp_path / "a.anchorsplat", avatar)
    loaded = load_avatar(path)
    _same_avatar(avatar, loaded)
    assert loaded.info == {"k": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.anchorsplat"]  # no temp file left behind


def test_file_header_states_conventions(tmp_path, avatar):
    from safetensors import safe_open

    path = save_avatar(tmp_path / "a.anchorsplat", avatar)
    with safe_open(str(path), "pt") as f:
        header = f.metadata()
    assert header["format"] == "anchorsplat.avatar" and header["version"] == str(CURRENT_VERSION)
    assert header["units"] == "meters" and header["quaternion_order"] == "wxyz" and header["rig_kind"] == "synthetic"
    assert "+Y up" in header["axes"]


def test_golden_v1_file_still_loads():
    a = load_avatar(GOLDEN)
    assert len(a.gaussians) == 32 and a.rig.kind == "synthetic" and a.gaussians.sh_degree == 1
    assert a.gaussians.face_ids[:5].tolist() == [16, 15, 113, 78, 120]
    assert np.allclose(a.gaussians.barycentric[0].tolist(), [0.14994287, 0.33048034, 0.51957679])
    assert np.allclose(a.gaussians.sh_coeffs[0, 0].tolist(), [0.77987975, 0.35449085, 0.07089809])
    assert a.rig.expression_names == ("jawOpen", "eyeBlinkLeft")


def _rewrite(src: Path, dst: Path, *, header_update=None, tensor_update=None) -> Path:
    from safetensors import safe_open

    with safe_open(str(src), "pt") as f:
        header = dict(f.metadata())
    tensors = load_file(str(src))
    header.update(header_update or {})
    tensors.update(tensor_update or {})
    save_file(tensors, str(dst), metadata=header)
    return dst


def test_newer_version_refused(tmp_path):
    path = _rewrite(GOLDEN, tmp_path / "new.anchorsplat", header_update={"version": str(CURRENT_VERSION + 1)})
    with pytest.raises(ValueError, match="upgrade anchorsplat"):
        load_avatar(path)


def test_truncated_file_refused(tmp_path):
    data = GOLDEN.read_bytes()
    path = tmp_path / "cut.anchorsplat"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        load_avatar(path)


def test_nan_file_refused(tmp_path):
    bad = load_file(str(GOLDEN))["gaussians.log_scales"].clone()
    bad[3, 1] = float("nan")
    path = _rewrite(GOLDEN, tmp_path / "nan.anchorsplat", tensor_update={"gaussians.log_scales": bad})
    with pytest.raises(ValueError, match="NaN"):
        load_avatar(path)


def test_foreign_and_missing_files_refused(tmp_path):
    other = tmp_path / "other.anchorsplat"
    save_file({"x": torch.zeros(2)}, str(other), metadata={"format": "something.else"})
    with pytest.raises(ValueError, match="not an anchorsplat avatar file"):
        load_avatar(other)
    with pytest.raises(ValueError, match="does not exist"):
        load_avatar(tmp_path / "missing.anchorsplat")
    (tmp_path / "text.anchorsplat").write_text("hello")
    with pytest.raises(ValueError, match="not a readable"):
        load_avatar(tmp_path / "text.anchorsplat")
    with pytest.raises(ValueError, match="end in .anchorsplat"):
        save_avatar(tmp_path / "a.bin", load_avatar(GOLDEN))


def test_rig_file_round_trip_stores_blendshapes_sparsely(tmp_path):
    rig = synthetic_rig()
    path = save_rig(tmp_path / "r.rig.safetensors", rig)
    tensors = load_file(str(path))
    assert tensors["rig.expression_deltas"].shape[1] < rig.num_vertices  # only the moved vertices are stored
    loaded = load_rig(path)
    assert torch.equal(loaded.expression_dirs, rig.expression_dirs)
    with pytest.raises(ValueError, match="not an anchorsplat rig file"):
        load_rig(GOLDEN)


def test_ply_round_trip_and_standard_names(tmp_path, avatar):
    from plyfile import PlyData

    posed = canonical_posed(avatar.gaussians, avatar.rig)
    path = save_ply(tmp_path / "a.ply", posed)
    names = PlyData.read(str(path))["vertex"].data.dtype.names
    assert names[:9] == ("x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2")
    assert names[-8:] == ("opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3")
    assert len([n for n in names if n.startswith("f_rest_")]) == 3 * 8  # degree 2: 8 higher bases x 3 channels
    loaded = load_ply(path)
    assert torch.allclose(loaded.means, posed.means[0], atol=1e-6)
    assert torch.allclose(loaded.sh_coeffs, posed.sh_coeffs, atol=1e-6)
    assert torch.allclose(torch.exp(loaded.log_scales), posed.scales[0], rtol=1e-5)
    assert torch.allclose(torch.sigmoid(loaded.opacity_logits), posed.opacities[0], atol=1e-5)


def test_ply_rest_coefficients_are_channel_major(tmp_path):
    from plyfile import PlyData

    sh = torch.zeros(1, 4, 3)
    sh[0, 1:, 0] = torch.tensor([1.0, 2.0, 3.0])  # red
    sh[0, 1:, 1] = torch.tensor([4.0, 5.0, 6.0])  # green
    sh[0, 1:, 2] = torch.tensor([7.0, 8.0, 9.0])  # blue
    g = PlyGaussians(torch.zeros(1, 3), torch.tensor([[1.0, 0, 0, 0]]), torch.zeros(1, 3), torch.zeros(1), sh)
    path = save_ply(tmp_path / "one.ply", g)
    row = PlyData.read(str(path))["vertex"].data[0]
    assert [float(row[f"f_rest_{i}"]) for i in range(9)] == [1, 2, 3, 4, 5, 6, 7, 8, 9]


def test_bad_ply_refused(tmp_path):
    path = tmp_path / "bad.ply"
    path.write_text("ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nend_header\n1\n")
    with pytest.raises(ValueError, match="not a 3D Gaussian splatting"):
        load_ply(path)
    (tmp_path / "junk.ply").write_bytes(b"\x00\x01garbage")
    with pytest.raises(ValueError, match="not a readable PLY"):
        load_ply(tmp_path / "junk.ply")


def test_motion_file_round_trip_and_amass_layout(tmp_path):
    full = torch.randn(5, 55, 3) * 0.3
    motion = Motion.from_full_pose(full, torch.randn(5, 3), torch.rand(5, 2), ("jawOpen", "eyeBlinkLeft"), fps=25.0)
    save_motion(tmp_path / "m.npz", motion)
    loaded = load_motion(tmp_path / "m.npz")
    assert torch.allclose(loaded.full_pose(), full) and loaded.fps == 25.0
    assert loaded.expression_names == ("jawOpen", "eyeBlinkLeft")
    np.savez(tmp_path / "amass.npz", poses=full.reshape(5, 165).numpy(), trans=np.zeros((5, 3)), mocap_frame_rate=60.0)
    amass = load_motion(tmp_path / "amass.npz")
    assert torch.allclose(amass.body_pose, full[:, 1:22]) and amass.fps == 60.0


def test_bad_motion_files_refused(tmp_path):
    np.savez(tmp_path / "nan.npz", poses=np.full((2, 165), np.nan))
    with pytest.raises(ValueError, match="NaN"):
        load_motion(tmp_path / "nan.npz")
    np.savez(tmp_path / "wrong.npz", poses=np.zeros((2, 72)))
    with pytest.raises(ValueError, match="165"):
        load_motion(tmp_path / "wrong.npz")
    np.savez(tmp_path / "empty.npz", something=np.zeros(3))
    with pytest.raises(ValueError, match="neither"):
        load_motion(tmp_path / "empty.npz")
    (tmp_path / "cut.npz").write_bytes(b"PK\x03\x04broken")
    with pytest.raises(ValueError, match="truncated"):
        load_motion(tmp_path / "cut.npz")
    with pytest.raises(ValueError, match=".npz"):
        load_motion(_touch(tmp_path / "m.bvh"))


def _touch(path: Path) -> Path:
    path.write_text("x")
    return path


def test_json_metadata_is_plain(tmp_path, avatar):
    from safetensors import safe_open

    path = save_avatar(tmp_path / "a.anchorsplat", avatar)
    with safe_open(str(path), "pt") as f:
        data = json.loads(f.metadata()["data"])
    assert data["rig"]["joint_names"][0] == "pelvis"
