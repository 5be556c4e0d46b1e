"""RP3beta (Paudel et al., ACM TiiS 2017): a random walk user → item → user → item, with popular targets
discounted, as an item-to-item model. Simple and, on listening data, a strong collaborative reference that reads
no audio (Ferrari Dacrema et al., RecSys 2019, found it beating most neural recommenders of its time).

With X the users × items matrix of train pairs, P_ui its rows and P_iu its columns normalised to sum one (each
entry raised to ``alpha``), the walk's item-to-item weights are W = P_iu · P_ui; each target item j is divided by
its number of listeners to the power ``beta``, the diagonal is zeroed and every item keeps its ``neighbours``
largest weights. A user's scores are their row of X times W. W is held dense (items² × 4 bytes), which suits
catalogues of a few tens of thousands of items.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from audiorec.common.config import dataclass_from_mapping
from audiorec.recommenders import Catalogue, FittedRecommender, TrainData
from audiorec.recommenders.retrieval import top_k_unheard
from audiorec_example.options import RP3betaOptions


def rp3beta_weights(heard: sp.csr_matrix, alpha: float, beta: float, neighbours: int) -> np.ndarray:
    """The items × items weights W of the module docstring, float32, each row cut to its ``neighbours`` largest."""
    plays = sp.csr_matrix(heard, dtype=np.float64)
    user_degree = np.asarray(plays.sum(axis=1)).ravel()
    item_degree = np.asarray(plays.sum(axis=0)).ravel()
    users_to_items = sp.diags(1.0 / np.maximum(user_degree, 1.0)) @ plays
    items_to_users = sp.diags(1.0 / np.maximum(item_degree, 1.0)) @ plays.T.tocsr()
    weights = (items_to_users.power(alpha) @ users_to_items.power(alpha)).toarray()
    weights /= np.power(np.maximum(item_degree, 1.0), beta)[None, :]
    np.fill_diagonal(weights, 0.0)
    if neighbours < weights.shape[1]:
        dropped = np.argpartition(-weights, neighbours, axis=1)[:, neighbours:]
        np.put_along_axis(weights, dropped, 0.0, axis=1)
    return weights.astype(np.float32)


class RP3betaRecommender(FittedRecommender):
    """RP3beta, fitted on every train user's pairs before it ranks (audiorec calls :meth:`fit` first)."""

    def __init__(self, options: RP3betaOptions) -> None:
        self.options = options
        self.weights: np.ndarray | None = None

    @classmethod
    def from_options(cls, options: dict[str, Any], seed: int) -> RP3betaRecommender:
        return cls(dataclass_from_mapping(RP3betaOptions, options, "model rp3beta"))

    def fit(self, catalogue: Catalogue, train: TrainData) -> None:
        self.weights = rp3beta_weights(train.heard, self.options.alpha, self.options.beta, self.options.neighbours)

    def recommend(self, catalogue: Catalogue, train: TrainData, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.weights is None:
            raise RuntimeError("RP3beta ranks only after fit()")
        weights = torch.as_tensor(self.weights)
        heard = train.heard.astype(np.float32)
        return top_k_unheard(lambda rows: torch.as_tensor(heard[rows].toarray()) @ weights, train.excluded, k)
