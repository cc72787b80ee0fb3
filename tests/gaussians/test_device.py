"""The one device resolver and the dataclass mover."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from anchorsplat.gaussians.conventions import Cameras, framing_cameras
from anchorsplat.gaussians.device import resolve_device, to_device


def test_resolve_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu") and resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="no CUDA device is available; use --device cpu"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="--device tpu: unknown"):
        resolve_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda") and resolve_device("cuda:1") == torch.device("cuda", 1)


@dataclass(frozen=True)
class _Item:
    image: torch.Tensor
    cameras: Cameras
    name: str


def test_to_device_moves_every_tensor_of_nested_dataclasses():
    cams = framing_cameras(torch.rand(5, 3), torch.tensor([0.0]), width=8, height=8)
    item = _Item(torch.rand(2, 2), cams, "x")
    moved = to_device([item, (torch.ones(1), 3)], "meta")
    assert moved[0].image.is_meta and moved[0].cameras.Ks.is_meta and moved[0].cameras.T_cam_world.is_meta
    assert moved[0].name == "x" and moved[0].cameras.width == 8 and moved[1][1] == 3 and moved[1][0].is_meta
    assert not item.image.is_meta  # the original is untouched
