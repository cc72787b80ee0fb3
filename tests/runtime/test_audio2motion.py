"""Audio -> motion: shapes and ranges, streaming == whole, causality, silence keeps the mouth closed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from anchorsplat.gaussians.motion import Motion
from anchorsplat.runtime.channels import (
    CHANNEL_NAMES,
    EXPRESSION_NAMES,
    NUM_CHANNELS,
    channel,
    channels_to_motion,
    lip_aperture,
)
from anchorsplat.runtime.motion import AudioToMotion, audio_to_motion, audio_to_motion_frames

MODELS = ["baseline", "learned"]


@pytest.mark.parametrize("model", MODELS)
def test_motion_shapes_names_and_ranges(model, speech):
    motion = audio_to_motion(speech, model, fps=30.0)
    assert isinstance(motion, Motion)
    assert len(motion) == math.ceil(len(speech) / 16000 * 30)
    assert motion.fps == 30.0
    assert motion.expression_names == EXPRESSION_NAMES
    for name in ("jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthSmileLeft", "mouthSmileRight",
                 "mouthStretchLeft", "eyeBlinkLeft", "eyeBlinkRight", "browInnerUp"):  # fmt: skip
        assert name in motion.expression_names
    assert motion.expression.min() >= 0 and motion.expression.max() <= 1
    jaw = motion.expression[:, EXPRESSION_NAMES.index("jawOpen")]
    assert jaw.max() > 0.3, "speech must open the mouth"
    assert torch.allclose(motion.jaw_pose[:, 0], jaw * 0.5)  # JAW_OPEN_RADIANS
    neck, head = motion.body_pose[:, 11], motion.body_pose[:, 14]  # SMPL-X neck (12) and head (15)
    assert head.abs().max() > 1e-3 and head.abs().max() < 0.3
    assert torch.allclose(neck * 1.5, head, atol=1e-6)
    blinks = motion.expression[:, EXPRESSION_NAMES.index("eyeBlinkLeft")]
    assert blinks.max() > 0.9, "3 s of audio holds at least one blink"
    assert motion.global_orient.abs().max() == 0 and motion.transl.abs().max() == 0


@pytest.mark.parametrize("model", MODELS)
def test_streamed_chunks_give_the_whole_file_motion(model, speech):
    whole = audio_to_motion_frames(speech, model).channels
    for chunk in (533, 1, 4096) if model == "baseline" else (533, 2777):
        streamed = audio_to_motion_frames(speech[: 4000 if chunk == 1 else None], model, chunk=chunk).channels
        assert torch.allclose(streamed, whole[: len(streamed)], atol=1e-5)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("lookahead_ms", [0.0, 50.0])
def test_future_audio_never_changes_past_frames(model, lookahead_ms, speech):
    cut = 24000  # 1.5 s
    a = np.concatenate([speech[:cut], np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.3])
    b = np.concatenate([speech[:cut], np.zeros(16000, np.float32)])
    fa = audio_to_motion_frames(a, model, lookahead_ms=lookahead_ms).channels
    fb = audio_to_motion_frames(b, model, lookahead_ms=lookahead_ms).channels
    safe = math.floor((cut / 16000 - lookahead_ms / 1000) * 30)  # frames at times + look-ahead <= the cut
    assert torch.allclose(fa[: safe + 1], fb[: safe + 1], atol=1e-6)
    assert not torch.allclose(fa, fb, atol=1e-3)


def test_stream_emits_a_frame_once_its_audio_arrived():
    stream = AudioToMotion("baseline", fps=30.0)
    assert len(stream.push_frames(np.zeros(1, np.float32))) == 1  # frame 0 (t = 0) needs no audio
    assert len(stream.push_frames(np.zeros(533, np.float32))) == 1  # frame 1 at 33.3 ms: its step ends at 30 ms
    emitted = sum(len(stream.push_frames(np.zeros(160, np.float32))) for _ in range(30))
    assert emitted == 9  # 534 + 4800 samples = 333.4 ms of audio -> frames 2..10 (frame 10 at 333.3 ms)
    delayed = AudioToMotion("baseline", fps=30.0, lookahead_ms=100.0)
    assert len(delayed.push_frames(np.zeros(1600, np.float32))) == 1  # 100 ms of audio: only frame 0
    assert delayed.algorithmic_latency_ms == 100.0


@pytest.mark.parametrize("model", MODELS)
def test_silence_keeps_the_mouth_closed(model):
    frames = audio_to_motion_frames(np.zeros(32000, np.float32), model).channels
    mouth = frames[:, : channel("eyeBlinkLeft")]
    assert mouth.abs().max() < 0.02
    assert lip_aperture(frames).max() < 0.01
    quiet_noise = (np.random.default_rng(0).standard_normal(32000) * 1e-4).astype(np.float32)  # -80 dBFS hiss
    assert lip_aperture(audio_to_motion_frames(quiet_noise, model).channels).max() < 0.05


@pytest.mark.parametrize("fps", [24.0, 25.0, 29.97, 60.0])
def test_frame_count_at_any_rate(fps, bursts):
    frames = audio_to_motion_frames(bursts, "baseline", fps=fps)
    assert len(frames) == math.ceil(len(bursts) / 16000 * fps - 1e-9)


def test_bad_stream_use_is_a_clear_error():
    stream = AudioToMotion("baseline")
    with pytest.raises(ValueError, match="NaN"):
        stream.push(np.array([0.0, np.nan], np.float32))
    stream.flush()
    with pytest.raises(ValueError, match="flushed"):
        stream.push(np.zeros(10, np.float32))
    with pytest.raises(ValueError, match="fps"):
        AudioToMotion("baseline", fps=0.0)
    with pytest.raises(ValueError, match="no audio-to-motion model"):
        AudioToMotion("/nonexistent/model")


def test_other_input_rates_are_resampled_on_the_fly(speech):
    from anchorsplat.runtime.audio import resample

    x48 = resample(speech[:16000], 16000, 48000)
    stream = AudioToMotion("baseline", sample_rate=48000)
    frames = torch.cat([stream.push_frames(x48[i : i + 1000]).channels for i in range(0, len(x48), 1000)])
    frames = torch.cat([frames, stream.flush_frames().channels])
    direct = audio_to_motion_frames(resample(x48, 48000, 16000), "baseline").channels
    assert torch.equal(frames, direct)


def test_channels_to_motion_layout():
    channels = torch.zeros(2, NUM_CHANNELS)
    channels[:, channel("mouthSmile")] = 0.5
    channels[:, channel("headYaw")] = 0.1
    motion = channels_to_motion(channels, 30.0)
    assert motion.expression[0, EXPRESSION_NAMES.index("mouthSmileLeft")] == 0.5
    assert motion.expression[0, EXPRESSION_NAMES.index("mouthSmileRight")] == 0.5
    assert torch.allclose(motion.body_pose[:, 11, 1] + motion.body_pose[:, 14, 1], torch.full((2,), 0.1))
    assert len(CHANNEL_NAMES) == NUM_CHANNELS
