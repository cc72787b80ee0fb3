"""The player: streamed frames, mp4 with the audio muxed in, motion files alone or under an audio-driven face,
the ``anchorsplat play`` command, and the shipped Anny avatar."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from anchorsplat.gaussians.assets import assets_dir
from anchorsplat.gaussians.motion import SMPLX_JOINT_NAMES, Motion, save_motion
from anchorsplat.runtime.audio import Audio
from anchorsplat.runtime.channels import EXPRESSION_NAMES, combine_motion, motion_for_rig
from anchorsplat.runtime.player import StreamingPlayer, iter_frames, play

ASSETS = assets_dir()

RES = 48
ELBOW = SMPLX_JOINT_NAMES.index("left_elbow")


def _probe(path: Path) -> dict:
    """Decoded video frame count, size, and the decoded audio (mono float)."""
    import av

    with av.open(str(path)) as container:
        video = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    with av.open(str(path)) as container:
        audio = [f.to_ndarray().reshape(-1) for f in container.decode(audio=0)] if container.streams.audio else []
        rate = container.streams.audio[0].rate if container.streams.audio else None
    return {"frames": video, "audio": np.concatenate(audio) if audio else np.zeros(0), "rate": rate}


def _elbow_motion(frames: int, fps: float = 30.0) -> Motion:
    full = torch.zeros(frames, 55, 3)
    full[:, ELBOW, 1] = torch.linspace(0.0, 1.5, frames)  # the left forearm swings forward
    return Motion.from_full_pose(full, fps=fps)


def test_play_writes_an_mp4_with_the_audio_muxed_in(tmp_path, tiny_avatar, speech):
    sound = speech[:16000]
    out = play(tiny_avatar, audio=Audio(sound, 16000), out=tmp_path / "talk.mp4", resolution=RES, fps=6.0)
    probe = _probe(out)
    assert len(probe["frames"]) == 6  # ceil(1 s * 6 fps)
    assert probe["frames"][0].shape == (RES, RES, 3)
    assert probe["rate"] == 16000
    decoded = probe["audio"]
    assert abs(len(decoded) / 16000 - 1.0) < 0.1  # AAC adds a little priming
    lag = int(np.argmax(np.correlate(decoded[:12000], sound[2000:6000], "valid")))  # the speech itself is there
    got, want = decoded[lag : lag + 4000], sound[2000:6000]
    assert np.corrcoef(got, want)[0, 1] > 0.95
    assert not list(tmp_path.glob(".*")), "no temporary file is left behind"


def test_streamed_frames_follow_the_audio_and_carry_latency(tiny_avatar, speech):
    player = StreamingPlayer(tiny_avatar, resolution=RES, fps=10.0, model="baseline", view="face", head_motion=0.0)
    frames = list(iter_frames(player, Audio(speech[:9600], 16000), 6))
    assert [f.index for f in frames] == list(range(6))
    assert all(f.rgb.shape == (RES, RES, 3) and f.rgb.dtype == np.uint8 for f in frames)
    assert all(f.latency_ms >= f.compute_ms > 0 for f in frames)
    assert frames[5].time_s == pytest.approx(0.5)
    jaw = np.array([float(f.motion.expression[0, f.motion.expression_names.index("jawOpen")]) for f in frames])
    closed, opened = int(np.argmin(jaw)), int(np.argmax(jaw))
    assert jaw[opened] > 0.3 and jaw[closed] < 0.05
    # the synthetic rig's jawOpen blendshape lowers the head box's bottom: the face view sees it move
    assert np.abs(frames[opened].rgb.astype(int) - frames[closed].rgb.astype(int)).max() > 0


def test_a_motion_file_alone_drives_the_body(tmp_path, tiny_avatar):
    path = tmp_path / "swing.npz"
    save_motion(path, _elbow_motion(20, fps=20.0))  # 1 s at 20 fps
    out = play(tiny_avatar, motion=path, out=tmp_path / "swing.mp4", resolution=RES, fps=4.0)
    probe = _probe(out)
    assert len(probe["frames"]) == 4 and len(probe["audio"]) == 0
    first, last = (f.astype(int) for f in (probe["frames"][0], probe["frames"][-1]))
    assert np.abs(first - last).max() > 50, "the arm moved"


def test_audio_face_on_top_of_a_motion_file(tiny_avatar, speech):
    body = _elbow_motion(10, fps=10.0)  # 1 s
    player = StreamingPlayer(tiny_avatar, resolution=RES, fps=5.0, model="baseline", motion=body)
    frames = list(iter_frames(player, Audio(speech[:25600], 16000), 8))  # 1.6 s
    assert len(frames) == 8
    elbow = torch.stack([f.motion.full_pose()[0, ELBOW, 1] for f in frames])
    assert torch.allclose(elbow[:5], body.body_pose[torch.arange(0, 10, 2), ELBOW - 1, 1])
    assert torch.all(elbow[5:] == body.body_pose[-1, ELBOW - 1, 1]), "past its end the motion holds its last frame"
    jaw = torch.stack([f.motion.expression[0, f.motion.expression_names.index("jawOpen")] for f in frames])
    assert jaw.max() > 0.3, "the audio drives the face"


def test_combine_motion_and_rig_adaptation(tiny_avatar):
    body = _elbow_motion(2)
    body = body.with_expression(("jawOpen", "cheekPuff"), torch.tensor([[0.9, 0.4], [0.9, 0.4]]))
    full = torch.zeros(2, 55, 3)
    full[:, SMPLX_JOINT_NAMES.index("head"), 0] = 0.1
    full[:, SMPLX_JOINT_NAMES.index("jaw"), 0] = 0.2
    face = Motion.from_full_pose(full, expression=torch.full((2, 1), 0.4), expression_names=("jawOpen",))
    both = combine_motion(body, face)
    assert torch.equal(both.body_pose[:, ELBOW - 1], body.body_pose[:, ELBOW - 1])
    assert torch.allclose(both.full_pose()[:, SMPLX_JOINT_NAMES.index("head"), 0], torch.full((2,), 0.1))
    assert both.expression_names == ("jawOpen", "cheekPuff")
    assert torch.allclose(both.expression, torch.tensor([[0.4, 0.4], [0.4, 0.4]]))
    # the synthetic rig has no jaw joint but a jawOpen blendshape: the jaw must not be counted twice
    adapted = motion_for_rig(both, tiny_avatar.rig)
    assert adapted.jaw_pose.abs().max() == 0 and torch.allclose(adapted.expression[:, 0], both.expression[:, 0])
    with pytest.raises(ValueError, match="equal lengths"):
        combine_motion(body, face.frame(0))


def test_play_errors_are_clear(tmp_path, tiny_avatar):
    with pytest.raises(ValueError, match="nothing to play"):
        play(tiny_avatar, out=tmp_path / "a.mp4")
    with pytest.raises(ValueError, match="video"):
        play(tiny_avatar, audio=Audio(np.zeros(1600, np.float32), 16000), out=tmp_path / "a.png")
    with pytest.raises(ValueError, match="resolution"):
        StreamingPlayer(tiny_avatar, resolution=8)
    with pytest.raises(ValueError, match="view"):
        StreamingPlayer(tiny_avatar, resolution=RES, view="top", model="baseline")


def _write_wav(path: Path, samples: np.ndarray) -> None:
    import wave

    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(16000)
        f.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def test_cli_play(tmp_path, tiny_avatar, speech, capsys):
    from anchorsplat.cli import main
    from anchorsplat.gaussians.io import save_avatar

    avatar = save_avatar(tmp_path / "tiny.anchorsplat", tiny_avatar)
    _write_wav(tmp_path / "speech.wav", speech[:8000])
    refs = tmp_path / "refs"
    refs.mkdir()
    _write_wav(refs / "clip.wav", speech[8000:24000])
    save_motion(refs / "clip.npz", _elbow_motion(30))
    out = tmp_path / "talk.mp4"
    main([
        "play", str(avatar), "--audio", str(tmp_path / "speech.wav"), "--out", str(out), "--resolution", "32",
        "--fps", "8", "--model", "baseline", "--references", str(refs), "--device", "cpu",
    ])  # fmt: skip
    assert len(_probe(out)["frames"]) == 4
    capsys.readouterr()
    for argv, message in (
        (["play", str(avatar), "--out", str(out)], "nothing to play"),
        (["play", str(avatar), "--audio", str(tmp_path / "missing.wav")], "does not exist"),
        (["play", str(avatar), "--audio", str(tmp_path / "speech.wav"), "--references", str(avatar)], "motion .npz"),
        (["play", str(avatar), "--audio", str(tmp_path / "speech.wav"), "--threads", "0"], "at least 1"),
    ):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("anchorsplat: error:") and message in err and "\n" not in err


def test_the_shipped_anny_avatar_talks(speech):
    """The default body (Anny rig, ARKit-52 blendshapes, no jaw joint) driven by the learned model."""
    from anchorsplat.gaussians.io import load_avatar

    avatar = load_avatar(ASSETS / "body.anchorsplat")
    assert set(EXPRESSION_NAMES) <= set(avatar.rig.expression_names)
    keep = torch.randperm(len(avatar.gaussians), generator=torch.Generator().manual_seed(0))[:3000]
    avatar = type(avatar)(avatar.rig, avatar.gaussians.subset(keep))
    player = StreamingPlayer(avatar, resolution=32, fps=10.0, view="face", model="learned", device="cpu")
    frames = list(iter_frames(player, Audio(speech[:9600], 16000), 6))
    assert len(frames) == 6
    motions = [motion_for_rig(f.motion, avatar.rig) for f in frames]
    assert all(m.jaw_pose.abs().max() == 0 for m in motions), "Anny opens its jaw by the jawOpen blendshape only"
    jaw = [float(m.expression[0, m.expression_names.index("jawOpen")]) for m in motions]
    assert max(jaw) > 0.2
    assert np.abs(frames[int(np.argmax(jaw))].rgb.astype(int) - frames[0].rgb.astype(int)).max() > 0
