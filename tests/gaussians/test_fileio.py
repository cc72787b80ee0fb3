"""The one atomic writer and the one versioned-file reader (anchorsplat.gaussians.fileio)."""

import json
import os

import numpy as np
import pytest
import torch

from anchorsplat.gaussians.fileio import (
    TEMP_MARK,
    FileFormat,
    FileFormatError,
    atomic_path,
    atomic_write_bytes,
    read_json,
    read_npz,
    read_safetensors,
    read_torch,
    remove_leftovers,
    staged_folder,
    write_json,
    write_safetensors,
    write_torch,
)

V2 = FileFormat(
    "test.thing", 2, "thing file", "make it again", migrations={1: lambda meta, t: ({**meta, "b": meta["a"] * 2}, t)}
)


def test_atomic_write_replaces_whole_and_leaves_nothing_on_failure(tmp_path):
    out = tmp_path / "sub" / "a.bin"
    atomic_write_bytes(out, b"one")
    assert out.read_bytes() == b"one"
    assert oct(out.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    with pytest.raises(RuntimeError), atomic_path(out) as tmp:
        tmp.write_bytes(b"half")
        assert TEMP_MARK in tmp.name and tmp.suffix == ".bin" and tmp.parent == out.parent
        raise RuntimeError("killed")
    assert out.read_bytes() == b"one"
    assert sorted(p.name for p in out.parent.iterdir()) == ["a.bin"]


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_atomic_write_to_a_folder_or_under_a_file_is_a_clear_oserror(tmp_path):
    (tmp_path / "dir.bin").mkdir()
    with pytest.raises(IsADirectoryError):
        atomic_write_bytes(tmp_path / "dir.bin", b"x")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        atomic_write_bytes(tmp_path / "file" / "a.bin", b"x")


def test_staged_folder_swaps_whole_and_keeps_the_old_one_on_failure(tmp_path):
    out = tmp_path / "dataset"
    with staged_folder(out) as stage:
        (stage / "a.txt").write_text("first")
    assert (out / "a.txt").read_text() == "first"
    with pytest.raises(RuntimeError), staged_folder(out) as stage:
        (stage / "b.txt").write_text("second")
        raise RuntimeError("killed")
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"]
    with staged_folder(out) as stage:
        (stage / "b.txt").write_text("second")
        assert (out / "a.txt").exists()  # the old folder stays readable until the swap
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]


def test_remove_leftovers_removes_only_temp_names(tmp_path):
    (tmp_path / "keep.json").write_text("{}")
    (tmp_path / ".hidden").write_text("mine")
    (tmp_path / f".clip{TEMP_MARK}abc.safetensors").write_text("half")
    (tmp_path / "fit").mkdir()
    (tmp_path / "fit" / f".checkpoint{TEMP_MARK}x.pt").write_text("half")
    (tmp_path / f".dataset{TEMP_MARK}q").mkdir()
    (tmp_path / f".dataset{TEMP_MARK}q" / "img.png").write_text("half")
    removed = remove_leftovers(tmp_path)
    assert len(removed) == 3
    assert sorted(p.name for p in tmp_path.rglob("*")) == [".hidden", "fit", "keep.json"]


def test_json_versions_migrate_newer_refused_nan_refused(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"format": "test.thing", "version": 1, "a": 3}))
    assert read_json(path, V2) == {"a": 3, "b": 6}
    write_json(path, V2, {"a": 1, "b": 5})
    assert read_json(path, V2) == {"a": 1, "b": 5}
    path.write_text(json.dumps({"format": "test.thing", "version": 3}))
    with pytest.raises(FileFormatError, match="upgrade anchorsplat"):
        read_json(path, V2)
    path.write_text(json.dumps({"format": "other.thing", "version": 1}))
    with pytest.raises(FileFormatError, match="'other.thing'"):
        read_json(path, V2)
    path.write_text('{"format": "test.thing", "version": 2, "a": NaN}')
    with pytest.raises(FileFormatError, match="JSON"):
        read_json(path, V2)
    with pytest.raises(ValueError):
        write_json(path, V2, {"a": float("inf")})
    path.write_text('{"format": "test.thing", "vers')
    with pytest.raises(FileFormatError, match="truncated"):
        read_json(path, V2)
    with pytest.raises(FileFormatError, match="is a folder"):
        read_json(tmp_path, V2)
    with pytest.raises(FileFormatError, match="does not exist"):
        read_json(tmp_path / "no.json", V2)


def test_safetensors_round_trip_truncation_and_non_finite(tmp_path):
    path = tmp_path / "t.safetensors"
    write_safetensors(path, V2, {"x": torch.arange(6.0).reshape(2, 3)}, {"a": 1, "b": 2}, {"units": "m"})
    meta, tensors = read_safetensors(path, V2)
    assert meta == {"a": 1, "b": 2} and torch.equal(tensors["x"], torch.arange(6.0).reshape(2, 3))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 5])
    with pytest.raises(FileFormatError, match="truncated"):
        read_safetensors(path, V2)
    with pytest.raises(FileFormatError, match="NaN"):
        write_safetensors(path, V2, {"x": torch.tensor([float("nan")])})
    from safetensors.torch import save_file

    save_file({"x": torch.tensor([1.0, float("inf")])}, str(path), metadata={"format": "test.thing", "version": "2"})
    with pytest.raises(FileFormatError, match="NaN or infinite"):
        read_safetensors(path, V2)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_torch_state_loads_weights_only(tmp_path):
    path = tmp_path / "c.pt"
    write_torch(path, V2, {"w": torch.ones(2), "step": 3, "opt": {"state": {0: {"m": torch.zeros(1)}}}})
    state = read_torch(path, V2)
    assert state["step"] == 3 and torch.equal(state["w"], torch.ones(2))
    torch.save({"format": "test.thing", "version": 2, "evil": _Evil()}, path)
    with pytest.raises(FileFormatError, match="cannot be read"):
        read_torch(path, V2)  # weights_only refuses to run the pickled call
    write_torch(path, V2, {"w": torch.ones(2)})
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(FileFormatError, match="truncated"):
        read_torch(path, V2)


def test_npz_refuses_text_pickles_and_truncation(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, a=np.arange(3))
    assert read_npz(path, "motion file")["a"].tolist() == [0, 1, 2]
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(FileFormatError, match="motion file"):
        read_npz(path, "motion file")
    path.write_text("hello")
    with pytest.raises(FileFormatError, match="not an .npz archive"):
        read_npz(path, "motion file")
    np.savez(path, a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(FileFormatError, match="pickles"):
        read_npz(path, "motion file")
