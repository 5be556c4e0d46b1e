"""EASE (Steck, WWW 2019): a linear item-to-item model with a closed-form solution, the strong collaborative
reference that reads no audio.

With X the users × items matrix of train pairs (every train user) and P = (XᵀX + λI)⁻¹, the item weights are
B = I − P·diag(1/diag(P)): off the diagonal B_ij = −P_ij / P_jj, and the diagonal is zero, so an item may not
recommend itself. A user's scores are their row of X times B.

The fit inverts one items × items matrix, so its memory grows with the square of the catalogue and its time with
the cube: :func:`ease_memory_bytes` says how much, and a catalogue above ``max_items`` is refused before anything
is allocated. The solve is a Cholesky factorisation and inverse in place (half the work of a general inverse),
through torch's LAPACK (MKL in its x86 builds, on torch's threads, which the ranking stage caps at the job's
allotment): the OpenBLAS 0.3.30 that scipy's wheels ship crashed in its two-thread Cholesky from 16k items on an
AVX-512 machine. It is float64 by default: the Gram matrix of play indicators holds counts, exact in float64, and
its inverse is exact to ~1e-12, so B does not depend on the machine. ``dtype: float32`` solves in single precision
in the weights' own array, a third of the memory (the regularised Gram matrix is well conditioned for λ in the
hundreds, so the rankings rarely change). Only float32 weights are kept for ranking.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from audiorec.common.config import dataclass_from_mapping
from audiorec.errors import ParameterError
from audiorec.recommenders.base import Catalogue, FittedRecommender, TrainData
from audiorec.recommenders.options import EASEOptions
from audiorec.recommenders.retrieval import top_k_unheard

GRAM_BLOCK_ELEMENTS = 1 << 24
"""Gram matrix entries computed per sparse product, so the sparse temporary stays small on any catalogue."""


def ease_memory_bytes(n_items: int, dtype: str = "float64") -> int:
    """Bytes the fit holds at its peak on ``n_items`` items: the items × items solve, done in place, plus the
    float32 weights (a copy after a float64 solve, the same array after a float32 one)."""
    return n_items * n_items * (8 + 4 if dtype == "float64" else 4)


def _readable(n_bytes: int) -> str:
    """``n_bytes`` in the largest binary unit that keeps a number >= 1 (``35.3 GiB``)."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n_bytes >= size:
            return f"{n_bytes / size:.1f} {unit}"
    return f"{n_bytes} bytes"


def gram_matrix(heard: sp.csr_matrix, dtype: str = "float64") -> np.ndarray:
    """XᵀX as a dense ``dtype`` array, filled a block of rows at a time."""
    matrix = sp.csr_matrix(heard, dtype=dtype)
    transposed = matrix.T.tocsr()
    n_items = matrix.shape[1]
    gram = np.empty((n_items, n_items), dtype=dtype)
    step = max(1, GRAM_BLOCK_ELEMENTS // max(n_items, 1))
    for start in range(0, n_items, step):
        stop = min(start + step, n_items)
        gram[start:stop] = (transposed[start:stop] @ matrix).toarray()
    return gram


def ease_weights(heard: sp.csr_matrix, l2: float, dtype: str = "float64") -> np.ndarray:
    """B = I − P·diag(1/diag(P)) with P = (XᵀX + ``l2``·I)⁻¹, as float32 (``heard`` is X, users × items)."""
    gram = gram_matrix(heard, dtype)
    gram[np.diag_indices(gram.shape[0])] += l2
    # The transpose of the C-ordered symmetric matrix is the same matrix in column-major order, which LAPACK
    # factors and inverts in place: no second items × items array is allocated.
    matrix = torch.from_numpy(gram).mT
    info = torch.empty((), dtype=torch.int32)
    torch.linalg.cholesky_ex(matrix, upper=False, out=(matrix, info))
    if int(info) != 0:
        raise ParameterError(
            f"model ease: XᵀX + l2·I is not positive definite (LAPACK info {int(info)}); raise option l2 (got {l2})"
        )
    torch.cholesky_inverse(matrix, upper=False, out=matrix)  # the whole symmetric P, in place
    gram /= -np.diag(gram).copy()[None, :]
    np.fill_diagonal(gram, 0.0)
    return gram if gram.dtype == np.float32 else gram.astype(np.float32)


class EASERecommender(FittedRecommender):
    """EASE, fitted on every train user's pairs before it ranks (the stages call :meth:`fit` first)."""

    kind = "ease"

    def __init__(self, options: EASEOptions) -> None:
        self.options = options
        self.weights: np.ndarray | None = None

    @classmethod
    def from_options(cls, options: dict[str, Any], seed: int) -> EASERecommender:
        return cls(dataclass_from_mapping(EASEOptions, options, "model ease"))

    def fit(self, catalogue: Catalogue, train: TrainData) -> None:
        """Refuse a catalogue above ``max_items`` (naming the memory it would take), else solve for B."""
        n_items = train.heard.shape[1]
        if n_items > self.options.max_items:
            need = _readable(ease_memory_bytes(n_items, self.options.dtype))
            per_item = 12 if self.options.dtype == "float64" else 4
            raise ParameterError(
                f"model ease option max_items is {self.options.max_items}, but the catalogue has {n_items} items: "
                f"the fit would need {need} (items² x {per_item} bytes with dtype {self.options.dtype}); raise "
                f"max_items on a machine with that much memory, or use dtype float32 "
                f"({_readable(ease_memory_bytes(n_items, 'float32'))})"
            )
        self.weights = ease_weights(train.heard, self.options.l2, self.options.dtype)

    def recommend(self, catalogue: Catalogue, train: TrainData, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores X_u·B of every catalogue item, a block of users at a time, heard items left out."""
        if self.weights is None or self.weights.shape[0] != len(catalogue):
            raise ParameterError("model ease ranks only after fit() on the same catalogue")
        weights = self.weights
        heard = sp.csr_matrix(train.heard, dtype=np.float32)

        def scores(rows: slice) -> np.ndarray:
            return np.asarray(heard[rows] @ weights)

        return top_k_unheard(scores, train.excluded, k)
