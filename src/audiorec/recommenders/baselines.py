"""Reference points every table needs: popularity (train play counts) and uniformly random rankings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from audiorec.config import dataclass_from_mapping
from audiorec.recommenders.base import Catalogue, Recommender, TrainData
from audiorec.recommenders.retrieval import top_k_excluding


@dataclass(frozen=True)
class NoOptions:
    """The baselines have no hyper-parameters; an empty dataclass still rejects misspelt keys."""


class PopularityRecommender(Recommender):
    """Ranks every user's unheard tracks by their total train play count."""

    kind = "popularity"

    @classmethod
    def from_options(cls, options: dict[str, Any], seed: int) -> PopularityRecommender:
        dataclass_from_mapping(NoOptions, options, "model popularity")
        return cls()

    def recommend(self, catalogue: Catalogue, train: TrainData, k: int) -> tuple[np.ndarray, np.ndarray]:
        counts = np.asarray(train.plays.sum(axis=0)).ravel().astype(np.float32)
        order = np.lexsort((np.arange(len(counts)), -counts))

        def search(rows: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
            top = order[:fetch]
            return np.tile(counts[top], (len(rows), 1)), np.tile(top, (len(rows), 1))

        return top_k_excluding(search, train.heard, k)


class RandomRecommender(Recommender):
    """Ranks every user's unheard tracks in a seeded uniformly random order."""

    kind = "random"
    deterministic = False
    ranks_unseen_items = True

    def __init__(self, seed: int) -> None:
        self.seed = seed

    @classmethod
    def from_options(cls, options: dict[str, Any], seed: int) -> RandomRecommender:
        dataclass_from_mapping(NoOptions, options, "model random")
        return cls(seed)

    def user_scores(self, row: int, n_items: int) -> np.ndarray:
        """Uniform scores of every catalogue item for the user at ``row``, from a generator seeded by
        ``(seed, row)``: a ranking does not depend on how users are batched, and no users × items matrix is ever
        held in memory."""
        return np.random.default_rng((self.seed, int(row))).random(n_items)

    def recommend(self, catalogue: Catalogue, train: TrainData, k: int) -> tuple[np.ndarray, np.ndarray]:
        n_items = len(catalogue)

        def search(rows: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
            block = np.stack([self.user_scores(row, n_items) for row in rows])
            top = np.argpartition(-block, fetch - 1, axis=1)[:, :fetch]
            return np.take_along_axis(block, top, axis=1), top

        return top_k_excluding(search, train.heard, k)

    def candidate_scores(self, catalogue: Catalogue, train: TrainData, candidates: np.ndarray) -> np.ndarray:
        """Chance: the same uniform scores as :meth:`recommend`, read at the candidates."""
        scores = [self.user_scores(row, len(catalogue))[candidates] for row in range(len(train.user_ids))]
        return np.stack(scores) if scores else np.zeros((0, len(candidates)))
