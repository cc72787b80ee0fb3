"""AnchoredGenerator end to end on a tiny random model, chunked causality, sampler invariants, folder errors."""

from __future__ import annotations

import pytest
import torch

from anchorsplat.diffusion.anchored import AnchoredConfig, load_anchored_generator
from anchorsplat.diffusion.generator import Anchors, ClipSpec, Generator, Subject
from anchorsplat.diffusion.sampler import (
    Conditioning,
    denoise_window,
    generate_chunked,
    generate_shift_fusion,
    sigma_schedule,
)
from anchorsplat.gaussians.conventions import framing_cameras
from anchorsplat.gaussians.motion import Motion
from anchorsplat.gaussians.synthetic import synthetic_rig

TINY = AnchoredConfig(width=32, height=32, steps=2, chunk=3, prefix=1, blend=1, lookahead=2)


def _spec(frames: int = 9, size: int = 24) -> ClipSpec:
    rig = synthetic_rig()
    cams = framing_cameras(rig.vertices_rest, torch.linspace(0, 60, frames), width=size, height=size)
    motion = Motion.zeros(frames)
    return ClipSpec("turn", motion, cams)


@pytest.fixture(scope="module")
def generator(tiny_weights):
    gen = load_anchored_generator(tiny_weights, device="cpu", config=TINY)
    with torch.no_grad():  # pretend the new modules were trained, so pose and audio act
        for p in gen.transformer.new_module_state_dict().values():
            p.normal_(0, 0.2, generator=torch.Generator().manual_seed(p.numel()))
    return gen


def test_generate_end_to_end(generator):
    rig = synthetic_rig()
    spec = _spec()
    photo = torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(0))
    subject = Subject(photo, torch.ones(32, 32), rig, Motion.zeros(1), spec.cameras[0])
    anchors = Anchors(photo, viewpoints={"back": photo.flip(1)}, expressions={"happy": photo.flip(0)})
    assert isinstance(generator, Generator)
    (clip,) = generator.generate(subject, [spec], anchors)
    assert clip.frames.shape == (9, 24, 24, 3) and clip.masks.shape == (9, 24, 24)
    assert clip.motion is spec.motion and clip.cameras is spec.cameras
    assert 0 <= clip.frames.min() and clip.frames.max() <= 1 and clip.frames.std() > 0
    assert 0 < clip.masks.mean() < 1  # the body silhouette of the script's poses
    # anchors are used: generating without content anchors changes the frames
    bare = type(generator)(generator.transformer, generator.vae, AnchoredConfig(**{**TINY.__dict__,
                           "content_anchors": False, "lookahead": None}))  # fmt: skip
    (clip2,) = bare.generate(subject, [spec], anchors)
    assert (clip2.frames - clip.frames).abs().max() > 1e-6


def test_chunked_generation_is_causal(generator):
    rig = synthetic_rig()
    spec = _spec(frames=17)  # 5 latent frames: windows [0,3), [1,4), [2,5) with prefix 1, blend 1
    anchors = generator.encode_anchors(Anchors(torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(1))))
    g = torch.Generator().manual_seed(2)
    audio = torch.randn(17 * 16000 // 30, generator=g) * 0.1
    cut = int(13 / 30 * 16000) + 400  # frames 13.. (latent 4), past the analysis window of frame 12
    late = audio.clone()
    late[cut:] = torch.randn(late.shape[0] - cut, generator=g)
    a = generator.generate_clip(rig, spec, anchors, audio).frames
    b = generator.generate_clip(rig, spec, anchors, late).frames
    # frames 13.. live in latent 4, seen only by the last window [2, 5); latents 0-1 (frames 0-4) came from
    # earlier windows and must not change (the causal VAE decodes them from earlier latents only)
    assert (a[13:] - b[13:]).abs().max() > 1e-6
    assert torch.equal(a[:5], b[:5])


def test_sampler_modes_agree_on_one_window(generator):
    model = generator.transformer
    noise = torch.randn(1, 4, 3, 4, 4, generator=torch.Generator().manual_seed(4))
    cond = Conditioning(torch.zeros(1, 8, 16), torch.zeros(1, 8, 16))
    sigmas = sigma_schedule(3)
    ref = denoise_window(model, noise, cond, sigmas)
    torch.testing.assert_close(generate_chunked(model, noise, cond, sigmas, chunk=3), ref)
    # one segment and no shift is one window; shifting re-assigns RoPE positions circularly, so it differs
    torch.testing.assert_close(generate_shift_fusion(model, noise, cond, sigmas, segment=3, shift=0), ref)
    split = generate_shift_fusion(model, noise, cond, sigmas, segment=2, shift=1)
    assert (split - ref).abs().max() > 1e-5  # segments really are denoised apart


def test_refinement_starts_from_the_given_frames(generator):
    rig = synthetic_rig()
    spec = _spec(frames=5)
    anchors = generator.encode_anchors(Anchors(torch.rand(32, 32, 3)))
    init = torch.rand(5, 24, 24, 3, generator=torch.Generator().manual_seed(6))
    weak = type(generator)(generator.transformer, generator.vae, AnchoredConfig(**{**TINY.__dict__,
                           "refine_strength": 0.05}))  # fmt: skip
    strong = type(generator)(generator.transformer, generator.vae, AnchoredConfig(**{**TINY.__dict__,
                             "refine_strength": 1.0}))  # fmt: skip
    from anchorsplat.diffusion.latents import decode_video, encode_video

    recon = decode_video(weak.vae, encode_video(weak.vae, torch.nn.functional.interpolate(
        init.permute(0, 3, 1, 2), (32, 32), mode="bilinear").permute(0, 2, 3, 1)))  # fmt: skip
    near = weak.generate_clip(rig, spec, anchors, init=init).frames
    far = strong.generate_clip(rig, spec, anchors, init=init).frames
    recon = torch.nn.functional.interpolate(recon.permute(0, 3, 1, 2), (24, 24), mode="bilinear",
                                            antialias=True).permute(0, 2, 3, 1)  # fmt: skip
    assert (near - recon).abs().mean() < (far - recon).abs().mean()


def test_folder_without_weights_is_a_clear_error(tmp_path, tiny_weights):
    with pytest.raises(ValueError, match="no transformer/config.json"):
        load_anchored_generator(tmp_path)
    (tmp_path / "transformer").mkdir()
    (tmp_path / "transformer" / "config.json").write_text((tiny_weights / "transformer" / "config.json").read_text())
    with pytest.raises(ValueError, match="no weights") as info:
        load_anchored_generator(tmp_path)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="no such folder"):
        load_anchored_generator(tmp_path / "missing")
