"""Log-mel spectrogram in plain torch, equal to torchaudio's ``MelSpectrogram`` + ``AmplitudeToDB`` defaults.

MusicFM and MuQ were trained on torchaudio features: a centred, reflect-padded STFT with a periodic Hann
window, power 2, an HTK mel filterbank without area normalisation, then ``10·log10(max(x, 1e-10))``
without a top-dB floor. torchaudio itself is not a dependency (beside the CPU torch here it breaks
``import transformers``), so the same steps are written out; they equal librosa's
``melspectrogram(htk=True, norm=None)`` followed by ``power_to_db(ref=1, amin=1e-10, top_db=None)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def hz_to_mel(frequency: float) -> float:
    """HTK mel scale."""
    return 2595.0 * math.log10(1.0 + frequency / 700.0)


def htk_mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0) -> torch.Tensor:
    """Triangular HTK filters without normalisation, shape ``(n_fft // 2 + 1, n_mels)``, up to Nyquist."""
    frequencies = torch.linspace(0.0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    mel_edges = torch.linspace(hz_to_mel(f_min), hz_to_mel(sample_rate / 2), n_mels + 2, dtype=torch.float64)
    edges = 700.0 * (10.0 ** (mel_edges / 2595.0) - 1.0)
    widths = edges[1:] - edges[:-1]
    slopes = edges[None, :] - frequencies[:, None]
    rising = -slopes[:, :-2] / widths[:-1]
    falling = slopes[:, 2:] / widths[1:]
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()


class LogMelSpectrogram(nn.Module):
    """``(batch, samples)`` float waveforms → ``(batch, n_mels, 1 + samples // hop_length)`` decibels.

    The window and filterbank are non-persistent buffers: derived from the config, never in a checkpoint.
    """

    def __init__(self, sample_rate: int, n_fft: int, hop_length: int, n_mels: int, amin: float = 1e-10) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.log_amin = math.log10(amin)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.register_buffer("filterbank", htk_mel_filterbank(sample_rate, n_fft, n_mels), persistent=False)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        spectrum = torch.stft(
            waveforms.float(),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=self.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        power = spectrum.real.square() + spectrum.imag.square()
        mel = torch.matmul(power.transpose(-1, -2), self.filterbank).transpose(-1, -2)
        return 10.0 * torch.log10(mel).clamp(min=self.log_amin)
