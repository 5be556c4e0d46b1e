"""Implicit-feedback ALS (Hu, Koren & Volinsky, ICDM 2008), the matrix-factorisation reference, through the
``implicit`` library's CPU solver.

Hu et al. weight every (user, item) cell of the squared loss by a confidence c_ui and regress the preference
p_ui (1 for a train pair, else 0) on u·v. ``implicit`` (>= 0.5) takes the users × items matrix of confidences of
the positive cells directly and treats every missing cell as p = 0, c = 1. The paper's confidence is
c = 1 + α·r with r the play count; :class:`~audiorec.recommenders.base.TrainData` carries only which pairs were
heard (a boolean matrix: the split keeps plays per pair, but the fitted models receive the indexed pairs), so
r = 1 here and every train pair has confidence ``1 + alpha``. The matrix is built here and passed with
``implicit``'s own ``alpha`` left at 1, which would otherwise multiply it.

The factors start from ``implicit``'s seeded random initialisation (``random_state`` = the run's seed), so
rankings depend on the seed; the same seed and thread count give the same factors. BLAS is held to one thread
while fitting, as ``implicit`` asks: its solver parallelises over users itself, on ``num_threads`` threads (0:
torch's thread count, which the ranking stage caps at the job's allotment).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from audiorec.common.config import dataclass_from_mapping
from audiorec.errors import ParameterError
from audiorec.recommenders.base import Catalogue, FittedRecommender, TrainData
from audiorec.recommenders.inner_product import InnerProductScoring
from audiorec.recommenders.options import IALSOptions


def confidence_matrix(heard: sp.csr_matrix, alpha: float) -> sp.csr_matrix:
    """The users × items float32 confidences of the train pairs, c = 1 + ``alpha`` (the other cells: c = 1)."""
    confidence = sp.csr_matrix(heard).astype(np.float32, copy=True)
    confidence.data[:] = 1.0 + alpha
    return confidence


def _threads(options: IALSOptions) -> int:
    return options.num_threads or torch.get_num_threads()


def fit_ials(confidence: sp.csr_matrix, options: IALSOptions, seed: int) -> Any:
    """``implicit``'s CPU AlternatingLeastSquares fitted on ``confidence`` (users × items) from ``seed``."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=options.factors,
            regularization=options.regularization,
            alpha=1.0,
            iterations=options.iterations,
            num_threads=_threads(options),
            random_state=seed,
        )
        model.fit(confidence, show_progress=False)
    return model


class IALSRecommender(InnerProductScoring, FittedRecommender):
    """iALS fitted on every train user; a ranked user's vector is their factor row from that fit."""

    kind = "ials"

    def __init__(self, options: IALSOptions, seed: int) -> None:
        self.options = options
        self.seed = seed
        self.model: Any = None
        self.user_rows: dict[str, int] = {}

    @classmethod
    def from_options(cls, options: dict[str, Any], seed: int) -> IALSRecommender:
        return cls(dataclass_from_mapping(IALSOptions, options, "model ials"), seed)

    def fit(self, catalogue: Catalogue, train: TrainData) -> None:
        self.model = fit_ials(confidence_matrix(train.heard, self.options.alpha), self.options, self.seed)
        self.user_rows = {user: row for row, user in enumerate(np.asarray(train.user_ids).astype(str))}

    @property
    def item_factors(self) -> np.ndarray:
        """One float32 row per catalogue item of the fit (what the cold-start hybrid learns to predict)."""
        if self.model is None:
            raise ParameterError(f"model {self.kind} has no factors before fit()")
        return np.asarray(self.model.item_factors, dtype=np.float32)

    def user_factors(self, train: TrainData) -> np.ndarray:
        """The factor row of each user of ``train``: the fit's row for a user it saw (every train user), else
        the least-squares solution against the item factors from the user's heard items, as ALS computes it."""
        if self.model is None:
            raise ParameterError(f"model {self.kind} ranks only after fit()")
        users = np.asarray(train.user_ids).astype(str)
        rows = np.array([self.user_rows.get(user, -1) for user in users], dtype=np.int64)
        vectors = np.zeros((len(users), self.options.factors), dtype=np.float32)
        known = rows >= 0
        vectors[known] = self.model.user_factors[rows[known]]
        if not known.all():
            unseen = np.flatnonzero(~known)
            confidence = confidence_matrix(train.heard[unseen], self.options.alpha)
            from threadpoolctl import threadpool_limits

            with threadpool_limits(1, "blas"):
                vectors[unseen] = self.model.recalculate_user(np.arange(len(unseen)), confidence)
        return vectors

    def scoring_vectors(self, catalogue: Catalogue, train: TrainData) -> tuple[np.ndarray, np.ndarray]:
        items = self.item_factors
        if items.shape[0] != len(catalogue):
            raise ParameterError(f"model {self.kind} was fitted on {items.shape[0]} items, not this catalogue")
        return self.user_factors(train), items
