"""Peak memory of ``anchorsplat play`` on a long audio file (default one hour); ONE JSON line.

    python bench/play_memory.py                      # 60 minutes of 48 kHz stereo FLAC
    python bench/play_memory.py --minutes 2          # a quick run

The file is the shipped sample speech tiled to ``--minutes`` (48 kHz stereo, 16-bit FLAC, written block by block).
``anchorsplat play`` runs in a child process (the real CLI, ``--threads 1``, a 2,000-Gaussian subset of the sample
avatar at 16 x 16 pixels and 1 fps, so that the audio path, not rendering, dominates); its peak resident memory is
the figure (target: under 600 MB for an hour). Reference, measured in the same run: the peak of a child that only
decodes the same file whole with ``load_audio`` (what ``play`` did before it streamed).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from anchorsplat.gaussians.assets import assets_dir

ASSETS = assets_dir()


def write_long_audio(path: Path, minutes: float, rate: int = 48000) -> None:
    import soundfile

    from anchorsplat.runtime.audio import load_audio, resample

    speech = resample(load_audio(ASSETS / "sample_speech.flac").samples, 16000, rate)
    stereo = np.stack([speech, 0.8 * speech], axis=1)
    total = int(minutes * 60 * rate)
    with soundfile.SoundFile(str(path), "w", rate, 2, subtype="PCM_16", format="FLAC") as f:
        written = 0
        while written < total:
            block = stereo[: total - written]
            f.write(block)
            written += len(block)


def peak_rss_mb(argv: list[str]) -> tuple[float, float]:
    """Peak resident memory (MB) and wall seconds of a child process (GNU time's maximum resident set size)."""
    start = time.perf_counter()
    script = "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); " \
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"  # fmt: skip
    out = subprocess.run([sys.executable, "-c", script, *argv], check=True, capture_output=True, text=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    args = parser.parse_args()
    import torch

    from anchorsplat.gaussians.io import Avatar, load_avatar, save_avatar

    with tempfile.TemporaryDirectory(prefix="anchorsplat-bench-") as folder:
        root = Path(folder)
        audio = root / "long.flac"
        write_long_audio(audio, args.minutes)
        avatar = load_avatar(ASSETS / "sample.anchorsplat")
        keep = torch.randperm(len(avatar.gaussians), generator=torch.Generator().manual_seed(0))[:2000]
        save_avatar(root / "small.anchorsplat", Avatar(avatar.rig, avatar.gaussians.subset(keep)))
        load_only = f"from anchorsplat.runtime.audio import load_audio; load_audio({str(audio)!r})"
        reference_mb, reference_s = peak_rss_mb([sys.executable, "-c", load_only])
        play_mb, play_s = peak_rss_mb([
            sys.executable, "-m", "anchorsplat", "play", str(root / "small.anchorsplat"), "--audio", str(audio),
            "--out", str(root / "long.mp4"), "--resolution", "16", "--fps", "1", "--threads", "1",
            "--device", "cpu", "--backend", "torch",
        ])  # fmt: skip
        video_mb = (root / "long.mp4").stat().st_size / 1e6
    print(json.dumps({
        "bench": "play_memory", "audio_minutes": args.minutes, "audio": "48 kHz stereo 16-bit FLAC",
        "play_peak_rss_mb": round(play_mb, 1), "play_seconds": round(play_s, 1), "video_mb": round(video_mb, 2),
        "target_mb": 600, "under_target": play_mb < 600,
        "reference_load_whole_peak_rss_mb": round(reference_mb, 1), "reference_seconds": round(reference_s, 1),
        "ratio_to_reference": round(play_mb / reference_mb, 3),
        "machine": platform.processor() or platform.machine(), "threads": 1,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
