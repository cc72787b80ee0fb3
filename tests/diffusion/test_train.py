"""Dataset round trip and a two-step training smoke run: only the new modules move, loss is finite."""

from __future__ import annotations

from pathlib import Path

import torch

from anchorsplat.diffusion.dataset import DiffusionDataset, write_dataset
from anchorsplat.diffusion.generator import Clip
from anchorsplat.diffusion.model import AnchoredWanTransformer
from anchorsplat.diffusion.train import TrainConfig, train
from anchorsplat.gaussians.conventions import framing_cameras
from anchorsplat.gaussians.motion import Motion
from anchorsplat.gaussians.synthetic import synthetic_rig


def test_dataset_and_training(tiny_weights, tmp_path):
    rig = synthetic_rig()
    cams = framing_cameras(rig.vertices_rest, torch.linspace(0, 180, 9), width=32, height=32)
    frames = torch.rand(9, 32, 32, 3, generator=torch.Generator().manual_seed(0))
    clip = Clip("turn", frames, torch.ones(9, 32, 32), Motion.zeros(9), cams)
    write_dataset(tmp_path / "data", [clip], rig, frames[0], window=5, size=(32, 32), anchors_per_sample=4)
    data = DiffusionDataset(tmp_path / "data")
    assert len(data) == 2
    s = data[1]
    assert s.frames.shape == (5, 32, 32, 3) and s.pose.shape == (8, 2, 4, 4)
    torch.testing.assert_close(s.frames, frames[4:9], atol=1 / 255, rtol=0)
    assert s.anchor_kind[0] == 0 and s.anchor_inside[0] == 0 and s.anchor_inside[-1] == 1
    assert s.anchor_slot[-1] in (0, 1, 2, 3)

    cfg = TrainConfig(tiny_weights, tmp_path / "data", tmp_path / "out", steps=2, lr=1e-2, all_anchor_dropout=0.0)
    train(cfg)
    before = AnchoredWanTransformer.from_pretrained(tiny_weights / "transformer")
    after = AnchoredWanTransformer.from_pretrained(tmp_path / "out" / "transformer")
    assert torch.equal(before.blocks[0].attn1.to_q.weight, after.blocks[0].attn1.to_q.weight)
    assert after.pose_embedding.weight.abs().sum() > 0  # the zero-init pose projection was trained
    assert (tmp_path / "out" / "vae" / "config.json").is_file()


def test_dataset_keyframes_and_expression_anchors(tmp_path):
    from anchorsplat.diffusion.anchors import AnchorLayout

    rig = synthetic_rig()
    cams = framing_cameras(rig.vertices_rest, torch.zeros(17), width=32, height=32)
    frames = torch.rand(17, 32, 32, 3, generator=torch.Generator().manual_seed(1))
    expression = torch.zeros(17, 2)
    expression[11, 0] = 0.9  # frame 11 is clearly "happy"
    motion = Motion.from_full_pose(Motion.zeros(17).full_pose(), torch.zeros(17, 3), expression, ("happy", "jawOpen"))
    clip = Clip("talk", frames, torch.ones(17, 32, 32), motion, cams)
    write_dataset(tmp_path / "d", [clip], rig, frames[0], window=5, size=(32, 32), anchors_per_sample=4,
                  keyframe_distance=2)  # fmt: skip
    data = DiffusionDataset(tmp_path / "d")
    s = data[0]  # window frames 0..4: keyframe 2 latent frames (8 video frames) past frame 4
    assert s.keyframe_distance == 2
    torch.testing.assert_close(s.keyframe, frames[12], atol=1 / 255, rtol=0)
    assert data[3].keyframe is None  # frames 12..16: no frame 8 past the end
    kinds = s.anchor_kind.tolist()
    assert kinds.count(2) == 1
    i = kinds.index(2)
    torch.testing.assert_close(s.anchors[i], frames[11], atol=1 / 255, rtol=0)
    layout = AnchorLayout()
    assert layout.expression_t + int(s.anchor_slot[i]) == layout.expression_position("happy")


