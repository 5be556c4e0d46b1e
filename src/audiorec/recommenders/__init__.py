"""Recommender registry: config ``kind`` → class, imported only when chosen (neural models pull in torch)."""

from __future__ import annotations

from audiorec.recommenders.base import Catalogue, Recommender, TrainData, recommendations_frame
from audiorec.registry import resolve

RECOMMENDER_CLASSES: dict[str, str] = {
    "knn": "audiorec.recommenders.knn:KNNRecommender",
    "popularity": "audiorec.recommenders.baselines:PopularityRecommender",
    "random": "audiorec.recommenders.baselines:RandomRecommender",
}


def recommender_class(kind: str) -> type[Recommender]:
    """Import and return the class registered for ``kind``."""
    return resolve(RECOMMENDER_CLASSES, kind, "model kind")


__all__ = ["RECOMMENDER_CLASSES", "Catalogue", "Recommender", "TrainData", "recommendations_frame", "recommender_class"]
