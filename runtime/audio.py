"""Audio in: decode any common file, mix to mono, resample to 16 kHz, validate.

Files are decoded by soundfile (wav, flac, ogg, mp3 and the other libsndfile formats) and, where soundfile
cannot, by PyAV (anything FFmpeg reads: m4a, aac, opus, webm, the audio track of an mp4). Every source is
mixed down to mono and resampled with :class:`Resampler`, a Kaiser-windowed-sinc polyphase filter (16 zero
crossings, about -80 dB stop band) that works on a stream: feeding it chunks of any size gives exactly the
samples that resampling the whole signal at once gives.

Bad input is a :class:`ValueError` of one line (what is wrong and how to fix it): a missing file, something
that is not audio, an empty file, NaN or infinite samples. Silence and clipping are valid audio.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
"""The rate every feature and model of the runtime works at."""

_ZERO_CROSSINGS = 16  # filter half-length in zero crossings of the (lower) Nyquist sinc
_KAISER_BETA = 8.6
_ROLLOFF = 0.945  # cut-off as a fraction of the lower Nyquist frequency
_BLOCK = 8192  # output samples computed per vectorised block (bounds memory on long files)


@dataclass(frozen=True, eq=False)
class Audio:
    """Mono float32 samples at ``sample_rate`` (16 kHz once loaded by :func:`load_audio`)."""

    samples: np.ndarray
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def load_audio(source: str | os.PathLike | Audio, *, sample_rate: int = SAMPLE_RATE) -> Audio:
    """Read an audio file (or take an :class:`Audio`) as mono float32 at ``sample_rate``.

    Raises:
        ValueError: the file is missing, is not audio, holds no samples, or holds NaN/infinite samples.
    """
    if isinstance(source, Audio):
        return Audio(as_mono(source.samples, source.sample_rate, sample_rate, what="audio"), sample_rate)
    path = _audio_file(source)
    samples, rate = _decode(path)
    return Audio(as_mono(samples, rate, sample_rate, what=f"audio file {path}"), sample_rate)


def as_mono(samples: np.ndarray, rate: int, target_rate: int = SAMPLE_RATE, *, what: str = "audio") -> np.ndarray:
    """Any array of samples -> validated mono float32 at ``target_rate``.

    ``samples`` is 1-D, or 2-D frames x channels (soundfile's layout); a 2-D array with at most 8 rows and more
    columns than rows is read as channels x frames. Integer samples are scaled to [-1, 1].
    """
    array = np.asarray(samples)
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{what}: samples must be numbers, got dtype {array.dtype}")
    if not (isinstance(rate, int | np.integer) and rate > 0):
        raise ValueError(f"{what}: sample rate must be a positive integer, got {rate!r}")
    if array.ndim == 2 and array.shape[0] <= 8 and array.shape[1] > array.shape[0]:
        array = array.T
    if array.ndim not in (1, 2):
        raise ValueError(f"{what}: expected 1-D samples or frames x channels, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{what} is empty (no samples): pass a recording at least a few milliseconds long")
    if array.dtype.kind in "iu":
        info = np.iinfo(array.dtype)
        array = (array.astype(np.float64) - (info.max + info.min + 1) / 2) / ((info.max - info.min + 1) / 2)
    mono = array.astype(np.float64).mean(axis=1) if array.ndim == 2 else array.astype(np.float64)
    bad = ~np.isfinite(mono)
    if bad.any():
        first = int(np.argmax(bad))
        raise ValueError(
            f"{what} contains {int(bad.sum())} NaN or infinite samples (first at {first / rate:.3f} s): "
            "re-export it from your audio editor"
        )
    return resample(mono, int(rate), target_rate)


def _decode(path: Path) -> tuple[np.ndarray, int]:
    rate, blocks = _open_blocks(path)
    parts = list(blocks)
    return (np.concatenate(parts) if parts else np.zeros((0, 1), np.float32)), rate


def _unreadable(path: Path, errors: list[str]) -> ValueError:
    return ValueError(
        f"cannot read {path} as audio ({'; '.join(errors)}): pass a wav, flac, ogg or mp3 file (or any file FFmpeg "
        "can decode with an audio track)"
    )


def _open_blocks(path: Path, block: int = 1 << 16) -> tuple[int, Iterator[np.ndarray]]:
    """(sample rate, blocks of frames x channels float32): soundfile first, PyAV where it cannot open the file.
    Decoding is lazy: only one block is in memory at a time."""
    errors = []
    try:
        import soundfile

        handle = soundfile.SoundFile(str(path))
        rate = int(handle.samplerate)

        def sf_blocks() -> Iterator[np.ndarray]:
            with handle:
                while True:
                    try:
                        data = handle.read(block, dtype="float32", always_2d=True)
                    except Exception as exc:  # noqa: BLE001 - libsndfile errors mid-file (truncated data)
                        raise _unreadable(path, [f"soundfile: {exc}"]) from None
                    if not len(data):
                        return
                    yield data

        return rate, sf_blocks()
    except ImportError:
        errors.append("soundfile is not installed")
    except Exception as exc:  # noqa: BLE001 - libsndfile raises several types for unreadable files
        errors.append(f"soundfile: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    try:
        return _pyav_blocks(path)
    except ImportError:
        errors.append("PyAV is not installed")
    except ValueError as exc:
        errors.append(str(exc))
    except Exception as exc:  # noqa: BLE001 - FFmpeg errors come in many classes
        errors.append(f"PyAV: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    raise _unreadable(path, errors)


def _pyav_blocks(path: Path) -> tuple[int, Iterator[np.ndarray]]:
    import av

    container = av.open(str(path))
    if not container.streams.audio:
        container.close()
        raise ValueError(f"PyAV: {path.name} has no audio stream")
    stream = container.streams.audio[0]
    frames = container.decode(stream)
    try:
        first = next(frames, None)
    except Exception:
        container.close()
        raise
    rate = int(first.sample_rate) if first is not None else int(stream.rate or SAMPLE_RATE)

    def blocks() -> Iterator[np.ndarray]:
        with container:
            if first is None:
                return
            try:
                for frame in itertools.chain([first], frames):
                    yield _frame_array(frame)
            except av.FFmpegError as exc:
                raise _unreadable(path, [f"PyAV: {exc}"]) from None

    return rate, blocks()


def _frame_array(frame) -> np.ndarray:
    array = frame.to_ndarray()  # planar: channels x n; packed: 1 x (n * channels)
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:
        array = array.reshape(-1, channels).T
    if array.dtype.kind in "iu":
        array = array.astype(np.float64) / float(np.iinfo(array.dtype).max)
    return np.asarray(array, dtype=np.float32).T


def audio_duration_s(path: str | os.PathLike) -> float | None:
    """The length of an audio file from its header, without decoding it (None when the header does not say)."""
    try:
        import soundfile

        info = soundfile.info(str(path))
        return info.frames / info.samplerate
    except Exception:  # noqa: BLE001 - not a libsndfile format: ask FFmpeg
        pass
    try:
        import av

        with av.open(str(path)) as container:
            return None if container.duration is None else container.duration / av.time_base
    except Exception:  # noqa: BLE001
        return None


def stream_audio(
    source: str | os.PathLike, *, chunk_s: float = 1.0, sample_rate: int = SAMPLE_RATE
) -> Iterator[np.ndarray]:
    """An audio file as mono float32 chunks at ``sample_rate``, decoded and resampled on the fly, so a long file
    never sits in memory. The concatenated chunks equal :func:`load_audio`'s samples exactly.

    Raises:
        ValueError: as :func:`load_audio` (a missing, unreadable or empty file, NaN or infinite samples); the
            file's opening and first block are checked when the first chunk is asked for.
    """
    path = _audio_file(source)
    rate, blocks = _open_blocks(path)
    what = f"audio file {path}"
    resampler = Resampler(rate, sample_rate)
    size = max(1, round(chunk_s * sample_rate))
    pending: list[np.ndarray] = []
    held, seen = 0, 0
    for block in blocks:
        mono = block.astype(np.float64).mean(axis=1) if block.shape[1] > 1 else block[:, 0].astype(np.float64)
        bad = ~np.isfinite(mono)
        if bad.any():
            first = (seen + int(np.argmax(bad))) / rate
            raise ValueError(
                f"{what} contains NaN or infinite samples (first at {first:.3f} s): re-export it from your audio editor"
            )
        seen += len(mono)
        out = resampler.process(mono)
        pending.append(out)
        held += len(out)
        while held >= size:
            joined = np.concatenate(pending)
            yield joined[:size]
            pending, held = [joined[size:]], len(joined) - size
    if seen == 0:
        raise ValueError(f"{what} is empty (no samples): pass a recording at least a few milliseconds long")
    rest = np.concatenate([*pending, resampler.flush()])
    for start in range(0, len(rest), size):
        yield rest[start : start + size]


# ---------------------------------------------------------------------------------------------------------------
# Resampling


def _kaiser_sinc_table(up: int, down: int) -> tuple[np.ndarray, int]:
    """Per-phase filter taps: ``table[phase, j]`` weighs input ``n0 - half + 1 + j`` for an output at input
    position ``n0 + phase / up``."""
    cutoff = _ROLLOFF * min(1.0, up / down)  # relative to the input Nyquist
    half = math.ceil(_ZERO_CROSSINGS / cutoff)
    j = np.arange(2 * half)
    frac = np.arange(up)[:, None] / up
    distance = frac + half - 1 - j[None, :]  # input position minus tap position, in input samples
    window = np.i0(_KAISER_BETA * np.sqrt(np.clip(1 - (distance / half) ** 2, 0, 1))) / np.i0(_KAISER_BETA)
    taps = cutoff * np.sinc(cutoff * distance) * window
    return taps / taps.sum(axis=1, keepdims=True), half


class Resampler:
    """Streaming polyphase resampler from ``rate_in`` to ``rate_out``.

    ``process`` returns every output sample whose filter taps are all available; ``flush`` ends the stream
    (zeros past its end) and returns the rest, so the output holds ``ceil(n_in * rate_out / rate_in)`` samples,
    sample ``m`` at time ``m / rate_out``. The arithmetic per output sample does not depend on how the input was
    chunked, so chunked and whole-signal results are identical.
    """

    def __init__(self, rate_in: int, rate_out: int = SAMPLE_RATE):
        if rate_in <= 0 or rate_out <= 0:
            raise ValueError(f"sample rates must be positive, got {rate_in} -> {rate_out}")
        g = math.gcd(int(rate_in), int(rate_out))
        self.up, self.down = int(rate_out) // g, int(rate_in) // g
        self.identity = self.up == self.down
        if not self.identity:
            self._table, self._half = _kaiser_sinc_table(self.up, self.down)
        else:
            self._table, self._half = np.ones((1, 1)), 1
        self._buffer = np.zeros(self._half, dtype=np.float64)  # inputs from index _start on
        self._start = -self._half  # virtual zeros before the first input
        self._received = 0
        self._next = 0  # next output index
        self._finished = False

    def process(self, samples: np.ndarray) -> np.ndarray:
        if self._finished:
            raise ValueError("this resampler's stream was flushed; make a new Resampler for a new stream")
        x = np.asarray(samples, dtype=np.float64).reshape(-1)
        if self.identity:
            self._received += len(x)
            return x.astype(np.float32)
        self._buffer = np.concatenate([self._buffer, x])
        self._received += len(x)
        # output m needs inputs up to n0(m) + half with n0(m) = floor(m * down / up); the last input is received - 1
        last_n0 = self._received - 1 - self._half
        stop = ((last_n0 + 1) * self.up - 1) // self.down + 1 if last_n0 >= 0 else 0
        return self._emit(stop)

    def flush(self) -> np.ndarray:
        if self._finished:
            return np.zeros(0, np.float32)
        self._finished = True
        if self.identity:
            return np.zeros(0, np.float32)
        total = -(-self._received * self.up // self.down)
        self._buffer = np.concatenate([self._buffer, np.zeros(2 * self._half + 1)])
        return self._emit(total)

    def _emit(self, stop: int) -> np.ndarray:
        out = []
        while self._next < stop:
            m = np.arange(self._next, min(stop, self._next + _BLOCK))
            n0, phase = (m * self.down) // self.up, (m * self.down) % self.up
            idx = (n0 - self._half + 1 - self._start)[:, None] + np.arange(2 * self._half)[None, :]
            out.append((self._buffer[idx] * self._table[phase]).sum(axis=1))
            self._next = int(m[-1]) + 1
        keep_from = (self._next * self.down) // self.up - self._half + 1  # first input the next output needs
        if keep_from > self._start:
            self._buffer = self._buffer[keep_from - self._start :]
            self._start = keep_from
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


def resample(samples: np.ndarray, rate_in: int, rate_out: int = SAMPLE_RATE) -> np.ndarray:
    """Resample a whole 1-D signal (float32 out); the same numbers :class:`Resampler` gives on a stream."""
    if rate_in == rate_out:
        return np.asarray(samples, dtype=np.float32).reshape(-1)
    r = Resampler(rate_in, rate_out)
    return np.concatenate([r.process(samples), r.flush()])


def _audio_file(source: str | os.PathLike) -> Path:
    """``source`` as a path to an existing file (one clear line for a missing path or a folder)."""
    path = Path(source)
    if not path.exists():
        raise ValueError(f"audio file {path} does not exist")
    if path.is_dir():
        raise ValueError(f"audio path {path} is a folder: pass an audio file (wav, flac, ogg, mp3)")
    return path
