"""Recommender registry: config ``kind`` → class, imported only when chosen (neural models pull in torch)."""

from __future__ import annotations

from audiorec.recommenders.base import (
    Catalogue,
    Recommender,
    RunFiles,
    TrainData,
    TrainedRecommender,
    recommendations_frame,
)
from audiorec.registry import resolve

RECOMMENDER_CLASSES: dict[str, str] = {
    "knn": "audiorec.recommenders.knn:KNNRecommender",
    "popularity": "audiorec.recommenders.baselines:PopularityRecommender",
    "random": "audiorec.recommenders.baselines:RandomRecommender",
    "shallow": "audiorec.recommenders.shallow:ShallowNetRecommender",
    "shallow_random": "audiorec.recommenders.shallow:RandomShallowNetRecommender",
    "bert4rec": "audiorec.recommenders.bert4rec:Bert4RecRecommender",
    "bert4rec_random": "audiorec.recommenders.bert4rec:RandomBert4RecRecommender",
}


def recommender_class(kind: str) -> type[Recommender]:
    """Import and return the class registered for ``kind``."""
    return resolve(RECOMMENDER_CLASSES, kind, "model kind")


__all__ = [
    "RECOMMENDER_CLASSES",
    "Catalogue",
    "Recommender",
    "RunFiles",
    "TrainData",
    "TrainedRecommender",
    "recommendations_frame",
    "recommender_class",
]
