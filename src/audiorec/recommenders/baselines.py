"""Reference points every table needs: popularity (train play counts) and uniformly random rankings."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from audiorec.common.config import dataclass_from_mapping
from audiorec.recommenders.base import Catalogue, Recommender, TrainData
from audiorec.recommenders.options import NoOptions
from audiorec.recommenders.retrieval import top_k_unheard


class PopularityRecommender(Recommender):
    """Ranks every user's unheard tracks by their total train play count over every train user.

    Counting over all train users (:attr:`TrainData.item_plays`), not only the users being ranked, keeps the
    baseline's definition independent of who happens to be active in the evaluation window.
    """

    kind = "popularity"

    @classmethod
    def from_options(cls, options: dict[str, Any], seed: int) -> PopularityRecommender:
        dataclass_from_mapping(NoOptions, options, "model popularity")
        return cls()

    def recommend(self, catalogue: Catalogue, train: TrainData, k: int) -> tuple[np.ndarray, np.ndarray]:
        counts = torch.as_tensor(train.item_plays, dtype=torch.float32)
        return top_k_unheard(lambda rows: counts.expand(rows.stop - rows.start, -1).clone(), train.excluded, k)


class RandomRecommender(Recommender):
    """Ranks every user's unheard tracks in a seeded uniformly random order."""

    kind = "random"

    def __init__(self, seed: int) -> None:
        self.seed = seed

    @classmethod
    def from_options(cls, options: dict[str, Any], seed: int) -> RandomRecommender:
        dataclass_from_mapping(NoOptions, options, "model random")
        return cls(seed)

    def user_scores(self, rows: slice, n_items: int) -> np.ndarray:
        """Uniform scores of ``n_items`` items for the users ``rows``, each from a generator seeded by
        ``(seed, row)``: a ranking does not depend on how users are blocked, and no users × items matrix is ever
        held in memory."""
        scores = np.empty((rows.stop - rows.start, n_items), dtype=np.float32)
        for offset, row in enumerate(range(rows.start, rows.stop)):
            scores[offset] = np.random.default_rng((self.seed, row)).random(n_items, dtype=np.float32)
        return scores

    def recommend(self, catalogue: Catalogue, train: TrainData, k: int) -> tuple[np.ndarray, np.ndarray]:
        return top_k_unheard(lambda rows: self.user_scores(rows, len(catalogue)), train.excluded, k)

    def new_item_scores(self, catalogue: Catalogue, train: TrainData, embeddings: np.ndarray) -> np.ndarray:
        """Chance: uniform scores of the new tracks, seeded per user as :meth:`recommend` is."""
        return self.user_scores(slice(0, len(train.user_ids)), len(embeddings))
