"""Exact top-K retrieval with every already-heard track removed.

The paper removes tracks the user heard in train from each ranking *before* the cut at K. Over-fetching a
fixed number of extra candidates silently returns fewer than K items for users with long histories, so here
each batch of users fetches ``K + (longest history in the batch)`` candidates: whatever is removed, at least
K unheard candidates remain whenever the catalogue has them. Ties are broken by catalogue index (catalogues
are sorted by track id), so rankings are reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import scipy.sparse as sp

from audiorec.errors import ParameterError

DEFAULT_BATCH_SIZE = 1024


def heard_matrix(user_index: np.ndarray, item_index: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
    """Boolean CSR matrix (users × items) of train-heard pairs."""
    data = np.ones(len(user_index), dtype=bool)
    matrix = sp.csr_matrix((data, (user_index, item_index)), shape=(n_users, n_items), dtype=bool)
    matrix.sum_duplicates()
    return matrix


def user_batches(heard: sp.csr_matrix, batch_size: int) -> Iterator[np.ndarray]:
    """Row indices in batches of similar history length, so each batch over-fetches only what it needs."""
    counts = heard.getnnz(axis=1)
    order = np.argsort(counts, kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def _is_heard(items: np.ndarray, heard_rows: sp.csr_matrix) -> np.ndarray:
    """For a (batch, m) matrix of item indices, whether each is in the corresponding row of ``heard_rows``."""
    n_items = heard_rows.shape[1]
    rows = np.repeat(np.arange(heard_rows.shape[0], dtype=np.int64), np.diff(heard_rows.indptr))
    heard_keys = rows * n_items + heard_rows.indices.astype(np.int64)
    candidate_keys = np.arange(items.shape[0], dtype=np.int64)[:, None] * n_items + items
    return np.isin(candidate_keys, heard_keys)


def exclude_and_cut(
    scores: np.ndarray, items: np.ndarray, heard_rows: sp.csr_matrix, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Drop heard (and ``-1`` padding) candidates from ranked rows and keep the first ``k`` per row.

    Rows are first re-ordered by (score descending, item ascending) to apply the tie policy. Returns
    ``(scores, items)`` of shape ``(batch, k)``; rows with fewer than ``k`` eligible items are padded with
    item ``-1`` and score ``-inf``.
    """
    order = np.lexsort((items, -scores), axis=1) if items.size else np.zeros_like(items)
    scores = np.take_along_axis(scores, order, axis=1)
    items = np.take_along_axis(items, order, axis=1)
    keep = (items >= 0) & ~_is_heard(np.maximum(items, 0), heard_rows)
    position = np.argsort(~keep, axis=1, kind="stable")[:, :k]
    kept_items = np.take_along_axis(items, position, axis=1)
    kept_scores = np.take_along_axis(scores, position, axis=1).astype(np.float32)
    valid = np.take_along_axis(keep, position, axis=1)
    kept_items[~valid] = -1
    kept_scores[~valid] = -np.inf
    if kept_items.shape[1] < k:
        pad = k - kept_items.shape[1]
        kept_items = np.pad(kept_items, ((0, 0), (0, pad)), constant_values=-1)
        kept_scores = np.pad(kept_scores, ((0, 0), (0, pad)), constant_values=-np.inf)
    return kept_scores, kept_items


def top_k_excluding(
    search: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]],
    heard: sp.csr_matrix,
    k: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` unheard items for every user (row of ``heard``).

    Parameters
    ----------
    search
        ``search(user_rows, fetch) -> (scores, items)``, each ``(len(user_rows), fetch)``, ranked best first
        (e.g. a FAISS index search). It must return the true top-``fetch`` items of those users.
    heard
        Boolean CSR matrix (users × catalogue items) of train-heard pairs.
    k
        Number of items to return per user.

    Returns
    -------
    scores : np.ndarray, shape (n_users, k), float32
    items : np.ndarray, shape (n_users, k), int64, ``-1`` where fewer than ``k`` unheard items exist
    """
    if k <= 0:
        raise ParameterError(f"k must be positive, got {k}")
    n_users, n_items = heard.shape
    all_scores = np.full((n_users, k), -np.inf, dtype=np.float32)
    all_items = np.full((n_users, k), -1, dtype=np.int64)
    counts = heard.getnnz(axis=1)
    for rows in user_batches(heard, batch_size):
        fetch = int(min(n_items, k + counts[rows].max()))
        if fetch == 0:
            continue
        scores, items = search(rows, fetch)
        kept_scores, kept_items = exclude_and_cut(np.asarray(scores), np.asarray(items, np.int64), heard[rows], k)
        all_scores[rows], all_items[rows] = kept_scores, kept_items
    return all_scores, all_items
