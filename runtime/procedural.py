"""Weight-free, causal parts of the face and body that audio only loosely drives: level tracking (voice
activity), blinks, brows, head nods and sway, breathing. Shared by the baseline and the learned model.

Everything runs one feature step (10 ms) at a time with one-pole / second-order filters, so it is causal and
streams; randomness (blink times, sway phases) comes from a seeded generator, so a stream is reproducible.
"""

from __future__ import annotations

import math

import numpy as np

from .channels import POSE_CHANNELS, UPPER_FACE_CHANNELS

DB_PER_LOG = 10.0 / math.log(10.0)  # log power -> dB
SILENCE_DB = -62.0  # below this a frame is never speech, whatever the noise floor


def smoothing(tau_s: float, dt: float = 0.01) -> float:
    """One-pole coefficient: ``y += k * (x - y)`` reaches 63 % of a step after ``tau_s``."""
    return 1.0 - math.exp(-dt / tau_s) if tau_s > 0 else 1.0


class LevelTracker:
    """Causal noise floor and speech level in dB; voice activity and normalised loudness per step."""

    def __init__(self) -> None:
        self.floor_db = -70.0
        self.peak_db = -30.0
        self.recent = 0.0  # decaying peak of activity: speech in the last ~0.2 s
        self._k_floor_up, self._k_floor_down = smoothing(3.0), smoothing(0.05)
        self._k_peak_up, self._k_peak_down = smoothing(0.02), smoothing(2.0)
        self._k_recent = smoothing(0.2)

    def step(self, energy_db: float) -> tuple[float, float]:
        """-> (activity in [0, 1], loudness in [0, 1] relative to the recent speech level)."""
        k = self._k_floor_down if energy_db < self.floor_db else self._k_floor_up
        self.floor_db += k * (energy_db - self.floor_db)
        threshold = max(self.floor_db + 8.0, SILENCE_DB)
        activity = min(1.0, max(0.0, (energy_db - threshold) / 10.0))
        if activity > 0:
            k = self._k_peak_up if energy_db > self.peak_db else self._k_peak_down
            self.peak_db += k * (energy_db - self.peak_db)
        loudness = activity * min(1.0, max(0.0, (energy_db - (self.peak_db - 30.0)) / 30.0))
        self.recent = max(activity, self.recent - self._k_recent * self.recent)
        return activity, loudness


def _blink_shape(age_s: float) -> float:
    """Eyelid closure ``age_s`` after a blink starts: 70 ms closing, 30 ms closed, 140 ms opening."""
    if age_s < 0 or age_s > 0.24:
        return 0.0
    if age_s < 0.07:
        return math.sin(0.5 * math.pi * age_s / 0.07) ** 2
    if age_s < 0.10:
        return 1.0
    return math.cos(0.5 * math.pi * (age_s - 0.10) / 0.14) ** 2


class Procedural:
    """Upper face (:data:`UPPER_FACE_CHANNELS`) and pose (:data:`POSE_CHANNELS`) per 10 ms step.

    Args:
        seed: blink times and sway phases.
        intensity: scales head motion (0 keeps the head still).
    """

    def __init__(self, seed: int = 0, intensity: float = 1.0, dt: float = 0.01):
        self.dt, self.intensity = dt, intensity
        self._rng = np.random.default_rng(seed)
        self._time = 0.0
        self._next_blink = float(self._rng.uniform(0.8, 2.5))
        self._blink_start = -1.0
        self._f0_mean = math.log(150.0)
        self._brow = 0.0
        self._loud_fast = self._loud_slow = self._activity_slow = 0.0
        self._nod = self._nod_velocity = 0.0
        self._sway_freqs = self._rng.uniform(0.08, 0.35, size=(3, 3))  # 3 axes x 3 partials, Hz
        self._sway_phases = self._rng.uniform(0, 2 * math.pi, size=(3, 3))
        self._k = {
            "f0": smoothing(2.0), "brow_up": smoothing(0.08), "brow_down": smoothing(0.3), "fast": smoothing(0.03),
            "slow": smoothing(0.18), "act": smoothing(1.0),
        }  # fmt: skip

    @property
    def size(self) -> int:
        return len(UPPER_FACE_CHANNELS) + len(POSE_CHANNELS)

    def step(self, activity: float, loudness: float, voicing: float, log_f0: float) -> np.ndarray:
        self._time += self.dt
        out = np.zeros(self.size, np.float32)
        out[0] = out[1] = self._blink(activity)
        emphasis = self._pitch_emphasis(activity, voicing, log_f0)
        k = self._k["brow_up"] if emphasis > self._brow else self._k["brow_down"]
        self._brow += k * (emphasis - self._brow)
        out[2], out[3] = 0.45 * self._brow, 0.25 * self._brow
        out[4:] = self._pose(activity, loudness, emphasis)
        return out

    def _blink(self, activity: float) -> float:
        if self._time >= self._next_blink:
            self._blink_start = self._time
            double = self._rng.uniform() < 0.12
            # people blink more while listening/pausing than mid-sentence
            self._next_blink = self._time + (
                0.32 if double else float(self._rng.uniform(1.6, 5.0)) * (1 + 0.3 * activity)
            )
        return _blink_shape(self._time - self._blink_start)

    def _pitch_emphasis(self, activity: float, voicing: float, log_f0: float) -> float:
        if voicing > 0.5 and log_f0 > 0 and activity > 0.3:
            self._f0_mean += self._k["f0"] * (log_f0 - self._f0_mean)
            return min(1.0, max(0.0, (log_f0 - self._f0_mean - 0.05) / 0.2)) * activity
        return 0.0

    def _pose(self, activity: float, loudness: float, emphasis: float) -> np.ndarray:
        self._loud_fast += self._k["fast"] * (loudness - self._loud_fast)
        self._loud_slow += self._k["slow"] * (loudness - self._loud_slow)
        self._activity_slow += self._k["act"] * (activity - self._activity_slow)
        accent = max(0.0, self._loud_fast - self._loud_slow)  # syllable onsets
        # a damped spring (2 Hz, damping 0.7) turns accents into nods
        omega, zeta = 2 * math.pi * 2.0, 0.7
        force = omega * omega * (3.0 * accent - self._nod) - 2 * zeta * omega * self._nod_velocity
        self._nod_velocity += self.dt * force
        self._nod += self.dt * self._nod_velocity
        t = self._time
        sway = (np.sin(2 * math.pi * self._sway_freqs * t + self._sway_phases) - np.sin(self._sway_phases)).mean(1)
        amplitude = 0.015 + 0.045 * self._activity_slow
        head_pitch = 0.08 * self._nod - 0.04 * emphasis + 0.5 * amplitude * sway[0]
        head_yaw = 1.5 * amplitude * sway[1]
        head_roll = 0.6 * amplitude * sway[2]
        breath = 0.006 * math.sin(2 * math.pi * 0.23 * t)
        torso = (breath + 0.25 * head_pitch * self._activity_slow, 0.3 * head_yaw, 0.3 * head_roll)
        return self.intensity * np.array([head_pitch, head_yaw, head_roll, *torso], np.float32)
