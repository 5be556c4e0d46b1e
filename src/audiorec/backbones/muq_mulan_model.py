"""MuQ-MuLan's audio tower in plain torch: MuQ's encoder, a projection, a small transformer, a latent head.

MuQ-MuLan (Zhu et al. 2025) is a CLIP-like music-text model. Its audio tower, per 24 kHz clip:

1. MuQ (:class:`audiorec.backbones.musicfm.MelConformer`, fine-tuned with the rest), hidden state
   ``use_layer_idx`` (the last, after the Conformer's closing layer norm, in the release);
2. ``proj``: a linear map from MuQ's width (1024) to the head's (768);
3. ``transformer``: pre-norm blocks of cosine-similarity attention (queries and keys l2-normalised, scaled
   per dimension by learned ``q_scale``/``k_scale``, logits times a fixed 8, no position encoding) and a
   GEGLU feed-forward, every layer norm without a bias;
4. the mean over the clip's frames, ``audio_to_latents`` (768 → 512), and l2 normalisation.

Module and parameter names follow the released state dict after its ``mulan.`` prefix (``audio.model.model.
conformer…``, ``audio.transformer.layers.3.0.to_q.weight``, ``audio_to_latents.bias``), so the checkpoint
loads as it is; its text tower, contrastive-loss parameters, MuQ's pre-training heads and the unused
``audio.aggregator`` are not part of this module (:mod:`audiorec.backbones.muq_mulan` ignores them).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from audiorec.backbones.musicfm import MelConformer
from audiorec.backbones.pretrained import full_precision

ATTENTION_LOGIT_SCALE = 8.0
"""The release multiplies cosine similarities by this constant (``Attention(scale=8)``), not by 1/sqrt(d)."""


class BiaslessLayerNorm(nn.Module):
    """Layer norm with a learned gain (``learned_gamma``) and no bias, as the release's ``LayerNorm``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.learned_gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], self.learned_gamma)


class CosineAttention(nn.Module):
    """Pre-norm multi-head attention over l2-normalised queries and keys (the release's ``Attention``)."""

    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        self.heads = heads
        inner = heads * dim_head
        self.norm = BiaslessLayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.q_scale = nn.Parameter(torch.ones(dim_head))
        self.k_scale = nn.Parameter(torch.ones(dim_head))
        self.to_out = nn.Sequential(nn.Linear(inner, dim, bias=False), nn.Dropout(0.0))

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, frames, _ = x.shape
        return x.view(batch, frames, self.heads, -1).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        keys, values = self.to_kv(x).chunk(2, dim=-1)
        q = F.normalize(self.split_heads(self.to_q(x)), dim=-1) * self.q_scale
        k = F.normalize(self.split_heads(keys), dim=-1) * self.k_scale
        out = F.scaled_dot_product_attention(q, k, self.split_heads(values), scale=ATTENTION_LOGIT_SCALE)
        batch, _, frames, _ = out.shape
        return self.to_out(out.transpose(1, 2).reshape(batch, frames, -1))


class GEGLU(nn.Module):
    """The second half of the features, through GELU, gates the first half."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = x.chunk(2, dim=-1)
        return F.gelu(gate) * x


def feed_forward(dim: int, mult: int) -> nn.Sequential:
    """The release's ``FeedForward``: its indices (0 norm, 1 and 4 linear) are the checkpoint's key names."""
    hidden = int(dim * mult * 2 / 3)
    return nn.Sequential(
        BiaslessLayerNorm(dim),
        nn.Linear(dim, hidden * 2, bias=False),
        GEGLU(),
        nn.Dropout(0.0),
        nn.Linear(hidden, dim, bias=False),
    )


class MuLanTransformer(nn.Module):
    """Residual attention and feed-forward blocks; returns every block's output, shallowest first."""

    def __init__(self, dim: int, depth: int, heads: int, dim_head: int, ff_mult: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList([CosineAttention(dim, heads, dim_head), feed_forward(dim, ff_mult)]) for _ in range(depth)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for attention, ff in self.layers:
            x = attention(x) + x
            x = ff(x) + x
            outputs.append(x)
        return outputs


class MuQHub(nn.Module):
    """The ``MuQ`` hub wrapper, whose ``model`` is the encoder: one level of the checkpoint's key names."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        self.model = MelConformer(spec)


class MuLanAudioTower(nn.Module):
    """MuQ, then ``proj`` of one of its hidden layers, then :class:`MuLanTransformer`."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        head = spec["mulan"]
        self.use_layer_idx = int(head["use_layer_idx"])
        self.model = MuQHub(spec)
        self.transformer = MuLanTransformer(
            head["dim"], head["tf_depth"], head["heads"], head["dim_head"], head["ff_mult"]
        )
        self.proj = nn.Linear(head["model_dim"], head["dim"])

    def forward(self, waveforms: torch.Tensor) -> list[torch.Tensor]:
        """The projected MuQ layer and every block's output, each ``(clips, frames, dim)``."""
        tokens = self.model.model(waveforms)[self.use_layer_idx]
        with full_precision(waveforms.device):
            projected = self.proj(tokens.float())
            return [projected, *self.transformer(projected)]


class MuQMuLanAudio(nn.Module):
    """Clips ``(clips, samples)`` → per-clip vectors ``(clips, 1, dim)``: each head layer's frame mean, then
    the l2-normalised latent, which is MuQ-MuLan's audio embedding of the clip."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        self.audio = MuLanAudioTower(spec)
        self.audio_to_latents = nn.Linear(spec["mulan"]["dim"], spec["mulan"]["dim_latent"])

    @property
    def encoder(self) -> MelConformer:
        """MuQ's encoder, which holds the log-mel normalisation statistics."""
        return self.audio.model.model

    def forward(self, waveforms: torch.Tensor) -> list[torch.Tensor]:
        layers = self.audio(waveforms)
        with full_precision(waveforms.device):
            pooled = [layer.mean(dim=1) for layer in layers]
            latent = F.normalize(self.audio_to_latents(pooled[-1]), p=2, dim=-1)
        return [vector.unsqueeze(1) for vector in (*pooled, latent)]
