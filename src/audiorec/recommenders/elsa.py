"""ELSA, the scalable linear shallow autoencoder of Vančura, Alves, Kasalický & Kordík (RecSys 2022), as the journal
version of Tamm & Aljanaki trains it with the ``elsarec`` package (0.1.4).

Each item has a factor row; ``A`` is the factor table with rows scaled to unit norm. A user's interaction row ``x``
(binary, over the catalogue) is reconstructed as ``x·A·Aᵀ − x``: the ``−x`` removes each heard item's
self-similarity (``‖a_i‖² = 1``), which is what the zero diagonal of EASE does. The loss is elsarec's normalised
MSE (:func:`nmse_loss`): both the prediction and the target row are scaled to unit norm and the squared error is
averaged over every entry of the batch. The factors start from a Xavier-uniform draw, as elsarec's constructor
makes them right after torch is seeded, so the same seed gives elsarec's initial factors.

Ranking: a user's score of item ``i`` is ``x·A·a_iᵀ − x_i``; the ``−x_i`` term is non-zero only on heard items,
which every ranking removes anyway, so the unheard scores are exactly the inner product of the user vector
``x·A`` and the item vector ``a_i`` (:class:`~audiorec.recommenders.inner_product.InnerProductScoring`). ELSA is
collaborative: it reads no audio and cannot rank an item nobody heard in train.

For models built on ELSA's item space, :func:`fit_elsa` trains it on any users × items matrix and returns the raw
factors (what elsarec's ``get_items_embeddings`` returns and the journal's Bimodal net starts from);
:func:`unit_rows` gives the normalised ``A``. :class:`ELSATask` trains any module with an ``item_factors()``
method, which is how the audio Hybrid (:mod:`audiorec.recommenders.audio_elsa`) shares the loss and the batches.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from audiorec.common.devices import default_device
from audiorec.errors import ParameterError
from audiorec.evaluation.metrics import hit_rate
from audiorec.recommenders import trainer
from audiorec.recommenders.base import Catalogue, RunFiles, TrainData
from audiorec.recommenders.inner_product import InnerProductScoring, top_k_inner_product
from audiorec.recommenders.neural import NeuralRecommender
from audiorec.recommenders.options import ELSAOptions
from audiorec.recommenders.trainer import TrainingTask
from audiorec.storage.checkpointing import data_fingerprint


def unit_rows(factors: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit L2 norm (``F.normalize``, so an all-zero row stays zero)."""
    return F.normalize(factors, dim=-1)


def reconstruct(rows: torch.Tensor, item_factors: torch.Tensor) -> torch.Tensor:
    """ELSA's prediction ``x·A·Aᵀ − x`` of dense interaction ``rows`` (batch × items) with unit-norm factors A,
    computed as elsarec computes it (dense products, so the same floating-point results)."""
    return (rows @ item_factors) @ item_factors.T - rows


def nmse_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """elsarec's normalised MSE: the mean over every entry of the squared difference of the row-normalised
    prediction and row-normalised target (rows of the batch are users; an all-zero row stays zero)."""
    return F.mse_loss(unit_rows(prediction), unit_rows(target), reduction="mean")


def dense_rows(matrix: sp.csr_matrix, rows: np.ndarray, device: torch.device) -> torch.Tensor:
    """Rows of a sparse users × items matrix as a dense float32 tensor on ``device``, built there from the
    column indices so that only the non-zeros cross to a GPU."""
    part = matrix[rows]
    counts = np.diff(part.indptr)
    dense = torch.zeros(part.shape, dtype=torch.float32, device=device)
    row_index = torch.as_tensor(np.repeat(np.arange(len(rows)), counts), device=device)
    columns = torch.as_tensor(part.indices.astype(np.int64), device=device)
    dense[row_index, columns] = torch.as_tensor(part.data.astype(np.float32), device=device)
    return dense


class ELSA(nn.Module):
    """The trainable factor table (``n_items × factors``), Xavier-uniform initialised like elsarec's."""

    def __init__(self, n_items: int, factors: int) -> None:
        super().__init__()
        self.factors = nn.Parameter(nn.init.xavier_uniform_(torch.empty(n_items, factors)))

    def item_factors(self) -> torch.Tensor:
        """``A``: the factor rows at unit norm."""
        return unit_rows(self.factors)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return reconstruct(rows, self.item_factors())


