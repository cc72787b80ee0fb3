"""The anchored transformer against the stock diffusers Wan transformer, RoPE anchors, save/load."""

from __future__ import annotations

import pytest
import torch

from anchorsplat.diffusion.model import AnchoredWanTransformer, AnchorTokens


def _inputs():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 4, 3, 8, 8, generator=g)
    t = torch.tensor([700.0])
    e = torch.randn(1, 5, 16, generator=g)
    return x, t, e


@pytest.fixture(scope="module")
def models(tiny_weights):
    from diffusers.models.transformers.transformer_wan import WanTransformer3DModel

    stock = WanTransformer3DModel.from_pretrained(tiny_weights / "transformer").eval()
    ours = AnchoredWanTransformer.from_pretrained(tiny_weights / "transformer").eval()
    return stock, ours


def test_matches_stock_without_new_inputs(models):
    stock, ours = models
    x, t, e = _inputs()
    with torch.no_grad():
        ref = stock(x, t, e).sample
        assert torch.equal(ours(x, t, e).sample, ref)
        # zero-initialised new modules: pose maps and audio change nothing until trained
        pose = torch.randn(1, 8, 3, 8, 8)
        audio = torch.randn(1, 2, 3, 4, ours.config.audio_in_dim)
        assert torch.equal(ours(x, t, e, pose_maps=pose, audio=audio, face_masks=torch.ones(1, 2, 3, 8, 8)).sample, ref)


def test_new_modules_zero_after_loading_stock(models):
    _, ours = models
    assert ours.pose_embedding.weight.abs().sum() == 0
    assert all(b.to_out.weight.abs().sum() == 0 for b in ours.audio_blocks)
    assert ours.audio_blocks[0].to_q.weight.abs().sum() > 0  # the rest is a normal random init, not meta


def test_anchor_rope_index_changes_output(models):
    _, ours = models
    x, t, e = _inputs()
    lat = torch.randn(1, 4, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        plain = ours(x, t, e).sample
        a = ours(x, t, e, anchors=[AnchorTokens(lat, -8.0)]).sample
        b = ours(x, t, e, anchors=[AnchorTokens(lat, -16.0)]).sample
        c = ours(x, t, e, anchors=[AnchorTokens(lat, -8.0)]).sample
    assert not torch.allclose(a, plain, atol=1e-4)  # anchors are attended to
    assert (a - b).abs().max() > 1e-4  # only the RoPE index differs
    assert torch.equal(a, c)


def test_clean_prefix_uses_timestep_zero(models):
    _, ours = models
    x, t, e = _inputs()
    with torch.no_grad():
        plain = ours(x, t, e).sample
        pre = ours(x, t, e, clean_prefix=1).sample
    assert (plain - pre).abs().max() > 1e-4
    # the prefix frames' tokens are conditioning: changing the noise level leaves the block input of a fully
    # clean window unchanged, so only the output head (noisy-time modulation) differs between timesteps
    assert torch.isfinite(pre).all()


def test_new_modules_round_trip(tiny_weights, tmp_path):
    model = AnchoredWanTransformer.from_pretrained(tiny_weights / "transformer", audio_in_dim=16).eval()
    with torch.no_grad():
        for p in model.new_module_state_dict().values():
            p.normal_(generator=torch.Generator().manual_seed(p.numel()))
    model.save_pretrained(tmp_path / "ft")
    back = AnchoredWanTransformer.from_pretrained(tmp_path / "ft").eval()
    assert back.config.audio_in_dim == 16
    for k, v in model.new_module_state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k
    x, t, e = _inputs()
    pose, audio = torch.randn(1, 8, 3, 8, 8), torch.randn(1, 1, 3, 4, 16)
    with torch.no_grad():
        out = model(x, t, e, pose_maps=pose, audio=audio).sample
        assert torch.equal(back(x, t, e, pose_maps=pose, audio=audio).sample, out)
        assert (out - model(x, t, e).sample).abs().max() > 1e-4  # trained new modules do act
