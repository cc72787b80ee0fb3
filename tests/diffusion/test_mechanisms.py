"""Each anchoring mechanism pinned by a value it must produce (each test fails when its mechanism is broken):
the RoPE index of every anchor type, timestep-0 modulation of anchor and prefix tokens, frame-local audio,
the face-mask gate, chunk blend weights, the position-shift schedule, training dropout and prefix statistics."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from anchorsplat.diffusion import sampler
from anchorsplat.diffusion.anchors import AnchorLatents, AnchorLayout, window_anchors
from anchorsplat.diffusion.dataset import Sample
from anchorsplat.diffusion.model import AnchoredWanTransformer
from anchorsplat.diffusion.rope import grid_rope
from anchorsplat.diffusion.sampler import Conditioning
from anchorsplat.diffusion.train import TrainConfig, batch_loss, make_batch, sample_anchors

FRAMES, SIZE = 3, 8  # latent frames and latent size of the test inputs; patch 2x2 -> 16 tokens per frame
TOKENS_PER_FRAME = (SIZE // 2) ** 2


@pytest.fixture(scope="module")
def model(tiny_weights):
    m = AnchoredWanTransformer.from_pretrained(tiny_weights / "transformer").eval()
    with torch.no_grad():  # "trained" new modules, so pose and audio act
        for p in m.new_module_state_dict().values():
            p.normal_(0, 0.3, generator=torch.Generator().manual_seed(p.numel()))
    return m


def _inputs(seed: int = 3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, 4, FRAMES, SIZE, SIZE, generator=g), torch.tensor([700.0]), torch.randn(1, 5, 16, generator=g)


def _latent(seed: int) -> torch.Tensor:
    return torch.randn(1, 4, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


class _Capture:
    """Records the positional inputs (pre-hook) or the output (hook) of a module during one forward."""

    def __init__(self, module: torch.nn.Module, output: bool = False) -> None:
        self.value = None
        hook = (lambda m, a, o: setattr(self, "value", o)) if output else (lambda m, a: setattr(self, "value", a))
        self.handle = module.register_forward_hook(hook) if output else module.register_forward_pre_hook(hook)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.handle.remove()


@pytest.mark.parametrize("lookahead", [1, 5])
def test_every_anchor_type_has_its_exact_rope_index(model, lookahead):
    layout = AnchorLayout(w_shift=1.5)
    latents = AnchorLatents(_latent(1), {"front": _latent(2), "left": _latent(3)}, {"happy": _latent(4)}, _latent(5))
    anchors = window_anchors(latents, layout, FRAMES, lookahead)
    expected = [(-8.0, 1.5), (-16.0, 1.5), (-14.0, 1.5), (-31.0, 1.5), (FRAMES - 1 + lookahead, 0.0)]
    assert [(a.t_position, a.w_offset) for a in anchors] == expected
    assert anchors[-1].latents is latents.keyframe
    x, t, e = _inputs()
    with torch.no_grad(), _Capture(model.blocks[0].attn1) as cap:
        model(x, t, e, anchors=anchors)
    cos, sin = cap.value[3]
    ref_cos, ref_sin = grid_rope(model.rope_split, torch.arange(FRAMES), SIZE // 2, SIZE // 2)
    n = FRAMES * TOKENS_PER_FRAME
    torch.testing.assert_close(cos[:, :n], ref_cos, rtol=0, atol=0)
    for i, (t_pos, w_off) in enumerate(expected):
        c, s = grid_rope(model.rope_split, torch.tensor([t_pos]), SIZE // 2, SIZE // 2, 0.0, w_off)
        sl = slice(n + i * TOKENS_PER_FRAME, n + (i + 1) * TOKENS_PER_FRAME)
        torch.testing.assert_close(cos[:, sl], c, rtol=0, atol=0, msg=f"anchor {i} cos")
        torch.testing.assert_close(sin[:, sl], s, rtol=0, atol=0, msg=f"anchor {i} sin")


def _modulated(model, tokens: torch.Tensor, timestep: float, e: torch.Tensor) -> torch.Tensor:
    """What block 0's self-attention must see for ``tokens`` modulated at ``timestep`` (the stock recipe)."""
    block = model.blocks[0]
    _, proj, _, _ = model.condition_embedder(torch.tensor([timestep]), e, None)
    shift, scale = (block.scale_shift_table + proj.unflatten(1, (6, -1)).float()).chunk(6, dim=1)[:2]
    return (block.norm1(tokens.float()) * (1 + scale) + shift).type_as(tokens)


