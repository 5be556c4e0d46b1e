"""Item-based kNN on co-occurrence (Sarwar et al. 2001; the tuned form of Dacrema et al. 2019), the simplest
collaborative reference: two tracks are alike when the same users heard both.

With X the users × items matrix of train pairs of every train user, the similarity of items i and j is the cosine
of their columns, x_i·x_j / (‖x_i‖‖x_j‖ + ``shrink``); ``shrink`` > 0 pulls the similarity of rarely heard pairs
towards zero. For each target item j only its ``neighbours`` most similar items i ≠ j keep a weight S_ij (ties by
the lower index, zero similarities dropped), and a user's score of j is X_u·S_·j: the summed similarity of j to
the items the user heard. No random step, so the rankings do not depend on the seed.

Everything stays sparse: the co-occurrence counts are computed a block of target items at a time (one sparse
product, densified to at most :data:`SIMILARITY_BLOCK_ELEMENTS` entries), so neither XᵀX nor any items × items
dense matrix is ever held; S has at most ``neighbours`` entries per item (5.6M at the Onion's 56k items).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from audiorec.common.config import dataclass_from_mapping
from audiorec.errors import ParameterError
from audiorec.recommenders.base import Catalogue, FittedRecommender, TrainData
from audiorec.recommenders.options import ItemKNNOptions
from audiorec.recommenders.retrieval import top_k_masked, top_k_unheard

SIMILARITY_BLOCK_ELEMENTS = 1 << 25
"""Similarities densified at once over all threads (target items by every item): 128 MB of float32."""


def item_similarities(heard: sp.csr_matrix, neighbours: int, shrink: float = 0.0) -> sp.csr_matrix:
    """The items × items CSR matrix S: S[i, j] is the (shrunk) cosine of items i and j when i is one of the
    ``neighbours`` items most similar to j (ties by the lower index, zeros left out), else absent.

    Blocks of target items run on torch's threads side by side (scipy's sparse product releases the GIL), each
    densifying its share of :data:`SIMILARITY_BLOCK_ELEMENTS`.
    """
    matrix = sp.csr_matrix(heard).astype(np.float32)
    n_items = matrix.shape[1]
    by_item = matrix.T.tocsr()
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=0), dtype=np.float64).ravel())
    keep = min(neighbours, max(n_items - 1, 0))
    threads = torch.get_num_threads()
    step = max(1, SIMILARITY_BLOCK_ELEMENTS // (max(n_items, 1) * threads))

    def block(start: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        stop = min(start + step, n_items)
        counts = (by_item[start:stop] @ matrix).toarray()  # (targets j, items i): users who heard both
        denominator = norms[start:stop, None] * norms[None, :] + shrink
        similarity = np.divide(counts, denominator, out=np.zeros_like(counts), where=denominator > 0)
        similarity[np.arange(stop - start), np.arange(start, stop)] = -np.inf  # an item is not its own neighbour
        top_values, top_items = top_k_masked(torch.from_numpy(similarity), keep)
        kept = top_values > 0
        targets = np.broadcast_to(np.arange(start, stop)[:, None], kept.shape)[kept]
        return top_items[kept], targets, top_values[kept]

    with ThreadPoolExecutor(threads) as pool:
        blocks = list(pool.map(block, range(0, n_items if keep else 0, step)))
    if not blocks:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    sources, targets, values = (np.concatenate(part) for part in zip(*blocks, strict=True))
    return sp.csr_matrix((values, (sources, targets)), shape=(n_items, n_items), dtype=np.float32)


class ItemKNNRecommender(FittedRecommender):
    """Item-based kNN, fitted on every train user's pairs before it ranks (the stages call :meth:`fit` first)."""

    kind = "itemknn"

    def __init__(self, options: ItemKNNOptions) -> None:
        self.options = options
        self.similarities: sp.csr_matrix | None = None

    @classmethod
    def from_options(cls, options: dict[str, Any], seed: int) -> ItemKNNRecommender:
        return cls(dataclass_from_mapping(ItemKNNOptions, options, "model itemknn"))

    def fit(self, catalogue: Catalogue, train: TrainData) -> None:
        self.similarities = item_similarities(train.heard, self.options.neighbours, self.options.shrink)

    def recommend(self, catalogue: Catalogue, train: TrainData, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores X_u·S of every catalogue item, a block of users at a time (a sparse product each)."""
        if self.similarities is None or self.similarities.shape[0] != len(catalogue):
            raise ParameterError("model itemknn ranks only after fit() on the same catalogue")
        similarities = self.similarities
        heard = sp.csr_matrix(train.heard).astype(np.float32)

        def scores(rows: slice) -> np.ndarray:
            return (heard[rows] @ similarities).toarray()

        return top_k_unheard(scores, train.excluded, k)
