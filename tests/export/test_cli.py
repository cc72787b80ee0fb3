"""``anchorsplat export`` end to end: every format, --motion, --audio (audio-to-motion in the CLI), and one-line
errors with exit status 2."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anchorsplat import cli
from anchorsplat.gaussians.import_gltf import import_glb, read_glb
from anchorsplat.gaussians.io import save_avatar
from anchorsplat.gaussians.motion import save_motion
from anchorsplat.gaussians.ply import load_ply
from anchorsplat.gaussians.rigged import pose
from anchorsplat.gaussians.spz import load_spz


@pytest.fixture(scope="module")
def files(tmp_path_factory, avatar, motion):
    import wave

    root = tmp_path_factory.mktemp("cli")
    save_avatar(root / "ada.anchorsplat", avatar)
    save_motion(root / "wave.npz", motion)
    t = np.arange(16000) / 16000.0  # one second of voiced bursts at 3 Hz: the mouth opens and closes
    gate = np.sin(2 * np.pi * 3 * t) > 0
    noise = np.random.default_rng(0).standard_normal(len(t))
    samples = (0.3 * np.sin(2 * np.pi * 140 * t) + 0.05 * noise) * gate
    with wave.open(str(root / "speech.wav"), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(16000)
        f.writeframes((samples * 32767).astype("<i2").tobytes())
    return root


def test_glb_with_motion_and_default_output_name(files, avatar, motion):
    cli.main([
        "export", str(files / "ada.anchorsplat"), "--format", "glb", "--splats", "only", "--motion",
        str(files / "wave.npz"),
    ])  # fmt: skip
    glb = read_glb(files / "ada.glb")
    times = glb.accessor(glb.json["animations"][0]["samplers"][0]["input"])
    assert len(times) == len(motion)
    assert len(import_glb(files / "ada.glb").gaussians) == len(avatar.gaussians)


def test_ply_and_spz_of_a_motion_frame(files, avatar, motion):
    cli.main(["export", str(files / "ada.anchorsplat"), "--format", "ply", "--motion", str(files / "wave.npz"),
              "--frame", "3", "--out", str(files / "f3.ply")])  # fmt: skip
    cli.main(["export", str(files / "ada.anchorsplat"), "--format", "spz", "--out", str(files / "rest.spz")])
    expected = pose(avatar.gaussians, avatar.rig, motion.frame(slice(3, 4)))
    torch.testing.assert_close(load_ply(files / "f3.ply").means, expected.means[0], atol=1e-6, rtol=0)
    rest = pose(avatar.gaussians, avatar.rig, motion.frame(slice(0, 1)))  # frame 0 is the rest pose
    torch.testing.assert_close(load_spz(files / "rest.spz").means, rest.means[0], atol=2e-4, rtol=0)


def test_audio_drives_the_glb_and_web_exports(files, avatar):
    cli.main(["export", str(files / "ada.anchorsplat"), "--format", "glb", "--splats", "only", "--audio",
              str(files / "speech.wav"), "--audio-model", "baseline", "--out", str(files / "talk.glb")])  # fmt: skip
    glb = read_glb(files / "talk.glb")
    animation = glb.json["animations"][0]
    assert len(glb.accessor(animation["samplers"][0]["input"])) == 30  # 1 s at 30 fps
    weights = next(c for c in animation["channels"] if c["target"]["path"] == "weights")
    jaw = glb.accessor(animation["samplers"][weights["sampler"]]["output"]).reshape(30, -1)[:, 0]  # jawOpen
    assert jaw.max() > 0.1 and jaw[0] == 0.0  # speech opens the mouth; frame 0 (nothing heard yet) is neutral
    cli.main(["export", str(files / "ada.anchorsplat"), "--format", "web", "--audio", str(files / "speech.wav"),
              "--audio-model", "baseline", "--out", str(files / "talk_web")])  # fmt: skip
    assert (files / "talk_web" / "audio.wav").read_bytes() == (files / "speech.wav").read_bytes()
    assert 'src="audio.wav"' in (files / "talk_web" / "index.html").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "glb", "--out", "x.ply"], "must end in .glb"),
        (["--format", "ply", "--max-gaussians", "5"], "--max-gaussians applies to --format glb and vrm"),
        (["--motion", "wave.npz", "--audio", "speech.wav"], "not both"),
        (["--format", "ply", "--motion", "wave.npz", "--frame", "9"], "out of range"),
        (["--format", "spz", "--frame", "2"], "--frame needs --motion"),
        (["--format", "glb", "--motion", "wave.npz", "--frame", "2"], "--frame applies to obj, ply and spz"),
        (["--max-triangles", "0"], "--max-triangles 0 is too small"),
        (["--texture-size", "1000"], "--texture-size 1000 must be a power of two from 16 to 8192"),
        (["--texture-size", "16384"], "--texture-size 16384 must be a power of two from 16 to 8192"),
        (["--format", "obj", "--splats", "only"], "--splats only does not go with --format obj"),
        (["--format", "obj", "--out", "x.glb"], "must end in .obj"),
        (["--format", "vrm", "--splats", "only"], "--splats only does not go with --format vrm"),
        (["--format", "vrm", "--motion", "wave.npz"], "--format vrm stores no animation"),
        (["--format", "vrm"], "no joint for the VRM humanoid bones"),
        (["--format", "web", "--audio", "wave.npz"], "convert it first"),
        (["--audio", "missing.wav"], "does not exist"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(files, before, capsys, monkeypatch, args, message):
    monkeypatch.chdir(files)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["export", "ada.anchorsplat", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("anchorsplat: error: ") and message in err and "\n" not in err
    assert sorted(p.name for p in files.iterdir()) == before  # nothing half-written


@pytest.fixture(scope="module")
def before(files) -> list[str]:
    return sorted(p.name for p in files.iterdir())


def test_glb_and_obj_of_the_surface(files, dense_avatar, motion):
    """The default glb export: the surface file and the splats beside it; obj: mesh + MTL + texture + splats."""
    save_avatar(files / "dense.anchorsplat", dense_avatar)
    small = ["--max-triangles", "800", "--texture-size", "32", "--render-resolution", "128"]
    cli.main(["export", str(files / "dense.anchorsplat"), "--motion", str(files / "wave.npz"), *small])
    surface_doc = read_glb(files / "dense.glb").json
    assert [n["name"] for n in surface_doc["nodes"] if "mesh" in n] == ["surface"]
    assert len(import_glb(files / "dense.splats.glb").gaussians) == len(dense_avatar.gaussians)
    cli.main(["export", str(files / "dense.anchorsplat"), "--format", "obj", "--motion", str(files / "wave.npz"),
              "--frame", "2", *small])  # fmt: skip
    assert {"dense.obj", "dense.mtl", "dense.png", "dense.ply"} <= {p.name for p in files.iterdir()}
    posed = pose(dense_avatar.gaussians, dense_avatar.rig, motion.frame(slice(2, 3)))
    torch.testing.assert_close(load_ply(files / "dense.ply").means, posed.means[0], atol=1e-6, rtol=0)
    text = (files / "dense.obj").read_text()
    vertices = np.array([line.split()[1:] for line in text.splitlines() if line.startswith("v ")], dtype=float)
    lo, hi = posed.means[0].min(0).values.numpy(), posed.means[0].max(0).values.numpy()
    assert (vertices.min(0) > lo - 0.1).all() and (vertices.max(0) < hi + 0.1).all()  # the obj is in frame 2's pose
