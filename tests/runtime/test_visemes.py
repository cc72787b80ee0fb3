"""Phonemes -> visemes -> mouth targets (the training supervision), and espeak-ng synthesis with timing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anchorsplat.runtime.channels import NUM_CHANNELS, NUM_VISEME, lip_aperture
from anchorsplat.runtime.synthspeech import espeak_available
from anchorsplat.runtime.visemes import (
    VISEME_POSES,
    Intervals,
    is_bilabial,
    phoneme_intervals,
    viseme_targets,
    visemes_of,
)


def _aperture(targets: np.ndarray) -> np.ndarray:
    padded = torch.zeros(len(targets), NUM_CHANNELS)
    padded[:, :NUM_VISEME] = torch.from_numpy(targets)
    return lip_aperture(padded).numpy()


def test_phoneme_to_viseme_mapping():
    assert visemes_of("p") == ("PP",) and visemes_of("m") == ("PP",) and visemes_of("b") == ("PP",)
    assert visemes_of("'a") == ("aa",)  # stress marks are ignored
    assert visemes_of("aI") == ("aa", "ih")  # a diphthong is two visemes
    assert visemes_of("_:") == ("sil",)
    assert visemes_of("@2") == ("@",) and visemes_of("zz") == ("nn",)  # variants; unknown consonants
    assert is_bilabial("'p") and not is_bilabial("t")
    assert set(VISEME_POSES) >= {v for p in ("p", "f", "a", "u:", "i:", "s", "tS") for v in visemes_of(p)}


def test_targets_close_lips_on_bilabials_and_open_on_vowels():
    # "_ a m a _": silence, open vowel, a 100 ms /m/, open vowel, silence
    intervals = phoneme_intervals(("_", "a", "m", "a", "_"), np.array([0.0, 0.2, 0.4, 0.5, 0.7]), 0.9)
    times = np.arange(0, 0.9, 0.01)
    aperture = _aperture(viseme_targets(intervals, times))
    assert aperture[:6].max() < 0.05  # silence: closed (the vowel is anticipated only in its last ~100 ms)
    assert aperture[28] > 0.4 and aperture[60] > 0.4  # mid-vowel: open
    assert aperture[44:47].max() < 0.05  # mid-/m/: lips shut despite the vowels either side
    assert aperture[88:].max() < 0.05


def test_diphthong_split_and_empty_targets():
    intervals = phoneme_intervals(("aI",), np.array([0.0]), 0.2)
    assert intervals.visemes == ("aa", "ih") and np.allclose(intervals.ends, [0.1, 0.2])
    empty = Intervals((), (), np.zeros(0), np.zeros(0))
    assert viseme_targets(empty, np.arange(5) / 100).shape == (5, NUM_VISEME)


def test_stop_closure_moves_back_over_silence():
    samples = np.concatenate([np.full(3200, 0.3), np.zeros(1600), np.full(1600, 0.3)]).astype(np.float32)
    # espeak times /p/ at its release (0.3 s); the silence before it is its closure
    intervals = phoneme_intervals(("a", "p", "a"), np.array([0.0, 0.3, 0.32]), 0.4, samples)
    p = intervals.visemes.index("PP")
    assert 0.2 <= intervals.starts[p] < 0.21 and intervals.ends[p - 1] == intervals.starts[p]


@pytest.mark.skipif(not espeak_available(), reason="needs espeak-ng (apt-get install espeak-ng)")
def test_espeak_synthesis_has_phoneme_timing():
    from anchorsplat.runtime.synthspeech import synthesize

    utt = synthesize("Bob made a map.", voice="en-us", rate_wpm=160)
    assert utt.samples.dtype == np.float32 and 0.6 < utt.duration_s < 3.0
    assert np.all(np.diff(utt.starts_s) >= 0) and utt.starts_s[-1] < utt.duration_s
    assert sum(is_bilabial(p) for p in utt.phonemes) >= 4  # b, b, m, m, p
    with pytest.raises(ValueError, match="no voice"):
        synthesize("hello", voice="no-such-voice")
