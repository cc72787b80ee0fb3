"""Helpers of the CLI tests: broken variants of small valid files, and the CLI run in and out of process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "data" / "golden_v1.anchorsplat"
PHOTO = ROOT / "tests" / "data" / "bake" / "grace_hopper.jpg"


def rewrite_avatar(dst: Path, **updates) -> Path:
    """The golden avatar with some tensors replaced (``gaussians_face_ids=...`` for ``gaussians.face_ids``)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(GOLDEN), framework="pt") as f:
        header = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    for key, value in updates.items():
        name = key.replace("_", ".", 1)
        tensors[name] = value(tensors[name]) if callable(value) else value
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(dst), metadata=header)
    return dst


def motion_npz(dst: Path, **overrides) -> Path:
    from anchorsplat.gaussians.motion import Motion, save_motion

    save_motion(dst, Motion.zeros(4))
    arrays = dict(np.load(dst))
    arrays.update(overrides)
    np.savez(dst, **arrays)
    return dst


def cli_error(argv: list[str], capsys) -> str:
    """Run the real CLI entry point; it must exit 2 with exactly one ``anchorsplat: error:`` line on stderr."""
    from anchorsplat.cli import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in argv])
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert info.value.code == 2, captured.err
    assert len(lines) == 1 and lines[0].startswith("anchorsplat: error: "), captured.err
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


def run_cli(argv: list[str], cwd: Path, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    """The installed command in a child process (what a user runs), one thread."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "anchorsplat", *map(str, argv)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, **kw)  # fmt: skip
