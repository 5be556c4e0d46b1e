"""Exact top-K retrieval with every already-heard track removed, for any history length, on CPU or GPU.

The paper removes the tracks a user heard from each ranking *before* the cut at K. Every model here scores a
block of users against every candidate item exactly, sets each user's heard items to ``-inf`` and keeps the
top K of the rest. Nothing is fetched beyond K, so a user who heard thousands of tracks still gets exactly K
unheard ones whenever the catalogue has them (FAISS's GPU search, by contrast, returns at most 2048 neighbours
per query, so over-fetching K + history fails there). Ties are broken by the lower item index (catalogues are
sorted by track id), so rankings are reproducible and the same on every device.

The blocks are torch tensors on whatever device the scores are computed on; the number of users per block
keeps a block at about :data:`BLOCK_ELEMENTS` scores, whatever the catalogue size.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch

from audiorec.errors import ParameterError

BLOCK_ELEMENTS = 1 << 26
"""Scores per block (users by items): 256 MB of float32 on any catalogue (and 512 MB of ranking keys for a block
whose every row has a tie at the cut, as the popularity ranking's may). Each block's product re-reads and packs
the whole item table, so thin blocks waste time: at the Onion's 57k items and 4800-d, blocks of 294 users ran
the product at 79 GFLOP/s and blocks of 1024 at 103 on two cores."""

ScoreBlock = Callable[[slice], "torch.Tensor | np.ndarray"]
"""``score_block(rows) -> (rows, n_items)`` scores of the users ``rows`` against every item, higher is better."""


def heard_matrix(user_index: np.ndarray, item_index: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
    """Boolean CSR matrix (users × items) of heard pairs."""
    data = np.ones(len(user_index), dtype=bool)
    matrix = sp.csr_matrix((data, (user_index, item_index)), shape=(n_users, n_items), dtype=bool)
    matrix.sum_duplicates()
    return matrix


def block_rows(n_items: int) -> int:
    """Users per block, so that a block holds about :data:`BLOCK_ELEMENTS` scores (at least one user)."""
    return max(1, BLOCK_ELEMENTS // max(n_items, 1))


def ranking_keys(scores: torch.Tensor) -> torch.Tensor:
    """int64 keys whose descending order is (score descending, item index ascending), for one exact ``topk``.

    A float32's bits, read as an int32 and with all but the sign bit flipped for negative numbers, order like the
    floats; the high 32 bits hold that, the low 32 bits the complement of the item index.
    """
    bits = (scores.float() + 0.0).view(torch.int32).to(torch.int64)  # + 0.0 turns -0.0 into 0.0
    ordered = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)
    index = torch.arange(scores.shape[1], device=scores.device, dtype=torch.int64)
    return ordered * (1 << 32) + ((1 << 32) - 1 - index)


def top_k_masked(scores: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` of each row of ``scores`` (``-inf`` = excluded): ``(scores, items)`` as arrays, ``-1`` padding.

    A float ``topk`` finds each row's best ``k + 1``; the best ``k`` are exact whenever the one after them
    scores lower than the ``k``-th. Only the rows where it ties (a tie straddling the cut, or fewer than ``k``
    unheard items) are ranked again by :func:`ranking_keys`, which breaks every tie by the lower index. Building
    those keys for a whole block cost 15 times the ``topk`` itself, so the common case skips them.
    """
    n_rows, n_items = scores.shape
    if scores.isnan().any():
        raise ParameterError("a model produced NaN scores; its embeddings or weights are not finite")
    take = min(k, n_items)
    top_scores = np.full((n_rows, k), -np.inf, dtype=np.float32)
    top_items = np.full((n_rows, k), -1, dtype=np.int64)
    if take == 0 or n_rows == 0:
        return top_scores, top_items
    scores = scores.float()
    values, items = torch.topk(scores, min(take + 1, n_items), dim=1)
    # The best item left out (the (k+1)-th) scoring as the k-th means a tie across the cut.
    straddling = (values[:, take:] == values[:, take - 1 : take]).any(dim=1).nonzero().squeeze(1)
    values, items = values[:, :take].contiguous(), items[:, :take].contiguous()
    if straddling.numel():
        items[straddling] = torch.topk(ranking_keys(scores[straddling]), take, dim=1).indices
        values[straddling] = scores[straddling].gather(1, items[straddling])
    # Within the chosen items: score descending, ties by the lower index (a stable sort of index-sorted rows).
    items, by_index = items.sort(dim=1)
    values, by_score = values.gather(1, by_index).sort(dim=1, descending=True, stable=True)
    items = items.gather(1, by_score).masked_fill(values == -torch.inf, -1)
    top_scores[:, :take] = values.cpu().numpy()
    top_items[:, :take] = items.cpu().numpy()
    return top_scores, top_items


def mask_rows(scores: torch.Tensor, excluded_rows: sp.csr_matrix) -> torch.Tensor:
    """``scores`` with the items of each row of ``excluded_rows`` set to ``-inf`` (in place)."""
    rows = np.repeat(np.arange(excluded_rows.shape[0], dtype=np.int64), np.diff(excluded_rows.indptr))
    if len(rows):
        row_index = torch.as_tensor(rows, device=scores.device)
        item_index = torch.as_tensor(excluded_rows.indices.astype(np.int64), device=scores.device)
        scores[row_index, item_index] = -torch.inf
    return scores


def top_k_unheard(
    score_block: ScoreBlock, excluded: sp.csr_matrix, k: int, rows_per_block: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` items of every user (row of ``excluded``) that the user has not heard.

    Parameters
    ----------
    score_block
        Scores of a block of users against every item (see :data:`ScoreBlock`); a numpy block is copied, a tensor
        is masked in place.
    excluded
        Boolean CSR matrix (users × items) of the pairs no ranking may return.
    k
        Number of items per user.
    rows_per_block
        Users per block; by default :func:`block_rows` of the catalogue size.

    Returns
    -------
    scores : np.ndarray, shape (n_users, k), float32
    items : np.ndarray, shape (n_users, k), int64, ``-1`` where fewer than ``k`` unheard items exist
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k <= 0:
        raise ParameterError(f"k must be a positive integer, got {k!r}")
    n_users, n_items = excluded.shape
    step = rows_per_block or block_rows(n_items)
    all_scores = np.full((n_users, k), -np.inf, dtype=np.float32)
    all_items = np.full((n_users, k), -1, dtype=np.int64)
    for start in range(0, n_users, step):
        rows = slice(start, min(start + step, n_users))
        block = score_block(rows)
        block = torch.tensor(block) if isinstance(block, np.ndarray) else block
        if tuple(block.shape) != (rows.stop - rows.start, n_items):
            expected = (rows.stop - rows.start, n_items)
            raise ParameterError(f"score block has shape {tuple(block.shape)}, expected {expected}")
        all_scores[rows], all_items[rows] = top_k_masked(mask_rows(block.float(), excluded[rows]), k)
    return all_scores, all_items
