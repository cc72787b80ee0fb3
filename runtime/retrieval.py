"""Personalisation by causal style retrieval over reference clips (after "Personalizing Causal Audio-Driven
Facial Motion via Dynamic Multi-modal Retrieval").

A :class:`StyleMemory` is built from any number of reference clips (audio + the person's :class:`Motion`): the
base model runs on each clip's audio exactly as it would live, and every frame becomes one memory entry with

- an audio key: the model's causal audio embedding at that frame (unit length);
- a motion key: the base model's channels at that frame, and the person's channels one frame earlier;
- a value: the person's channels minus the base model's (the person's style, as a residual).

Live, each frame queries the memory with its own audio embedding, its base channels and the previous output
frame, takes a softmax over the ``top_k`` nearest entries, and adds the retrieved residual (smoothed by a
one-pole filter) to the base; the jaw's residual fades out while the base closes the lips, so a style changes
how wide the mouth opens but never opens a /p/. Everything the query uses is in the past, so the output stays
causal; the memory takes clips of any number and length; an empty memory returns the base model unchanged.
Blinks are left to the procedural blinker (their timing is not a style the audio can retrieve).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from anchorsplat.gaussians.motion import Motion, load_motion

from .audio import Audio, load_audio
from .channels import CHANNEL_NAMES, UPPER_FACE_CHANNELS, motion_to_channels, resample_motion
from .procedural import smoothing

STYLE_CHANNELS = torch.tensor([n not in UPPER_FACE_CHANNELS[:2] for n in CHANNEL_NAMES])
"""Channels retrieval may change: all but the two blinks."""
MAX_ENTRIES = 20000
CLOSING = 0.1
"""The base model's lip closing (``mouthClose + mouthPress / 2``) at which the retrieved jaw residual is gone."""
_JAW, _CLOSE, _PRESS = (CHANNEL_NAMES.index(n) for n in ("jawOpen", "mouthClose", "mouthPress"))


@dataclass(frozen=True)
class ReferenceClip:
    """One reference: audio (file or :class:`Audio`) and the person's motion over the same time span."""

    audio: str | os.PathLike | Audio
    motion: str | os.PathLike | Motion


@dataclass(frozen=True, eq=False)
class StyleMemory:
    audio_keys: Float[Tensor, "M E"]
    motion_keys: Float[Tensor, "M K"]
    values: Float[Tensor, "M C"]
    motion_scale: Float[Tensor, " K"]
    top_k: int = 16
    motion_weight: float = 1.0
    strength: float = 1.0

    def __len__(self) -> int:
        return self.values.shape[0]

    def stream(self, fps: float) -> StyleStream:
        return StyleStream(self, fps)


def _as_reference(item) -> ReferenceClip:
    if isinstance(item, ReferenceClip):
        return item
    if isinstance(item, Sequence) and not isinstance(item, str) and len(item) == 2:
        return ReferenceClip(item[0], item[1])
    raise ValueError(f"a reference must be an (audio, motion) pair, got {item!r}")


def build_style_memory(
    references: Sequence, model: str | object = "learned", *, top_k: int = 16, strength: float = 1.0, **stream_kwargs
) -> StyleMemory | None:
    """Run the base model over every reference and keep its frames as memory entries (module docstring).

    ``references``: :class:`ReferenceClip` or (audio, motion) pairs; the motion file's frame rate sets the frame
    times. Returns None for no references (the base model, unchanged).
    """
    from .motion import AudioToMotion, load_face_model

    references = [_as_reference(r) for r in references]
    if not references:
        return None
    model = load_face_model(model)
    audio_keys, motion_keys, values = [], [], []
    for ref in references:
        motion = ref.motion if isinstance(ref.motion, Motion) else load_motion(Path(ref.motion))
        audio = load_audio(ref.audio)
        stream = AudioToMotion(model, fps=motion.fps, **stream_kwargs)
        frames = [stream.push_frames(audio.samples), stream.flush_frames()]
        base = torch.cat([f.base for f in frames])
        emb = torch.cat([f.embedding for f in frames])
        count = min(len(base), len(motion))
        if count < 2:
            raise ValueError(f"reference {ref.audio}: its audio and motion overlap by fewer than 2 frames")
        person = motion_to_channels(resample_motion(motion, motion.fps, count)).float()
        previous = torch.cat([person[:1], person[:-1]])
        audio_keys.append(_unit(emb[:count]))
        motion_keys.append(torch.cat([base[:count], previous], dim=1))
        values.append((person - base[:count]) * STYLE_CHANNELS)
    audio_keys, motion_keys, values = torch.cat(audio_keys), torch.cat(motion_keys), torch.cat(values)
    if len(values) > MAX_ENTRIES:
        keep = torch.from_numpy(np.linspace(0, len(values) - 1, MAX_ENTRIES).round().astype(np.int64))
        audio_keys, motion_keys, values = audio_keys[keep], motion_keys[keep], values[keep]
    scale = motion_keys.std(0).clamp_min(0.02) * (motion_keys.shape[1] ** 0.5)
    return StyleMemory(audio_keys, motion_keys, values, scale, top_k=top_k, strength=strength)


def _unit(x: Tensor) -> Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-6)


class StyleStream:
    """Per-stream retrieval state: the previous output frame and the smoothed residual. The per-frame search is
    numpy (a few hundred kflop; torch's per-op dispatch would cost more than the arithmetic)."""

    def __init__(self, memory: StyleMemory, fps: float):
        self.memory = memory
        self._k = smoothing(0.08, 1.0 / fps)
        self._scale = memory.motion_scale.float().numpy()
        self._audio_keys = memory.audio_keys.float().numpy()
        self._motion_keys = (memory.motion_keys / memory.motion_scale).float().numpy()
        self._values = memory.values.float().numpy()
        self._previous: np.ndarray | None = None
        self._residual = np.zeros(self._values.shape[1], np.float32)

    def adjust(self, base: Float[Tensor, " C"], embedding: Float[Tensor, " E"]) -> Float[Tensor, " C"]:
        m = self.memory
        b, e = base.float().numpy(), embedding.float().numpy()
        previous = b if self._previous is None else self._previous
        query = np.concatenate([b, previous]) / self._scale
        e = e / max(float(np.sqrt((e * e).sum())), 1e-6)
        distance = np.square(self._audio_keys - e).sum(-1)
        distance = distance + m.motion_weight * np.square(self._motion_keys - query).sum(-1)
        k = min(m.top_k, len(distance))
        index = np.argpartition(distance, k - 1)[:k]
        nearest = distance[index]
        logits = -nearest / max(float(nearest.mean()), 1e-6)
        weights = np.exp(logits - logits.max())
        retrieved = (weights / weights.sum()) @ self._values[index]
        self._residual = (self._residual + self._k * (retrieved - self._residual)).astype(np.float32)
        residual = self._residual.copy()
        # a style may change how wide the mouth opens, not open lips the base model closes (p, b, m, silence)
        residual[_JAW] *= np.clip(1.0 - (b[_CLOSE] + 0.5 * b[_PRESS]) / CLOSING, 0.0, 1.0)
        out = b + np.float32(m.strength) * residual
        self._previous = out
        return torch.from_numpy(out)
