"""Clips are generated at their cameras' aspect ratio (not squashed into 832x480)."""

from __future__ import annotations

import torch

from anchorsplat.diffusion.anchored import AnchoredConfig, generation_size, load_anchored_generator
from anchorsplat.diffusion.generator import Anchors, ClipSpec
from anchorsplat.gaussians.conventions import framing_cameras
from anchorsplat.gaussians.motion import Motion
from anchorsplat.gaussians.synthetic import synthetic_rig


def test_generation_size_keeps_aspect_and_area():
    assert generation_size(832, 480, 832 * 480, 16) == (832, 480)
    w, h = generation_size(512, 512, 832 * 480, 16)  # a square preset camera stays square
    assert w == h and w % 16 == 0 and abs(w * h - 832 * 480) / (832 * 480) < 0.05
    assert generation_size(480, 832, 832 * 480, 32) == (480, 832)  # Wan 2.2: multiples of 16 x patch 2
    assert generation_size(10, 1000, 64 * 64, 16) == (16, 640)  # never below one multiple


def test_non_square_camera_is_generated_at_its_aspect(tiny_weights):
    gen = load_anchored_generator(tiny_weights, device="cpu", config=AnchoredConfig(width=64, height=64, steps=1))
    rig = synthetic_rig()
    spec = ClipSpec("wide", Motion.zeros(5), framing_cameras(rig.vertices_rest, torch.zeros(5), width=60, height=30))
    shapes = []
    hook = gen.transformer.patch_embedding.register_forward_pre_hook(lambda m, a: shapes.append(a[0].shape))
    try:
        clip = gen.generate_clip(rig, spec, gen.encode_anchors(Anchors(torch.rand(40, 20, 3))))
    finally:
        hook.remove()
    assert clip.frames.shape == (5, 30, 60, 3)
    assert shapes[0][2:] == (2, 48 // 8, 96 // 8)  # 96 x 48 pixels: 2:1 at 64 x 64's area, latents 8x smaller
    assert shapes[1][2:] == (1, 96 // 8, 48 // 8)  # the 1:2 anchor photo at its own aspect (48 x 96)
