"""Short-time power spectra and decibels as librosa computes them (to float32 rounding), without ``librosa.util``.

Importing ``librosa.util.utils`` (which ``librosa.stft`` and ``librosa.power_to_db`` need) compiles its numba
kernels when numba's cache is cold, which takes 21-25 s of one core (measured on a 2-core x86 machine); every
extraction shard of a fresh install would pay it at once, side by side. The STFT itself is a few lines of NumPy,
so the backbones that only need librosa's spectrogram compute it here and keep librosa's numbers: a centred,
zero-padded, periodic-Hann STFT (``librosa.stft``'s defaults since 0.10), windowed frames and their transform in
float64 as librosa forms them (a float32 transform departs by up to 1e-3 on quiet bins), then ``power_to_db``'s
``10·log10(max(S, amin))`` with an 80 dB floor below the maximum.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft

FRAMES_PER_BLOCK = 512
"""Frames transformed at once: bounds the float64 frame copy to ``FRAMES_PER_BLOCK · n_fft · 8`` bytes per
signal, so a whole-track STFT never holds every frame twice."""


@functools.cache
def periodic_hann(n_fft: int) -> np.ndarray:
    """``scipy.signal.get_window("hann", n_fft, fftbins=True)``: the window ``librosa.stft`` uses by default."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)


def power_spectrogram(signal: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """``|librosa.stft(signal, n_fft=n_fft, hop_length=hop_length)|²`` with librosa's other defaults.

    Parameters
    ----------
    signal : np.ndarray, shape ``(..., samples)``
        Waveforms, cast to float32 as librosa's input would be.

    Returns
    -------
    np.ndarray, shape ``(..., 1 + n_fft // 2, 1 + samples // hop_length)``
        float32 power, frequency before time (librosa's layout).
    """
    if n_fft < 2 or hop_length < 1:
        raise ValueError(f"power_spectrogram needs n_fft >= 2 and hop_length >= 1, got {n_fft} and {hop_length}")
    waveform = np.asarray(signal, dtype=np.float32)
    padding = [(0, 0)] * (waveform.ndim - 1) + [(n_fft // 2, n_fft // 2)]
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(waveform, padding), n_fft, axis=-1)[..., ::hop_length, :]
    window = periodic_hann(n_fft)
    power = np.empty((*frames.shape[:-1], 1 + n_fft // 2), dtype=np.float32)
    for start in range(0, frames.shape[-2], FRAMES_PER_BLOCK):
        block = slice(start, start + FRAMES_PER_BLOCK)
        spectrum = scipy.fft.rfft(frames[..., block, :] * window, axis=-1)
        power[..., block, :] = spectrum.real**2 + spectrum.imag**2
    return np.swapaxes(power, -1, -2)


def power_to_db(power: np.ndarray, amin: float = 1e-10, top_db: float | None = 80.0) -> np.ndarray:
    """``librosa.power_to_db(power, ref=1.0, amin=amin, top_db=top_db)``: the floor is below the array's maximum."""
    decibels = 10.0 * np.log10(np.maximum(amin, power))
    if top_db is not None and decibels.size:
        decibels = np.maximum(decibels, decibels.max() - top_db)
    return decibels
