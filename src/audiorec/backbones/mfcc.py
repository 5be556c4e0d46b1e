"""MFCC statistics: the 104-d baseline track vector of Music4All-Onion.

13 MFCCs per frame; the track vector is their mean (13) followed by the upper triangle of their covariance
matrix, diagonal included (13·14/2 = 91), the layout of the precomputed MFCC features the first paper used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import librosa
import numpy as np
import scipy.fft

from audiorec.audio.spectrum import power_spectrogram, power_to_db
from audiorec.backbones.base import Backbone, ClipPolicy
from audiorec.backbones.options import MFCCConfig
from audiorec.common.config import dataclass_from_mapping


def mfcc_statistics(mfcc: np.ndarray) -> np.ndarray:
    """Mean and upper-triangular covariance (``ddof=1``) of a ``(n_mfcc, n_frames)`` matrix.

    A single frame has no covariance; it then contributes zeros rather than NaN.
    """
    mean = mfcc.mean(axis=1)
    covariance = np.cov(mfcc, ddof=1) if mfcc.shape[1] > 1 else np.zeros((mfcc.shape[0], mfcc.shape[0]))
    upper = covariance[np.triu_indices(mfcc.shape[0])]
    return np.concatenate([mean, upper]).astype(np.float32)


class MFCCBackbone(Backbone):
    """librosa MFCCs pooled into mean and covariance statistics over the whole (cropped) track."""

    kind = "mfcc"

    def __init__(self, config: MFCCConfig) -> None:
        self.config = config
        self.sample_rate = config.sample_rate
        self.clip_policy = ClipPolicy(
            max_duration_s=config.max_duration_s, min_duration_s=config.n_fft / config.sample_rate
        )
        self.layer_dims = {"mfcc_stats": config.dim}
        # librosa.feature.mfcc rebuilds this filterbank on every call (1-2 ms).
        self.mel_basis = librosa.filters.mel(sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels)

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> MFCCBackbone:
        return cls(dataclass_from_mapping(MFCCConfig, options, "backbone mfcc"))

    @property
    def pooling(self) -> str:
        return "mean and upper-triangular covariance over time"

    def mfcc(self, signal: np.ndarray) -> np.ndarray:
        """``(n_mfcc, n_frames)`` MFCCs, equal to ``librosa.feature.mfcc`` with this config.

        The same steps as librosa (centred Hann STFT, power, Slaney mel filterbank, ``power_to_db`` with an
        80 dB floor, orthonormal DCT-II), with the filterbank built once instead of per call and the spectrum
        from :mod:`audiorec.audio.spectrum`, which spares each extraction job librosa's 21 s kernel compilation. Once
        librosa's kernels are compiled a call takes 1.05-1.08x librosa's time (6.9 against 6.4 ms on a 3-s clip,
        31.2 against 29.8 ms on a 30-s one, one thread).
        """
        power = power_spectrogram(signal, n_fft=self.config.n_fft, hop_length=self.config.hop_length)
        decibels = power_to_db(self.mel_basis @ power)
        return scipy.fft.dct(decibels, axis=0, type=2, norm="ortho")[: self.config.n_mfcc]

    def embed_batch(self, waveforms: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        vectors = [mfcc_statistics(self.mfcc(signal)) for signal in waveforms]
        return {"mfcc_stats": np.stack(vectors) if vectors else np.zeros((0, self.config.dim), np.float32)}
