"""Listening sequences for BERT4Rec: padded matrices of each user's most recent tracks, and random masking.

A user's sequence is their distinct train tracks in order of first listen. Sequences are right-aligned (the
most recent track always sits in the last column, padding on the left), so the position embeddings count
back from the present, and the [MASK] appended for prediction lands where training put the newest track.
Both functions are vectorised: no Python loop runs per user or per position.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from audiorec.errors import ParameterError


def recent_items(listen_order: sp.csr_matrix, rows: np.ndarray, length: int, pad: int) -> np.ndarray:
    """The ``length`` most recent items of each user in ``rows``, right-aligned and left-padded with ``pad``.

    Parameters
    ----------
    listen_order
        Users × items, each heard pair's 1-based rank in its user's history (:attr:`TrainData.listen_order`).
    rows
        Users to return, as row indices of ``listen_order``.
    length
        Columns of the result; longer histories keep their last ``length`` items.
    pad
        Value of empty positions.

    Returns
    -------
    np.ndarray, shape (len(rows), length), int64
        Row ``i`` ends with the most recent item of user ``rows[i]``.
    """
    if length < 1:
        raise ParameterError(f"sequence length must be at least 1, got {length}")
    block = sp.csr_matrix(listen_order[np.asarray(rows, dtype=np.int64)])
    counts = np.diff(block.indptr)
    entry_row = np.repeat(np.arange(block.shape[0]), counts)
    order = np.lexsort((block.data, entry_row))
    items = block.indices[order].astype(np.int64)
    from_end = counts[entry_row] - 1 - (np.arange(len(order)) - block.indptr[entry_row])
    keep = from_end < length
    result = np.full((block.shape[0], length), pad, dtype=np.int64)
    result[entry_row[keep], length - 1 - from_end[keep]] = items[keep]
    return result


def mask_positions(valid: torch.Tensor, probability: float, generator: torch.Generator) -> torch.Tensor:
    """Choose positions to mask: each valid position with ``probability``, and at least one per row.

    A row with no position drawn gets one valid position chosen uniformly, so every sequence contributes to
    the loss (a sequence with nothing masked would be a wasted forward pass). Rows without any valid position
    stay unmasked.

    Parameters
    ----------
    valid
        Boolean ``(batch, length)``: positions holding an item (not padding).
    probability
        Masking probability of each valid position.
    generator
        Source of randomness (on ``valid``'s device).
    """
    draws = torch.rand(valid.shape, generator=generator, device=valid.device)
    mask = (draws < probability) & valid
    empty = ~mask.any(dim=1) & valid.any(dim=1)
    if bool(empty.any()):
        scores = torch.rand(valid.shape, generator=generator, device=valid.device).masked_fill(~valid, -1.0)
        forced = scores.argmax(dim=1)
        mask[empty.nonzero(as_tuple=True)[0], forced[empty]] = True
    return mask
