"""The weight-free baseline mouth: voice activity, loudness and spectral vowel cues -> visemes -> mouth channels.

Cues per 10 ms step, from the log-mel frame:
- openness: loudness of the 100-900 Hz band (where vowel energy sits) relative to the recent speech level,
  raised by a high first-formant proxy (the band's centroid: open vowels have a high F1);
- rounding: a low second-formant proxy (centroid of 800-2500 Hz) while voiced -> pucker/funnel (o, u, w);
- spreading: a high F2 proxy while voiced -> smile/stretch (i, e);
- frication: more energy above 3.5 kHz than below 900 Hz while unvoiced -> teeth together, lips stretched (s, sh);
- closure: a sudden loss of activity right after speech -> lips pressed (stop closures, p/b/m).
Silence closes the mouth. Channels are smoothed causally (one pole; faster opening than closing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from .audio import SAMPLE_RATE
from .channels import NUM_VISEME, VISEME_CHANNELS
from .features import FeatureConfig, mel_filterbank
from .procedural import DB_PER_LOG, smoothing


@dataclass(frozen=True, eq=False)
class FaceStep:
    """A face model's output for T steps: ``visemes[t, h]`` is head ``h``'s estimate of the mouth at step
    ``t - h`` (H heads, one per step of look-ahead the model was trained for); ``embedding`` is the causal audio
    descriptor style retrieval queries with."""

    visemes: Float[Tensor, "T H V"]
    embedding: Float[Tensor, "T K"]


def _band_centres(config: FeatureConfig) -> np.ndarray:
    fb = mel_filterbank(config).numpy()
    freqs = np.arange(fb.shape[1]) * SAMPLE_RATE / config.n_fft
    return (fb * freqs).sum(1) / fb.sum(1)


class BaselineModel:
    """Cue-based mouth (module docstring). Has one head: it cannot use look-ahead itself, so the stream
    spends any look-ahead on shifting its output earlier (compensating its smoothing lag)."""

    name = "baseline"
    heads = 1

    def __init__(self, config: FeatureConfig | None = None):
        self.config = config or FeatureConfig()
        centres = _band_centres(self.config)
        self.centres = centres
        self.low = (centres >= 100) & (centres <= 900)
        self.f1_band = (centres >= 250) & (centres <= 1000)
        self.f2_band = (centres >= 800) & (centres <= 2500)
        self.high = centres >= 3500
        self.embedding_dim = self.config.n_mels + 3

    def stream(self) -> BaselineStream:
        return BaselineStream(self)


def _db_sum(log_mel: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return DB_PER_LOG * np.log(np.exp(log_mel[:, mask]).sum(-1) + 1e-10)


def _centroid(log_mel: np.ndarray, mask: np.ndarray, centres: np.ndarray) -> np.ndarray:
    power = np.exp(log_mel[:, mask])
    return (power * centres[mask]).sum(-1) / np.maximum(power.sum(-1), 1e-20)


def _ramp(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0.0, 1.0)


class BaselineStream:
    def __init__(self, model: BaselineModel):
        self.m = model
        self.state = np.zeros(NUM_VISEME, np.float32)
        self._k_open, self._k_close = smoothing(0.015), smoothing(0.035)
        self._index = {n: i for i, n in enumerate(VISEME_CHANNELS)}

    def step(self, features: Float[Tensor, "T D"], levels: np.ndarray) -> FaceStep:
        """``levels``: T x 3 (activity, loudness, recent activity) from the stream's :class:`LevelTracker`."""
        values = features.double().numpy()
        n_mels = self.m.config.n_mels
        log_mel = values[:, :n_mels]
        targets = self._targets(log_mel, values[:, n_mels + 1], *levels.astype(np.float64).T)
        out = np.zeros((len(values), 1, NUM_VISEME), np.float32)
        for t, target in enumerate(targets):  # the only recursion: open fast, close slower
            k = np.where(target > self.state, self._k_open, self._k_close)
            self.state = self.state + k * (target - self.state)
            out[t, 0] = self.state
        mel = log_mel - log_mel.mean(-1, keepdims=True)
        emb = np.concatenate([mel / 10.0, levels], axis=1).astype(np.float32)
        return FaceStep(torch.from_numpy(out), torch.from_numpy(emb))

    def _targets(self, log_mel, voicing, activity, loudness, recent) -> np.ndarray:
        """Mouth targets of T steps (module docstring), per step: the same numbers for any T."""
        m, i = self.m, self._index
        low_db, high_db = _db_sum(log_mel, m.low), _db_sum(log_mel, m.high)
        f1 = _centroid(log_mel, m.f1_band, m.centres)
        f2 = _centroid(log_mel, m.f2_band, m.centres)
        voiced = _ramp((voicing - 0.4) / 0.3) * activity
        openness = activity * (0.4 * loudness + 0.6 * loudness * _ramp((f1 - 300.0) / 450.0))
        fric = activity * (1.0 - voiced) * _ramp((high_db - low_db + 6.0) / 12.0)
        jaw = 0.6 * openness * (1.0 - 0.7 * fric) + 0.08 * fric
        round_ = voiced * _ramp((1350.0 - f2) / 450.0)
        spread = voiced * _ramp((f2 - 1550.0) / 550.0)
        closure = np.where(recent > 0.5, np.maximum(0.0, recent - activity), 0.0)
        target = np.zeros((len(log_mel), NUM_VISEME), np.float32)
        target[:, i["jawOpen"]] = np.minimum(0.8, jaw)
        target[:, i["mouthPucker"]] = 0.65 * round_
        target[:, i["mouthFunnel"]] = 0.4 * round_ + 0.1 * fric
        target[:, i["mouthSmile"]] = 0.35 * spread + 0.15 * fric
        target[:, i["mouthStretch"]] = 0.3 * spread + 0.3 * fric
        target[:, i["mouthLowerDown"]] = 0.45 * jaw * (1.0 - round_)
        target[:, i["mouthUpperUp"]] = 0.1 * jaw + 0.1 * fric
        target[:, i["mouthPress"]] = 0.55 * closure
        target[:, i["mouthRollLower"]] = 0.15 * closure
        target[:, i["mouthClose"]] = 0.1 * closure
        return target
