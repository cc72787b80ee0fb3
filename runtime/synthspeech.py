"""Synthetic speech with phoneme timing from espeak-ng (training and evaluation data for audio-to-motion).

espeak-ng is a Debian package (``apt-get install espeak-ng``); this module talks to its library
``libespeak-ng.so.1`` through ctypes, synthesising in memory with phoneme events switched on, so every phoneme
comes with the audio sample where it starts (no MBROLA voice needed). Only training, evaluation and tests that
are marked for it use this; the runtime itself never needs espeak-ng.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from dataclasses import dataclass

import numpy as np

from .audio import SAMPLE_RATE, resample

_EVENT_END_OF_LIST, _EVENT_PHONEME, _EVENT_MSG_TERMINATED = 0, 7, 6
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_PARAMETERS = {"rate": 1, "volume": 2, "pitch": 3, "range": 4, "wordgap": 7}


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
        ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p), ("id", _EventId),
    ]  # fmt: skip


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True, eq=False)
class Utterance:
    """Synthetic speech at 16 kHz with its phonemes: ``phonemes[i]`` (espeak-ng mnemonic) starts at
    ``starts_s[i]`` and lasts until the next start (the last one until ``len(samples) / 16000``)."""

    samples: np.ndarray
    phonemes: tuple[str, ...]
    starts_s: np.ndarray
    text: str
    voice: str

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE


class _Espeak:
    _lock = threading.Lock()
    _instance: _Espeak | None = None

    def __init__(self) -> None:
        name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            self.lib = ctypes.CDLL(name)
        except OSError:
            raise ValueError(
                "espeak-ng is not installed (libespeak-ng.so.1 not found): apt-get install espeak-ng"
            ) from None
        self.rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INITIALIZE_PHONEME_EVENTS)
        if self.rate <= 0:
            raise ValueError("espeak-ng failed to initialise; reinstall it with apt-get install --reinstall espeak-ng")
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, str]] = []
        self._callback = _CALLBACK(self._on_audio)  # keep a reference: ctypes does not
        self.lib.espeak_SetSynthCallback(self._callback)
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]

    @classmethod
    def get(cls) -> _Espeak:
        with cls._lock:
            if cls._instance is None:
                cls._instance = _Espeak()
            return cls._instance

    def _on_audio(self, wav, count, events) -> int:
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        i = 0
        while events[i].type != _EVENT_END_OF_LIST:
            if events[i].type == _EVENT_PHONEME:
                self._events.append((events[i].sample, events[i].id.string.decode("ascii", "replace")))
            i += 1
        return 0

    def synth(self, text: str, voice: str, params: dict[str, int]) -> tuple[np.ndarray, list[tuple[int, str]]]:
        with self._lock:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"espeak-ng has no voice {voice!r}; list them with espeak-ng --voices")
            for key, value in params.items():
                self.lib.espeak_SetParameter(_PARAMETERS[key], int(value), 0)
            self._chunks, self._events = [], []
            data = text.encode("utf-8") + b"\0"
            self.lib.espeak_Synth(data, len(data), 0, 0, 0, 0x1000, None, None)  # 0x1000: espeakCHARS_UTF8
            self.lib.espeak_Synchronize()
            wav = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
            return wav, list(self._events)


def espeak_available() -> bool:
    try:
        _Espeak.get()
    except ValueError:
        return False
    return True


def synthesize(
    text: str, *, voice: str = "en-us", rate_wpm: int = 170, pitch: int = 50, pitch_range: int = 50
) -> Utterance:
    """Speak ``text`` with espeak-ng; audio resampled to 16 kHz mono float32, phoneme starts in seconds.

    ``voice`` is an espeak-ng voice name, optionally with a variant (``"en-us+f3"``).
    """
    engine = _Espeak.get()
    params = {"rate": rate_wpm, "pitch": pitch, "range": pitch_range, "volume": 100, "wordgap": 0}
    wav, events = engine.synth(text, voice, params)
    if len(wav) == 0:
        raise ValueError(f"espeak-ng produced no audio for {text!r} with voice {voice!r}")
    samples = resample(wav.astype(np.float64) / 32768.0, engine.rate, SAMPLE_RATE)
    phonemes, starts = [], []
    for sample, name in events:
        name = name.strip()
        if not name:
            continue
        t = sample / engine.rate
        if phonemes and abs(t - starts[-1]) < 1e-6 and phonemes[-1] in ("_", "_:", "_!"):
            phonemes[-1], starts[-1] = name, t  # a pause of zero length followed by a phoneme at the same time
            continue
        phonemes.append(name)
        starts.append(t)
    return Utterance(samples, tuple(phonemes), np.asarray(starts, dtype=np.float64), text, voice)
