"""Jukebox's building blocks: the top-level VQ-VAE encoder and the factored-attention transformer of its prior.

Module and parameter names mirror OpenAI's published checkpoints (``encoders.2.level_blocks.…``,
``prior.transformer._attn_mods.{i}.attn.c_attn.w``, ...), so their state dicts load without renaming.

The encoder of the top level is three downsampling stages (each ``down_t`` stride-2 convolutions of kernel 4,
every one followed by a stack of dilated residual units, then a kernel-3 projection to the codebook width),
and a code is the nearest codebook vector (squared Euclidean distance).

The prior is a pre-norm transformer whose attention is factored over blocks of ``block_ctx`` positions; layer
``i`` uses ``ATTENTION_CYCLE[i % 3]``:

* ``block``: causal attention within the query's own block;
* ``transpose``: causal attention over the positions with the same offset in every block (a stride of
  ``block_ctx``);
* ``previous``: unmasked attention over the whole previous block (the first block attends to zero keys and
  values, so its output is zero before the projection).

All three only look backwards, so the prior is causal: an output never depends on a later position, and a
sequence padded to whole blocks gives the same outputs on its real positions.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

ATTENTION_CYCLE = ("block", "transpose", "previous")
"""Attention type of layer ``i`` is ``ATTENTION_CYCLE[i % 3]`` (Jukebox's ``attn_order`` 2)."""


class ResidualUnit(nn.Module):
    """``x + conv1×1(relu(conv3(relu(x), dilation)))`` on ``(batch, channels, time)``."""

    def __init__(self, width: int, dilation: int) -> None:
        super().__init__()
        self.model = nn.Sequential(
            nn.ReLU(),
            nn.Conv1d(width, width, 3, 1, dilation, dilation),
            nn.ReLU(),
            nn.Conv1d(width, width, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.model(x)


class ResidualStack(nn.Module):
    """``depth`` :class:`ResidualUnit` with dilations ``growth**0 … growth**(depth-1)``."""

    def __init__(self, width: int, depth: int, growth: int) -> None:
        super().__init__()
        self.model = nn.Sequential(*(ResidualUnit(width, growth**index) for index in range(depth)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class DownsamplingStage(nn.Module):
    """``down_t`` × (stride-2 conv → :class:`ResidualStack`), then a kernel-3 conv to ``out_channels``."""

    def __init__(self, in_channels: int, out_channels: int, down_t: int, vq: dict[str, Any]) -> None:
        super().__init__()
        width = vq["width"]
        steps = [
            nn.Sequential(
                nn.Conv1d(in_channels if index == 0 else width, width, 4, 2, 1),
                ResidualStack(width, vq["depth"], vq["dilation_growth_rate"]),
            )
            for index in range(down_t)
        ]
        self.model = nn.Sequential(*steps, nn.Conv1d(width, out_channels, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class TopEncoder(nn.Module):
    """Mono audio ``(batch, 1, samples)`` → ``(batch, emb_width, samples // hop)`` latents of the top level."""

    def __init__(self, vq: dict[str, Any]) -> None:
        super().__init__()
        emb = vq["emb_width"]
        self.level_blocks = nn.ModuleList(
            DownsamplingStage(1 if index == 0 else emb, emb, down_t, vq) for index, down_t in enumerate(vq["downs_t"])
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.level_blocks:
            x = stage(x)
        return x


class Codebook(nn.Module):
    """The top level's codebook ``k`` ``(bins, emb_width)``; a latent's code is its nearest row.

    A random codebook (standard normal, not the zeros of an untrained release) lets an unloaded model make
    varied codes.
    """

    def __init__(self, bins: int, emb_width: int) -> None:
        super().__init__()
        self.register_buffer("k", torch.randn(bins, emb_width))

    def quantise(self, latents: torch.Tensor) -> torch.Tensor:
        """``(batch, emb_width, time)`` → ``(batch, time)`` codes.

        The distance is expanded as ``|x|² − 2x·k + |k|²`` over flattened ``(batch·time, emb_width)`` rows,
        the form and shapes the release computes, so that near-ties resolve to the same code.
        """
        batch, width, time = latents.shape
        x = latents.transpose(1, 2).reshape(batch * time, width).float()
        k = self.k.float()
        distance = x.pow(2).sum(-1, keepdim=True) - 2 * (x @ k.T) + k.pow(2).sum(-1)
        return distance.argmin(dim=-1).view(batch, time)


class Projection(nn.Module):
    """Jukebox's ``Conv1D``: a dense layer whose weight ``w`` is stored ``(n_in, n_out)``, applied as ``b + x @ w``.

    As in the release, weight and bias take the input's dtype (``type_as``), so a float16 residual stream runs
    its projections in float16, and a float32 one reads float16-stored weights in float32.
    """

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.empty(n_in, n_out).normal_(std=0.02))
        self.b = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.addmm(self.b.type_as(x), x.reshape(-1, x.shape[-1]), self.w.type_as(x))
        return out.view(*x.shape[:-1], out.shape[-1])


class LayerNorm(nn.LayerNorm):
    """Jukebox's ``LayerNorm``: normalised in float32 and returned in the input's dtype (float16 under fp16)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.float(), self.normalized_shape, self.weight, self.bias, self.eps).type_as(x)


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``(sequences, positions, heads * dim)`` → ``(sequences, heads, positions, dim)``."""
    return x.unflatten(-1, (heads, -1)).transpose(1, 2)


def factored_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kind: str, heads: int, block_ctx: int
) -> torch.Tensor:
    """Multi-head attention of one :data:`ATTENTION_CYCLE` type on ``(batch, positions, width)`` inputs.

    ``positions`` must be a multiple of ``block_ctx``. The sequence is cut into short sequences (blocks, or
    one per offset within a block) that ``scaled_dot_product_attention`` takes as a batch (scale
    ``1/sqrt(head_dim)``), so no ``positions²`` mask is ever built and the fused CUDA kernels apply.
    """
    batch, length, width = q.shape
    if length % block_ctx:
        raise ValueError(f"{length} positions are not a multiple of the attention block {block_ctx}")
    q, k, v = (t.reshape(batch, length // block_ctx, block_ctx, width) for t in (q, k, v))
    if kind == "transpose":  # one sequence per offset within a block, running over the blocks
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
    elif kind == "previous":
        k, v = (F.pad(t[:, :-1], (0, 0, 0, 0, 1, 0)) for t in (k, v))
    elif kind != "block":
        raise ValueError(f"unknown attention type {kind!r}; known types are {list(ATTENTION_CYCLE)}")
    grouped = q.shape[:3]
    q, k, v = (_heads(t.reshape(-1, t.shape[2], width), heads) for t in (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v, is_causal=kind != "previous")
    out = out.transpose(1, 2).reshape(*grouped, width)
    if kind == "transpose":
        out = out.transpose(1, 2)
    return out.reshape(batch, length, width)


class Attention(nn.Module):
    """``c_attn`` makes q, k and v (three ``attention_width`` chunks); ``c_proj`` maps back to the width."""

    def __init__(self, prior: dict[str, Any], kind: str) -> None:
        super().__init__()
        self.c_attn = Projection(prior["width"], 3 * prior["attention_width"])
        self.c_proj = Projection(prior["attention_width"], prior["width"])
        self.kind = kind
        self.heads = prior["heads"]
        self.block_ctx = prior["block_ctx"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.c_attn(x).chunk(3, dim=-1)
        return self.c_proj(factored_attention(q, k, v, self.kind, self.heads, self.block_ctx))


class MLP(nn.Module):
    """``c_proj(quick_gelu(c_fc(x)))`` with ``quick_gelu(x) = x·σ(1.702x)``."""

    def __init__(self, width: int, mlp_width: int) -> None:
        super().__init__()
        self.c_fc = Projection(width, mlp_width)
        self.c_proj = Projection(mlp_width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.c_fc(x)
        return self.c_proj(hidden * torch.sigmoid(1.702 * hidden))


class Block(nn.Module):
    """``a = attn(ln_0(x)); x + a + mlp(ln_1(x + a))`` (the MLP reads the attention's output too)."""

    def __init__(self, prior: dict[str, Any], kind: str) -> None:
        super().__init__()
        self.attn = Attention(prior, kind)
        self.ln_0 = LayerNorm(prior["width"], eps=1e-5)
        self.mlp = MLP(prior["width"], prior["mlp_width"])
        self.ln_1 = LayerNorm(prior["width"], eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.attn(self.ln_0(x))
        return x + a + self.mlp(self.ln_1(x + a))


class Transformer(nn.Module):
    """The first ``kept_blocks`` blocks of the prior (``_attn_mods`` is the checkpoint's name)."""

    def __init__(self, prior: dict[str, Any]) -> None:
        super().__init__()
        self._attn_mods = nn.ModuleList(
            Block(prior, ATTENTION_CYCLE[index % len(ATTENTION_CYCLE)]) for index in range(prior["kept_blocks"])
        )


def store_projections_in(module: nn.Module, dtype: torch.dtype) -> None:
    """Keep every :class:`Projection` weight ``w`` of ``module`` in ``dtype``, biases untouched.

    This is what the release does to the prior's parameters for float16 (``_convert_conv_weights_to_fp16``), and
    what the published checkpoint stores; in float16 the 5B prior's first 36 blocks take ~5 GB instead of ~10.
    """
    for child in module.modules():
        if isinstance(child, Projection):
            child.w.data = child.w.data.to(dtype)


def projection_dtype(module: nn.Module) -> torch.dtype:
    """The dtype the projections of ``module`` are stored in (float32 unless :func:`store_projections_in` set it)."""
    return next(child.w.dtype for child in module.modules() if isinstance(child, Projection))


class PositionEmbedding(nn.Module):
    """One learned vector per position of the context (the checkpoint's ``pos_emb.pos_emb``)."""

    def __init__(self, n_ctx: int, width: int) -> None:
        super().__init__()
        self.pos_emb = nn.Parameter(torch.empty(n_ctx, width).normal_(std=0.01))


class Prior(nn.Module):
    """Code embedding ``x_emb``, position embedding and transformer of the top-level prior."""

    def __init__(self, prior: dict[str, Any], bins: int) -> None:
        super().__init__()
        self.x_emb = nn.Embedding(bins, prior["width"])
        self.pos_emb = PositionEmbedding(prior["n_ctx"], prior["width"])
        self.transformer = Transformer(prior)
