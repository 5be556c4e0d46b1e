"""EncodecMAE: EnCodec's 24 kHz encoder, a linear projection, sinusoidal positions and a ResiDual transformer.

Rebuilt in plain torch so the published checkpoints (``lpepino/encodecmae-{base,...}``, ``model.pt``) load
without gin, Lightning or the ``encodec`` package. What the release does and this module keeps:

- the EnCodec encoder output (128-d, 75 frames/s) is projected to the model width and gets sinusoidal
  positions scaled by a learned scalar;
- every transformer layer is *ResiDual*: it carries a normalised stream ``x0`` (post-norm) and a raw
  residual stream ``x1`` (pre-norm); the encoder output is ``x0 + LayerNorm(x1)``;
- attention has no biases and splits channels into heads as ``(head_dim, heads)``, not ``(heads, head_dim)``;
- one feed-forward block (768 → 4096 → 768, ReLU) is **shared** by all layers, as the release constructs it;
- feature extraction runs the visible encoder on unmasked 4 s chunks, the last one unpadded when it has
  more than 2048 samples (``extract_features_from_array``), and the HEAR wrapper averages all their frames.

Hidden layers: the positioned input, the ``x0`` stream after each layer but the last, and the final output
(the release's ``visible_embeddings``, which its HEAR wrapper averages over time). The codec front end runs
in float32 even under autocast: its LSTM and weight-normalised convs are small, and kept exact.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from audiorec.backbones.encodec import SEANetConfig, SEANetEncoder
from audiorec.backbones.options import PretrainedOptions
from audiorec.backbones.pretrained import PretrainedBackbone, full_precision


class EncodecWavEncoder(nn.Module):
    """Waveforms ``(batch, samples)`` → EnCodec latents ``(batch, frames, 128)`` times a fixed scale."""

    def __init__(self, config: SEANetConfig, scale: float) -> None:
        super().__init__()
        self.model = SEANetEncoder(config)
        self.scale = scale

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        with full_precision(waveforms.device):
            latents = self.model(waveforms.float().unsqueeze(1))
        return latents.permute(0, 2, 1) * self.scale


class SinusoidalPositions(nn.Module):
    """Adds ``scale · PE`` (sin on even, cos on odd channels) with a learned scalar ``scale``."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames, dim = x.shape[1], x.shape[2]
        position = torch.arange(frames, device=x.device, dtype=torch.float32).unsqueeze(1)
        rates = torch.exp(torch.arange(0, dim, 2, device=x.device, dtype=torch.float32) * -(math.log(10000.0) / dim))
        encoding = torch.zeros(frames, dim, device=x.device)
        encoding[:, 0::2] = torch.sin(position * rates)
        encoding[:, 1::2] = torch.cos(position * rates)
        return x + self.scale * encoding.to(x.dtype)


class HeadsLastAttention(nn.Module):
    """Bias-free multi-head self-attention whose channel index is ``d · heads + h``."""

    def __init__(self, model_dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = model_dim // num_heads
        self.wq = nn.Linear(model_dim, model_dim, bias=False)
        self.wk = nn.Linear(model_dim, model_dim, bias=False)
        self.wv = nn.Linear(model_dim, model_dim, bias=False)
        self.wo = nn.Linear(model_dim, model_dim, bias=False)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        batch, frames, _ = x.shape
        return x.view(batch, frames, self.head_dim, self.num_heads).permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, frames, _ = x.shape
        query, key, value = self.split(self.wq(x)), self.split(self.wk(x)), self.split(self.wv(x))
        attended = F.scaled_dot_product_attention(query, key, value)
        return self.wo(attended.permute(0, 2, 3, 1).reshape(batch, frames, self.head_dim * self.num_heads))


class ResiDualLayer(nn.Module):
    """One ResiDual transformer layer on the stream pair ``(x0, x1)``."""

    def __init__(self, model_dim: int, num_heads: int, feed_forward: nn.Module) -> None:
        super().__init__()
        self.att_layer = HeadsLastAttention(model_dim, num_heads)
        self.ff_layer = feed_forward
        self.norm1 = nn.LayerNorm(model_dim)
        self.norm2 = nn.LayerNorm(model_dim)

    def forward(self, streams: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x0, x1 = streams
        attended = self.att_layer(x0)
        x0 = self.norm1(x0 + attended)
        x1 = x1 + attended
        fed = self.ff_layer(x0)
        return self.norm2(x0 + fed), x1 + fed


class ResiDualEncoder(nn.Module):
    """A stack of :class:`ResiDualLayer` sharing one feed-forward block; returns every hidden layer."""

    def __init__(self, model_dim: int, num_layers: int, num_heads: int, ff_dim: int) -> None:
        super().__init__()
        shared = nn.Sequential(nn.Linear(model_dim, ff_dim), nn.ReLU(), nn.Linear(ff_dim, model_dim))
        self.encoder_layers = nn.ModuleList(ResiDualLayer(model_dim, num_heads, shared) for _ in range(num_layers))
        self.final_norm = nn.LayerNorm(model_dim)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        hidden = [x]
        streams = (x, x)
        for layer in self.encoder_layers:
            streams = layer(streams)
            hidden.append(streams[0])
        hidden[-1] = streams[0] + self.final_norm(streams[1])
        return hidden


class EncodecMAE(nn.Module):
    """The release's encoder: ``wav_encoder`` → ``feat_projector`` → ``positional_encoder`` → ``visible_encoder``."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        codec = SEANetConfig(**{**spec["encodec"], "ratios": tuple(spec["encodec"]["ratios"])})
        transformer = spec["transformer"]
        self.wav_encoder = EncodecWavEncoder(codec, float(spec["encodec_scale"]))
        self.feat_projector = nn.Linear(codec.dimension, transformer["model_dim"])
        self.positional_encoder = SinusoidalPositions()
        self.visible_encoder = ResiDualEncoder(
            transformer["model_dim"], transformer["num_layers"], transformer["num_heads"], transformer["ff_dim"]
        )

    def forward(self, waveforms: torch.Tensor) -> list[torch.Tensor]:
        tokens = self.positional_encoder(self.feat_projector(self.wav_encoder(waveforms)))
        return self.visible_encoder(tokens)


class EncodecMAEBackbone(PretrainedBackbone):
    """EncodecMAE (``size``: ``base``), 24 kHz, 4 s windows (the release's feature-extraction chunk)."""

    kind = "encodecmae"
    family = "encodecmae"
    options_class = PretrainedOptions
    checkpoint_ignore = ("target_encoder.", "decoder.", "decoder_projector.", "head.", "extra_head.", "masker.")
    float32_parts = "EnCodec encoder"

    @classmethod
    def build_model(cls, spec: dict[str, Any]) -> nn.Module:
        return EncodecMAE(spec)

    @classmethod
    def hidden_sizes(cls, spec: dict[str, Any]) -> list[int]:
        transformer = spec["transformer"]
        return [transformer["model_dim"]] * (transformer["num_layers"] + 1)

    @classmethod
    def min_window_samples(cls, spec: dict[str, Any]) -> int:
        """More than 2048 samples: the release skips shorter chunks."""
        return 2049
