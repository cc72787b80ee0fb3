"""Streaming, causal audio -> motion: features -> mouth model (baseline or learned) + procedural upper face and
head -> optional style retrieval -> :class:`Motion` frames at the avatar's frame rate.

Timing: video frame ``k`` shows time ``t_k = k / fps``. It is built from the last feature step that ends at or
before ``t_k + lookahead`` (features are causal, see :mod:`.features`), so with the default look-ahead of 0 a
frame never depends on audio after its own time and can be emitted as soon as the audio up to ``t_k`` has
arrived. A model trained with look-ahead heads (the learned one) spends look-ahead on seeing ahead, up to its
last head (60 ms for the shipped model; more is not used); a model without them (the baseline) on shifting its
output earlier. Frame 0 (nothing heard yet) is the neutral face.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from anchorsplat.gaussians.motion import Motion

from .audio import SAMPLE_RATE, Audio, Resampler, load_audio
from .baseline import BaselineModel
from .channels import NUM_CHANNELS, NUM_VISEME, UPPER_FACE_CHANNELS, VISEME_CHANNELS, channels_to_motion
from .features import StreamingFeatures
from .procedural import DB_PER_LOG, LevelTracker, Procedural

GATE_FULL = 0.3
"""Recent voice activity (a peak hold decaying in 0.2 s) at and above which the mouth model passes unchanged."""
HOST = torch.device("cpu")
"""Audio-to-motion runs on the host (numpy features, one small frame per hop); the player moves its output."""
_RANGE_LO = torch.tensor([0.0] * (NUM_VISEME + len(UPPER_FACE_CHANNELS)) + [-0.6] * 6)
_RANGE_HI = torch.tensor([1.0] * (NUM_VISEME + len(UPPER_FACE_CHANNELS)) + [0.6] * 6)


def load_face_model(model: str | object = "learned"):
    """``"learned"`` (the shipped weights), ``"baseline"``, a model folder path, or a model object."""
    if not isinstance(model, str):
        return model
    if model == "baseline":
        return BaselineModel()
    from .learned import load_model

    return load_model(None if model == "learned" else model)


@dataclass(frozen=True, eq=False)
class MotionFrames:
    """K frames out of the stream: final channels, the channels before style retrieval, the audio embedding."""

    channels: Float[Tensor, "K C"]
    base: Float[Tensor, "K C"]
    embedding: Float[Tensor, "K E"]

    def __len__(self) -> int:
        return self.channels.shape[0]


class AudioToMotion:
    """Feed audio chunks of any size; get the motion frames they complete.

    Args:
        model: see :func:`load_face_model`.
        fps: output frame rate.
        lookahead_ms: audio the model may hear past a frame's time (0: strictly causal).
        style: a :class:`~.retrieval.StyleMemory` to personalise with (None: the base model).
        seed: blink times and head-sway phases.
        head_motion: scales head and torso motion (0: still).
        sample_rate: rate of the pushed samples (resampled to 16 kHz on the fly).
    """

    def __init__(
        self,
        model: str | object = "learned",
        *,
        fps: float = 30.0,
        lookahead_ms: float = 0.0,
        style=None,
        seed: int = 0,
        head_motion: float = 1.0,
        sample_rate: int = SAMPLE_RATE,
    ):
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if not 0 <= lookahead_ms <= 1000:
            raise ValueError(f"lookahead_ms must be between 0 and 1000, got {lookahead_ms}")
        self.model = load_face_model(model)
        self.fps = float(fps)
        self.features = StreamingFeatures(self.model.config)
        self.frame_rate = self.features.config.frame_rate
        self.lookahead_steps = int(round(lookahead_ms * self.frame_rate / 1000.0))
        if self.model.heads > 1:  # more look-ahead than the model has heads for would only show the mouth early
            self.lookahead_steps = min(self.lookahead_steps, self.model.heads - 1)
        self._head = min(self.lookahead_steps, self.model.heads - 1)
        self._face = self.model.stream()
        self._levels = LevelTracker()
        self._procedural = Procedural(seed=seed, intensity=head_motion)
        self._style = style.stream(self.fps) if style is not None and len(style) else None
        self._resampler = Resampler(sample_rate) if sample_rate != SAMPLE_RATE else None
        self._steps: list[tuple[Tensor, Tensor]] = []  # (channels C, embedding E) per feature step
        self._first_step = 0  # step index of self._steps[0]
        self._next_frame = 0
        self._audio_samples = 0  # 16 kHz samples of real audio (the features also count flush padding)
        self._finished = False
        self.last_compute_ms = 0.0

    @property
    def algorithmic_latency_ms(self) -> float:
        """Audio the stream waits for past a frame's time before it can emit the frame."""
        return 1000.0 * self.lookahead_steps / self.frame_rate

    @property
    def samples_in(self) -> int:
        """16 kHz samples received so far."""
        return self._audio_samples

    @property
    def frames_out(self) -> int:
        return self._next_frame

    def push(self, samples: np.ndarray) -> Motion:
        return channels_to_motion(self.push_frames(samples).channels, self.fps)

    def flush(self) -> Motion:
        return channels_to_motion(self.flush_frames().channels, self.fps)

    def push_frames(self, samples: np.ndarray) -> MotionFrames:
        """Append audio; returns the frames whose audio (plus look-ahead) is now complete."""
        if self._finished:
            raise ValueError("this audio stream was flushed; start a new AudioToMotion for new audio")
        start = time.perf_counter()
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        if not np.isfinite(x).all():
            raise ValueError("audio chunk contains NaN or infinite samples: pass finite float samples in [-1, 1]")
        if self._resampler is not None:
            x = self._resampler.process(x)
        self._audio_samples += len(x)
        self._run(self.features.push(x))
        out = self._emit(None)
        self.last_compute_ms = 1000.0 * (time.perf_counter() - start)
        return out

    def flush_frames(self) -> MotionFrames:
        """End of the stream: pads silence for the look-ahead and returns every remaining frame up to the end
        of the audio (``ceil(duration * fps)`` frames in all)."""
        if self._finished:
            return self._emit(0)
        if self._resampler is not None:
            tail = self._resampler.flush()
            self._audio_samples += len(tail)
            self._run(self.features.push(tail))
        self._finished = True
        total = math.ceil(self._audio_samples * self.fps / SAMPLE_RATE - 1e-9)
        self._run(self.features.flush(extra_samples=(self.lookahead_steps + 1) * self.features.config.hop))
        return self._emit(total)

    def _run(self, features: Tensor) -> None:
        if len(features) == 0:
            return
        n_mels = self.features.config.n_mels
        values = features.double().numpy()
        levels = np.zeros((len(values), 3), np.float32)
        upper = np.zeros((len(values), NUM_CHANNELS - NUM_VISEME), np.float32)
        for t, frame in enumerate(values):
            activity, loudness = self._levels.step(float(frame[n_mels]) * DB_PER_LOG)
            levels[t] = (activity, loudness, self._levels.recent)
            upper[t] = self._procedural.step(activity, loudness, float(frame[n_mels + 1]), float(frame[n_mels + 2]))
        face = self._face.step(features, levels)
        # voice-activity gate: no speech in the last ~0.5 s closes the mouth whatever the model says (a learned
        # model has never seen, e.g., digital silence from the stream's start); speech itself passes unchanged
        gate = torch.from_numpy(np.clip(levels[:, 2] / GATE_FULL, 0.0, 1.0))
        mouth = face.visemes[:, self._head].float() * gate[:, None]
        channels = torch.cat([mouth, torch.from_numpy(upper)], dim=1)
        self._steps.extend(zip(channels.unbind(0), face.embedding.float().unbind(0), strict=True))

    def _frame_step(self, k: int) -> int:
        return math.floor(k * self.frame_rate / self.fps + 1e-9) - 1 + self.lookahead_steps

    def _emit(self, total: int | None) -> MotionFrames:
        last_step = self._first_step + len(self._steps) - 1
        rows, bases, embs = [], [], []
        while total is None or self._next_frame < total:
            s = self._frame_step(self._next_frame)
            # a frame exists once the audio reaches past its time: a whole file gives ceil(duration * fps) frames
            within = self._next_frame * SAMPLE_RATE < self._audio_samples * self.fps - 1e-6
            if s > last_step or (total is None and not within):
                break
            if s < 0:
                base, emb = torch.zeros(NUM_CHANNELS, device=HOST), torch.zeros(self.model.embedding_dim, device=HOST)
            else:
                base, emb = self._steps[s - self._first_step]
            out = base if self._style is None else self._style.adjust(base, emb)
            rows.append(torch.maximum(torch.minimum(out, _RANGE_HI), _RANGE_LO))
            bases.append(base)
            embs.append(emb)
            self._next_frame += 1
        drop = min(self._frame_step(self._next_frame) - self._first_step, len(self._steps))
        if drop > 0:
            del self._steps[:drop]
            self._first_step += drop
        if not rows:
            return MotionFrames(
                torch.zeros(0, NUM_CHANNELS, device=HOST),
                torch.zeros(0, NUM_CHANNELS, device=HOST),
                torch.zeros(0, self.model.embedding_dim, device=HOST),
            )
        return MotionFrames(torch.stack(rows), torch.stack(bases), torch.stack(embs))


