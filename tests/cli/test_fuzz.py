"""Seeded fuzzing of the loaders users feed files to (avatar, motion, audio): random truncations and byte flips
of real files. Every case either loads finite data or is refused with one line (a ValueError without a newline);
nothing else may escape. A slice of the avatar cases also goes through ``anchorsplat render``: exit 0 with a
finite image, or exit 2 with one ``anchorsplat: error:`` line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from clitools import GOLDEN, motion_npz

from anchorsplat.gaussians.io import load_avatar
from anchorsplat.gaussians.motion import load_motion
from anchorsplat.runtime.audio import load_audio

CASES = 100  # per loader


def _mutations(data: bytes, rng: np.random.Generator, count: int):
    for i in range(count):
        buf = bytearray(data)
        kind = ("truncate", "flip", "both")[i % 3]
        if kind in ("flip", "both"):
            for _ in range(int(rng.integers(1, 9))):
                pos = int(rng.integers(0, len(buf)))
                buf[pos] ^= 1 << int(rng.integers(0, 8))
        if kind in ("truncate", "both"):
            buf = buf[: int(rng.integers(0, len(buf)))]
        yield kind, bytes(buf)


def _finite(value) -> bool:
    if isinstance(value, torch.Tensor):
        return not value.is_floating_point() or bool(torch.isfinite(value).all())
    if isinstance(value, np.ndarray):
        return value.dtype.kind not in "fc" or bool(np.isfinite(value).all())
    return True


def _check(loader, path, inspect) -> str:
    try:
        result = loader(path)
    except ValueError as exc:
        assert "\n" not in str(exc), str(exc)
        return "refused"
    assert all(_finite(v) for v in inspect(result)), f"{path.name} loaded non-finite data"
    return "loaded"


def _avatar_values(avatar):
    return [*vars(avatar.rig).values(), *vars(avatar.gaussians).values()]


def _motion_values(motion):
    return [motion.full_pose(), motion.transl, motion.expression]


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    import soundfile

    root = tmp_path_factory.mktemp("fuzz_sources")
    motion = motion_npz(root / "m.npz")
    t = np.arange(3200) / 16000
    soundfile.write(str(root / "a.wav"), (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16000, "FLOAT")
    soundfile.write(str(root / "a.flac"), (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16000)
    return {"avatar": GOLDEN, "motion": motion, "wav": root / "a.wav", "flac": root / "a.flac"}


# (loader, its arrays, suffix, least share refused): safetensors headers and zip CRCs catch most damage; raw PCM
# has no checksum, so a flipped sample or a cut WAV is still audio (only NaN/inf samples and bad headers are refused)
LOADERS = {
    "avatar": (load_avatar, _avatar_values, ".anchorsplat", 0.3),
    "motion": (load_motion, _motion_values, ".npz", 0.9),
    "wav": (load_audio, lambda a: [a.samples], ".wav", 0.0),
    "flac": (load_audio, lambda a: [a.samples], ".flac", 0.3),
}


@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_loaders_refuse_damage_in_one_line(sources, tmp_path, kind):
    loader, inspect, suffix, least = LOADERS[kind]
    rng = np.random.default_rng(12)
    outcomes = []
    for i, (_, data) in enumerate(_mutations(sources[kind].read_bytes(), rng, CASES)):
        path = tmp_path / f"case{i}{suffix}"
        path.write_bytes(data)
        outcomes.append(_check(loader, path, inspect))
        path.unlink()
    assert outcomes.count("refused") >= least * CASES  # the checks are reached, not bypassed


def test_damaged_avatars_through_render(tmp_path, capsys):
    from anchorsplat.cli import main

    rng = np.random.default_rng(7)
    for i, (_, data) in enumerate(_mutations(GOLDEN.read_bytes(), rng, 16)):
        path, out = tmp_path / f"case{i}.anchorsplat", tmp_path / f"case{i}.png"
        path.write_bytes(data)
        capsys.readouterr()
        try:
            main(["render", str(path), "--out", str(out), "--resolution", "16", "--backend", "torch"])
            code = 0
        except SystemExit as exc:
            code = exc.code
        err = capsys.readouterr().err
        if code == 0:
            from PIL import Image

            assert np.isfinite(np.asarray(Image.open(out), dtype=np.float32)).all()
        else:
            assert code == 2 and len(err.splitlines()) == 1 and err.startswith("anchorsplat: error: "), err
            assert not out.exists()