def test_lookahead_uses_the_real_keyframe_at_its_distance():
    from anchorsplat.diffusion.anchors import AnchorLayout
    from anchorsplat.diffusion.dataset import Sample
    from anchorsplat.diffusion.train import sample_anchors

    sample = Sample(torch.zeros(5, 8, 8, 3), torch.zeros(8, 2, 1, 1), None, torch.zeros(1, 8, 8, 3),
                    torch.tensor([0]), torch.tensor([0]), torch.tensor([0]), torch.zeros(8, 8, 3), 3)  # fmt: skip
    cfg = TrainConfig(Path("w"), Path("d"), Path("o"), all_anchor_dropout=0.0, lookahead_max=8)
    photo, key = torch.zeros(1, 4, 1, 2, 2), torch.ones(1, 4, 1, 2, 2)
    g = torch.Generator().manual_seed(0)
    real = other = 0
    for _ in range(800):
        for a in sample_anchors(sample, photo, cfg, AnchorLayout(), 2, g, key):
            if a.t_position >= 2:
                if a.latents is key:
                    assert a.t_position == 2 - 1 + 3  # the keyframe sits at its true distance
                    real += 1
                else:
                    other += 1
    assert abs(real / 800 - 0.25) < 0.05 and abs(other / 800 - 0.25) < 0.05


def test_lora_and_gradient_checkpointing(tiny_weights, tmp_path):
    from anchorsplat.diffusion.train import merged_state_dict, prepare_model, save

    cfg = TrainConfig(tiny_weights, tmp_path, tmp_path / "out", lora_rank=2)
    model = prepare_model(AnchoredWanTransformer.from_pretrained(tiny_weights / "transformer"), cfg)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(".lora_A" in n for n in trainable) and "pose_embedding.weight" in trainable
    assert not any(n.startswith("blocks.") and ".lora_" not in n for n in trainable)  # backbone frozen
    assert any("blocks.0.attn1.to_q.lora_A" in n for n in trainable)
    assert any("blocks.0.attn2.to_out.0.lora_A" in n for n in trainable)
    assert not any("audio_blocks" in n and ".lora_" in n for n in trainable)
    base = AnchoredWanTransformer.from_pretrained(tiny_weights / "transformer")
    with torch.no_grad():
        for n, p in model.named_parameters():
            if ".lora_B" in n:
                p.normal_(generator=torch.Generator().manual_seed(p.numel()))
    layer = model.blocks[0].attn1.to_q
    merged = merged_state_dict(model)
    want = base.blocks[0].attn1.to_q.weight + layer.lora_B["default"].weight @ layer.lora_A["default"].weight
    torch.testing.assert_close(merged["blocks.0.attn1.to_q.weight"], want)
    torch.testing.assert_close(merged["blocks.0.ffn.net.2.weight"], base.blocks[0].ffn.net[2].weight)
    plain = AnchoredWanTransformer(**{k: v for k, v in model.config.items() if not k.startswith("_")})
    plain.load_state_dict(merged)  # strict: the merged weights are a plain checkpoint
    x, t, e = torch.randn(1, 4, 2, 4, 4), torch.tensor([500.0]), torch.randn(1, 3, 16)
    with torch.no_grad():
        torch.testing.assert_close(plain(x, t, e).sample, model(x, t, e).sample, atol=1e-5, rtol=1e-4)
    save(model, cfg)  # what train() writes: LoRA merged, a plain checkpoint any loader reads
    back = AnchoredWanTransformer.from_pretrained(tmp_path / "out" / "transformer")
    with torch.no_grad():
        torch.testing.assert_close(back(x, t, e).sample, model(x, t, e).sample, atol=1e-5, rtol=1e-4)
    # gradient checkpointing recomputes blocks in the backward pass: the same gradients
    assert model.gradient_checkpointing
    model.train()
    pose = torch.randn(1, 8, 2, 4, 4, generator=torch.Generator().manual_seed(9))

    def grads() -> dict:
        model.zero_grad()
        model(x, t, e, pose_maps=pose).sample.square().mean().backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    with_ckpt = grads()
    model.disable_gradient_checkpointing()
    without = grads()
    assert with_ckpt.keys() == without.keys() and any(".lora_B" in n for n in with_ckpt)
    for n in with_ckpt:
        torch.testing.assert_close(with_ckpt[n], without[n], atol=1e-6, rtol=1e-5)
