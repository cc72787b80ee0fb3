"""Dataset round trip and a two-step training smoke run: only the new modules move, loss is finite."""

from __future__ import annotations

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
