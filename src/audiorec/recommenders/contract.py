"""What a ranking must be, checked on every model's output before it is written.

The metrics trust the lists: a heard track in a list is a free miss, a repeated track a wasted slot, a NaN score an
undefined order. Built-in models keep these rules by construction (:func:`~audiorec.recommenders.retrieval.
top_k_unheard`); a plugin may not, and a table built on a broken list would be wrong without saying so. So the
ranking stages refuse such a list, naming the model kind and the first offending user.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from audiorec.errors import ContractError


def check_ranking(
    kind: str, user_ids: np.ndarray, excluded: sp.csr_matrix, scores: np.ndarray, items: np.ndarray, k: int
) -> None:
    """Raise :class:`ContractError` unless ``(scores, items)`` is a valid top-``k`` ranking of every user.

    ``items`` holds catalogue indices (``-1`` pads a list the catalogue cannot fill), ``excluded`` the users ×
    items pairs no list may contain (what each user heard before the evaluation window).
    """
    check_ranking_shape(kind, excluded.shape, scores, items, k)
    check_no_heard_items(kind, user_ids, excluded, items)


def check_ranking_shape(kind: str, shape: tuple[int, int], scores: np.ndarray, items: np.ndarray, k: int) -> None:
    """The form of a ranking of ``shape`` (users, items): ``(users, k)`` integer indices into the catalogue (or
    ``-1``), finite scores, no item twice in a list."""
    n_users, n_items = shape
    what = f"model kind {kind!r}"
    items, scores = np.asarray(items), np.asarray(scores)
    if items.shape != (n_users, k) or scores.shape != (n_users, k):
        raise ContractError(
            f"{what}: recommend returned items {items.shape} and scores {scores.shape}; expected ({n_users}, {k}) each"
        )
    if not np.issubdtype(items.dtype, np.integer):
        raise ContractError(f"{what}: recommend returned item indices of dtype {items.dtype}, not integers")
    valid = items >= 0
    if np.any(items[valid] >= n_items) or np.any(items < -1):
        raise ContractError(f"{what}: recommend returned item indices outside the catalogue of {n_items} items")
    if not np.all(np.isfinite(scores[valid])):
        raise ContractError(f"{what}: recommend returned NaN or infinite scores")
    ordered = np.sort(np.where(valid, items, -1 - np.arange(k)), axis=1)
    if np.any(ordered[:, 1:] == ordered[:, :-1]):
        raise ContractError(f"{what}: recommend returned the same item twice in one user's list")


def check_no_heard_items(kind: str, user_ids: np.ndarray, excluded: sp.csr_matrix, items: np.ndarray) -> None:
    """No list holds an item its user heard before the evaluation window (``excluded``)."""
    items = np.asarray(items)
    rows, columns = np.nonzero(items >= 0)
    picked = items[rows, columns]
    heard = np.asarray(excluded[rows, picked]).ravel().astype(bool) if len(picked) else np.zeros(0, dtype=bool)
    if heard.any():
        first = int(rows[np.argmax(heard)])
        raise ContractError(
            f"model kind {kind!r}: recommend returned {int(heard.sum())} items their users heard before the "
            f"evaluation window (user {user_ids[first]} among them); a ranking must leave them out"
        )
