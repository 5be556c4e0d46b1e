"""The EnCodec 24 kHz encoder (SEANet) in plain torch, with the parameter names of the ``encodec`` package.

EncodecMAE feeds audio through this frozen encoder: a causal conv stack with ELU activations, residual
blocks, strided downsampling by 2·4·5·8 = 320 (75 frames/s at 24 kHz), a two-layer LSTM with a skip, and a
final conv to 128 channels. Every conv is weight-normalised and pads causally (left), reflecting the signal,
plus just enough on the right that the last window is full, as ``encodec.modules.SConv1d`` does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class SEANetConfig:
    """Hyper-parameters of ``encodec.modules.SEANetEncoder`` (defaults: the 24 kHz model's encoder)."""

    channels: int = 1
    dimension: int = 128
    n_filters: int = 32
    n_residual_layers: int = 1
    ratios: tuple[int, ...] = (8, 5, 4, 2)
    kernel_size: int = 7
    last_kernel_size: int = 7
    residual_kernel_size: int = 3
    dilation_base: int = 2
    compress: int = 2
    lstm_layers: int = 2

    @property
    def hop_length(self) -> int:
        """Samples per output frame."""
        return math.prod(self.ratios)


class WeightNormConv1d(nn.Module):
    """``Conv1d`` whose weight is ``weight_g · weight_v / ‖weight_v‖`` (norm over all but the output axis).

    The parameter names are those of ``torch.nn.utils.weight_norm``, which the released checkpoints use.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, dilation: int) -> None:
        super().__init__()
        self.stride = stride
        self.dilation = dilation
        self.weight_v = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size))
        nn.init.kaiming_uniform_(self.weight_v, a=math.sqrt(5))
        self.weight_g = nn.Parameter(self.weight_v.detach().norm(dim=(1, 2), keepdim=True))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight_g * self.weight_v / self.weight_v.norm(dim=(1, 2), keepdim=True)
        return F.conv1d(x, weight, self.bias, stride=self.stride, dilation=self.dilation)


class NormConv1d(nn.Module):
    """Holder that gives the weight-normalised conv the key prefix ``conv.`` of ``encodec.modules.NormConv1d``."""

    def __init__(self, conv: WeightNormConv1d) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class CausalConv1d(nn.Module):
    """``encodec.modules.SConv1d`` in causal mode with reflect padding."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = (kernel_size - 1) * dilation - (stride - 1)
        self.conv = NormConv1d(WeightNormConv1d(in_channels, out_channels, kernel_size, stride, dilation))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[-1]
        frames = (length - self.kernel_size + self.padding) / self.stride + 1
        extra = (math.ceil(frames) - 1) * self.stride + (self.kernel_size - self.padding) - length
        return self.conv(reflect_pad(x, self.padding, extra))


def reflect_pad(x: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """Reflect padding that also works when the signal is shorter than the padding (zeros extend it first)."""
    longest = max(left, right)
    extend = longest - x.shape[-1] + 1 if x.shape[-1] <= longest else 0
    if extend:
        x = F.pad(x, (0, extend))
    padded = F.pad(x, (left, right), mode="reflect")
    return padded[..., : padded.shape[-1] - extend]


class ResnetBlock(nn.Module):
    """ELU → conv(k=3) → ELU → conv(k=1), at half the width, plus a 1×1 conv shortcut."""

    def __init__(self, dim: int, kernel_size: int, dilation: int, compress: int) -> None:
        super().__init__()
        hidden = dim // compress
        self.block = nn.Sequential(
            nn.ELU(), CausalConv1d(dim, hidden, kernel_size, dilation=dilation), nn.ELU(), CausalConv1d(hidden, dim, 1)
        )
        self.shortcut = CausalConv1d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.block(x)


class SkipLSTM(nn.Module):
    """Multi-layer LSTM over time with a residual connection, on ``(batch, channels, frames)``."""

    def __init__(self, dim: int, num_layers: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, num_layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = x.permute(2, 0, 1)
        output, _ = self.lstm(steps)
        return (output + steps).permute(1, 2, 0)


class SEANetEncoder(nn.Module):
    """``(batch, channels, samples)`` → ``(batch, dimension, ceil(samples / hop_length))``."""

    def __init__(self, config: SEANetConfig) -> None:
        super().__init__()
        width = config.n_filters
        layers: list[nn.Module] = [CausalConv1d(config.channels, width, config.kernel_size)]
        for ratio in reversed(config.ratios):
            layers += [
                ResnetBlock(width, config.residual_kernel_size, config.dilation_base**index, config.compress)
                for index in range(config.n_residual_layers)
            ]
            layers += [nn.ELU(), CausalConv1d(width, width * 2, ratio * 2, stride=ratio)]
            width *= 2
        if config.lstm_layers:
            layers.append(SkipLSTM(width, config.lstm_layers))
        layers += [nn.ELU(), CausalConv1d(width, config.dimension, config.last_kernel_size)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
