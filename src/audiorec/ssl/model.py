"""The contrastive encoder of Choi et al. (2022) and the MelCPC context network around it.

The encoder is 5 blocks of Conv2d 5×5 → BatchNorm → ReLU → MaxPool over a ``(frames, 96 mel bands)`` input.
With the pools (2,2),(2,2),(2,2),(4,4),(5,3), a 3-s segment of 188 frames leaves one time step of 512 channels
and a 12-s input of 752 frames leaves four. Two kinds of heads sit on top:

* single level: a Linear per remaining time step; the segment vector is the time average;
* multi level: after each block, max over time, flatten (channels × remaining bands), a Linear per level.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from audiorec.errors import ParameterError
from audiorec.ssl.config import SSLConfig
from audiorec.ssl.features import N_MELS

POOLS: tuple[tuple[int, int], ...] = ((2, 2), (2, 2), (2, 2), (4, 4), (5, 3))
"""(time, frequency) max-pool of each block."""
MIN_FRAMES = 2 * 2 * 2 * 4 * 5
"""Shortest input (frames) that leaves at least one time step after the last block."""


def _bands_after_blocks() -> list[int]:
    bands, out = N_MELS, []
    for _, pool in POOLS:
        bands //= pool
        out.append(bands)
    return out


@dataclass
class EncoderOutput:
    """What the encoder returns for a batch of ``B`` inputs.

    Attributes
    ----------
    steps
        ``(B, T', D)`` per-time-step vectors of the single-level head (None for multi level).
    levels
        One ``(B, D)`` vector per block for the multi-level heads (None for single level).
    """

    steps: torch.Tensor | None
    levels: list[torch.Tensor] | None

    @property
    def segment(self) -> torch.Tensor:
        """``(B, D)`` the time average of the steps (single level only)."""
        if self.steps is None:
            raise ParameterError("a multi-level encoder has no single segment vector; use its levels")
        return self.steps.mean(dim=1)


class ConvBlock(nn.Sequential):
    """Conv2d 5×5 (stride 1, padding 2) → BatchNorm → ReLU → MaxPool."""

    def __init__(self, in_channels: int, out_channels: int, pool: tuple[int, int]) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=5, stride=1, padding=2),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.MaxPool2d(pool),
        )


class MelEncoder(nn.Module):
    """The 5-block CNN with its single-level or multi-level heads."""

    def __init__(self, channels: tuple[int, ...], embedding_dim: int, multi_level: bool) -> None:
        super().__init__()
        widths = (1, *channels)
        self.blocks = nn.ModuleList(
            ConvBlock(c_in, c_out, pool) for c_in, c_out, pool in zip(widths[:-1], widths[1:], POOLS, strict=True)
        )
        self.multi_level = multi_level
        if multi_level:
            self.level_heads = nn.ModuleList(
                nn.Linear(c * bands, embedding_dim) for c, bands in zip(channels, _bands_after_blocks(), strict=True)
            )
        else:
            self.step_head = nn.Linear(channels[-1] * _bands_after_blocks()[-1], embedding_dim)

    def forward(self, mel: torch.Tensor) -> EncoderOutput:
        """Encode ``(B, frames, 96)`` normalised log-mel inputs (frames ≥ :data:`MIN_FRAMES`)."""
        if mel.ndim != 3 or mel.shape[-1] != N_MELS or mel.shape[1] < MIN_FRAMES:
            raise ParameterError(
                f"encoder input must be (batch, frames >= {MIN_FRAMES}, {N_MELS}); got shape {tuple(mel.shape)}"
            )
        x = mel.unsqueeze(1)
        levels = []
        for index, block in enumerate(self.blocks):
            x = block(x)
            if self.multi_level:
                levels.append(self.level_heads[index](x.amax(dim=2).flatten(1)))
        if self.multi_level:
            return EncoderOutput(steps=None, levels=levels)
        steps = x.permute(0, 2, 1, 3).flatten(2)  # (B, T', channels × remaining bands)
        return EncoderOutput(steps=self.step_head(steps), levels=None)


class SSLModel(nn.Module):
    """Input standardisation, the encoder and, for MelCPC, the GRU context network and its step predictors.

    The standardisation statistics are buffers, so a checkpoint carries the statistics of its own training
    audio and extraction standardises exactly as training did.
    """

    def __init__(self, config: SSLConfig) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("mel_mean", torch.zeros(N_MELS))
        self.register_buffer("mel_std", torch.ones(N_MELS))
        self.encoder = MelEncoder(config.channels, config.embedding_dim, config.multi_level)
        if config.loss == "cpc":
            self.gru = nn.GRU(config.embedding_dim, config.context_dim, num_layers=1, batch_first=True)
            self.predictors = nn.ModuleList(
                nn.Linear(config.context_dim, config.embedding_dim) for _ in range(config.cpc_steps)
            )

    def set_standardisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store per-band statistics of the training audio's log-mel frames."""
        self.mel_mean.copy_(mean)
        self.mel_std.copy_(std.clamp_min(1e-5))

    def encode(self, mel: torch.Tensor) -> EncoderOutput:
        """Standardise raw log-mel inputs ``(B, frames, 96)`` and encode them."""
        return self.encoder((mel - self.mel_mean) / self.mel_std)

    def segment_levels(self, mel: torch.Tensor) -> list[torch.Tensor]:
        """The vectors a segment contributes to a track embedding: the 5 levels, or the one segment vector."""
        out = self.encode(mel)
        return out.levels if out.levels is not None else [out.segment]

    def context(self, sequence: torch.Tensor) -> torch.Tensor:
        """MelCPC: GRU outputs ``(B, T, context_dim)`` over a sequence of segment vectors ``(B, T, D)``."""
        if self.config.loss != "cpc":
            raise ParameterError(f"only loss 'cpc' has a context network; this model has loss {self.config.loss!r}")
        return self.gru(sequence)[0]
