"""SF-NFNet-F0, the network of Pandora's MULE (McCallum et al. 2022), in PyTorch.

It follows ``mule/models/sfnfnetf0.py`` of https://github.com/PandoraMedia/music-audio-representations, itself
DeepMind's NFNet (Brock et al. 2021) arranged as the slow-fast audio network of Wang et al. (2021). A
standardised log-mel slice ``(batch, n_mels, frames)`` (frequency is the height, time the width, as the original's
``(batch, 96, 300, 1)`` input) goes through:

- two **stems** of weight-standardised convolutions: a *slow* path (kernels 3×1, strides 2×8 then 2×2: few
  frames, many channels) and a *fast* path (3×3 kernels, strides 2×2 twice);
- four **stages** of NF blocks on each path. Before each slow stage the fast path is **fused** into it: a 1×7
  convolution with time stride 4 and a 1×1 convolution, concatenated to the slow channels;
- the **embedding**: both paths averaged over frequency and time, concatenated (1536 + 192 = 1728 channels)
  and passed through the scaled activation.

An NF block scales its input by ``beta`` (1 / the expected standard deviation, derived from ``alpha``), runs
1×1 → 1×3 (frequency stride) → 3×1 grouped → 1×1 convolutions with scaled GELUs between, a squeeze-excite
(ReLU, sigmoid, ×2), a learned skip gain and ``alpha``, and adds it to the skip path (average pooling and a 1×1
convolution in the first, "transition", block of a stage). Stochastic depth is training-only: at inference
the residual is added whole (``scale_during_test=False`` in the original).

Convolutions are weight-standardised as the original's ``WeightStandardization`` wrapper does:
``(w - mean) · gain / sqrt(max(fan_in · var, 1e-4))`` over each output channel's fan-in, with a bias, and
TensorFlow's ``same`` padding (the extra row or column of an odd total goes after), which PyTorch's
symmetric padding does not reproduce for strided convolutions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from audiorec.errors import ParameterError

ACTIVATION_GAINS = {"gelu": 1.7015043497085571, "relu": 1.7139588594436646}
"""The original's variance-preserving gains (DeepMind's constants) of its two scaled activations."""
WS_EPS = 1e-4
"""Floor of ``fan_in · var`` in the weight standardisation, as the original's ``eps``."""


