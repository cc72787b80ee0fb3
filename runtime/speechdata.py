"""Synthetic, phoneme-aligned speech clips for training and evaluating audio-to-motion (needs espeak-ng).

A clip strings a few espeak-ng utterances together with pauses, then degrades the audio the way real
recordings are degraded (gain, background noise, a small room, a microphone's tilt, telephone band-limiting)
and carries the mouth targets of its phonemes (:mod:`.visemes`) at every feature step.

Sentences come from the docstrings of Python's standard library (always on the machine, deterministic);
a fixed tenth of them and a disjoint set of voices are held out for evaluation (``split="heldout"``).
"""

from __future__ import annotations

import ast
import re
import sys
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .audio import SAMPLE_RATE, resample
from .features import FeatureConfig, compute_features
from .synthspeech import synthesize
from .visemes import Intervals, phoneme_intervals, viseme_targets

TRAIN_BASES = ("en-us", "en", "en-gb-x-rp", "en-gb-x-gbclan")
TRAIN_VARIANTS = (
    "", "m1", "m2", "m3", "m4", "f1", "f2", "f3", "klatt", "klatt3", "adam", "belinda", "david", "linda", "john",
    "steph", "robert", "paul", "max", "anika", "benjamin", "edward", "iven", "quincy", "shelby", "travis", "zac",
)  # fmt: skip
HELDOUT_BASES = ("en-029", "en-gb-scotland", "en-us-nyc", "en-gb-x-gbcwmd")
HELDOUT_VARIANTS = ("m5", "m6", "f4", "f5", "klatt2", "klatt4", "aunty", "grandpa", "victor", "norbert", "michel")


@lru_cache(maxsize=1)
def _all_sentences() -> tuple[str, ...]:
    stdlib = Path(sys.base_prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    found: set[str] = set()
    for path in sorted(stdlib.glob("*.py")):
        try:
            tree = ast.parse(path.read_text(errors="ignore"))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef) and (doc := ast.get_docstring(node)):
                for sentence in re.split(r"(?<=[.!?])\s+", " ".join(doc.split())):
                    if 4 <= len(sentence.split()) <= 16 and re.fullmatch(r"[A-Z][A-Za-z ,.'?!-]+", sentence):
                        found.add(sentence)
    if len(found) < 50:  # a Python without its sources: fall back to a few pangrams
        found |= set(_FALLBACK)
    return tuple(sorted(found))


_FALLBACK = (
    "The quick brown fox jumps over the lazy dog.", "Pack my box with five dozen liquor jugs.",
    "How vexingly quick daft zebras jump.", "Bright vixens jump, dozy fowl quack.",
    "Sphinx of black quartz, judge my vow.", "The five boxing wizards jump quickly.",
    "Please bring me my map before we move.", "We were away a year ago.", "Who is there and what do you want?",
    "Peter Piper picked a peck of pickled peppers.", "She sells sea shells by the sea shore.",
)  # fmt: skip


def sentences(split: str = "train") -> tuple[str, ...]:
    """Sentences of one split; ``"heldout"`` is every sentence whose CRC32 is divisible by 10."""
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    held = [zlib.crc32(s.encode()) % 10 == 0 for s in _all_sentences()]
    return tuple(s for s, h in zip(_all_sentences(), held, strict=True) if h == (split == "heldout"))


def voices(split: str = "train") -> tuple[str, ...]:
    bases, variants = (TRAIN_BASES, TRAIN_VARIANTS) if split == "train" else (HELDOUT_BASES, HELDOUT_VARIANTS)
    return tuple(b + (f"+{v}" if v else "") for b in bases for v in variants)


@dataclass(frozen=True, eq=False)
class Clip:
    """16 kHz audio, its features, the mouth targets at every feature step, and the viseme intervals."""

    samples: np.ndarray
    features: np.ndarray  # T x D
    targets: np.ndarray  # T x V, at the feature steps' end times
    intervals: Intervals
    voice: str


