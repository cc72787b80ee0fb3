"""Audio in: decoding, mono 16 kHz, streaming resampling, and the clear errors on bad input."""

from __future__ import annotations

import numpy as np
import pytest

from anchorsplat.runtime.audio import Audio, Resampler, as_mono, load_audio, resample


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_resampler_stream_equals_whole(rate):
    rng = np.random.default_rng(rate)
    x = rng.standard_normal(rate // 2 + 7)
    whole = resample(x, rate)
    stream, parts, i = Resampler(rate), [], 0
    while i < len(x):
        n = int(rng.integers(1, 900))
        parts.append(stream.process(x[i : i + n]))
        i += n
    parts.append(stream.flush())
    assert np.array_equal(np.concatenate(parts), whole)
    assert len(whole) == -(-len(x) * 16000 // rate)


@pytest.mark.parametrize("rate", [8000, 44100, 48000])
def test_resampled_tone_is_accurate_and_aliases_are_removed(rate):
    t = np.arange(rate) / rate
    y = resample(np.sin(2 * np.pi * 1000 * t), rate)
    tt = np.arange(len(y)) / 16000
    assert np.abs(y[300:-300] - np.sin(2 * np.pi * 1000 * tt[300:-300])).max() < 1e-4
    if rate > 16000:  # a 10 kHz tone is above the new Nyquist: it must vanish, not fold to 6 kHz
        alias = resample(np.sin(2 * np.pi * 10000 * t), rate)
        assert np.sqrt(np.mean(alias[300:-300] ** 2)) < 1e-3


@pytest.mark.parametrize(
    "suffix,subtype", [(".wav", "PCM_16"), (".flac", "PCM_24"), (".ogg", "VORBIS"), (".mp3", None)]
)
def test_formats_rates_and_channels_load_as_mono_16k(tmp_path, suffix, subtype):
    sf = pytest.importorskip("soundfile")
    rate = 44100
    t = np.arange(rate) / rate
    tone = 0.4 * np.sin(2 * np.pi * 440 * t)
    stereo = np.stack([tone, tone], axis=1)  # identical channels: the mono mix is the tone
    path = tmp_path / f"a{suffix}"
    sf.write(path, stereo, rate, subtype=subtype) if subtype else sf.write(path, stereo, rate)
    audio = load_audio(path)
    assert audio.sample_rate == 16000 and audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert abs(audio.duration_s - 1.0) < 0.06  # mp3/ogg encoders pad a little
    rms = np.sqrt(np.mean(audio.samples[2000:-2000] ** 2))
    assert abs(rms - 0.4 / np.sqrt(2)) < 0.03


def test_pyav_fallback_reads_an_mp4_audio_track(tmp_path):
    from anchorsplat.gaussians.video import write_video

    frames = np.zeros((8, 16, 16, 3), np.uint8)
    tone = (0.3 * np.sin(2 * np.pi * 300 * np.arange(16000) / 16000)).astype(np.float32)
    path = write_video(tmp_path / "v.mp4", frames, 8.0, audio=tone, sample_rate=16000)
    audio = load_audio(path)
    assert 0.9 < audio.duration_s < 1.2
    assert 0.15 < np.sqrt(np.mean(audio.samples[4000:12000] ** 2)) < 0.25


def test_array_layouts_and_integer_samples():
    x = (np.sin(np.linspace(0, 200, 3200)) * 20000).astype(np.int16)
    mono = as_mono(x, 16000)
    assert np.allclose(mono, x / 32768.0, atol=1e-4)
    channels_first = np.stack([x, x])  # 2 x T
    assert np.allclose(as_mono(channels_first, 16000), mono)
    assert np.allclose(as_mono(channels_first.T, 16000), mono)


def test_silence_and_clipping_are_valid_audio():
    assert np.all(load_audio(Audio(np.zeros(1600, np.float32), 16000)).samples == 0)
    clipped = np.clip(np.sin(np.linspace(0, 300, 16000)) * 5, -1, 1)
    assert np.isfinite(load_audio(Audio(clipped, 16000)).samples).all()


def _error(source) -> str:
    with pytest.raises(ValueError) as info:
        load_audio(source)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_bad_inputs_give_one_clear_line(tmp_path):
    sf = pytest.importorskip("soundfile")
    assert "does not exist" in _error(tmp_path / "missing.wav")
    assert "is a folder" in _error(tmp_path)
    (tmp_path / "notes.txt").write_text("this is not audio\n" * 50)
    assert "cannot read" in _error(tmp_path / "notes.txt") and "wav, flac" in _error(tmp_path / "notes.txt")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    assert "cannot read" in _error(tmp_path / "image.png")
    sf.write(tmp_path / "empty.wav", np.zeros((0, 1)), 16000)
    assert "empty" in _error(tmp_path / "empty.wav")
    bad = np.zeros(1600, np.float32)
    bad[800] = np.nan
    sf.write(tmp_path / "nan.wav", bad, 16000, subtype="FLOAT")
    assert "NaN" in _error(tmp_path / "nan.wav")
    good = tmp_path / "good.wav"
    sf.write(good, np.zeros(16000), 16000)
    (tmp_path / "truncated.wav").write_bytes(good.read_bytes()[:30])
    assert "cannot read" in _error(tmp_path / "truncated.wav") or "empty" in _error(tmp_path / "truncated.wav")
    assert "sample rate" in _error(Audio(np.zeros(10), 0))
    assert "numbers" in _error(Audio(np.array(["a", "b"]), 16000))