def audio_to_motion_frames(
    audio: str | Audio | np.ndarray, model: str | object = "learned", *, chunk: int | None = None, **kwargs
) -> MotionFrames:
    """Whole audio -> all frames (``ceil(duration * fps)``). ``audio`` is a file, an :class:`Audio`, or 16 kHz
    mono samples; ``chunk`` streams it in pieces of that many samples (the result is the same)."""
    if isinstance(audio, np.ndarray):
        audio = load_audio(Audio(audio, SAMPLE_RATE))
    else:
        audio = load_audio(audio)
    stream = AudioToMotion(model, **kwargs)
    step = chunk or len(audio.samples)
    parts = [stream.push_frames(audio.samples[i : i + step]) for i in range(0, len(audio.samples), step)]
    parts.append(stream.flush_frames())
    return MotionFrames(*(torch.cat([getattr(p, f) for p in parts]) for f in ("channels", "base", "embedding")))


def audio_to_motion(audio: str | Audio | np.ndarray, model: str | object = "learned", **kwargs) -> Motion:
    """Whole audio -> :class:`Motion` (see :class:`AudioToMotion` for the options)."""
    frames = audio_to_motion_frames(audio, model, **kwargs)
    return channels_to_motion(frames.channels, kwargs.get("fps", 30.0))


__all__ = ["VISEME_CHANNELS", "AudioToMotion", "MotionFrames", "audio_to_motion", "audio_to_motion_frames"]
