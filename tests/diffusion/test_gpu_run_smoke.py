"""The documented GPU run, at its CPU smoke sizes: ``scripts/train_anchored_small.py --smoke`` trains a model that
loads as an anchored generator with its new modules trained, and ``bench/identity_drift.py`` on that model prints
one JSON line comparing drift with and without anchors, chunk by chunk."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]


def _module(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_smoke_then_identity_drift_bench(tmp_path, capsys):
    from anchorsplat.diffusion.anchored import load_anchored_generator

    out = tmp_path / "run"
    _module(ROOT / "scripts" / "train_anchored_small.py").main(["--out", str(out), "--smoke"])
    assert "bench/identity_drift.py" in capsys.readouterr().out
    trained = load_anchored_generator(out / "model", device="cpu").transformer
    # the new modules start at exactly zero output (pose projection, audio output projections); training moved them
    assert float(trained.pose_embedding.weight.abs().max()) > 0
    assert all(float(block.to_out.weight.abs().max()) > 0 for block in trained.audio_blocks)

    frames, chunk = 9, 3
    argv = ["--weights", str(out / "model"), "--rig", "synthetic", "--size", "32", "--frames", str(frames),
            "--steps", "1", "--chunk", str(chunk), "--distances", "2"]  # fmt: skip
    _module(ROOT / "bench" / "identity_drift.py").main(argv)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["bench"] == "identity_drift" and result["model"] == str(out / "model")
    assert set(result["configs"]) == {"none", "content", "lookahead_2"}
    chunks = math.ceil(frames / (4 * (chunk - 2)))
    for name, figures in result["configs"].items():
        assert len(figures["colour_drift_per_chunk"]) == len(figures["identity_per_chunk"]) == chunks, name
        assert all(0 <= c < math.sqrt(3) for c in figures["colour_drift_per_chunk"])
    # the anchors act: the configurations generate different frames
    assert result["configs"]["none"]["colour_drift_per_chunk"] != result["configs"]["content"]["colour_drift_per_chunk"]
    assert torch.isfinite(torch.tensor(result["reference_vae_roundtrip_colour"]))
