"""Models that score a (user, item) pair by the inner product of a user vector and an item vector.

KNN (cosine of unit vectors), the Shallow Net (cosine of tower outputs) and BERT4Rec (``h · e + b``) all rank this
way, so they share one retrieval (:func:`top_k_inner_product`: by default exact, blocked matrix products with heard
items masked, on the GPU when torch sees one; with a ``retrieval`` setting of backend ``faiss``, a FAISS index,
:mod:`audiorec.recommenders.faiss_retrieval`) and one way of scoring tracks outside the catalogue from their content
(the cold-start ranking of new releases, always exact: it ranks only the few new releases). A model only says how
it builds the two sets of vectors.
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
import scipy.sparse as sp
import torch

from audiorec.common.devices import default_device
from audiorec.recommenders.base import Catalogue, TrainData
from audiorec.recommenders.retrieval import top_k_unheard
from audiorec.recommenders.retrieval_options import EXACT, RetrievalOptions


def top_k_inner_product(
    users: np.ndarray | torch.Tensor,
    items: np.ndarray | torch.Tensor,
    excluded: sp.csr_matrix,
    k: int,
    device: torch.device | None = None,
    retrieval: RetrievalOptions = EXACT,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` items by inner product for every user (row of ``users``), ``excluded`` pairs removed.

    Exact by default: both sets of vectors go to ``device`` (default: the first GPU, else the CPU) once; each block
    of users is one matrix product there. A ``faiss`` ``retrieval`` searches an index of the items instead.
    """
    if not retrieval.is_exact:
        from audiorec.recommenders.faiss_retrieval import top_k_faiss  # faiss only where it is asked for

        return top_k_faiss(users, items, excluded, k, retrieval, device)
    device = device or default_device()
    user_vectors = torch.as_tensor(users, dtype=torch.float32).to(device)
    item_vectors = torch.as_tensor(items, dtype=torch.float32).to(device)
    return top_k_unheard(lambda rows: user_vectors[rows] @ item_vectors.T, excluded, k)


class InnerProductScoring:
    """Mixin of :class:`~audiorec.recommenders.base.Recommender` subclasses whose score is ``user · item``.

    ``retrieval`` is how :meth:`recommend` finds the top K (exact unless a ranking job sets it); it changes no
    score, so training, validation and the cold-start ranking ignore it.
    """

    retrieval: RetrievalOptions = EXACT
    ranks_by_inner_product = True  # the trait a plugin class declares by deriving from this mixin

    @abstractmethod
    def scoring_vectors(self, catalogue: Catalogue, train: TrainData) -> tuple[np.ndarray, np.ndarray]:
        """``(users, items)``: one row per user of ``train`` and one per catalogue item."""

    def content_item_vectors(self, catalogue: Catalogue, embeddings: np.ndarray) -> np.ndarray:
        """Item vectors of tracks outside the catalogue, from their embeddings (models with ``ranks_unseen_items``).

        They are built exactly as the catalogue's items are (same standardisation statistics, same tower), so a
        new track's score is comparable with a catalogue track's.
        """
        raise NotImplementedError(f"model {getattr(self, 'kind', '?')} cannot score tracks by their content")

    def recommend(self, catalogue: Catalogue, train: TrainData, k: int) -> tuple[np.ndarray, np.ndarray]:
        vectors = self.scoring_vectors(catalogue, train)
        return top_k_inner_product(*vectors, train.excluded, k, retrieval=self.retrieval)

    def new_item_scores(self, catalogue: Catalogue, train: TrainData, embeddings: np.ndarray) -> np.ndarray:
        users, _ = self.scoring_vectors(catalogue, train)
        return users @ self.content_item_vectors(catalogue, embeddings).T
