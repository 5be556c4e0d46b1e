"""Plugins written for the tests: a good backbone and recommender named by import target, and broken ones, each
broken in one way a plugin's author could get wrong."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from audiorec.backbones import Backbone, ClipPolicy
from audiorec.common.config import dataclass_from_mapping
from audiorec.common.registry import Registered
from audiorec.recommenders import Catalogue, ModelTraits, Recommender, TrainData
from audiorec.recommenders.retrieval import top_k_unheard


@dataclass(frozen=True)
class EnvelopeOptions:
    width: int = 6
    sample_rate: int = 8000


class EnvelopeBackbone(Backbone):
    """Named by its class: ``kind: "plugin_fixtures:EnvelopeBackbone"``. Vector = the track's amplitude envelope
    in ``width`` equal parts (a deterministic function of the audio, any length)."""

    options_class = EnvelopeOptions
    uses_gpu = False

    def __init__(self, options: EnvelopeOptions) -> None:
        self.options = options
        self.sample_rate = options.sample_rate
        self.clip_policy = ClipPolicy(max_duration_s=5.0)
        self.layer_dims = {"envelope": options.width}

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> EnvelopeBackbone:
        return cls(dataclass_from_mapping(EnvelopeOptions, options, "backbone envelope"))

    def vector(self, waveform: np.ndarray) -> np.ndarray:
        parts = np.array_split(np.abs(np.asarray(waveform, dtype=np.float64)), self.options.width)
        return np.array([part.mean() if part.size else 0.0 for part in parts], dtype=np.float32)

    def embed_batch(self, waveforms: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        rows = [self.vector(waveform) for waveform in waveforms]
        return {"envelope": np.stack(rows) if rows else np.zeros((0, self.options.width), np.float32)}


class NarrowBackbone(EnvelopeBackbone):
    """Declares ``width`` but returns one fewer column."""

    def embed_batch(self, waveforms: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        return {"envelope": super().embed_batch(waveforms)["envelope"][:, :-1]}


class NaNBackbone(EnvelopeBackbone):
    """Returns NaN vectors."""

    def embed_batch(self, waveforms: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        return {"envelope": np.full((len(waveforms), self.options.width), np.nan, dtype=np.float32)}


class NoOptionsClassBackbone(Backbone):
    """Forgets to declare its options class."""


class NotABackbone:
    """Declares options but derives from nothing audiorec knows."""

    options_class = EnvelopeOptions


@dataclass(frozen=True)
class NoOptions:
    pass


class MostHeardRecommender(Recommender):
    """A correct plugin by class: popularity over the ranked users' own train pairs."""

    options_class = NoOptions

    @classmethod
    def from_options(cls, options: dict[str, Any], seed: int) -> MostHeardRecommender:
        dataclass_from_mapping(NoOptions, options, "model most_heard")
        return cls()

    def recommend(self, catalogue: Catalogue, train: TrainData, k: int) -> tuple[np.ndarray, np.ndarray]:
        counts = np.asarray(train.heard.sum(axis=0), dtype=np.float32).ravel()
        return top_k_unheard(lambda rows: np.tile(counts, (rows.stop - rows.start, 1)), train.excluded, k)


class HeardFirstRecommender(MostHeardRecommender):
    """Ranks every user's train tracks first: the bug a ranking must never have."""

    def recommend(self, catalogue: Catalogue, train: TrainData, k: int) -> tuple[np.ndarray, np.ndarray]:
        heard = train.heard.astype(np.float32)
        return top_k_unheard(lambda rows: heard[rows].toarray(), sp.csr_matrix(train.excluded.shape, dtype=bool), k)


MISSING_IMPLEMENTATION = Registered(
    implementation="plugin_fixtures:NoSuchRecommender", options="plugin_fixtures:NoOptions", traits=ModelTraits()
)
"""A descriptor that plans (its options import) but whose implementation is missing: its job fails, not the plan."""