@pytest.mark.parametrize("noisy_t", [700.0, 250.0])
def test_anchor_and_prefix_tokens_are_modulated_at_timestep_zero(model, noisy_t):
    x, _, e = _inputs()
    anchor = window_anchors(AnchorLatents(_latent(1)), AnchorLayout(), FRAMES, None)
    with torch.no_grad(), _Capture(model.blocks[0].attn1) as cap:
        model(x, torch.tensor([noisy_t]), e, anchors=anchor, clean_prefix=1)
        seen = cap.value[0]
        video, anchor_tokens = model._patchify(x), model._patchify(anchor[0].latents)
        n, p = video.shape[1], TOKENS_PER_FRAME
        torch.testing.assert_close(seen[:, :p], _modulated(model, video[:, :p], 0.0, e))  # clean prefix
        torch.testing.assert_close(seen[:, p:n], _modulated(model, video[:, p:], noisy_t, e))  # noisy frames
        torch.testing.assert_close(seen[:, n:], _modulated(model, anchor_tokens, 0.0, e))  # the anchor
        assert (seen[:, n:] - _modulated(model, anchor_tokens, noisy_t, e)).abs().max() > 1e-3


def _audio_out(model, audio, masks=None) -> torch.Tensor:
    x, t, e = _inputs()
    with torch.no_grad(), _Capture(model.audio_blocks[0], output=True) as cap:
        model(x, t, e, audio=audio, face_masks=masks)
    return cap.value[0]


def test_audio_of_frame_k_reaches_only_the_tokens_of_latent_frame_k(model):
    g = torch.Generator().manual_seed(7)
    audio = torch.randn(1, 1, FRAMES, 4, model.config.audio_in_dim, generator=g)
    base = _audio_out(model, audio)
    for k in range(FRAMES):
        changed = audio.clone()
        changed[:, :, k] = torch.randn(changed[:, :, k].shape, generator=g)
        diff = (_audio_out(model, changed) - base).abs().amax(-1).view(FRAMES, TOKENS_PER_FRAME)
        assert (diff[k] > 1e-4).all(), f"frame {k}'s audio does not reach frame {k}"
        others = torch.cat([diff[:k], diff[k + 1 :]])
        assert torch.equal(others, torch.zeros_like(others)), f"frame {k}'s audio leaks into other frames"


