"""Content-based KNN: a user is the mean embedding of the tracks they heard in train.

Users and items are L2-normalised so the inner product is the cosine, as in the first paper (which searched a
FAISS ``IndexFlatIP``). The search is exact (:mod:`audiorec.recommenders.retrieval`), on the GPU when torch sees
one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from audiorec.config import dataclass_from_mapping
from audiorec.errors import ParameterError
from audiorec.recommenders.base import Catalogue, Recommender, TrainData, zscore_like
from audiorec.recommenders.inner_product import InnerProductScoring


@dataclass(frozen=True)
class KNNConfig:
    """``standardize`` z-scores every embedding dimension over the catalogue before the cosine.

    The paper uses raw embeddings (False); with hand-crafted features such as MFCC statistics, whose
    dimensions differ in scale by orders of magnitude, standardising lets every dimension count.
    """

    standardize: bool = False


def l2_normalize(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit norm; all-zero rows stay zero instead of becoming NaN."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms > 0, norms, 1.0)).astype(np.float32)


class KNNRecommender(InnerProductScoring, Recommender):
    kind = "knn"
    uses_embeddings = True
    ranks_unseen_items = True

    def __init__(self, config: KNNConfig) -> None:
        self.config = config

    @classmethod
    def from_options(cls, options: dict[str, Any], seed: int) -> KNNRecommender:
        return cls(dataclass_from_mapping(KNNConfig, options, "model knn"))

    def user_vectors(self, items: np.ndarray, train: TrainData) -> np.ndarray:
        """Mean of the embeddings of each user's distinct train tracks (zeros for a user with none)."""
        heard = train.heard.astype(np.float32)
        counts = np.asarray(heard.sum(axis=1)).ravel()
        sums = heard @ items
        return (sums / np.maximum(counts, 1.0)[:, None]).astype(np.float32)

    def item_space(self, catalogue: Catalogue, embeddings: np.ndarray) -> np.ndarray:
        """``embeddings`` in the space profiles are averaged in: z-scored with the *catalogue's* statistics when
        ``standardize`` is set, so that tracks outside the catalogue land where catalogue tracks do."""
        if catalogue.embeddings is None:
            raise ParameterError("knn needs item embeddings; give the model a backbone")
        if self.config.standardize:
            return zscore_like(embeddings, catalogue.embeddings)
        return np.asarray(embeddings, dtype=np.float32)

    def scoring_vectors(self, catalogue: Catalogue, train: TrainData) -> tuple[np.ndarray, np.ndarray]:
        """Unit-norm user profiles and items, so that their inner product is the cosine score."""
        if catalogue.embeddings is None:
            raise ParameterError("knn needs item embeddings; give the model a backbone")
        items = self.item_space(catalogue, catalogue.embeddings)
        return l2_normalize(self.user_vectors(items, train)), l2_normalize(items)

    def content_item_vectors(self, catalogue: Catalogue, embeddings: np.ndarray) -> np.ndarray:
        return l2_normalize(self.item_space(catalogue, embeddings))
