"""Phonemes -> visemes -> ARKit mouth targets: the supervision for audio-to-motion training and evaluation.

Each espeak-ng phoneme mnemonic maps to one or more of 15 visemes (the Oculus/MPEG-4 set: sil, PP, FF, TH, DD,
kk, CH, SS, nn, RR, aa, E, ih, oh, ou, plus a schwa ``@``); a diphthong splits its interval between two.
Each viseme is a pose of the :data:`~.channels.VISEME_CHANNELS`. Targets over time blend the phonemes with
Cohen-Massaro dominance functions: a phoneme pulls the mouth towards its pose with strength ``dominance``
inside its interval and ``dominance * exp(-distance / reach)`` outside, so lip consonants (p, b, m, f, v) win
over their neighbours while tongue consonants (t, d, k, n, ...) take the shape of the vowels around them.

espeak-ng times an unvoiced stop's event at its release: the closure (silence) before it is reported as part
of the previous phoneme. :func:`phoneme_intervals` moves each stop's start back over that silence, so a /p/
closes the lips for its whole closure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .audio import SAMPLE_RATE
from .channels import NUM_VISEME, VISEME_CHANNELS

# viseme -> {channel: value}; unlisted channels are 0
VISEME_POSES: dict[str, dict[str, float]] = {
    "sil": {},
    "PP": {"jawOpen": 0.06, "mouthClose": 0.06, "mouthPress": 0.55, "mouthRollLower": 0.15, "mouthRollUpper": 0.1},
    "FF": {"jawOpen": 0.12, "mouthClose": 0.08, "mouthRollLower": 0.55, "mouthUpperUp": 0.3},
    "TH": {"jawOpen": 0.2, "mouthLowerDown": 0.15},
    "DD": {"jawOpen": 0.22, "mouthStretch": 0.15, "mouthLowerDown": 0.1},
    "kk": {"jawOpen": 0.28, "mouthStretch": 0.1},
    "CH": {"jawOpen": 0.15, "mouthFunnel": 0.5, "mouthPucker": 0.25, "mouthUpperUp": 0.25, "mouthLowerDown": 0.2},
    "SS": {"jawOpen": 0.08, "mouthStretch": 0.35, "mouthSmile": 0.2, "mouthUpperUp": 0.1, "mouthLowerDown": 0.1},
    "nn": {"jawOpen": 0.18, "mouthStretch": 0.1},
    "RR": {"jawOpen": 0.18, "mouthFunnel": 0.35, "mouthPucker": 0.3},
    "aa": {"jawOpen": 0.65, "mouthLowerDown": 0.35, "mouthUpperUp": 0.1, "mouthStretch": 0.05},
    "E": {"jawOpen": 0.42, "mouthStretch": 0.3, "mouthSmile": 0.15, "mouthLowerDown": 0.25},
    "ih": {"jawOpen": 0.2, "mouthSmile": 0.45, "mouthStretch": 0.35, "mouthUpperUp": 0.1},
    "oh": {"jawOpen": 0.45, "mouthFunnel": 0.55, "mouthPucker": 0.3},
    "ou": {"jawOpen": 0.15, "mouthPucker": 0.75, "mouthFunnel": 0.35},
    "@": {"jawOpen": 0.35, "mouthLowerDown": 0.15, "mouthStretch": 0.05},
}
# viseme -> (dominance, reach in seconds)
DOMINANCE: dict[str, tuple[float, float]] = {
    "sil": (0.9, 0.04), "PP": (1.0, 0.03), "FF": (1.0, 0.03), "TH": (0.5, 0.03), "DD": (0.3, 0.03),
    "kk": (0.25, 0.03), "CH": (0.8, 0.05), "SS": (0.6, 0.03), "nn": (0.3, 0.03), "RR": (0.6, 0.05),
    "aa": (0.6, 0.06), "E": (0.6, 0.06), "ih": (0.6, 0.06), "oh": (0.8, 0.08), "ou": (0.8, 0.08), "@": (0.4, 0.05),
}  # fmt: skip
BILABIAL = {"p", "b", "m"}
STOPS = {"p", "b", "t", "d", "k", "g", "tS", "dZ"}

_VISEMES_OF: dict[str, tuple[str, ...]] = {
    **{p: ("PP",) for p in ("p", "b", "m")},
    **{p: ("FF",) for p in ("f", "v")},
    **{p: ("TH",) for p in ("T", "D")},
    **{p: ("DD",) for p in ("t", "d", "l", "L", "t#", "d#")},
    **{p: ("nn",) for p in ("n", "N", "n^", "h", "x", "C", "?")},
    **{p: ("kk",) for p in ("k", "g", "c", "q", "G")},
    **{p: ("CH",) for p in ("S", "Z", "tS", "dZ")},
    **{p: ("SS",) for p in ("s", "z", "ts", "dz")},
    **{p: ("RR",) for p in ("r", "R", "*", "rr")},
    **{p: ("ou",) for p in ("u:", "u", "U", "w", "y", "y:", "Y")},
    **{p: ("ih",) for p in ("i", "i:", "I", "j", "e:")},
    **{p: ("E",) for p in ("e", "E", "E:", "&")},
    **{p: ("aa",) for p in ("a", "a:", "A:", "A", "aa", "a#", "A@", "V")},
    **{p: ("oh",) for p in ("0", "O", "O:", "o", "o:", "O@", "o@", "W")},
    **{p: ("@",) for p in ("@", "3", "3:", "@L", "@5")},
    "aI": ("aa", "ih"), "aU": ("aa", "ou"), "eI": ("E", "ih"), "oU": ("oh", "ou"), "OI": ("oh", "ih"),
    "i@": ("ih", "@"), "e@": ("E", "@"), "U@": ("ou", "@"), "aI@": ("aa", "ih", "@"), "aU@": ("aa", "ou", "@"),
}  # fmt: skip
_PAUSES = {"_", "_:", "_!", "_|", "||", "|", ";", "_^_"}


def visemes_of(phoneme: str) -> tuple[str, ...]:
    """Visemes of an espeak-ng phoneme mnemonic (stress and variant marks ignored; unknown vowels -> ``@``,
    unknown consonants -> ``nn``)."""
    if phoneme in _PAUSES or not phoneme.strip("_;|"):
        return ("sil",)
    name = phoneme.strip("'\",%=")
    for candidate in (name, re.sub(r"[0-9#\-;!]+$", "", name), re.sub(r"[0-9#\-;!:]+$", "", name)):
        if candidate in _VISEMES_OF:
            return _VISEMES_OF[candidate]
    return ("@",) if name[:1].lower() in "aeiouy@3&" else ("nn",)


def viseme_pose(viseme: str) -> np.ndarray:
    pose = np.zeros(NUM_VISEME, np.float32)
    for name, value in VISEME_POSES[viseme].items():
        pose[VISEME_CHANNELS.index(name)] = value
    return pose


@dataclass(frozen=True, eq=False)
class Intervals:
    """Viseme intervals: ``visemes[i]`` from ``starts[i]`` to ``ends[i]`` seconds; ``phonemes[i]`` is the phoneme
    it came from."""

    visemes: tuple[str, ...]
    phonemes: tuple[str, ...]
    starts: np.ndarray
    ends: np.ndarray


def phoneme_intervals(
    phonemes: tuple[str, ...], starts_s: np.ndarray, duration_s: float, samples: np.ndarray | None = None
) -> Intervals:
    """Phoneme onsets -> viseme intervals (diphthongs split; stops extended back over their closure silence when
    the audio is given)."""
    starts = np.asarray(starts_s, dtype=np.float64).copy()
    ends = np.append(starts[1:], duration_s)
    if samples is not None:
        _extend_stop_closures(phonemes, starts, ends, samples)
    out_v, out_p, out_s, out_e = [], [], [], []
    for name, s, e in zip(phonemes, starts, ends, strict=True):
        parts = visemes_of(name)
        edges = np.linspace(s, e, len(parts) + 1)
        for k, viseme in enumerate(parts):
            out_v.append(viseme)
            out_p.append(name)
            out_s.append(edges[k])
            out_e.append(edges[k + 1])
    return Intervals(tuple(out_v), tuple(out_p), np.asarray(out_s), np.asarray(out_e))


def _extend_stop_closures(phonemes, starts: np.ndarray, ends: np.ndarray, samples: np.ndarray) -> None:
    hop = SAMPLE_RATE // 200  # 5 ms
    n = len(samples) // hop
    if n == 0:
        return
    rms = np.sqrt((samples[: n * hop].astype(np.float64).reshape(n, hop) ** 2).mean(1))
    quiet = rms < max(1e-4, 0.02 * float(rms.max()))
    for i, name in enumerate(phonemes):
        if i == 0 or name.rstrip("#2") not in STOPS:
            continue
        k = min(int(starts[i] * 200), n) - 1
        floor = starts[i - 1] + 0.03  # keep at least 30 ms of the previous phoneme
        while k >= 0 and quiet[k] and k / 200 > floor and starts[i] - k / 200 < 0.15:
            k -= 1
        new_start = (k + 1) / 200
        if new_start < starts[i]:
            starts[i], ends[i - 1] = new_start, new_start


def viseme_targets(intervals: Intervals, times_s: np.ndarray) -> np.ndarray:
    """Mouth targets (T x len(VISEME_CHANNELS)) at the given times, blended by dominance (module docstring)."""
    t = np.asarray(times_s, dtype=np.float64)[:, None]
    if len(intervals.visemes) == 0:
        return np.zeros((len(t), NUM_VISEME), np.float32)
    s, e = intervals.starts[None], intervals.ends[None]
    distance = np.maximum(0.0, np.maximum(s - t, t - e))
    dom = np.array([DOMINANCE[v] for v in intervals.visemes])
    weights = dom[None, :, 0] * np.exp(-distance / dom[None, :, 1])
    poses = np.stack([viseme_pose(v) for v in intervals.visemes])
    total = weights.sum(1, keepdims=True)
    out = (weights @ poses) / np.maximum(total, 1e-12)
    return np.where(total > 1e-6, out, 0.0).astype(np.float32)


def is_bilabial(phoneme: str) -> bool:
    return phoneme.strip("'\",%=").rstrip("#2") in BILABIAL