def test_masked_out_face_receives_no_audio(model):
    g = torch.Generator().manual_seed(8)
    audio = torch.randn(1, 2, FRAMES, 4, model.config.audio_in_dim, generator=g)
    masks = torch.ones(1, 2, FRAMES, SIZE, SIZE)
    masks[:, 0, :, :, : SIZE // 2] = 0  # track 0 speaks for the right half only
    masks[:, 1, :, :, :] = 0  # track 1 is silent everywhere
    out = _audio_out(model, audio, masks).view(FRAMES, SIZE // 2, SIZE // 2, -1)
    assert torch.equal(out[:, :, : SIZE // 4], torch.zeros_like(out[:, :, : SIZE // 4]))
    assert (out[:, :, SIZE // 4 :].abs().amax(-1) > 1e-4).all()
    louder = audio.clone()
    louder[:, 1] *= 5  # the silent track's audio changes nothing
    torch.testing.assert_close(_audio_out(model, louder, masks), _audio_out(model, audio, masks), rtol=0, atol=0)
    x, t, e = _inputs()
    with torch.no_grad():  # fully masked: the model computes exactly what it computes without audio
        silent = model(x, t, e, audio=audio, face_masks=torch.zeros_like(masks)).sample
        assert torch.equal(silent, model(x, t, e).sample)


def test_chunks_are_linearly_blended_on_the_overlap(monkeypatch):
    """9 latent frames, windows of 6 with prefix 1 and blend 2: windows [0, 6) and [3, 9); frames 4-5 are made
    by both and blended 2/3 : 1/3 then 1/3 : 2/3; window 2 starts from window 1's frame 3 as its clean prefix."""
    prefixes = []

    def fake_denoise(model, noise, cond, sigmas, prefix_latents=None, init=None):
        k = len(prefixes)
        prefixes.append(None if prefix_latents is None else prefix_latents.clone())
        out = torch.full_like(noise, float(k + 1))  # window k produces the value k + 1
        if prefix_latents is not None:
            out[:, :, : prefix_latents.shape[2]] = prefix_latents
        return out

    monkeypatch.setattr(sampler, "denoise_window", fake_denoise)
    noise = torch.zeros(1, 1, 9, 1, 1)
    cond = Conditioning(torch.zeros(1, 1, 1), torch.zeros(1, 1, 1))
    out = sampler.generate_chunked(None, noise, cond, torch.tensor([1.0, 0.0]), chunk=6, prefix=1, blend=2)
    assert prefixes[0] is None and torch.equal(prefixes[1], torch.ones(1, 1, 1, 1, 1))
    expected = torch.tensor([1, 1, 1, 1, 2 / 3 * 1 + 1 / 3 * 2, 1 / 3 * 1 + 2 / 3 * 2, 2, 2, 2])
    torch.testing.assert_close(out.flatten(), expected)


def test_position_shift_fusion_moves_the_segmentation_by_shift_each_step(monkeypatch):
    calls: list[list[int]] = []

    def fake_velocity(model, x, sigma, cond, prefix):
        calls.append(cond.pose.flatten().long().tolist())  # the pose carries each frame's index
        return torch.zeros_like(x)

    monkeypatch.setattr(sampler, "velocity", fake_velocity)
    total, segment, shift, steps = 7, 3, 2, 4
    pose = torch.arange(float(total)).view(1, 1, total, 1, 1)
    cond = Conditioning(torch.zeros(1, 1, 1), torch.zeros(1, 1, 1), pose=pose)
    noise = torch.zeros(1, 1, total, 1, 1)
    sampler.generate_shift_fusion(None, noise, cond, sampler.sigma_schedule(steps), segment, shift)
    per_step = -(-total // segment)
    assert len(calls) == steps * per_step
    for i in range(steps):
        offset = (i * shift) % total
        for j in range(per_step):
            want = [(offset + j * segment + q) % total for q in range(segment)]
            assert calls[i * per_step + j] == want, f"step {i} segment {j}"


def _pool_sample(anchors: int) -> Sample:
    kind = torch.tensor([0] + [1] * 4 + [2] * (anchors - 5))
    slot = torch.tensor([0, 0, 1, 2, 3] + list(range(anchors - 5)))
    return Sample(torch.zeros(5, 8, 8, 3), torch.zeros(8, 2, 1, 1), None, torch.zeros(anchors, 8, 8, 3), kind, slot,
                  torch.zeros(anchors, dtype=torch.long))  # fmt: skip


def test_training_anchor_dropout_statistics():
    cfg = TrainConfig(Path("w"), Path("d"), Path("o"), anchor_dropout=0.3, all_anchor_dropout=0.1)
    sample, layout, draws = _pool_sample(7), AnchorLayout(), 3000
    latents = torch.randn(7, 4, 1, 2, 2)
    g = torch.Generator().manual_seed(0)
    kept = empty = lookahead = 0
    for _ in range(draws):
        anchors = sample_anchors(sample, latents, cfg, layout, 3, g)
        content = [a for a in anchors if a.t_position < 0]
        kept += len(content)
        empty += not anchors
        lookahead += any(a.t_position >= 3 for a in anchors)
        positions = [a.t_position for a in content]
        assert len(set(positions)) == len(positions)  # one anchor per RoPE slot
    assert abs(kept / (7 * draws) - 0.9 * 0.7) < 0.025  # each anchor survives both dropouts
    assert abs(empty / draws - (0.1 + 0.9 * 0.3**7 * 0.5)) < 0.02  # all dropped, or every one dropped
    assert abs(lookahead / draws - 0.9 * 0.5) < 0.03


def test_training_prefix_statistics_and_loss_mask():
    cfg = TrainConfig(Path("w"), Path("d"), Path("o"), prefix=2, prefix_probability=0.3, cond_dropout=0.0)
    sample, layout, draws = _pool_sample(5), AnchorLayout(), 1500
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(1, 4, 5, 2, 2, generator=g)
    text = torch.ones(1, 3, 16)
    with_prefix = 0
    for _ in range(draws):
        b = make_batch(x0, torch.zeros(0, 4, 1, 2, 2), sample, cfg, layout, g, text)
        assert b.prefix in (0, 2)
        with_prefix += b.prefix == 2
        assert torch.equal(b.x[:, :, : b.prefix], x0[:, :, : b.prefix])  # the prefix is clean
        assert (b.x[:, :, b.prefix :] - x0[:, :, b.prefix :]).abs().max() > 0  # the rest is noised
    assert abs(with_prefix / draws - 0.3) < 0.035
    b = next(b for b in iter(lambda: make_batch(x0, x0[:0], sample, cfg, layout, g, text), None) if b.prefix)
    v = b.target.clone()
    v[:, :, :2] += 100.0  # errors on the clean prefix carry no loss
    assert float(batch_loss(v, b)) == 0.0
    v[:, :, 2] += 1.0
    assert float(batch_loss(v, b)) == pytest.approx(1 / 3)
