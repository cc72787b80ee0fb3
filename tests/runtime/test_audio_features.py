"""Causal features: streaming equals whole-file exactly, the past never depends on the future, sane values."""

from __future__ import annotations

import numpy as np
import torch

from anchorsplat.runtime.features import LOG_FLOOR, FeatureConfig, StreamingFeatures, compute_features


def test_chunks_of_any_size_give_exactly_the_whole_file_features(speech):
    whole = compute_features(speech).values
    rng = np.random.default_rng(1)
    for sizes in ([1, 7, 159, 160, 161], [533], [4000, 1]):
        stream, parts, i, k = StreamingFeatures(), [], 0, 0
        while i < len(speech):
            n = sizes[k % len(sizes)] if len(sizes) > 1 else sizes[0]
            n = int(rng.integers(1, 2000)) if k % 5 == 4 else n
            parts.append(stream.push(speech[i : i + n]))
            i, k = i + n, k + 1
        assert torch.equal(torch.cat(parts), whole)


def test_features_are_causal(speech):
    prefix = compute_features(speech[:16000]).values
    longer = compute_features(np.concatenate([speech[:16000], np.random.default_rng(0).standard_normal(8000)])).values
    assert torch.equal(longer[: len(prefix)], prefix)


def test_layout_pitch_and_silence():
    config = FeatureConfig()
    t = np.arange(16000) / 16000
    voiced = 0.3 * np.sign(np.sin(2 * np.pi * 150 * t))
    f = compute_features(voiced).values
    assert f.shape == (100, config.dim)
    voicing, log_f0 = f[50:, config.n_mels + 1], f[50:, config.n_mels + 2]
    assert (voicing > 0.9).all()
    assert torch.allclose(log_f0.exp(), torch.full_like(log_f0, 150.0), rtol=0.03)
    silent = compute_features(np.zeros(3200)).values
    assert torch.allclose(silent[:, : config.n_mels], torch.full((20, config.n_mels), float(np.log(LOG_FLOOR))))
    assert (silent[:, config.n_mels + 1 :] == 0).all()
    noise = compute_features(np.random.default_rng(0).standard_normal(16000) * 0.1).values
    assert (noise[20:, config.n_mels + 1] < 0.5).float().mean() > 0.8  # white noise is unvoiced


def test_flush_completes_the_last_partial_hop():
    stream = StreamingFeatures()
    assert len(stream.push(np.zeros(250))) == 1
    assert len(stream.flush()) == 1
    assert stream.samples_in == 320
