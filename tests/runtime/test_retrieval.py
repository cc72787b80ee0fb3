"""Style retrieval ("Personalizing Causal Audio-Driven Facial Motion via Dynamic Multi-modal Retrieval"): no
references = the base model; references shift the output toward the person's style on unseen audio; the
personalised stream stays causal."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anchorsplat.runtime.audio import Audio
from anchorsplat.runtime.channels import channel, channels_to_motion, lip_aperture, motion_to_channels
from anchorsplat.runtime.motion import audio_to_motion_frames
from anchorsplat.runtime.retrieval import ReferenceClip, build_style_memory

FPS = 30.0


def _style(channels: torch.Tensor) -> torch.Tensor:
    """A made-up person: a wider jaw, a smile, the head held 3 degrees down."""
    out = channels.clone()
    out[:, channel("jawOpen")] = (out[:, channel("jawOpen")] * 1.4).clamp(0, 1)
    out[:, channel("mouthSmile")] = (out[:, channel("mouthSmile")] + 0.2).clamp(0, 1)
    out[:, channel("headPitch")] += 0.05
    return out


@pytest.fixture(scope="module")
def references(speech, bursts) -> list[ReferenceClip]:
    """Two reference clips (the first 1.5 s of the sample speech, and speech-like bursts) with the person's
    motion: the base model's motion on that audio, in the person's style."""
    refs = []
    for samples in (speech[:24000], bursts[:24000]):
        base = audio_to_motion_frames(samples, "baseline", fps=FPS).channels
        refs.append(ReferenceClip(Audio(samples, 16000), channels_to_motion(_style(base), FPS)))
    return refs


def test_channels_motion_round_trip():
    channels = torch.rand(5, 21) * 0.5
    assert torch.allclose(motion_to_channels(channels_to_motion(channels, FPS)), channels, atol=1e-6)


def test_no_references_is_the_base_model(speech):
    assert build_style_memory([], "baseline") is None
    plain = audio_to_motion_frames(speech[24000:], "baseline")
    assert torch.equal(plain.channels, plain.base)


def test_references_shift_unseen_speech_toward_the_style(speech, references):
    memory = build_style_memory(references, "baseline")
    assert len(memory) == sum(int(np.ceil(1.5 * FPS)) for _ in references)
    unseen = speech[24000:]
    out = audio_to_motion_frames(unseen, "baseline", style=memory)
    target = _style(out.base)
    for name in ("mouthSmile", "headPitch", "jawOpen"):
        k = channel(name)
        before = (out.base[:, k] - target[:, k]).abs().mean()
        after = (out.channels[:, k] - target[:, k]).abs().mean()
        assert after < 0.6 * before, f"{name}: {before:.4f} -> {after:.4f}"
    closed = lip_aperture(out.base) < 0.01
    assert closed.sum() > 5 and lip_aperture(out.channels)[closed].max() < 0.01, "a style never opens closed lips"
    blinks = channel("eyeBlinkLeft")
    assert torch.equal(out.channels[:, blinks], out.base[:, blinks]), "blinks are not a retrieved style"
    weak = audio_to_motion_frames(unseen, "baseline", style=build_style_memory(references, "baseline", strength=0.0))
    assert torch.equal(weak.channels, weak.base)


def test_personalised_stream_is_causal(speech, references):
    memory = build_style_memory(references, "baseline")
    cut = 16000
    a = np.concatenate([speech[24000 : 24000 + cut], np.zeros(8000, np.float32)])
    b = np.concatenate([speech[24000 : 24000 + cut], speech[:8000]])
    fa = audio_to_motion_frames(a, "baseline", style=memory).channels
    fb = audio_to_motion_frames(b, "baseline", style=memory).channels
    assert torch.equal(fa[:31], fb[:31])  # frames up to t = 1.0 s
    assert not torch.allclose(fa, fb, atol=1e-3)


def test_bad_references_are_clear_errors(speech):
    with pytest.raises(ValueError, match="pair"):
        build_style_memory(["just_audio.wav"], "baseline")
    short = channels_to_motion(torch.zeros(1, 21), FPS)
    with pytest.raises(ValueError, match="fewer than 2 frames"):
        build_style_memory([(Audio(speech[:16000], 16000), short)], "baseline")
