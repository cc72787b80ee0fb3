"""The bake's talking clips are driven by speech: ``--speech FILE`` (default: the shipped sample speech) is read and
checked before any job folder exists, turned into face motion by the runtime's audio-to-motion model, and the
talk / face clips carry that motion and the audio it was made from (saved in the script, recorded in the job)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch

from anchorsplat.bake.job import Job, JobSettings
from anchorsplat.bake.pipeline import DEFAULT_RIG
from anchorsplat.bake.script import SCRIPT_FPS, clip_script, load_script, save_script
from anchorsplat.bake_speech import SAMPLE_SPEECH, load_bake_speech
from anchorsplat.cli import main
from anchorsplat.diffusion.generator import Subject
from anchorsplat.gaussians.assets import asset_path
from anchorsplat.gaussians.conventions import framing_cameras
from anchorsplat.gaussians.motion import Motion
from anchorsplat.gaussians.synthetic import synthetic_rig

FRAMES = 24


@pytest.fixture(scope="module")
def speech():
    return load_bake_speech(None, DEFAULT_RIG)


@pytest.fixture(scope="module")
def subject():
    rig = synthetic_rig()
    camera = framing_cameras(rig.vertices_rest, torch.tensor([0.0]), width=32, height=32)
    return Subject(torch.full((32, 32, 3), 0.5), torch.ones(32, 32), rig, Motion.zeros(1), camera)


def _log_envelope(wave: torch.Tensor, frames: int, rate: int) -> torch.Tensor:
    """Log RMS of the audio in the frame interval ending at each frame's time (what a causal model has heard)."""
    hop = rate / SCRIPT_FPS
    return torch.stack(
        [
            wave[max(0, round((k - 1) * hop)) : max(1, round(k * hop))].pow(2).mean().add(1e-8).log()
            for k in range(frames)
        ]
    )


def test_talk_clips_jaw_follows_the_speech_envelope(speech, subject):
    specs = {s.name: s for s in clip_script(subject, frames=FRAMES, resolution=32, portrait=False, speech=speech)}
    rate = speech.audio.sample_rate
    for name, start in (("talk", 0), ("face", FRAMES)):  # the face clip goes on where the talk clip stopped
        spec = specs[name]
        assert spec.audio is not None and spec.audio.waveforms.shape == (1, round(FRAMES / SCRIPT_FPS * rate))
        first = round(start / SCRIPT_FPS * rate)
        assert torch.equal(
            spec.audio.waveforms, speech.audio.waveforms[:, first : first + spec.audio.waveforms.shape[1]]
        )
        jaw = spec.motion.expression[:, spec.motion.expression_names.index("jawOpen")]
        envelope = _log_envelope(spec.audio.waveforms[0], FRAMES, rate)
        corr = float(torch.corrcoef(torch.stack([jaw, envelope]))[0, 1])
        assert corr > 0.45, f"{name}: jaw opening vs speech envelope correlation {corr:.2f}"
        assert float(jaw.max()) > 0.2  # the mouth really opens
    # clips without speech carry no audio; the script file keeps every clip's audio exactly
    assert specs["turn"].audio is None
    assert all(torch.equal(specs[n].motion.full_pose()[:, 0], torch.zeros(FRAMES, 3)) for n in ("talk", "face"))


def test_short_speech_loops_audio_and_face_together(subject):
    """A speech shorter than the clip repeats, and frame k's face still belongs to the audio at k / fps."""
    from anchorsplat.bake.script import Speech
    from anchorsplat.diffusion.generator import ClipAudio

    face_frames = 7  # 0.47 s at 15 fps; the audio is a little shorter (the face has ceil(duration * fps) frames)
    wave = torch.randn(1, 7000, generator=torch.Generator().manual_seed(0))
    face = Motion.zeros(face_frames, fps=SCRIPT_FPS)
    expression = torch.arange(face_frames, dtype=torch.float32)[:, None] / face_frames
    face = Motion.from_full_pose(face.full_pose(), expression=expression, expression_names=("jawOpen",), fps=SCRIPT_FPS)
    speech = Speech(ClipAudio(wave, 16000), face)
    motion, audio = speech.segment(5, 20)
    period = round(face_frames / SCRIPT_FPS * 16000)
    assert audio.waveforms.shape == (1, round(20 / SCRIPT_FPS * 16000))
    jaw = motion.expression[:, 0]
    assert torch.allclose(jaw, ((5 + torch.arange(20)) % face_frames) / face_frames)  # face frame (5 + k) % 7
    # clip sample j is sample (first + j) mod period of the speech padded with silence to the face's length
    first = round(5 / SCRIPT_FPS * 16000)
    padded = torch.cat([wave[0], torch.zeros(period - 7000)])
    expected = padded[(first + torch.arange(audio.waveforms.shape[1])) % period]
    assert torch.equal(audio.waveforms[0], expected)


