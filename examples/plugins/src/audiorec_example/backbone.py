"""A small convolutional backbone: what a researcher's own torch model looks like to audiorec.

Log-mel spectrogram → two convolution blocks; each block's feature maps are averaged over frequency and time into
one vector per track, so the backbone exposes two layers (``conv1``, ``conv2``) and audiorec stores both (the
config's ``layer`` picks one, and a layer sweep can rank both). The weights are random, drawn from ``seed``: in a
real plugin, ``__init__`` would load your checkpoint instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import librosa
import numpy as np
import torch
from torch import nn

from audiorec.backbones import Backbone, ClipPolicy
from audiorec.common.config import dataclass_from_mapping
from audiorec.common.devices import describe_device, resolve_device
from audiorec_example.options import TinyCNNOptions

N_FFT = 512
HOP = 256


class TinyCNNBackbone(Backbone):
    """Two conv blocks on log-mel frames, mean-pooled over frequency and time at each block."""

    def __init__(self, options: TinyCNNOptions) -> None:
        self.options = options
        self.sample_rate = options.sample_rate
        # Tracks shorter than one FFT window are padded, so even a very short clip yields frames.
        self.clip_policy = ClipPolicy(max_duration_s=options.max_duration_s, min_duration_s=N_FFT / options.sample_rate)
        first, second = options.channels
        self.layer_dims = {"conv1": first, "conv2": second}
        self.device = resolve_device(options.device)
        with torch.random.fork_rng(devices=[]):  # the same weights for the same seed, the caller's RNG untouched
            torch.manual_seed(options.seed)
            self.blocks = nn.ModuleList(
                [
                    nn.Sequential(nn.Conv2d(1, first, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True)),
                    nn.Sequential(nn.Conv2d(first, second, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True)),
                ]
            )
        self.blocks.eval().to(self.device)
        mel = librosa.filters.mel(sr=options.sample_rate, n_fft=N_FFT, n_mels=options.n_mels)
        self.mel = torch.as_tensor(mel, dtype=torch.float32, device=self.device)
        self.window = torch.hann_window(N_FFT, device=self.device)

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> TinyCNNBackbone:
        return cls(dataclass_from_mapping(TinyCNNOptions, options, "backbone tiny_cnn"))

    @property
    def device_description(self) -> str:
        return describe_device(self.device)

    @property
    def pooling(self) -> str:
        return "mean over frequency and time of each block's feature maps"

    def log_mel(self, waveform: np.ndarray) -> torch.Tensor:
        """``(1, 1, n_mels, frames)`` log-compressed mel power of one track."""
        signal = torch.as_tensor(waveform, dtype=torch.float32, device=self.device)
        spectrum = torch.stft(signal, N_FFT, HOP, window=self.window, return_complex=True).abs() ** 2
        return torch.log1p(1000.0 * (self.mel @ spectrum))[None, None]

    @torch.no_grad()
    def embed_batch(self, waveforms: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """Each track on its own (lengths differ), both layers' pooled vectors."""
        vectors: dict[str, list[np.ndarray]] = {name: [] for name in self.layer_dims}
        for waveform in waveforms:
            features = self.log_mel(waveform)
            for name, block in zip(self.layer_dims, self.blocks, strict=True):
                features = block(features)
                vectors[name].append(features.mean(dim=(0, 2, 3)).cpu().numpy())
        return {
            name: np.stack(rows).astype(np.float32) if rows else np.zeros((0, self.layer_dims[name]), np.float32)
            for name, rows in vectors.items()
        }
