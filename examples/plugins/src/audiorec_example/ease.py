"""EASE (Steck, WWW 2019): a linear item-to-item model with a closed-form solution, a strong collaborative
reference that reads no audio.

With X the users × items matrix of train pairs and G = XᵀX, the item weights are B = I − P·diag(1/diag(P)) with
P = (G + λI)⁻¹, whose diagonal is zero (an item may not recommend itself); a user's scores are their row of X
times B. Fitting inverts one items × items matrix: memory grows with the square of the catalogue (a 56k-item
catalogue would need 12.5 GB in float32), so this example suits catalogues of a few tens of thousands of items.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg
import torch

from audiorec.common.config import dataclass_from_mapping
from audiorec.recommenders import Catalogue, FittedRecommender, TrainData
from audiorec.recommenders.retrieval import top_k_unheard
from audiorec_example.options import EASEOptions


class EASERecommender(FittedRecommender):
    """EASE, fitted on every train user's pairs before it ranks (audiorec calls :meth:`fit` first)."""

    def __init__(self, options: EASEOptions) -> None:
        self.options = options
        self.weights: np.ndarray | None = None

    @classmethod
    def from_options(cls, options: dict[str, Any], seed: int) -> EASERecommender:
        return cls(dataclass_from_mapping(EASEOptions, options, "model ease"))

    def fit(self, catalogue: Catalogue, train: TrainData) -> None:
        """Solve for B in float64 (the Gram matrix of play indicators is exact in it), keep it in float32."""
        heard = train.heard.astype(np.float64)
        gram = (heard.T @ heard).toarray()
        gram[np.diag_indices_from(gram)] += self.options.l2
        inverse = scipy.linalg.inv(gram, overwrite_a=True, check_finite=False)
        weights = -inverse / np.diag(inverse)[None, :]
        np.fill_diagonal(weights, 0.0)
        self.weights = weights.astype(np.float32)

    def recommend(self, catalogue: Catalogue, train: TrainData, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.weights is None:
            raise RuntimeError("EASE ranks only after fit()")
        weights = torch.as_tensor(self.weights)
        heard = train.heard.astype(np.float32)

        def scores(rows: slice) -> torch.Tensor:
            return torch.as_tensor(heard[rows].toarray()) @ weights

        return top_k_unheard(scores, train.excluded, k)
