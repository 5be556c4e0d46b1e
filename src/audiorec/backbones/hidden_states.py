"""Collect every hidden layer of a transformer encoder with forward hooks.

Standalone encoders of transformers 5 (``Wav2Vec2ConformerEncoder``, for one) return only their last
hidden state, and the full models' ``output_hidden_states`` changed meaning between versions (for
pre-norm encoders, transformers 5 returns the last block's output *before* the closing layer norm). Hooks
on the blocks give the same tensors whatever the version, in the layout of the transformers 4 releases
these models were published and evaluated with: the input of the first block, the output of every block
but the last, and the encoder's final output (after the closing layer norm where the architecture has one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn


def _first_tensor(value: Any) -> torch.Tensor:
    """A block's hidden states, whether it returns a tensor or a tuple that starts with one."""
    return value[0] if isinstance(value, tuple) else value


def capture_hidden_states(blocks: Sequence[nn.Module], run: Callable[[], torch.Tensor]) -> list[torch.Tensor]:
    """Call ``run`` (a forward pass returning the final hidden states) and return all ``len(blocks) + 1`` layers.

    Each element has shape ``(batch, frames, dim)``.
    """
    captured: list[torch.Tensor] = []

    def keep_input(_module: nn.Module, args: tuple, kwargs: dict) -> None:
        captured.append(args[0] if args else kwargs["hidden_states"])

    def keep_output(_module: nn.Module, _args: tuple, output: Any) -> None:
        captured.append(_first_tensor(output))

    handles = [blocks[0].register_forward_pre_hook(keep_input, with_kwargs=True)]
    handles += [block.register_forward_hook(keep_output) for block in blocks[:-1]]
    try:
        final = run()
    finally:
        for handle in handles:
            handle.remove()
    if len(captured) != len(blocks):
        raise RuntimeError(f"captured {len(captured)} of {len(blocks)} block activations: a block was skipped")
    return [*captured, final]
