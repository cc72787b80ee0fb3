"""Audio features for the audio branch: causal log-mel, resampled to a fixed number of tokens per video frame and
grouped into windows aligned with the latent frames of a causal video VAE ("AnyAvatar"'s alignment: latent frame 0
is video frame 0, latent f covers frames ``4(f-1)+1 .. 4f``).

No pretrained speech encoder is needed (none can be downloaded here); the model's ``audio_proj`` MLP learns the
projection from log-mel to its width.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160


def mel_filterbank(n_mels: int, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE) -> Float[Tensor, "M K"]:
    """Triangular HTK mel filters over the rfft bins."""

    def hz_to_mel(f: Tensor) -> Tensor:
        return 2595.0 * torch.log10(1.0 + f / 700.0)

    mels = torch.linspace(0.0, float(hz_to_mel(torch.tensor(sample_rate / 2.0))), n_mels + 2)
    hz = 700.0 * (10 ** (mels / 2595.0) - 1.0)
    bins = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    lower, centre, upper = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    rising = (bins[None] - lower) / (centre - lower)
    falling = (upper - bins[None]) / (upper - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0.0)


def log_mel(waveform: Float[Tensor, " S"], sample_rate: int = SAMPLE_RATE, n_mels: int = 80) -> Float[Tensor, "M C"]:
    """Causal log-mel (no centring: frame m only sees samples up to ``m*HOP + N_FFT``) of mono audio."""
    if sample_rate != SAMPLE_RATE:
        length = round(waveform.shape[0] * SAMPLE_RATE / sample_rate)
        waveform = F.interpolate(waveform[None, None].float(), size=length, mode="linear", align_corners=False)[0, 0]
    if waveform.shape[0] < N_FFT:
        waveform = F.pad(waveform, (0, N_FFT - waveform.shape[0]))
    spec = torch.stft(waveform.float(), N_FFT, HOP, window=torch.hann_window(N_FFT), center=False,
                      return_complex=True).abs() ** 2  # fmt: skip
    mel = mel_filterbank(n_mels).to(spec) @ spec
    return torch.log(mel.clamp_min(1e-10)).T.contiguous() / 4.0 + 2.0


def per_video_frame(
    mel: Float[Tensor, "M C"], num_frames: int, fps: float, tokens_per_frame: int = 2
) -> Float[Tensor, "T A C"]:
    """Linearly interpolate the mel sequence at ``tokens_per_frame`` instants inside each video frame."""
    frame_rate = SAMPLE_RATE / HOP
    t = (torch.arange(num_frames)[:, None] + (torch.arange(tokens_per_frame)[None] + 0.5) / tokens_per_frame) / fps
    # mel frame m covers samples [m*HOP, m*HOP + N_FFT): its centre is at (m*HOP + N_FFT/2) / SAMPLE_RATE
    pos = (t * frame_rate - N_FFT / (2 * HOP)).clamp(0, mel.shape[0] - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp_max(mel.shape[0] - 1)
    w = (pos - lo)[..., None]
    return mel[lo] * (1 - w) + mel[hi] * w


def latent_windows(per_frame: Float[Tensor, "T A C"], temporal: int = 4) -> Float[Tensor, "Fl W C"]:
    """Group per-frame tokens into one window per latent frame (latent 0 repeats frame 0 ``temporal`` times)."""
    t = per_frame.shape[0]
    if (t - 1) % temporal:
        raise ValueError(f"{t} frames: a causal VAE needs {temporal}*n+1 frames")
    first = per_frame[:1].expand(temporal, -1, -1)
    frames = torch.cat([first, per_frame[1:]], dim=0)
    return frames.reshape((t - 1) // temporal + 1, temporal * per_frame.shape[1], per_frame.shape[2])


def audio_for_clip(
    waveform: Float[Tensor, " S"], sample_rate: int, num_frames: int, fps: float, n_mels: int = 80, temporal: int = 4
) -> Float[Tensor, "Fl W C"]:
    """Waveform -> latent-aligned audio windows for a clip of ``num_frames`` (4n+1) video frames."""
    needed = math.ceil(num_frames / fps * sample_rate)
    if waveform.shape[0] < needed:
        waveform = F.pad(waveform, (0, needed - waveform.shape[0]))
    return latent_windows(per_video_frame(log_mel(waveform, sample_rate, n_mels), num_frames, fps), temporal)
