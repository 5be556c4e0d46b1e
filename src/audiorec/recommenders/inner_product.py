"""Models that score a (user, item) pair by the inner product of a user vector and an item vector.

KNN (cosine of unit vectors), the Shallow Net (cosine of tower outputs) and BERT4Rec (``h · e + b``) all rank this
way, so they share one exact FAISS search for their full rankings and one matrix product for scoring a given set of
candidates (the cold-start ranking). A model only says how it builds the two sets of vectors.
"""

from __future__ import annotations

from abc import abstractmethod

import faiss
import numpy as np
import scipy.sparse as sp

from audiorec.recommenders.base import Catalogue, TrainData
from audiorec.recommenders.retrieval import top_k_excluding


def build_index(vectors: np.ndarray) -> faiss.Index:
    """Exact inner-product index, moved to every visible GPU when FAISS was built with GPU support."""
    index = faiss.IndexFlatIP(vectors.shape[1])
    if faiss.get_num_gpus() > 0:
        index = faiss.index_cpu_to_all_gpus(index)
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def top_k_inner_product(
    users: np.ndarray, items: np.ndarray, heard: sp.csr_matrix, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` items by inner product for every user (row of ``users``), train-heard items removed."""
    index = build_index(items)
    queries = np.ascontiguousarray(users, dtype=np.float32)
    return top_k_excluding(lambda rows, fetch: index.search(queries[rows], fetch), heard, k)


class InnerProductScoring:
    """Mixin of :class:`~audiorec.recommenders.base.Recommender` subclasses whose score is ``user · item``."""

    @abstractmethod
    def scoring_vectors(self, catalogue: Catalogue, train: TrainData) -> tuple[np.ndarray, np.ndarray]:
        """``(users, items)``: one row per user of ``train`` and one per catalogue item."""

    def recommend(self, catalogue: Catalogue, train: TrainData, k: int) -> tuple[np.ndarray, np.ndarray]:
        return top_k_inner_product(*self.scoring_vectors(catalogue, train), train.heard, k)

    def candidate_scores(self, catalogue: Catalogue, train: TrainData, candidates: np.ndarray) -> np.ndarray:
        users, items = self.scoring_vectors(catalogue, train)
        return users @ items[candidates].T
