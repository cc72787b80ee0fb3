"""A bake's talk clip reaches the anchored generator with its speech: the script stage saves the clip's audio, the
generate stage hands it over, and the transformer's audio tokens are the log-mel features of exactly that speech
(silent-free, varying), while clips without speech get no audio branch at all."""

from __future__ import annotations

import types

import torch

from anchorsplat.bake import pipeline
from anchorsplat.bake.job import Job, JobSettings
from anchorsplat.bake.presets import BakePreset
from anchorsplat.bake.script import SCRIPT_FPS
from anchorsplat.bake_speech import load_bake_speech
from anchorsplat.diffusion.anchored import AnchoredConfig, load_anchored_generator
from anchorsplat.diffusion.audio_features import audio_for_clip
from anchorsplat.diffusion.generator import Subject
from anchorsplat.diffusion.latents import vae_factors
from anchorsplat.gaussians.conventions import framing_cameras
from anchorsplat.gaussians.motion import Motion
from anchorsplat.gaussians.synthetic import synthetic_rig

TINY = AnchoredConfig(width=32, height=32, steps=1, chunk=3, prefix=1, blend=1, lookahead=2)
PRESET = BakePreset("tiny", resolution=32, frames_per_clip=9, proxy_gaussians=800, gaussians=200, iterations=1)


def test_talk_clip_audio_features_reach_the_anchored_transformer(tiny_weights, tmp_path, monkeypatch):
    generator = load_anchored_generator(tiny_weights, device="cpu", config=TINY)
    seen: dict[str, list] = {}
    current = {"clip": None}
    forward = generator.transformer.forward

    def recording_forward(*args, **kwargs):
        audio = kwargs.get("audio")
        seen.setdefault(current["clip"], []).append(None if audio is None else audio.detach().clone())
        return forward(*args, **kwargs)

    generate_clip = generator.generate_clip

    def tagged_generate_clip(rig, spec, *args, **kwargs):
        current["clip"] = spec.name
        return generate_clip(rig, spec, *args, **kwargs)

    monkeypatch.setattr(generator.transformer, "forward", recording_forward)
    monkeypatch.setattr(generator, "generate_clip", tagged_generate_clip)
    monkeypatch.setattr(pipeline, "make_generator", lambda settings, preset: generator)

    speech = load_bake_speech(None, pipeline.DEFAULT_RIG)
    rig = synthetic_rig()
    camera = framing_cameras(rig.vertices_rest, torch.tensor([0.0]), width=32, height=32)
    subject = Subject(torch.full((32, 32, 3), 0.5), torch.ones(32, 32), rig, Motion.zeros(1), camera)
    job = Job(tmp_path / "job", JobSettings(photo="p.png", generator="anchored", weights=str(tiny_weights)))
    job.open()
    try:
        ctx = pipeline.BakeContext(job, PRESET, speech=speech)
        ctx.subject = subject  # (a fitted subject; the stages under test start after the fit)
        ctx.fit = types.SimpleNamespace(framing="full_body")
        pipeline.stage_script(ctx)  # the generate stage reads the script back from the job folder (as on resume)
        pipeline.stage_generate(ctx)
    finally:
        job.close()

    assert all(a is None for a in seen["turn"])  # no speech, no audio branch
    calls = seen["talk"]
    assert calls and all(a is not None for a in calls)
    # the first window's audio tokens are exactly the features of the talk clip's speech (frames 0..8 at 15 fps)
    temporal, _ = vae_factors(generator.vae)
    wave = speech.audio.waveforms[0, : round(PRESET.frames_per_clip / SCRIPT_FPS * 16000)]
    expected = audio_for_clip(wave, 16000, PRESET.frames_per_clip, SCRIPT_FPS,
                              generator.transformer.config.audio_in_dim, temporal)  # fmt: skip
    first = calls[0][0, 0]
    assert torch.allclose(first, expected[: first.shape[0]].to(first), atol=1e-5)
    silence = audio_for_clip(torch.zeros_like(wave), 16000, PRESET.frames_per_clip, SCRIPT_FPS,
                             generator.transformer.config.audio_in_dim, temporal)  # fmt: skip
    assert float((first - silence[: first.shape[0]]).abs().mean()) > 0.5  # real speech, not the silent constant
    assert float(first.std()) > 0.1
    # the face clip speaks on from where the talk clip stopped: other features
    assert not torch.allclose(seen["face"][0][0, 0], first)
