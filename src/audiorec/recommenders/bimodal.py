"""The Bimodal recommender of the journal version of Tamm & Aljanaki ("Adopting State-of-the-Art Pretrained Audio
Representations for Music Recommender Systems"): an audio tower and a collaborative tower aligned contrastively.

Every catalogue item has two descriptions: the backbone's frozen embedding of its audio and its ELSA item factors,
fitted on the train pairs of every train user (:mod:`audiorec.recommenders.elsa`). Two towers of the same shape,
Linear(d_in, ``hidden_dim``) → ReLU → Linear(``hidden_dim``, ``hidden_dim``), map each description into one
768-d space (the original's width); their unit-norm outputs are trained with a decoupled contrastive loss
(:mod:`audiorec.recommenders.contrastive`, temperature 0.1) so that an item's two outputs meet and other items'
are pushed apart. A batch is ``batch_size`` (10000) distinct items, drawn without replacement among the items
with at least one train pair, as the original's item loader does.

Selection follows the original: it has no validation step, so the loss that drives the plateau schedule
(patience 5, factor 0.1), early stopping (patience 16) and the restored epoch is the epoch's mean training loss
(``selection: train_loss``). The validation HitRate of the model's own scoring is still written to the training
log every epoch; ``selection: val_hitrate`` selects on it instead (a documented departure).

Three scorings of one trained model are three kinds, so that each is its own row and carries its own traits:

* ``bimodal_content``: an item is its audio tower's output; it scores new releases from their embeddings;
* ``bimodal_collaborative``: an item is its collaborative tower's output;
* ``bimodal_average``: an item is the mean of its two outputs (vectors are averaged, not scores).

In each a user is the mean of their train items' vectors in that space and scores are inner products, as in
the original, which ranks with the towers' raw outputs (not the unit vectors the loss sees); ``unit_items:
true`` normalises the item vectors first. A new release has an embedding but no collaborative factors, so only
``bimodal_content`` enters the cold-start table. The three kinds train the same towers from the same seed (the
same weights on a CPU); each run trains its own copy, which at the original's sizes is a few seconds of GPU time
beside the ELSA fit.

The ELSA factors are stored with the checkpoint (a persistent buffer of the module): the cold-start stage and a
resumed run reuse them instead of fitting ELSA again; the audio table is a non-persistent buffer (it is the
backbone's embeddings table).
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from audiorec.errors import ParameterError
from audiorec.evaluation.metrics import hit_rate
from audiorec.recommenders.base import Catalogue, RunFiles, TrainData
from audiorec.recommenders.contrastive import contrastive_loss
from audiorec.recommenders.inner_product import InnerProductScoring, top_k_inner_product
from audiorec.recommenders.neural import NeuralRecommender
from audiorec.recommenders.options import BimodalOptions
from audiorec.recommenders.trainer import TrainingTask
from audiorec.recommenders.vectors import l2_normalize, mean_of_heard, pretrained_rows, pretrained_table
from audiorec.storage.checkpointing import load_state

SCORINGS = ("content", "collaborative", "average")
"""What an item is in each kind's space: its audio tower's output, its CF tower's output, or their mean."""


def tower(d_in: int, hidden: int) -> nn.Sequential:
    """Linear(d_in, hidden) → ReLU → Linear(hidden, hidden): the original's shape for both towers."""
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden))


