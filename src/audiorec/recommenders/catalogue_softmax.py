"""Softmax cross-entropy over a whole catalogue without the positions × catalogue logits in memory at once.

BERT4Rec's training loss scores every masked position of a batch against every catalogue item. At the Onion's
size a batch of long sequences masks ~7,700 positions against 57k items: its logits, their log-softmax and
their gradient are 1.75 GB each, and the training job's peak passed 9 GB. Here the loss is taken over chunks of
positions, keeping only each position's log-sum-exp; the backward pass recomputes one chunk's logits at a time
(one extra matrix product per chunk) to form ``softmax − one-hot``. The value and the gradients are the dense
computation's, summed in another order; below :data:`DENSE_CELLS` logits the dense path runs unchanged, so small
worlds (the demo, the tests) keep their numbers to the bit.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

DENSE_CELLS = 1 << 26
"""Positions times items up to which the logits are materialised whole (256 MB in float32), and the cells of one
chunk above it."""


def catalogue_cross_entropy(
    hidden: torch.Tensor, items: torch.Tensor, bias: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Mean over positions of ``cross_entropy(hidden @ items.T + bias, targets)``, the logits in float32."""
    positions, n_items = hidden.shape[0], items.shape[0]
    if positions * n_items <= DENSE_CELLS:
        return F.cross_entropy(_logits(hidden, items, bias), targets)
    return _ChunkedCrossEntropy.apply(hidden, items, bias, targets, max(1, DENSE_CELLS // n_items))


def _logits(hidden: torch.Tensor, items: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return (hidden @ items.T + bias).float()


class _ChunkedCrossEntropy(torch.autograd.Function):
    """The dense loss's value and gradients, ``rows`` positions at a time. The backward pass runs under the
    forward pass's CUDA autocast state, so its recomputed logits are the forward pass's (bf16 products under AMP)."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda")
    def forward(
        ctx: Any, hidden: torch.Tensor, items: torch.Tensor, bias: torch.Tensor, targets: torch.Tensor, rows: int
    ) -> torch.Tensor:
        log_sum_exp = torch.empty(hidden.shape[0], dtype=torch.float32, device=hidden.device)
        total = torch.zeros((), dtype=torch.float64, device=hidden.device)
        for start in range(0, hidden.shape[0], rows):
            part = slice(start, start + rows)
            logits = _logits(hidden[part], items, bias)
            log_sum_exp[part] = torch.logsumexp(logits, dim=1)
            chosen = logits.gather(1, targets[part, None]).squeeze(1)
            total += (log_sum_exp[part] - chosen).sum(dtype=torch.float64)
        ctx.save_for_backward(hidden, items, bias, targets, log_sum_exp)
        ctx.rows = rows
        return (total / hidden.shape[0]).float()

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        hidden, items, bias, targets, log_sum_exp = ctx.saved_tensors
        need_hidden, need_items, need_bias = ctx.needs_input_grad[:3]
        grad_hidden = torch.zeros_like(hidden, dtype=torch.float32) if need_hidden else None
        grad_items = torch.zeros_like(items, dtype=torch.float32) if need_items else None
        grad_bias = torch.zeros_like(bias, dtype=torch.float32) if need_bias else None
        scale = grad.float() / hidden.shape[0]
        items32 = items.float()
        for start in range(0, hidden.shape[0], ctx.rows):
            part = slice(start, start + ctx.rows)
            probabilities = torch.exp(_logits(hidden[part], items, bias) - log_sum_exp[part, None])
            probabilities[torch.arange(probabilities.shape[0], device=hidden.device), targets[part]] -= 1.0
            probabilities *= scale
            if grad_hidden is not None:
                grad_hidden[part] = probabilities @ items32
            if grad_items is not None:
                grad_items += probabilities.T @ hidden[part].float()
            if grad_bias is not None:
                grad_bias += probabilities.sum(dim=0)
        return (
            None if grad_hidden is None else grad_hidden.to(hidden.dtype),
            None if grad_items is None else grad_items.to(items.dtype),
            None if grad_bias is None else grad_bias.to(bias.dtype),
            None,
            None,
        )