def make_clip(rng: np.random.Generator, split: str = "train", *, degrade: bool = True, utterances: int = 0) -> Clip:
    """One random clip of 1-3 utterances (``utterances`` to force a count) from ``split``'s sentences and voices."""
    pool, voice_pool = sentences(split), voices(split)
    voice = str(rng.choice(voice_pool))
    rate, pitch, span = int(rng.integers(120, 250)), int(rng.integers(20, 80)), int(rng.integers(20, 90))
    pieces, phonemes, starts = [np.zeros(int(rng.uniform(0.05, 0.6) * SAMPLE_RATE), np.float32)], [], []
    offset = len(pieces[0]) / SAMPLE_RATE
    for _ in range(utterances or int(rng.integers(1, 4))):
        utt = synthesize(str(rng.choice(pool)), voice=voice, rate_wpm=rate, pitch=pitch, pitch_range=span)
        intervals = phoneme_intervals(utt.phonemes, utt.starts_s, utt.duration_s, utt.samples)
        pieces.append(utt.samples)
        phonemes += list(intervals.phonemes)
        starts.append((intervals, offset))
        offset += utt.duration_s
        gap = np.zeros(int(rng.uniform(0.05, 0.7) * SAMPLE_RATE), np.float32)
        pieces.append(gap)
        offset += len(gap) / SAMPLE_RATE
    samples = np.concatenate(pieces)
    intervals = Intervals(
        tuple(v for iv, _ in starts for v in iv.visemes), tuple(phonemes),
        np.concatenate([iv.starts + o for iv, o in starts]), np.concatenate([iv.ends + o for iv, o in starts]),
    )  # fmt: skip
    if degrade:
        samples = degrade_audio(samples, rng)
    config = FeatureConfig()
    features = compute_features(samples, config).values.numpy()
    times = (np.arange(len(features)) + 1) / config.frame_rate
    return Clip(samples, features, viseme_targets(intervals, times), intervals, voice)


def degrade_audio(samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random level, microphone tilt, room, telephone band and background noise."""
    x = samples.astype(np.float64)
    if rng.uniform() < 0.3:  # a small room: exponentially decaying noise as impulse response
        rt60 = rng.uniform(0.1, 0.5)
        n = int(rt60 * SAMPLE_RATE)
        ir = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)
        ir[0] = 1.0 / rng.uniform(0.05, 0.3)
        x = _fft_convolve(x, ir / np.abs(ir).sum() * 4.0)
    if rng.uniform() < 0.5:  # microphone tilt: a first-order pre-/de-emphasis
        a = rng.uniform(-0.6, 0.9)
        x = np.append(x[:1], x[1:] - a * x[:-1])
    if rng.uniform() < 0.15:  # telephone: band-limited to 4 kHz
        x = resample(resample(x, SAMPLE_RATE, 8000), 8000, SAMPLE_RATE)[: len(x)]
    x = x / max(np.abs(x).max(), 1e-9) * 10 ** (rng.uniform(-30, 0) / 20)
    if rng.uniform() < 0.7:
        noise = rng.standard_normal(len(x))
        colour = rng.integers(3)  # white, pink-ish, brown-ish
        for _ in range(colour):
            noise = np.cumsum(noise) * 0.05
            noise -= np.convolve(noise, np.ones(400) / 400, mode="same")
        speech_rms = np.sqrt(np.mean(x[np.abs(x) > 1e-4] ** 2)) if (np.abs(x) > 1e-4).any() else 1e-3
        snr_db = rng.uniform(5, 45)
        x = x + noise / max(np.sqrt(np.mean(noise**2)), 1e-12) * speech_rms * 10 ** (-snr_db / 20)
    if rng.uniform() < 0.05:  # clipping
        x = np.clip(x * 4.0, -1.0, 1.0)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def _fft_convolve(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    n = 1 << int(np.ceil(np.log2(len(x) + len(h))))
    return np.fft.irfft(np.fft.rfft(x, n) * np.fft.rfft(h, n), n)[: len(x)]
