"""Audio-to-motion quality and speed on held-out synthetic speech; prints ONE JSON line.

    apt-get install espeak-ng
    python bench/audio2motion.py [--clips 30] [--seed 1234] [--model assets/audio2motion]

Clips come from the held-out split of anchorsplat.runtime.speechdata: sentences and voices never used in
training, clean (``clean``) and degraded like real recordings (``degraded``: noise, room, microphone, level).
Every model runs as a stream at 100 fps, so frame k (time k / 100 s) lines up with the viseme target at that time.

Per model (baseline; learned strictly causal; learned with 60 ms look-ahead; learned personalised by retrieval):
- ``lip_mae``: mean absolute error of the 11 mouth channels against the viseme targets;
- ``aperture_mae`` / ``aperture_corr`` / ``jaw_corr``: lip opening (``lip_aperture``) and ``jawOpen`` against target;
- ``bilabial_closure``: fraction of p/b/m whose lips close (aperture < 0.1) within the phoneme (+30 ms);
- ``lag_ms``: the shift that best aligns the predicted with the target opening (cross-correlation; > 0 = late);
- ``onset_lag_ms``: median delay from a target speech onset (opening > 0.15 after >= 200 ms closed) to the
  prediction opening past 0.15;
- ``per_frame_ms`` (median, p95): wall time of one push of 1/30 s of audio at 30 fps, one CPU thread;
- ``algorithmic_latency_ms``: audio past a frame's time the stream waits for (its look-ahead).
Personalisation: 4 other held-out clips, re-targeted to a made-up speaker style (jaw x1.4, +0.2 smile, head
pitched 3 degrees), are the references; ``style`` reports errors against the style-transformed targets.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import numpy as np
import torch

from anchorsplat.runtime.channels import NUM_CHANNELS, NUM_VISEME, channel, channels_to_motion, lip_aperture
from anchorsplat.runtime.motion import AudioToMotion, audio_to_motion_frames, load_face_model
from anchorsplat.runtime.retrieval import ReferenceClip, build_style_memory
from anchorsplat.runtime.speechdata import Clip, make_clip
from anchorsplat.runtime.synthspeech import espeak_available
from anchorsplat.runtime.visemes import is_bilabial, viseme_targets

FRAME_RATE = 100.0


def padded(visemes: np.ndarray) -> torch.Tensor:
    out = torch.zeros(len(visemes), NUM_CHANNELS)
    out[:, :NUM_VISEME] = torch.from_numpy(visemes)
    return out


def style_transform(channels: torch.Tensor) -> torch.Tensor:
    """The made-up speaker: opens the jaw 40 % wider, smiles, holds the head 3 degrees down."""
    out = channels.clone()
    out[:, channel("jawOpen")] = (out[:, channel("jawOpen")] * 1.4).clamp(0, 1)
    out[:, channel("mouthSmile")] = (out[:, channel("mouthSmile")] + 0.2).clamp(0, 1)
    out[:, channel("headPitch")] = out[:, channel("headPitch")] + 0.05
    return out


def targets_at(clip: Clip, frames: int, fps: float = FRAME_RATE) -> torch.Tensor:
    return padded(viseme_targets(clip.intervals, np.arange(frames) / fps))


def lag_ms(pred: np.ndarray, target: np.ndarray, max_lag: int = 20) -> float:
    best, best_lag = -np.inf, 0
    for lag in range(-max_lag, max_lag + 1):  # pred[t + lag] ~ target[t]
        a = pred[max(lag, 0) : len(pred) + min(lag, 0)]
        b = target[max(-lag, 0) : len(target) - max(lag, 0)]
        c = float(np.corrcoef(a, b)[0, 1])
        if c > best:
            best, best_lag = c, lag
    return 1000.0 * best_lag / FRAME_RATE


def onset_lags(pred: np.ndarray, target: np.ndarray, threshold: float = 0.15) -> list[float]:
    lags, closed_for = [], 0
    for t in range(len(target)):
        if target[t] > threshold and closed_for >= 20:
            hits = np.nonzero(pred[t : t + 30] > threshold)[0]
            if len(hits):
                lags.append(1000.0 * hits[0] / FRAME_RATE)
        closed_for = closed_for + 1 if target[t] <= threshold else 0
    return lags


def bilabial_closures(clip: Clip, aperture: np.ndarray) -> list[bool]:
    out = []
    for viseme, phoneme, s, e in zip(
        clip.intervals.visemes, clip.intervals.phonemes, clip.intervals.starts, clip.intervals.ends, strict=True
    ):
        if viseme == "PP" and is_bilabial(phoneme):
            window = aperture[int(np.ceil(s * FRAME_RATE)) : int((e + 0.03) * FRAME_RATE) + 1]
            if len(window):
                out.append(bool(window.min() < 0.1))
    return out


def evaluate(clips: list[Clip], model, transform=None, **kwargs) -> dict:
    preds, targets, closures, onsets = [], [], [], []
    for clip in clips:
        frames = audio_to_motion_frames(clip.samples, model, fps=FRAME_RATE, **kwargs).channels
        target = targets_at(clip, len(frames))
        if transform is not None:
            target = transform(target)
        pa, ta = lip_aperture(frames).numpy(), lip_aperture(target).numpy()
        preds.append(frames)
        targets.append(target)
        closures += bilabial_closures(clip, pa)
        onsets += onset_lags(pa, ta)
    pred, target = torch.cat(preds), torch.cat(targets)
    pa, ta = lip_aperture(pred).numpy(), lip_aperture(target).numpy()
    jaw = channel("jawOpen")
    result = {
        "lip_mae": float((pred[:, :NUM_VISEME] - target[:, :NUM_VISEME]).abs().mean()),
        "aperture_mae": float(np.abs(pa - ta).mean()),
        "aperture_corr": float(np.corrcoef(pa, ta)[0, 1]),
        "jaw_corr": float(np.corrcoef(pred[:, jaw].numpy(), target[:, jaw].numpy())[0, 1]),
        "bilabial_closure": float(np.mean(closures)) if closures else None,
        "lag_ms": lag_ms(pa, ta),
        "onset_lag_ms": float(np.median(onsets)) if onsets else None,
    }
    if transform is not None:
        result["head_pitch_mae"] = float((pred[:, channel("headPitch")] - target[:, channel("headPitch")]).abs().mean())
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.items()}


def speed(clip: Clip, model, **kwargs) -> dict:
    stream = AudioToMotion(model, fps=30.0, **kwargs)
    chunk = 16000 // 30
    times = []
    for start in range(0, len(clip.samples), chunk):
        t = time.perf_counter()
        stream.push(clip.samples[start : start + chunk])
        times.append(1000.0 * (time.perf_counter() - t))
    times = np.array(times[5:])
    return {
        "per_frame_ms": round(float(np.median(times)), 3),
        "per_frame_ms_p95": round(float(np.percentile(times, 95)), 3),
        "algorithmic_latency_ms": stream.algorithmic_latency_ms,
    }


def references(clips: list[Clip]) -> list[ReferenceClip]:
    from anchorsplat.runtime.audio import Audio

    out = []
    for clip in clips:
        frames = int(np.ceil(len(clip.samples) / 16000 * 30))
        target = style_transform(targets_at(clip, frames, fps=30.0))
        out.append(ReferenceClip(Audio(clip.samples, 16000), channels_to_motion(target, 30.0)))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--model", default="learned", help="learned model folder (default: the shipped one)")
    args = parser.parse_args(argv)
    if not espeak_available():
        sys.exit("bench/audio2motion.py needs espeak-ng: apt-get install espeak-ng")
    torch.set_num_threads(1)
    start = time.time()
    rng = np.random.default_rng(args.seed)
    clean = [make_clip(rng, "heldout", degrade=False) for _ in range(args.clips)]
    degraded = [make_clip(rng, "heldout", degrade=True) for _ in range(args.clips)]
    refs = references([make_clip(rng, "heldout", degrade=False, utterances=3) for _ in range(4)])
    baseline, learned = load_face_model("baseline"), load_face_model(args.model)
    memory = build_style_memory(refs, learned)
    result = {
        "bench": "audio2motion",
        "clips": args.clips,
        "speech_seconds": round(sum(len(c.samples) for c in clean) / 16000, 1),
        "models": {
            "baseline": {
                "clean": evaluate(clean, baseline),
                "degraded": evaluate(degraded, baseline),
                **speed(clean[0], baseline),
            },
            "learned": {
                "clean": evaluate(clean, learned),
                "degraded": evaluate(degraded, learned),
                **speed(clean[0], learned),
            },
            "learned_lookahead60": {
                "clean": evaluate(clean, learned, lookahead_ms=60.0),
                "degraded": evaluate(degraded, learned, lookahead_ms=60.0),
                **speed(clean[0], learned, lookahead_ms=60.0),
            },
        },
        "style": {
            "reference_frames": len(memory),
            "learned": evaluate(clean, learned, transform=style_transform),
            "learned_personalised": evaluate(clean, learned, transform=style_transform, style=memory),
            **speed(clean[0], learned, style=memory),
        },
        "learned_parameters": sum(p.numel() for p in learned.net.parameters()),
        "device": f"cpu ({platform.processor() or platform.machine()}), 1 thread",
        "seconds": round(time.time() - start, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
