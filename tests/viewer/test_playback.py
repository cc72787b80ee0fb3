import io
import wave

import numpy as np
import pytest

from anchorsplat.runtime.audio import SAMPLE_RATE, Audio
from anchorsplat.viewer.playback import (
    FaceStream,
    PlaybackClock,
    audio_element_html,
    check_upload_size,
    decode_audio_upload,
    wav_bytes,
)
from anchorsplat.viewer.resolution import AdaptiveResolution


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_clock_play_pause_seek_end_and_nudge():
    fake = FakeClock()
    clock = PlaybackClock(10.0, clock=fake)
    clock.play()
    fake.t += 2.5
    assert clock.position() == pytest.approx(2.5) and clock.playing
    clock.pause()
    fake.t += 5
    assert clock.position() == pytest.approx(2.5) and not clock.playing
    clock.seek(9.0)
    clock.play()
    fake.t += 3
    assert clock.position() == pytest.approx(10.0) and not clock.playing  # ended, holds the end
    clock.play()  # play after the end restarts
    fake.t += 1
    assert clock.position() == pytest.approx(1.0)
    clock.nudge(0.25)
    assert clock.position() == pytest.approx(1.25)
    looping = PlaybackClock(2.0, loop=True, clock=fake)
    looping.play()
    fake.t += 5.5
    assert looping.position() == pytest.approx(1.5) and looping.playing


def test_wav_round_trip_and_upload_checks():
    samples = (0.5 * np.sin(np.arange(1600) * 0.1)).astype(np.float32)
    data = wav_bytes(samples)
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getnframes()) == (SAMPLE_RATE, 1, 1600)
    audio = decode_audio_upload("tone.wav", data)
    np.testing.assert_allclose(audio.samples, samples, atol=1 / 16000)
    with pytest.raises(ValueError, match="not audio"):
        decode_audio_upload("notes.wav", b"this is a text file, not a recording" * 10)
    with pytest.raises(ValueError, match="MiB"):
        check_upload_size("big.wav", 100 * 2**20)
    with pytest.raises(ValueError, match="empty"):
        check_upload_size("empty.wav", 0)
    with pytest.raises(ValueError, match="at most"):
        decode_audio_upload("long.wav", wav_bytes(np.zeros(16000 * 3, np.float32)), max_seconds=2.0)


def test_audio_element_reports_its_clock():
    html = audio_element_html("data:audio/wav;base64,AAAA", "anchorsplat.audio.3.1", 1.5, playing=True)
    assert "viser-user:anchorsplat.audio.3.1" in html and "this.currentTime=1.5000" in html and "play()" in html
    assert "play()" not in audio_element_html("data:,", "k", 0.0, playing=False)


def test_face_stream_is_causal_and_restarts_on_seek(speech_path):
    import soundfile

    samples, rate = soundfile.read(str(speech_path), dtype="float32")
    assert rate == SAMPLE_RATE
    stream = FaceStream(Audio(samples[: 3 * SAMPLE_RATE], SAMPLE_RATE), "baseline", fps=25.0)
    jaws, times = [], []
    for k in range(1, 60):
        frame = stream.advance(k * 0.04)
        times.append(frame.time_s)
        jaws.append(float(frame.motion.expression[0, list(frame.motion.expression_names).index("jawOpen")]))
        assert frame.time_s <= k * 0.04 + 1e-9  # never shows audio it has not heard
    assert max(jaws) > 0.2 and min(jaws) < 0.05  # speech opens and closes the mouth
    assert times == sorted(times)
    back = stream.advance(0.5)
    assert 0.45 <= back.time_s <= 0.5


def test_adaptive_resolution_holds_the_frame_rate():
    res = AdaptiveResolution(target_fps=20.0, min_height=64, max_height=512, height=256)
    for _ in range(10):
        res.update(0.2)  # 4x over budget
    assert res.height < 256
    slow = res.height
    for _ in range(20):
        res.update(0.005)
    assert res.height > slow
    assert res.size(2.0, display_height=100) == (192, 96)  # never taller than shown, multiple of 8
    assert res.height % 8 == 0 and 64 <= res.height <= 512
