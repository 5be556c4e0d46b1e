"""The encoders' input: 3-second segments of 16 kHz audio as log-compressed mel spectrograms.

Training and extraction cut segments from the waveform first and compute each segment's mel spectrogram on its
own, so a segment looks exactly the same to the encoder whether it was sampled for training or cut from a track
at extraction time (a slice of a whole-track spectrogram would differ at its edges).
"""

from __future__ import annotations

import functools

import librosa
import numpy as np

from audiorec.audio.spectrum import power_spectrogram

SAMPLE_RATE = 16000
N_FFT = 512
HOP_LENGTH = 256
N_MELS = 96
SEGMENT_SAMPLES = 3 * SAMPLE_RATE
"""One segment: 3 s, i.e. 188 frames with librosa's centred frames."""
SEGMENT_FRAMES = 1 + SEGMENT_SAMPLES // HOP_LENGTH
GAP_SAMPLES = SAMPLE_RATE // 2
"""The 0.5 s left between adjacent segments, so that edge continuity is no shortcut to the positive."""
LOG_SCALE = 10000.0
"""Compression ``log(1 + 10000·mel)``: the musicnn front end's, up to a constant factor."""


@functools.cache
def mel_basis() -> np.ndarray:
    """``(N_MELS, 1 + N_FFT // 2)`` Slaney mel filterbank, librosa's default."""
    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS)


def log_mel(segments: np.ndarray) -> np.ndarray:
    """Log-compressed mel spectrograms of waveform segments.

    The mel power spectrogram is librosa's (``librosa.feature.melspectrogram`` with its defaults: centred Hann
    frames, power 2, Slaney filters), computed from :func:`audiorec.audio.spectrum.power_spectrogram` (librosa's STFT
    without its kernel compilation) and one ``tensordot`` with the filterbank: librosa's einsum is about ten
    times slower on segments this short, and every training example needs two.

    Parameters
    ----------
    segments : np.ndarray, shape ``(..., SEGMENT_SAMPLES)``
        16 kHz mono waveforms of one segment each.

    Returns
    -------
    np.ndarray, shape ``(..., SEGMENT_FRAMES, N_MELS)``
        float32, time before frequency (the encoder's layout).
    """
    power = power_spectrogram(segments, n_fft=N_FFT, hop_length=HOP_LENGTH)
    mel = np.tensordot(power, mel_basis(), axes=([-2], [1]))  # (..., frames, mels)
    return np.log1p(LOG_SCALE * mel).astype(np.float32)


def fit_to_length(signal: np.ndarray, length: int) -> np.ndarray:
    """Crop ``signal`` to ``length`` samples or pad it with trailing silence."""
    if signal.shape[-1] >= length:
        return signal[..., :length]
    return np.pad(signal, [(0, 0)] * (signal.ndim - 1) + [(0, length - signal.shape[-1])])
