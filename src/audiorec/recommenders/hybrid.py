"""The audio-to-CF cold-start hybrid of van den Oord, Dieleman & Schrauwen (NeurIPS 2013): collaborative item
factors where the train log has them, predicted from audio where it has none.

It fits iALS on every train user (:mod:`audiorec.recommenders.ials`), then learns a map from a backbone's embedding
of a catalogue track to that track's iALS item factors, and ranks by iALS user factors · *predicted* item factors
for every item, catalogue tracks included. Its warm rows therefore measure how much of the collaborative space
the audio recovers (iALS itself, beside it, is what a perfect map would give), and its cold-start rows rank new
releases exactly as catalogue tracks are ranked. Two maps (option ``mapping``):

* ``ridge``: linear least squares with an L2 penalty ``ridge_l2``, in closed form, with an unpenalised intercept
  (the inputs are centred and the intercept is the targets' mean, as scikit-learn's ``Ridge(fit_intercept=True)``);
* ``mlp``: Linear(d, ``hidden``) → ReLU → Linear(``hidden``, ``factors``) trained with Adam on the mean squared
  error, seeded; ``validation_fraction`` of the items (10 %) is held out, and the epoch with the lowest held-out
  error is kept (early stopping after ``patience`` epochs without improvement).

The inputs are z-scored per dimension with the catalogue's statistics, and a new track is standardised with the
same statistics (:func:`~audiorec.recommenders.vectors.zscore_like`), so it lands where catalogue tracks do. The map
is learnt on the catalogue items with at least one train pair: an item nobody heard has no collaborative factors
to learn (ALS drives its factors towards zero).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch

from audiorec.common.config import dataclass_from_mapping
from audiorec.errors import ParameterError
from audiorec.recommenders.base import Catalogue, FittedRecommender, TrainData
from audiorec.recommenders.ials import IALSRecommender
from audiorec.recommenders.inner_product import InnerProductScoring
from audiorec.recommenders.options import CFHybridOptions, IALSOptions
from audiorec.recommenders.vectors import pretrained_rows, pretrained_table


@dataclass(frozen=True)
class LinearMap:
    """``inputs @ weights + bias``: the ridge map."""

    weights: np.ndarray
    bias: np.ndarray

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        return (np.asarray(inputs, dtype=np.float64) @ self.weights + self.bias).astype(np.float32)


def fit_ridge_map(inputs: np.ndarray, targets: np.ndarray, l2: float) -> LinearMap:
    """Minimise ‖Y − XW − 1b‖² + ``l2``·‖W‖² in float64: W = (XcᵀXc + l2·I)⁻¹XcᵀYc on centred X and Y, and
    b = ȳ − x̄W (the intercept is not penalised)."""
    x = np.asarray(inputs, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    centred = x - x_mean
    system = centred.T @ centred
    system[np.diag_indices_from(system)] += l2
    weights = np.linalg.solve(system, centred.T @ (y - y_mean))
    return LinearMap(weights=weights, bias=y_mean - x_mean @ weights)


@dataclass
class MLPMap:
    """The trained two-layer network, and its held-out mean squared error before training and after each epoch."""

    network: torch.nn.Sequential
    heldout_mse: list[float] = field(default_factory=list)
    best_epoch: int = 0

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.network(torch.as_tensor(np.asarray(inputs, dtype=np.float32))).numpy()


def fit_mlp_map(inputs: np.ndarray, targets: np.ndarray, options: CFHybridOptions, seed: int) -> MLPMap:
    """Train the MLP map on ``inputs`` → ``targets`` with early stopping on a seeded held-out share of the rows."""
    x = torch.as_tensor(np.asarray(inputs, dtype=np.float32))
    y = torch.as_tensor(np.asarray(targets, dtype=np.float32))
    order = np.random.default_rng(seed).permutation(len(x))
    n_heldout = min(max(1, round(options.validation_fraction * len(x))), len(x) - 1) if len(x) > 1 else 0
    heldout, fitted = torch.as_tensor(order[:n_heldout]), torch.as_tensor(order[n_heldout:])
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = torch.nn.Sequential(
            torch.nn.Linear(x.shape[1], options.hidden), torch.nn.ReLU(), torch.nn.Linear(options.hidden, y.shape[1])
        )
    optimizer = torch.optim.Adam(network.parameters(), lr=options.learning_rate)
    loss = torch.nn.MSELoss()

    def heldout_error() -> float:
        with torch.no_grad():
            return float(loss(network(x[heldout]), y[heldout])) if n_heldout else 0.0

    result = MLPMap(network, [heldout_error()])
    best_state = {name: value.clone() for name, value in network.state_dict().items()}
    for epoch in range(1, options.epochs + 1):
        shuffled = fitted[torch.randperm(len(fitted), generator=generator)]
        for start in range(0, len(shuffled), options.batch_size):
            batch = shuffled[start : start + options.batch_size]
            optimizer.zero_grad()
            loss(network(x[batch]), y[batch]).backward()
            optimizer.step()
        result.heldout_mse.append(heldout_error())
        if result.heldout_mse[-1] < result.heldout_mse[result.best_epoch] or not n_heldout:
            result.best_epoch = epoch
            best_state = {name: value.clone() for name, value in network.state_dict().items()}
        elif epoch - result.best_epoch >= options.patience:
            break
    network.load_state_dict(best_state)
    return result


class CFHybridRecommender(InnerProductScoring, FittedRecommender):
    """iALS user factors · item factors predicted from audio, for catalogue and new tracks alike."""

    kind = "cf_hybrid"

    def __init__(self, options: CFHybridOptions, seed: int) -> None:
        self.options = options
        self.seed = seed
        ials_options = IALSOptions(**{option.name: getattr(options, option.name) for option in fields(IALSOptions)})
        self.collaborative = IALSRecommender(ials_options, seed)
        self.mapping: LinearMap | MLPMap | None = None
        self.item_vectors: np.ndarray | None = None

    @classmethod
    def from_options(cls, options: dict[str, Any], seed: int) -> CFHybridRecommender:
        return cls(dataclass_from_mapping(CFHybridOptions, options, "model cf_hybrid"), seed)

    def fit(self, catalogue: Catalogue, train: TrainData) -> None:
        """Fit iALS, then the map from standardised embeddings to item factors on the items heard in train."""
        inputs = pretrained_table(catalogue, True, self.kind)
        self.collaborative.fit(catalogue, train)
        heard = np.asarray(train.heard.sum(axis=0)).ravel() > 0
        if not heard.any():
            raise ParameterError(f"model {self.kind}: no catalogue item has a train pair to learn the map from")
        targets = self.collaborative.item_factors[heard]
        if self.options.mapping == "ridge":
            self.mapping = fit_ridge_map(inputs[heard], targets, self.options.ridge_l2)
        else:
            self.mapping = fit_mlp_map(inputs[heard], targets, self.options, self.seed)
        self.item_vectors = self.mapping.predict(inputs)

    def scoring_vectors(self, catalogue: Catalogue, train: TrainData) -> tuple[np.ndarray, np.ndarray]:
        if self.item_vectors is None or len(self.item_vectors) != len(catalogue):
            raise ParameterError(f"model {self.kind} ranks only after fit() on the same catalogue")
        return self.collaborative.user_factors(train), self.item_vectors

    def content_item_vectors(self, catalogue: Catalogue, embeddings: np.ndarray) -> np.ndarray:
        if self.mapping is None:
            raise ParameterError(f"model {self.kind} scores new items only after fit()")
        return self.mapping.predict(pretrained_rows(catalogue, embeddings, True, self.kind))
