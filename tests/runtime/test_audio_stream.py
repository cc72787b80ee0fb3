"""Streaming audio: ``stream_audio`` gives exactly ``load_audio``'s samples one chunk at a time, and ``play`` of an
audio file (decoded, resampled and muxed piece by piece) makes the same video as ``play`` of the loaded audio."""

from __future__ import annotations

import numpy as np
import pytest

from anchorsplat.runtime.audio import Audio, audio_duration_s, load_audio, stream_audio
from anchorsplat.runtime.player import play


def _stereo_44k(path, seconds=1.3):
    import soundfile

    t = np.arange(int(44100 * seconds)) / 44100
    left = 0.4 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 3 * t) > 0)
    right = 0.2 * np.sin(2 * np.pi * 330 * t)
    soundfile.write(str(path), np.stack([left, right], axis=1).astype(np.float32), 44100, subtype="FLOAT")
    return path


@pytest.mark.parametrize("chunk_s", [0.01, 1 / 30, 0.5, 5.0])
def test_stream_equals_whole_file(tmp_path, chunk_s):
    path = _stereo_44k(tmp_path / "s.wav")
    whole = load_audio(path).samples
    chunks = list(stream_audio(path, chunk_s=chunk_s))
    size = max(1, round(chunk_s * 16000))
    assert all(len(c) == size for c in chunks[:-1]) and 0 < len(chunks[-1]) <= size
    np.testing.assert_array_equal(np.concatenate(chunks), whole)
    assert audio_duration_s(path) == pytest.approx(1.3, abs=1e-4)


def test_stream_refuses_bad_files_on_the_first_chunk(tmp_path):
    import soundfile

    nan = np.zeros((20000, 1), np.float32)
    nan[17000] = np.nan
    soundfile.write(str(tmp_path / "nan.wav"), nan, 16000, subtype="FLOAT")
    with pytest.raises(ValueError, match="NaN or infinite samples \\(first at 1.062 s\\)"):
        list(stream_audio(tmp_path / "nan.wav"))
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(ValueError, match="cannot read"):
        next(stream_audio(tmp_path / "text.wav"))
    soundfile.write(str(tmp_path / "empty.wav"), np.zeros((0, 1), np.float32), 16000)
    with pytest.raises(ValueError, match="empty"):
        next(stream_audio(tmp_path / "empty.wav"))
    with pytest.raises(ValueError, match="folder"):
        next(stream_audio(tmp_path))


def test_play_of_a_file_streams_the_same_video(tmp_path, tiny_avatar):
    import av

    path = _stereo_44k(tmp_path / "s.wav")
    kw = dict(resolution=32, fps=10.0, model="baseline", device="cpu", backend="torch")
    play(tiny_avatar, audio=path, out=tmp_path / "streamed.mp4", **kw)
    play(tiny_avatar, audio=Audio(load_audio(path).samples, 16000), out=tmp_path / "loaded.mp4", **kw)

    def decode(p):
        with av.open(str(p)) as c:
            frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        with av.open(str(p)) as c:
            audio = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
        return frames, audio

    (frames_a, audio_a), (frames_b, audio_b) = decode(tmp_path / "streamed.mp4"), decode(tmp_path / "loaded.mp4")
    assert len(frames_a) == len(frames_b) == 13  # ceil(1.3 s * 10 fps)
    assert all(np.array_equal(a, b) for a, b in zip(frames_a, frames_b, strict=True))
    np.testing.assert_allclose(audio_a, audio_b, atol=1e-6)
    assert len(audio_a) >= 1.3 * 16000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loaded.mp4", "s.wav", "streamed.mp4"]
