"""A torch function mode that fails when anchorsplat code makes a tensor off its inputs' device.

The tests run on a CPU, so "the inputs' device" and torch's default device are the same and a forgotten
``device=`` would go unnoticed until a GPU job crashes (or silently copies every step). The guard makes the
default device a sentinel: a factory call (``torch.zeros``, ``torch.tensor``, ``torch.rand`` ...) made *from
anchorsplat code* without ``device=`` counts as a tensor made on that sentinel, i.e. on a device other than the
inputs', and fails with the file and line. A call that names a device must name the inputs' one (a host-side
tensor made on purpose says ``device="cpu"`` or ``device=generator.device``). Any tensor that comes out of any
call on another device than the inputs' fails as well (a hard-coded ``"cuda"`` or ``"meta"``).

It also counts the host syncs made from anchorsplat code (``Tensor.item``/``tolist``/``cpu``/``numpy``), so a
test can bound them per step.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode

FACTORIES = {
    torch.zeros, torch.ones, torch.empty, torch.full, torch.rand, torch.randn, torch.randint, torch.randperm,
    torch.arange, torch.linspace, torch.logspace, torch.eye, torch.tensor, torch.as_tensor, torch.scalar_tensor,
}  # fmt: skip
SYNCS = {torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.cpu, torch.Tensor.numpy}

_THIS_FILE = str(Path(__file__).resolve())


def _project_dirs() -> tuple[str, ...]:
    import anchorsplat
    import anchorsplat.bake
    import anchorsplat.diffusion
    import anchorsplat.gaussians
    import anchorsplat.runtime

    packages = (anchorsplat, anchorsplat.bake, anchorsplat.diffusion, anchorsplat.gaussians, anchorsplat.runtime)
    return tuple(str(Path(p.__path__[0]).resolve()) + "/" for p in packages)


class DeviceViolation(AssertionError):
    pass


class DeviceGuard(TorchFunctionMode):
    """``with DeviceGuard(inputs_device): ...`` fails on the first tensor made off ``inputs_device``."""

    def __init__(self, device: torch.device | str = "cpu", code_dirs: tuple[str, ...] | None = None) -> None:
        """``code_dirs``: whose calls are checked (default: anchorsplat's packages)."""
        super().__init__()
        self.device = torch.device(device)
        self.syncs: Counter[str] = Counter()
        self._dirs = _project_dirs() if code_dirs is None else tuple(str(Path(d).resolve()) + "/" for d in code_dirs)

    def _caller(self) -> str | None:
        """``file:line`` of the anchorsplat code that made this call, or None when another module (torch's own
        internals included) made it."""
        frame = sys._getframe(2)
        while frame is not None and (frame.f_code.co_filename == _THIS_FILE or frame.f_code.co_filename[0] == "<"):
            frame = frame.f_back
        if frame is None:
            return None
        name = str(Path(frame.f_code.co_filename).resolve())
        return f"{name}:{frame.f_lineno}" if name.startswith(self._dirs) else None

    def syncs_in(self, path_part: str) -> int:
        return sum(n for where, n in self.syncs.items() if path_part in where)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in FACTORIES or func in SYNCS:
            where = self._caller()
            if where is not None and func in SYNCS:
                self.syncs[where] += 1
            if where is not None and func in FACTORIES and not self._follows_input(func, args, kwargs):
                device = kwargs.get("device")
                if device is None:
                    raise DeviceViolation(
                        f"{where}: torch.{func.__name__} without device= makes the tensor on the default device, "
                        f"not on the inputs' ({self.device})"
                    )
        out = func(*args, **kwargs)
        for t in out if isinstance(out, tuple | list) else (out,):
            if isinstance(t, torch.Tensor) and t.device != self.device and func not in SYNCS:
                raise DeviceViolation(f"torch.{getattr(func, '__name__', func)} made a tensor on {t.device}, "
                                      f"the inputs are on {self.device} (at {self._caller()})")  # fmt: skip
        return out

    @staticmethod
    def _follows_input(func, args, kwargs) -> bool:
        """``torch.as_tensor(t)`` / ``torch.tensor(t)`` of a tensor keep its device."""
        data = args[0] if args else kwargs.get("data")
        return func in (torch.as_tensor, torch.tensor) and isinstance(data, torch.Tensor)

    def total_syncs(self) -> int:
        return sum(self.syncs.values())
