"""The embedding arithmetic every content-based recommender starts from: standardised item rows, user profiles
as the mean of their heard items, and unit-norm rows for cosine scores.

KNN ranks with these vectors directly and the neural models start from them (the frozen item table, the
initial user table), so both must compute them the same way for their results to be comparable.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from audiorec.errors import ParameterError
from audiorec.recommenders.base import Catalogue


def zscore_like(vectors: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``vectors`` z-scored per dimension with ``reference``'s mean and standard deviation (constant dimensions are
    only centred). Tracks outside a catalogue are standardised with the catalogue's statistics, so that they land
    where catalogue tracks do."""
    reference = np.asarray(reference, dtype=np.float32)
    scale = reference.std(axis=0)
    return ((np.asarray(vectors, dtype=np.float32) - reference.mean(axis=0)) / np.where(scale > 0, scale, 1.0)).astype(
        np.float32
    )


def pretrained_table(catalogue: Catalogue, standardize: bool, model: str) -> np.ndarray:
    """The catalogue's embeddings as float32, z-scored per dimension when ``standardize`` is set.

    Hand-crafted features (MFCC statistics) differ in scale by orders of magnitude: unscaled, a few
    dimensions dominate every dot product and a learning rate of 1e-3 barely moves user vectors of norm ~1e3.
    Standardising is an invertible linear map, so the table carries the same information.
    """
    if catalogue.embeddings is None:
        raise ParameterError(f"{model} needs item embeddings; give the model a backbone")
    return pretrained_rows(catalogue, catalogue.embeddings, standardize, model)


def pretrained_rows(catalogue: Catalogue, embeddings: np.ndarray, standardize: bool, model: str) -> np.ndarray:
    """``embeddings`` in the catalogue's item space: z-scored with the catalogue's statistics when ``standardize``
    is set, so that a track outside the catalogue (a new release) lands where catalogue tracks do."""
    if catalogue.embeddings is None:
        raise ParameterError(f"{model} needs item embeddings; give the model a backbone")
    rows = np.asarray(embeddings, dtype=np.float32)
    if not np.isfinite(rows).all():
        raise ParameterError(f"{model}: the embeddings table holds non-finite values")
    if standardize:
        rows = zscore_like(rows, catalogue.embeddings)
    return np.ascontiguousarray(rows, dtype=np.float32)


def mean_of_heard(heard: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
    """Each user's mean item vector over their distinct heard items (zeros for a user with none)."""
    matrix = sp.csr_matrix(heard, dtype=np.float32)
    counts = np.asarray(matrix.sum(axis=1)).ravel()
    return np.asarray(matrix @ items / np.maximum(counts, 1.0)[:, None], dtype=np.float32)


def l2_normalize(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit norm; all-zero rows stay zero instead of becoming NaN."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms > 0, norms, 1.0)).astype(np.float32)