def test_script_file_keeps_the_clip_audio(speech, subject, tmp_path):
    specs = clip_script(subject, frames=5, resolution=32, portrait=False, speech=speech)
    save_script(tmp_path / "script.safetensors", specs)
    loaded = {s.name: s for s in load_script(tmp_path / "script.safetensors")}
    for spec in specs:
        back = loaded[spec.name]
        assert (back.audio is None) == (spec.audio is None)
        if spec.audio is not None:
            assert back.audio.sample_rate == spec.audio.sample_rate
            assert torch.equal(back.audio.waveforms, spec.audio.waveforms)
        assert back.motion.expression_names == spec.motion.expression_names
        assert torch.equal(back.motion.expression, spec.motion.expression)


def test_speech_file_at_any_rate_and_channels_is_the_same_speech(tmp_path):
    """A 44.1 kHz stereo file (``anchorsplat play`` accepts any rate and channels) becomes the same 16 kHz track."""
    samples, rate = soundfile.read(str(SAMPLE_SPEECH), dtype="float32")
    seconds = 2.0
    clip = samples[: int(seconds * rate)]
    t_new = np.arange(int(seconds * 44100)) / 44100
    resampled = np.interp(t_new, np.arange(len(clip)) / rate, clip).astype(np.float32)
    path = tmp_path / "stereo44k.wav"
    soundfile.write(str(path), np.stack([resampled, resampled], axis=1), 44100)
    ref = tmp_path / "mono16k.wav"
    soundfile.write(str(ref), clip, rate)
    a, b = load_bake_speech(path, DEFAULT_RIG), load_bake_speech(ref, DEFAULT_RIG)
    assert a.audio.sample_rate == 16000 and a.audio.waveforms.shape == b.audio.waveforms.shape
    assert len(a.face) == len(b.face) == round(seconds * SCRIPT_FPS)
    jaw = a.face.expression_names.index("jawOpen")
    assert float((a.face.expression[:, jaw] - b.face.expression[:, jaw]).abs().max()) < 0.1


def _refused(argv: list[str], capsys, job) -> str:
    with pytest.raises(SystemExit) as info:
        main(["bake", str(asset_path("sample", "astronaut.png")), "--out", str(job), *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("anchorsplat: error: ") and "\n" not in err and "Traceback" not in err
    assert not job.exists()  # refused before the job folder (and the subject fit)
    return err


def test_bad_speech_is_refused_before_the_job_folder(tmp_path, capsys):
    job = tmp_path / "job"
    assert "does not exist" in _refused(["--speech", str(tmp_path / "nope.wav")], capsys, job)
    assert "is a folder" in _refused(["--speech", str(tmp_path)], capsys, job)
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all\n")
    assert "cannot read" in _refused(["--speech", str(text)], capsys, job)
    empty = tmp_path / "empty.wav"
    soundfile.write(str(empty), np.zeros(0, np.float32), 16000)
    assert "empty" in _refused(["--speech", str(empty)], capsys, job)


def test_job_records_its_speech(tmp_path):
    """A resumed job keeps its speech: the config records the file, and a rerun with another is refused."""
    root = tmp_path / "job"
    first = Job(root, JobSettings(photo="p.png", speech=str(tmp_path / "a.wav")))
    first.open()
    first.close()
    again = Job(root, JobSettings(photo="p.png", speech=str(tmp_path / "a.wav")))
    again.open()
    again.close()
    with pytest.raises(ValueError, match="speech differ"):
        Job(root, JobSettings(photo="p.png", speech=str(tmp_path / "b.wav"))).open()
    with pytest.raises(ValueError, match="speech differ"):
        Job(root, JobSettings(photo="p.png")).open()  # the sample speech is another speech too