class ELSATask(TrainingTask):
    """ELSA's training problem for the trainer: batches of whole user rows, input = target, normalised MSE.

    Batches follow the row order (elsarec's ``fit`` default) or a fresh permutation per epoch drawn from the
    trainer's generator (``shuffle``). The validation loss is the Hybrid script's: each non-empty row of the
    validation matrix reconstructs itself, and the loss is the mean of the per-batch losses (batches of
    ``batch_size`` in row order); elsarec's own validation also averages in the empty rows (loss 0), which
    changes only the logged figure of ``elsa``, whose training never reads it. With ``excluded`` the validation
    also reports HitRate@``validation_k`` of the ranking ``x_train·A`` (train rows of the same users) against the
    validation pairs, for the training log.
    """

    def __init__(
        self,
        module: nn.Module,
        train: sp.csr_matrix,
        validation: sp.csr_matrix,
        options: ELSAOptions,
        excluded: sp.csr_matrix | None = None,
    ) -> None:
        if train.shape != validation.shape:
            raise ParameterError(f"ELSA: validation matrix {validation.shape} does not match train {train.shape}")
        self.module = module
        self.device = next(module.parameters()).device
        self.options = options
        self.train_rows = sp.csr_matrix(train, dtype=np.float32)
        self.val_users = np.flatnonzero(validation.getnnz(axis=1) > 0)
        self.val_rows = sp.csr_matrix(validation, dtype=np.float32)[self.val_users]
        self.excluded = None if excluded is None else sp.csr_matrix(excluded)[self.val_users]

    def make_optimizer(self, parameters: list[nn.Parameter], learning_rate: float) -> torch.optim.Optimizer:
        if self.options.optimizer == "nadam":
            return torch.optim.NAdam(parameters, lr=learning_rate)
        return torch.optim.Adam(parameters, lr=learning_rate)

    def n_batches(self) -> int:
        return math.ceil(self.train_rows.shape[0] / self.options.batch_size)

    def batches(self, generator: torch.Generator) -> Iterator[torch.Tensor]:
        n_users = self.train_rows.shape[0]
        if self.options.shuffle:
            order = torch.randperm(n_users, generator=generator, device=generator.device).cpu().numpy()
        else:
            order = np.arange(n_users)
        for start in range(0, n_users, self.options.batch_size):
            yield dense_rows(self.train_rows, order[start : start + self.options.batch_size], self.device)

    def loss(self, batch: torch.Tensor) -> torch.Tensor:
        return nmse_loss(self.module(batch), batch)

    def validate(self) -> dict[str, float]:
        size, losses = self.options.batch_size, []
        for start in range(0, len(self.val_users), size):
            rows = dense_rows(self.val_rows, np.arange(start, min(start + size, len(self.val_users))), self.device)
            losses.append(float(nmse_loss(self.module(rows), rows)))
        figures = {"loss": float(np.mean(losses)) if losses else 0.0}
        if self.excluded is not None and len(self.val_users):
            k = self.options.validation_k
            items = self.module.item_factors().float()
            users = user_vectors(self.train_rows[self.val_users], items)
            _, top = top_k_inner_product(users, items, self.excluded, k, self.device)
            figures[f"HitRate@{k}"] = hit_rate(top, self.val_rows)
        return figures


def user_vectors(rows: sp.csr_matrix, item_factors: torch.Tensor) -> torch.Tensor:
    """``x·A`` for each sparse interaction row ``x``: the sum of the user's heard items' factors."""
    coo = sp.coo_matrix(rows, dtype=np.float32)
    index = torch.as_tensor(np.vstack([coo.row, coo.col]).astype(np.int64))
    sparse = torch.sparse_coo_tensor(index, torch.as_tensor(coo.data), coo.shape, check_invariants=False)
    sparse = sparse.to(item_factors.device)
    return torch.sparse.mm(sparse, item_factors)


def fit_elsa(
    heard: sp.spmatrix,
    options: ELSAOptions,
    seed: int,
    device: torch.device | None = None,
    validation: sp.spmatrix | None = None,
    files: RunFiles | None = None,
) -> np.ndarray:
    """Train ELSA on a users × items interaction matrix and return its raw factors (``n_items × factors``).

    The factors are drawn right after ``torch.manual_seed(seed)``, batches and the rest follow the trainer's
    seeding, so the same matrix, options and seed give the same factors on the CPU. ``validation`` (same shape;
    default: ``heard`` itself) gives the logged validation loss; ``files`` checkpoint every epoch and resume an
    interrupted run. The raw rows are returned, as elsarec's ``get_items_embeddings`` does; ELSA's item space is
    their unit-norm version (:func:`unit_rows`).
    """
    matrix = sp.csr_matrix(heard, dtype=np.float32)
    check = sp.csr_matrix(validation if validation is not None else heard, dtype=np.float32)
    device = device or default_device()
    torch.manual_seed(seed)
    module = ELSA(matrix.shape[1], options.factors).to(device)
    task = ELSATask(module, matrix, check, options)
    fingerprint = data_fingerprint("fit_elsa", options, seed, matrix, check)
    trainer.train(task, options, seed, fingerprint=fingerprint, files=files, description=f"elsa seed{seed}")
    return module.factors.detach().cpu().numpy()


class ELSARecommender(InnerProductScoring, NeuralRecommender):
    """ELSA on the train interactions: ranks by ``x·A·a_iᵀ`` over unheard items; reads no audio."""

    kind = "elsa"
    options_class = ELSAOptions

    def build_module(self, catalogue: Catalogue, train: TrainData) -> ELSA:
        return ELSA(len(catalogue), self.options.factors)

    def build_task(self, module: nn.Module, train: TrainData, validation: TrainData) -> ELSATask:
        return ELSATask(module, train.heard, validation.heard, self.options, excluded=train.excluded)

    def scoring_vectors(self, catalogue: Catalogue, train: TrainData) -> tuple[np.ndarray, np.ndarray]:
        """``x·A`` of each user's train row (any user, fitted or not: ELSA has no user parameters) and ``A``."""
        module = self.trained_module()
        if module.factors.shape[0] != len(catalogue):
            raise ParameterError(f"model {self.kind} ranks only the catalogue it was fitted on")
        with torch.no_grad():
            items = module.item_factors().float()
            users = user_vectors(train.heard, items)
            return users.cpu().numpy(), items.cpu().numpy()
