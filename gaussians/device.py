"""The one device resolver: what ``--device auto|cpu|cuda`` means.

Only CLI configs (and the job settings they fill) name a device; every function below them follows the device
of its inputs.
"""

from __future__ import annotations

import dataclasses
from typing import TypeVar

import torch

T = TypeVar("T")

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"``: the first CUDA device when there is one, else the CPU; ``"cpu"``; ``"cuda"`` / ``"cuda:N"``.

    Raises:
        ValueError: an unknown name, or CUDA asked for on a machine without it.
    """
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.split(":")[0] not in DEVICES[1:]:
        raise ValueError(f"--device {name}: unknown; choose auto, cpu or cuda")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name} was asked for but no CUDA device is available; use --device cpu (or auto)")
    return torch.device(name)


def to_device(value: T, device: torch.device | str) -> T:
    """``value`` on ``device``: a tensor, an object with its own ``.to(device)`` (Rig, Cameras, Motion,
    RiggedGaussians), or a dataclass / list / tuple of those (moved field by field, other fields kept)."""
    if isinstance(value, torch.Tensor) or callable(getattr(type(value), "to", None)):
        return value.to(device)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: to_device(getattr(value, f.name), device) for f in dataclasses.fields(value) if f.init}
        return dataclasses.replace(value, **fields)
    if isinstance(value, list | tuple):
        return type(value)(to_device(v, device) for v in value)
    return value
