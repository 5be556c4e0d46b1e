"""What the neural recommenders share: the item table they start from, user lookup, and exact retrieval.

Retrieval goes through the same exact inner-product search as KNN (:mod:`audiorec.recommenders.inner_product`)
and the same removal of heard tracks (:func:`audiorec.recommenders.retrieval.top_k_unheard`), so every model's
top K is exact and comparable.
"""

from __future__ import annotations

import pickle
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from audiorec.common.config import dataclass_from_mapping
from audiorec.common.devices import default_device
from audiorec.errors import ParameterError
from audiorec.recommenders import trainer
from audiorec.recommenders.base import Catalogue, RunFiles, TrainData, TrainedRecommender
from audiorec.recommenders.options import TrainingOptions
from audiorec.recommenders.trainer import TrainingResult, TrainingTask
from audiorec.storage.checkpointing import data_fingerprint


def random_table(n_items: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    """A randomly initialised item table, ``N(0, 1/dim)`` so that rows have unit expected norm."""
    return torch.randn(n_items, dim, generator=generator) / dim**0.5


def rows_of(user_ids: np.ndarray, known_ids: np.ndarray) -> np.ndarray:
    """Row of each id of ``user_ids`` in ``known_ids`` (``-1`` when absent)."""
    known = np.asarray(known_ids).astype(str)
    wanted = np.asarray(user_ids).astype(str)
    if len(known) == 0:
        return np.full(len(wanted), -1, dtype=np.int64)
    order = np.argsort(known, kind="stable")
    position = np.minimum(np.searchsorted(known[order], wanted), len(known) - 1)
    found = known[order][position] == wanted
    return np.where(found, order[position], -1).astype(np.int64)


class NeuralRecommender(TrainedRecommender):
    """A recommender built from a torch module and trained by :func:`audiorec.recommenders.trainer.train`.

    Subclasses say how to build the untrained module (:meth:`build_module`), how it learns
    (:meth:`build_task`) and how it ranks (:meth:`recommend`). The module is built right after seeding torch
    with the run's seed, so the same seed gives the same initial weights, batches and recommendations on CPU.
    """

    options_class: ClassVar[type[TrainingOptions]]

    def __init__(self, options: TrainingOptions, seed: int) -> None:
        self.options = options
        self.seed = seed
        self.device = default_device()
        self.module: nn.Module | None = None
        self.fit_users: np.ndarray | None = None
        self.result: TrainingResult | None = None

    @classmethod
    def from_options(cls, options: dict[str, Any], seed: int) -> NeuralRecommender:
        return cls(dataclass_from_mapping(cls.options_class, options, f"model {cls.kind}"), seed)

    @abstractmethod
    def build_module(self, catalogue: Catalogue, train: TrainData) -> nn.Module:
        """The untrained network for this catalogue and these train users (rows of ``train``)."""

    @abstractmethod
    def build_task(self, module: nn.Module, train: TrainData, validation: TrainData) -> TrainingTask:
        """Batches, loss and validation of ``module`` on ``train`` and ``validation``."""

    def initialise(self, catalogue: Catalogue, train: TrainData) -> nn.Module:
        """Build the untrained model (the state the trainer validates as epoch 0) and keep it."""
        torch.manual_seed(self.seed)
        self.module = self.build_module(catalogue, train).to(self.device)
        self.fit_users = np.asarray(train.user_ids)
        return self.module

    def fit(self, catalogue: Catalogue, train: TrainData, validation: TrainData, files: RunFiles | None = None) -> None:
        if not np.array_equal(np.asarray(validation.user_ids), np.asarray(train.user_ids)):
            raise ParameterError(f"model {self.kind}: validation must be indexed against the train users")
        module = self.initialise(catalogue, train)
        task = self.build_task(module, train, validation)
        self.result = trainer.train(
            task,
            self.options,
            self.seed,
            fingerprint=self.fingerprint(catalogue, train, validation),
            files=files,
            description=f"{self.kind} seed{self.seed}",
        )

    def fingerprint(self, catalogue: Catalogue, train: TrainData, validation: TrainData) -> str:
        """What a checkpoint was trained on: kind, options, seed, catalogue, embeddings, both splits and what the
        validation rankings exclude."""
        return data_fingerprint(
            self.kind,
            self.options,
            self.seed,
            catalogue.track_ids,
            catalogue.embeddings,
            train.user_ids,
            train.heard,
            train.excluded,
            train.listen_order,
            validation.heard,
        )

    def restore(self, catalogue: Catalogue, train: TrainData, validation: TrainData, checkpoint: str | Path) -> None:
        """Load the weights :meth:`fit` saved to ``checkpoint`` for the same catalogue, splits and options.

        Later evaluations (the cold-start ranking) reuse a trained run instead of training it again. A
        checkpoint of other data or options is refused rather than silently ranking with the wrong model.
        """
        module = self.initialise(catalogue, train)
        try:
            saved = torch.load(checkpoint, map_location=self.device, weights_only=True)
        except (OSError, RuntimeError, pickle.UnpicklingError) as error:
            raise ParameterError(f"{checkpoint}: cannot read the checkpoint: {error}") from error
        if saved.get("fingerprint") != self.fingerprint(catalogue, train, validation):
            raise ParameterError(
                f"{checkpoint}: the checkpoint was trained on other data or options than model {self.kind} "
                f"seed {self.seed} has now; train it again"
            )
        module.load_state_dict(saved["module"])

    def trained_module(self) -> nn.Module:
        """The module to rank with; :meth:`fit` (or :meth:`initialise`) must have run."""
        if self.module is None:
            raise ParameterError(f"model {self.kind}: call fit() before recommend()")
        return self.module
