"""The learned causal audio-to-mouth model and its file format.

Network (per 10 ms feature step, strictly causal): normalised features -> linear + GELU (the fast path: what
this instant sounds like) -> one GRU layer (the slow path: context from everything heard so far) -> a linear
head on both paths that outputs H x V mouth channels through a sigmoid. Head ``h`` estimates the mouth ``h``
steps in the past, so a stream allowed ``h`` steps of look-ahead uses head ``h`` and head 0 is strictly causal.
About 130k parameters; well under a millisecond per video frame on one CPU core.

File format: a folder with ``config.json`` (``{"format": "anchorsplat.audio2motion", "version": 1, ...}``) and
``model.safetensors`` (the same format name and version in its metadata). Older versions load through one
migration function per bump (:data:`MODEL_CONFIG`'s); newer ones are refused with "upgrade anchorsplat".
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor, nn

from anchorsplat.gaussians.assets import asset_path
from anchorsplat.gaussians.fileio import FileFormat, read_json, read_safetensors, write_json, write_safetensors

from .baseline import FaceStep
from .channels import VISEME_CHANNELS
from .features import FeatureConfig

MODEL_FORMAT = "anchorsplat.audio2motion"
MODEL_VERSION = 1
DEFAULT_MODEL_DIR = asset_path("audio2motion")


@dataclass(frozen=True)
class LearnedConfig:
    """Architecture of :class:`Audio2MotionNet`."""

    hidden: int = 128
    """Width of the fast path and of the GRU state."""
    heads: int = 7
    """Look-ahead heads: head h sees h extra 10 ms steps of audio (0 .. heads - 1)."""
    channels: tuple[str, ...] = VISEME_CHANNELS
    features: FeatureConfig = field(default_factory=FeatureConfig)

    def to_json(self) -> dict:
        return {
            "hidden": self.hidden,
            "heads": self.heads,
            "channels": list(self.channels),
            "features": asdict(self.features),
        }

    @staticmethod
    def from_json(data: dict) -> LearnedConfig:
        return LearnedConfig(
            hidden=int(data["hidden"]), heads=int(data["heads"]), channels=tuple(data["channels"]),
            features=FeatureConfig(**data["features"]),
        )  # fmt: skip


class Audio2MotionNet(nn.Module):
    def __init__(self, config: LearnedConfig):
        super().__init__()
        self.config = config
        d, h = config.features.dim, config.hidden
        self.register_buffer("feature_mean", torch.zeros(d))
        self.register_buffer("feature_std", torch.ones(d))
        self.fast = nn.Linear(d, h)
        self.gru = nn.GRU(h, h, batch_first=True)
        self.head = nn.Linear(2 * h, config.heads * len(config.channels))

    def forward(
        self, features: Float[Tensor, "B T D"], state: Float[Tensor, "1 B K"] | None = None
    ) -> tuple[Float[Tensor, "B T H V"], Float[Tensor, "B T K"], Float[Tensor, "1 B K"]]:
        """-> (mouth channels per head, the GRU output as the audio embedding, the GRU state to carry on)."""
        x = (features - self.feature_mean) / self.feature_std
        fast = nn.functional.gelu(self.fast(x))
        slow, state = self.gru(fast, state)
        out = torch.sigmoid(self.head(torch.cat([fast, slow], dim=-1)))
        b, t = features.shape[:2]
        return out.reshape(b, t, self.config.heads, len(self.config.channels)), slow, state


class LearnedModel:
    """A trained :class:`Audio2MotionNet` behind the face-model interface the motion stream uses."""

    name = "learned"

    def __init__(self, net: Audio2MotionNet, info: dict | None = None):
        if tuple(net.config.channels) != VISEME_CHANNELS:
            raise ValueError(
                f"audio-to-motion model predicts channels {net.config.channels}, this anchorsplat expects "
                f"{VISEME_CHANNELS}: retrain it with scripts/train_audio2motion.py"
            )
        self.net = net.eval()
        self.config = net.config.features
        self.heads = net.config.heads
        self.embedding_dim = net.config.hidden
        self.info = info or {}

    def stream(self) -> LearnedStream:
        return LearnedStream(self)


class LearnedStream:
    """Streaming inference of :class:`Audio2MotionNet` in numpy: the same arithmetic as ``forward`` (float32),
    without torch's per-op dispatch, which dominates at three 10 ms steps per video frame (measured: ~4x faster
    per frame on one CPU core). The GRU state carries over between calls, so chunks of any size give the same
    outputs as one pass over the whole sequence (to float32 rounding)."""

    def __init__(self, model: LearnedModel):
        net = model.net
        w = {k: v.detach().cpu().float().numpy() for k, v in net.state_dict().items()}
        self.mean, self.inv_std = w["feature_mean"], 1.0 / w["feature_std"]
        self.w_fast_t, self.b_fast = np.ascontiguousarray(w["fast.weight"].T), w["fast.bias"]
        self.w_ih_t, self.b_ih = np.ascontiguousarray(w["gru.weight_ih_l0"].T), w["gru.bias_ih_l0"]
        self.w_hh_t, self.b_hh = np.ascontiguousarray(w["gru.weight_hh_l0"].T), w["gru.bias_hh_l0"]
        self.w_head_t, self.b_head = np.ascontiguousarray(w["head.weight"].T), w["head.bias"]
        self.hidden, self.heads, self.channels = net.config.hidden, net.config.heads, len(net.config.channels)
        self.state = np.zeros(self.hidden, np.float32)

    def step(self, features: Float[Tensor, "T D"], levels=None) -> FaceStep:
        x = (features.detach().cpu().float().numpy() - self.mean) * self.inv_std
        fast = _gelu(x @ self.w_fast_t + self.b_fast)
        gates_in = fast @ self.w_ih_t + self.b_ih  # the input half of every GRU gate, all steps at once
        h, k = self.state, self.hidden
        slow = np.empty((len(x), k), np.float32)
        for t in range(len(x)):
            gates_h = h @ self.w_hh_t + self.b_hh
            r = _sigmoid(gates_in[t, :k] + gates_h[:k])
            z = _sigmoid(gates_in[t, k : 2 * k] + gates_h[k : 2 * k])
            n = np.tanh(gates_in[t, 2 * k :] + r * gates_h[2 * k :])
            h = (1.0 - z) * n + z * h
            slow[t] = h
        self.state = h
        out = _sigmoid(np.concatenate([fast, slow], axis=1) @ self.w_head_t + self.b_head)
        return FaceStep(torch.from_numpy(out.reshape(len(x), self.heads, self.channels)), torch.from_numpy(slow))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, torch's default; erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7)."""
    a = np.abs(x) * np.float32(1.0 / np.sqrt(2.0))
    t = 1.0 / (1.0 + np.float32(0.3275911) * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = np.sign(x) * (1.0 - poly * np.exp(-a * a))
    return (0.5 * x * (1.0 + erf)).astype(np.float32)


MODEL_CONFIG = FileFormat(MODEL_FORMAT, MODEL_VERSION, "audio-to-motion model", "retrain or reinstall the model")
MODEL_WEIGHTS = FileFormat(MODEL_FORMAT, MODEL_VERSION, "audio-to-motion weights", "retrain or reinstall the model")


def save_model(folder: str | os.PathLike, net: Audio2MotionNet, info: dict | None = None) -> Path:
    """Write ``config.json`` + ``model.safetensors`` into ``folder`` (each atomically)."""
    folder = Path(folder)
    tensors = {k: v.detach().float() for k, v in net.state_dict().items()}
    write_safetensors(folder / "model.safetensors", MODEL_WEIGHTS, tensors)
    write_json(folder / "config.json", MODEL_CONFIG, {"config": net.config.to_json(), "info": info or {}})
    return folder


def load_model(folder: str | os.PathLike | None = None) -> LearnedModel:
    """Load a model folder (default: the shipped ``assets/audio2motion``).

    Raises:
        ValueError: missing files, another format, a newer version, or weights that do not fit the config.
    """
    folder = Path(folder) if folder is not None else DEFAULT_MODEL_DIR
    config_path, weights_path = folder / "config.json", folder / "model.safetensors"
    if not config_path.exists() or not weights_path.exists():
        raise ValueError(
            f"no audio-to-motion model in {folder} (needs config.json and model.safetensors): train one with "
            "scripts/train_audio2motion.py, or use --model baseline"
        )
    meta = read_json(config_path, MODEL_CONFIG)
    _, tensors = read_safetensors(weights_path, MODEL_WEIGHTS)
    if "config" not in meta:
        raise MODEL_CONFIG.error(config_path, "has no 'config' entry")
    net = Audio2MotionNet(LearnedConfig.from_json(meta["config"]))
    try:
        net.load_state_dict(tensors)
    except RuntimeError as exc:
        raise ValueError(f"{weights_path} does not match its config.json: {str(exc).splitlines()[0]}") from None
    return LearnedModel(net, meta.get("info", {}))
