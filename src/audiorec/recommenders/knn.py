"""Content-based KNN: a user is the mean embedding of the tracks they heard in train.

Users and items are L2-normalised so the inner product is the cosine, as in the first paper (which searched a
FAISS ``IndexFlatIP``). The search is exact (:mod:`audiorec.recommenders.retrieval`), on the GPU when torch sees
one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from audiorec.common.config import dataclass_from_mapping
from audiorec.recommenders.base import Catalogue, Recommender, TrainData
from audiorec.recommenders.inner_product import InnerProductScoring
from audiorec.recommenders.options import KNNConfig
from audiorec.recommenders.vectors import l2_normalize, mean_of_heard, pretrained_rows, pretrained_table


class KNNRecommender(InnerProductScoring, Recommender):
    kind = "knn"

    def __init__(self, config: KNNConfig) -> None:
        self.config = config

    @classmethod
    def from_options(cls, options: dict[str, Any], seed: int) -> KNNRecommender:
        return cls(dataclass_from_mapping(KNNConfig, options, "model knn"))

    def scoring_vectors(self, catalogue: Catalogue, train: TrainData) -> tuple[np.ndarray, np.ndarray]:
        """Unit-norm user profiles (the mean of each user's distinct train tracks) and items, so that their inner
        product is the cosine score."""
        items = pretrained_table(catalogue, self.config.standardize, self.kind)
        return l2_normalize(mean_of_heard(train.heard, items)), l2_normalize(items)

    def content_item_vectors(self, catalogue: Catalogue, embeddings: np.ndarray) -> np.ndarray:
        return l2_normalize(pretrained_rows(catalogue, embeddings, self.config.standardize, self.kind))