@dataclass(frozen=True)
class MuleArchitecture:
    """Every size of the network; the defaults are the published SF-NFNet-F0 (63 M parameters, 1728-d).

    The original hard-codes these; ``resources/backbones/mule-{size}.json`` holds them, and the tests build a
    tiny network of the same classes from ``mule-tiny.json``.
    """

    n_mels: int = 96
    slow_stem: tuple[int, ...] = (16, 32, 64, 128)
    fast_stem: tuple[int, ...] = (2, 4, 8, 16)
    slow_stages: tuple[int, ...] = (256, 512, 1536, 1536)
    fast_stages: tuple[int, ...] = (32, 64, 192, 192)
    fusion: tuple[tuple[int, int], ...] = ((32, 128), (32, 256), (64, 512), (192, 3072))
    depths: tuple[int, ...] = (1, 2, 6, 3)
    slow_group_size: int = 128
    fast_group_size: int = 16
    alpha: float = 0.2
    activation: str = "gelu"

    def __post_init__(self) -> None:
        for name in ("slow_stem", "fast_stem", "slow_stages", "fast_stages", "depths"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        object.__setattr__(self, "fusion", tuple((int(a), int(b)) for a, b in self.fusion))
        if len(self.slow_stem) != 4 or len(self.fast_stem) != 4:
            raise ParameterError("mule architecture: slow_stem and fast_stem list the widths of 4 convolutions")
        stages = (self.slow_stages, self.fast_stages, self.fusion, self.depths)
        if len({len(s) for s in stages}) != 1 or not self.depths:
            raise ParameterError(
                "mule architecture: slow_stages, fast_stages, fusion and depths need one entry per stage"
            )
        if self.activation not in ACTIVATION_GAINS:
            raise ParameterError(f"mule architecture activation must be one of {list(ACTIVATION_GAINS)}")
        for widths, group in ((self.slow_stages, self.slow_group_size), (self.fast_stages, self.fast_group_size)):
            for width in widths:
                if width % 2 or (width // 2) % group:
                    raise ParameterError(
                        f"mule architecture: stage width {width} must be even with half a multiple of the group "
                        f"size {group}"
                    )

    @classmethod
    def from_spec(cls, spec: dict[str, Any], source: str) -> MuleArchitecture:
        """Read the ``architecture`` block of a shipped config, refusing unknown keys."""
        block = spec.get("architecture", {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(block) - known)
        if unknown:
            raise ParameterError(f"mule config {source}: unknown architecture key(s) {unknown}; known: {sorted(known)}")
        return cls(**block)

    @property
    def embedding_dim(self) -> int:
        return self.slow_stages[-1] + self.fast_stages[-1]


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's ``same`` padding of one axis: ``ceil(size / stride)`` outputs, the odd extra after."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class ScaledActivation(nn.Module):
    """GELU (exact, as ``tf.nn.gelu``) or ReLU times the original's variance-preserving gain."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.function = F.gelu if name == "gelu" else F.relu
        self.gain = ACTIVATION_GAINS[name]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.function(x) * self.gain


class WSConv2d(nn.Module):
    """A weight-standardised convolution with TensorFlow ``same`` padding (module docstring)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int],
        stride: tuple[int, int] = (1, 1),
        groups: int = 1,
    ) -> None:
        super().__init__()
        self.kernel, self.stride, self.groups = kernel, stride, groups
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels // groups, *kernel))
        self.gain = nn.Parameter(torch.ones(out_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def standardised_weight(self) -> torch.Tensor:
        fan_in = self.weight[0].numel()
        mean = self.weight.mean(dim=(1, 2, 3), keepdim=True)
        var = self.weight.var(dim=(1, 2, 3), unbiased=False, keepdim=True)
        scale = torch.rsqrt(torch.clamp(var * fan_in, min=WS_EPS)) * self.gain.view(-1, 1, 1, 1)
        return self.weight * scale - mean * scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = same_padding(x.shape[2], self.kernel[0], self.stride[0])
        left, right = same_padding(x.shape[3], self.kernel[1], self.stride[1])
        x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.standardised_weight(), self.bias, self.stride, groups=self.groups)


def same_avg_pool(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Average pooling of ``factor`` along frequency with TensorFlow ``same`` padding (padding not counted)."""
    top, bottom = same_padding(x.shape[2], factor, factor)
    if top == bottom == 0:
        return F.avg_pool2d(x, (factor, 1))
    padded = F.pad(x, (0, 0, top, bottom))
    counts = F.pad(torch.ones_like(x[:1, :1]), (0, 0, top, bottom))
    return F.avg_pool2d(padded, (factor, 1)) / F.avg_pool2d(counts, (factor, 1))


class SqueezeExcite(nn.Module):
    """Mean over frequency and time → dense (half, ReLU) → dense (sigmoid); the input times twice the gate."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, channels // 2)
        self.fc2 = nn.Linear(channels // 2, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3))))))
        return x * (2.0 * gate)[:, :, None, None]


class NFBlock(nn.Module):
    """One NF block (module docstring); ``transition`` gives it a skip convolution and the input scaling."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        freq_stride: int,
        group_size: int,
        alpha: float,
        beta: float,
        transition: bool,
        activation: str,
    ) -> None:
        super().__init__()
        mid = out_channels // 2
        groups = mid // group_size
        self.alpha, self.beta, self.freq_stride, self.transition = alpha, beta, freq_stride, transition
        self.activation = ScaledActivation(activation)
        self.conv0 = WSConv2d(in_channels, mid, (1, 1))
        self.conv1 = WSConv2d(mid, mid, (1, 3), (freq_stride, 1), groups)
        self.conv2 = WSConv2d(mid, mid, (3, 1), (1, 1), groups)
        self.conv3 = WSConv2d(mid, out_channels, (1, 1))
        self.se = SqueezeExcite(out_channels)
        self.skip_gain = nn.Parameter(torch.zeros(()))
        self.shortcut = WSConv2d(in_channels, out_channels, (1, 1)) if transition else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.transition:
            x = self.activation(x) * self.beta
            residual = x
        else:
            residual = self.activation(x) * self.beta
        residual = self.activation(self.conv0(residual))
        residual = self.activation(self.conv1(residual))
        residual = self.activation(self.conv2(residual))
        residual = self.se(self.conv3(residual)) * self.skip_gain * self.alpha
        skip = x
        if self.freq_stride > 1:
            skip = same_avg_pool(skip, self.freq_stride)
        if self.shortcut is not None:
            skip = self.shortcut(skip)
        return skip + residual


def stage_betas(depth: int, alpha: float, expected_std: float) -> list[float]:
    """``beta`` of each block of a stage: 1 / the expected standard deviation of its input, as the original."""
    betas = [1.0 / expected_std]
    std = (expected_std**2 + alpha**2) ** 0.5
    for _ in range(1, depth):
        betas.append(1.0 / std)
        std = (std**2 + alpha**2) ** 0.5
    return betas


class Stem(nn.Sequential):
    """Four weight-standardised convolutions with the scaled activation between them (not after the last)."""

    def __init__(
        self, widths: tuple[int, ...], kernels: list[tuple[int, int]], strides: list[tuple[int, int]], activation: str
    ) -> None:
        layers: list[nn.Module] = []
        channels = 1
        for index, (width, kernel, stride) in enumerate(zip(widths, kernels, strides, strict=True)):
            layers.append(WSConv2d(channels, width, kernel, stride))
            if index < len(widths) - 1:
                layers.append(ScaledActivation(activation))
            channels = width
        super().__init__(*layers)


class Fusion(nn.Module):
    """Fast to slow: a 1×7 convolution with time stride 4, a 1×1 one, then concatenation after the slow channels."""

    def __init__(self, fast_channels: int, mid: int, out: int) -> None:
        super().__init__()
        self.temporal = WSConv2d(fast_channels, mid, (1, 7), (1, 4))
        self.project = WSConv2d(mid, out, (1, 1))

    def forward(self, slow: torch.Tensor, fast: torch.Tensor) -> torch.Tensor:
        return torch.cat([slow, self.project(self.temporal(fast))], dim=1)


class SFNFNet(nn.Module):
    """The SF-NFNet-F0 of :class:`MuleArchitecture`; :meth:`forward` returns every stage output and the embedding."""

    def __init__(self, arch: MuleArchitecture) -> None:
        super().__init__()
        self.arch = arch
        act = arch.activation
        self.slow_stem = Stem(arch.slow_stem, [(3, 1), (3, 1), (3, 1), (3, 3)], [(2, 8), (1, 1), (1, 1), (2, 2)], act)
        self.fast_stem = Stem(arch.fast_stem, [(3, 3)] * 4, [(2, 2), (1, 1), (1, 1), (2, 2)], act)
        expected = [1.0] + [(1.0 + arch.alpha**2) ** 0.5] * (len(arch.depths) - 1)
        self.slow_stages = nn.ModuleList()
        self.fast_stages = nn.ModuleList()
        slow_in, fast_in = arch.slow_stem[-1], arch.fast_stem[-1]
        for index, depth in enumerate(arch.depths):
            stride = 1 if index == 0 else 2
            betas = stage_betas(depth, arch.alpha, expected[index])
            slow_in += arch.fusion[index][1]
            self.slow_stages.append(self._stage(slow_in, arch.slow_stages[index], stride, arch.slow_group_size, betas))
            self.fast_stages.append(self._stage(fast_in, arch.fast_stages[index], stride, arch.fast_group_size, betas))
            slow_in, fast_in = arch.slow_stages[index], arch.fast_stages[index]
        fast_widths = [arch.fast_stem[-1], *arch.fast_stages[:-1]]
        self.fusions = nn.ModuleList(
            Fusion(c, mid, out) for c, (mid, out) in zip(fast_widths, arch.fusion, strict=True)
        )
        self.activation = ScaledActivation(act)

    def _stage(self, in_channels: int, out_channels: int, stride: int, group: int, betas: list[float]) -> nn.Sequential:
        arch = self.arch
        blocks = [
            NFBlock(
                in_channels if i == 0 else out_channels,
                out_channels,
                stride if i == 0 else 1,
                group,
                arch.alpha,
                beta,
                i == 0,
                arch.activation,
            )
            for i, beta in enumerate(betas)
        ]
        return nn.Sequential(*blocks)

    def forward(self, slices: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """``(batch, n_mels, frames)`` → (slow stage maps, fast stage maps, embedding ``(batch, dim)``)."""
        x = slices.unsqueeze(1)
        slow, fast = self.slow_stem(x), self.fast_stem(x)
        slow_maps, fast_maps = [], []
        for fusion, slow_stage, fast_stage in zip(self.fusions, self.slow_stages, self.fast_stages, strict=True):
            slow = slow_stage(fusion(slow, fast))
            fast = fast_stage(fast)
            slow_maps.append(slow)
            fast_maps.append(fast)
        pooled = torch.cat([slow.mean(dim=(2, 3)), fast.mean(dim=(2, 3))], dim=1)
        return slow_maps, fast_maps, self.activation(pooled)

    def creation_order(self) -> tuple[list[WSConv2d], list[nn.Linear], list[NFBlock]]:
        """Convolutions, dense layers and blocks in the order the original builds its Keras layers.

        The original names its layers by creation: stems (slow, fast), slow stages, fast stages, fusions; in
        a block the four residual convolutions, then the squeeze-excite's two dense layers, then the skip
        convolution. :mod:`audiorec.backbones.mule_keras` maps the released file's layers through this order.
        """
        convs: list[WSConv2d] = [m for m in (*self.slow_stem, *self.fast_stem) if isinstance(m, WSConv2d)]
        dense: list[nn.Linear] = []
        blocks: list[NFBlock] = []
        for stage in (*self.slow_stages, *self.fast_stages):
            for block in stage:
                convs += [block.conv0, block.conv1, block.conv2, block.conv3]
                convs += [block.shortcut] if block.shortcut is not None else []
                dense += [block.se.fc1, block.se.fc2]
                blocks.append(block)
        for fusion in self.fusions:
            convs += [fusion.temporal, fusion.project]
        return convs, dense, blocks
