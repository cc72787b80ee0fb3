"""The web export folder: what it holds, the audio track, and replacing an earlier export."""

from __future__ import annotations

import json

import numpy as np
import pytest

from anchorsplat.gaussians.export_web import MARKER, export_web, web_avatar_data


def _avatar_js(folder) -> dict:
    text = (folder / "avatar.js").read_text()
    prefix = "window.ANCHORSPLAT_AVATAR = "
    assert text.startswith(prefix)
    return json.loads(text[len(prefix) :].rstrip().rstrip(";"))


def test_folder_is_self_contained(exported, avatar, motion):
    folder = exported["web"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(["index.html", "player.js", "avatar.js", MARKER])
    html = (folder / "index.html").read_text()
    assert '<script src="avatar.js"></script>' in html and '<script src="player.js"></script>' in html
    for name in ("index.html", "player.js"):  # no network: nothing fetched from elsewhere
        text = (folder / name).read_text()
        assert "http://" not in text and "https://" not in text and "import " not in text
    data = _avatar_js(folder)
    assert data["count"] == len(avatar.gaussians) and data["numJoints"] == avatar.rig.num_joints
    assert data["jointNames"] == list(avatar.rig.joint_names) and data["parents"] == avatar.rig.parents.tolist()
    assert data["animation"]["frames"] == len(motion) and data["animation"]["fps"] == motion.fps
    assert data["audio"] is None


def test_payload_arrays_have_the_documented_sizes(avatar):
    import base64

    data = web_avatar_data(avatar)
    n = len(avatar.gaussians)
    sizes = {name: len(base64.b64decode(b)) for name, b in data["buffers"].items()}
    assert sizes == {
        "centers": 12 * n,
        "quats": 16 * n,
        "scales": 12 * n,
        "colors": 4 * n,
        "joints": 8 * n,
        "weights": 16 * n,
    }
    weights = np.frombuffer(base64.b64decode(data["buffers"]["weights"]), "<f4").reshape(n, 4)
    np.testing.assert_allclose(weights.sum(1), 1.0, atol=1e-6)
    assert data["animation"] is None and len(data["morphs"]) == len(avatar.rig.expression_names)


def test_audio_is_copied_and_played(tmp_path, avatar, motion):
    audio = tmp_path / "speech.wav"
    audio.write_bytes(b"RIFF0000WAVEfmt ")  # the exporter copies it; the browser decodes it
    folder = export_web(avatar, tmp_path / "talk", motion=motion, audio_path=audio, title="<Ada>")
    assert (folder / "audio.wav").read_bytes() == audio.read_bytes()
    html = (folder / "index.html").read_text()
    assert 'src="audio.wav"' in html and "&lt;Ada&gt;" in html and "<Ada>" not in html
    assert _avatar_js(folder)["audio"] == "audio.wav"


def test_replaces_an_earlier_export_but_not_other_folders(tmp_path, avatar, motion):
    folder = export_web(avatar, tmp_path / "web", motion=motion)
    export_web(avatar, folder)  # again, without motion: replaced as a whole
    assert _avatar_js(folder)["animation"] is None
    assert not any(p.name.startswith(".web") for p in tmp_path.iterdir())  # no staging left behind
    other = tmp_path / "photos"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not an anchorsplat web export"):
        export_web(avatar, other)
    assert (other / "keep.txt").read_text() == "mine"


def test_audio_errors(tmp_path, avatar, motion):
    with pytest.raises(ValueError, match="does not exist"):
        export_web(avatar, tmp_path / "a", motion=motion, audio_path=tmp_path / "missing.wav")
    odd = tmp_path / "speech.xyz"
    odd.write_bytes(b"0")
    with pytest.raises(ValueError, match="convert it first"):
        export_web(avatar, tmp_path / "b", motion=motion, audio_path=odd)
    wav = tmp_path / "speech.wav"
    wav.write_bytes(b"0")
    with pytest.raises(ValueError, match="needs its motion"):
        export_web(avatar, tmp_path / "c", audio_path=wav)