class BimodalNet(nn.Module):
    """The two item tables (audio frozen and not stored, ELSA factors frozen and stored) and the two towers. The
    audio table is the caller's float32 tensor itself, not a copy: nothing writes to it, and a copy would hold a
    second table through training (1.1 GB at 4800-d over the Onion's 57k items)."""

    def __init__(self, content: torch.Tensor, collaborative: torch.Tensor, hidden: int) -> None:
        super().__init__()
        if content.shape[0] != collaborative.shape[0]:
            raise ParameterError(
                f"bimodal: {content.shape[0]} audio rows but {collaborative.shape[0]} collaborative factor rows"
            )
        self.register_buffer("content_table", content.float().contiguous(), persistent=False)
        self.register_buffer("collaborative_table", collaborative.float().clone())
        self.content_tower = tower(content.shape[1], hidden)
        self.collaborative_tower = tower(collaborative.shape[1], hidden)

    def raw(self, items: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Both towers' outputs for catalogue rows ``items`` (every row when None), before normalisation."""
        content = self.content_table if items is None else self.content_table[items]
        collaborative = self.collaborative_table if items is None else self.collaborative_table[items]
        return self.content_tower(content), self.collaborative_tower(collaborative)

    def forward(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit-norm outputs of both towers for catalogue rows ``items``: what the contrastive loss compares."""
        content, collaborative = self.raw(items)
        return F.normalize(content, dim=-1), F.normalize(collaborative, dim=-1)

    def item_vectors(self, scoring: str, unit: bool) -> torch.Tensor:
        """Every catalogue item's vector in the space of ``scoring`` (see :data:`SCORINGS`)."""
        content, collaborative = self.raw()
        vectors = {"content": content, "collaborative": collaborative}.get(scoring)
        if vectors is None:
            vectors = (content + collaborative) / 2
        return F.normalize(vectors, dim=-1) if unit else vectors


def trained_items(train: TrainData) -> np.ndarray:
    """Catalogue rows with at least one train pair: the items the towers learn from (nobody heard the others, so
    they have no collaborative signal to align with)."""
    return np.flatnonzero(np.asarray(train.heard.getnnz(axis=0)) > 0)


class BimodalTask(TrainingTask):
    """Batches of distinct trained items, the contrastive loss, and the selection figure of the options.

    The mean training loss of an epoch is accumulated as the trainer runs its batches and returned by
    :meth:`validate` as ``loss`` under ``selection: train_loss``; before the first epoch (epoch 0) it is the loss
    of the untrained towers over the same items, in order, without gradients.
    """

    def __init__(
        self, module: BimodalNet, train: TrainData, validation: TrainData, options: BimodalOptions, scoring: str
    ) -> None:
        self.module = module
        self.device = module.content_table.device
        self.options = options
        self.scoring = scoring
        self.items = torch.as_tensor(trained_items(train), device=self.device)
        if len(self.items) == 0:
            raise ParameterError("bimodal: no catalogue item has a train pair to learn from")
        self.heard = train.heard
        self.val_rows = np.flatnonzero(validation.heard.getnnz(axis=1) > 0)
        self.val_truth = validation.heard[self.val_rows]
        self.val_excluded = train.excluded[self.val_rows]
        self._total = torch.zeros((), dtype=torch.float64, device=self.device)
        self._count = 0

    def n_batches(self) -> int:
        return math.ceil(len(self.items) / self.options.batch_size)

    def batches(self, generator: torch.Generator) -> Iterator[torch.Tensor]:
        order = torch.randperm(len(self.items), generator=generator, device=self.device)
        for start in range(0, len(order), self.options.batch_size):
            yield self.items[order[start : start + self.options.batch_size]]

    def loss(self, batch: torch.Tensor) -> torch.Tensor:
        loss = self._loss(batch)
        self._total += loss.detach().double()
        self._count += 1
        return loss

    def _loss(self, batch: torch.Tensor) -> torch.Tensor:
        content, collaborative = self.module(batch)
        return contrastive_loss(
            self.options.loss, content.float(), collaborative.float(), self.options.temperature, self.options.sigma
        )

    def _epoch_loss(self) -> float:
        """The mean loss of the batches trained since the last call (the untrained loss before any)."""
        if self._count == 0:
            size = self.options.batch_size
            losses = [float(self._loss(self.items[start : start + size])) for start in range(0, len(self.items), size)]
            return float(np.mean(losses))
        mean = float(self._total) / self._count
        self._total.zero_()
        self._count = 0
        return mean

    def validate(self) -> dict[str, float]:
        train_loss = self._epoch_loss()
        k, hits = self.options.validation_k, 0.0
        if len(self.val_rows):
            items = self.module.item_vectors(self.scoring, self.options.unit_items).float()
            users = torch.from_numpy(mean_of_heard(self.heard[self.val_rows], items.cpu().numpy()))
            _, top = top_k_inner_product(users, items, self.val_excluded, k, self.device)
            hits = hit_rate(top, self.val_truth)
        loss = train_loss if self.options.selection == "train_loss" else -hits
        return {"loss": loss, "train_loss": train_loss, f"HitRate@{k}": hits}


CollaborativeFactors = Callable[[Catalogue, TrainData, TrainData, BimodalOptions, int], np.ndarray]


def elsa_factors(
    catalogue: Catalogue, train: TrainData, validation: TrainData, options: BimodalOptions, seed: int
) -> np.ndarray:
    """ELSA's raw item factors (one row per catalogue item, what the original's Bimodal net reads) fitted on
    ``train``, every train user's pairs, with ``validation`` as its logged validation matrix, as the original's
    ELSA script does."""
    from audiorec.recommenders.elsa import fit_elsa

    return fit_elsa(train.heard, options.elsa_options(), seed, validation=validation.heard)


class BimodalRecommender(InnerProductScoring, NeuralRecommender):
    """Base of the three Bimodal kinds; a subclass names its kind and its :attr:`scoring`."""

    options_class = BimodalOptions
    scoring: ClassVar[str]
    collaborative_factors: ClassVar[CollaborativeFactors] = staticmethod(elsa_factors)
    """Where the collaborative side comes from (ELSA); tests substitute given factors."""

    options: BimodalOptions
    factors: np.ndarray | None = None

    def fit(self, catalogue: Catalogue, train: TrainData, validation: TrainData, files: RunFiles | None = None) -> None:
        """Fit ELSA on every train user (or take its factors from the resume state of an interrupted run of the
        same problem), then train the towers."""
        resumed = None
        if files is not None:
            resumed = load_state(files.resume_state, self.fingerprint(catalogue, train, validation))
        if resumed is not None:
            self.factors = resumed["module"]["collaborative_table"].float().cpu().numpy()
        else:
            self.factors = np.asarray(
                type(self).collaborative_factors(catalogue, train, validation, self.options, self.seed),
                dtype=np.float32,
            )
        super().fit(catalogue, train, validation, files)

    def restore(self, catalogue: Catalogue, train: TrainData, validation: TrainData, checkpoint: str | Path) -> None:
        """Load the towers and the ELSA factors from ``checkpoint`` without fitting ELSA again."""
        try:
            saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
            self.factors = saved["module"]["collaborative_table"].float().numpy()
        except (OSError, RuntimeError, KeyError, pickle.UnpicklingError) as error:
            raise ParameterError(f"{checkpoint}: not a checkpoint of model {self.kind}: {error}") from error
        super().restore(catalogue, train, validation, checkpoint)

    def build_module(self, catalogue: Catalogue, train: TrainData) -> BimodalNet:
        content = torch.from_numpy(pretrained_table(catalogue, self.options.standardize, self.kind))
        if self.factors is None:
            raise ParameterError(f"model {self.kind}: fit() or restore() builds the model")
        collaborative = torch.from_numpy(self.factors)
        if collaborative.shape[0] != len(catalogue):
            raise ParameterError(
                f"model {self.kind}: {collaborative.shape[0]} collaborative factor rows for {len(catalogue)} items"
            )
        return BimodalNet(content, collaborative, self.options.hidden_dim)

    def build_task(self, module: nn.Module, train: TrainData, validation: TrainData) -> BimodalTask:
        return BimodalTask(module, train, validation, self.options, self.scoring)

    def scoring_vectors(self, catalogue: Catalogue, train: TrainData) -> tuple[np.ndarray, np.ndarray]:
        """Item vectors in this kind's space, and each user as the mean of their train items' vectors (zeros for a
        user without any: every item then scores 0 and the ranking falls back to catalogue order)."""
        module = self.trained_module()
        module.eval()
        with torch.no_grad():
            items = module.item_vectors(self.scoring, self.options.unit_items).float().cpu().numpy()
        return mean_of_heard(train.heard, items), items

    def content_item_vectors(self, catalogue: Catalogue, embeddings: np.ndarray) -> np.ndarray:
        """The audio tower's output for tracks outside the catalogue (``bimodal_content`` only)."""
        module = self.trained_module()
        raw = torch.from_numpy(pretrained_rows(catalogue, embeddings, self.options.standardize, self.kind))
        module.eval()
        with torch.no_grad():
            vectors = module.content_tower(raw.to(self.device)).float().cpu().numpy()
        return l2_normalize(vectors) if self.options.unit_items else vectors


class BimodalContentRecommender(BimodalRecommender):
    """Items are audio tower outputs: it ranks catalogue tracks and new releases from their embeddings."""

    kind = "bimodal_content"
    scoring = "content"


class BimodalCollaborativeRecommender(BimodalRecommender):
    """Items are collaborative tower outputs of their ELSA factors."""

    kind = "bimodal_collaborative"
    scoring = "collaborative"


class BimodalAverageRecommender(BimodalRecommender):
    """Items are the mean of their two tower outputs."""

    kind = "bimodal_average"
    scoring = "average"
