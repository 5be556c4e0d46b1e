"""Recommender registry: config ``kind`` → class, imported only when chosen (neural models pull in torch)."""

from __future__ import annotations

import importlib

from audiorec.errors import ParameterError
from audiorec.recommenders.base import Catalogue, Recommender, TrainData, recommendations_frame

RECOMMENDER_CLASSES: dict[str, str] = {
    "knn": "audiorec.recommenders.knn:KNNRecommender",
    "popularity": "audiorec.recommenders.baselines:PopularityRecommender",
    "random": "audiorec.recommenders.baselines:RandomRecommender",
}


def recommender_class(kind: str) -> type[Recommender]:
    """Import and return the class registered for ``kind``."""
    try:
        target = RECOMMENDER_CLASSES[kind]
    except KeyError:
        raise ParameterError(f"unknown model kind {kind!r}; known kinds are {sorted(RECOMMENDER_CLASSES)}") from None
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)


__all__ = ["RECOMMENDER_CLASSES", "Catalogue", "Recommender", "TrainData", "recommendations_frame", "recommender_class"]
