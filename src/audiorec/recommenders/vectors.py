"""The embedding arithmetic every content-based recommender starts from: standardised item rows, user profiles
as the mean of their heard items, and unit-norm rows for cosine scores.

KNN ranks with these vectors directly and the neural models start from them (the frozen item table, the
initial user table), so both must compute them the same way for their results to be comparable.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
import torch

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
    """Each user's mean item vector over their distinct heard items (zeros for a user with none).

    The sparse product gathers a whole item row per heard pair, so it is bound by memory traffic (5M pairs of
    4800-d rows move ~90 GB); scipy releases the GIL, so blocks of users run on torch's threads side by side.
    """
    matrix = sp.csr_matrix(heard, dtype=np.float32)
    items = np.ascontiguousarray(items, dtype=np.float32)
    counts = np.maximum(np.asarray(matrix.sum(axis=1)).ravel(), 1.0)
    means = np.empty((matrix.shape[0], items.shape[1]), dtype=np.float32)

    def fill(rows: slice) -> None:
        means[rows] = (matrix[rows] @ items) / counts[rows, None]

    step = max(1, -(-matrix.shape[0] // (4 * torch.get_num_threads())))
    with ThreadPoolExecutor(torch.get_num_threads()) as pool:
        list(pool.map(fill, [slice(start, start + step) for start in range(0, matrix.shape[0], step)]))
    return means


def l2_normalize(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit norm; all-zero rows stay zero instead of becoming NaN.

    In torch, on its threads: numpy's version wrote two fresh copies of the matrix, 8 s for 57k 4800-d items.
    """
    rows = torch.as_tensor(np.asarray(matrix, dtype=np.float32))
    norms = torch.linalg.vector_norm(rows, dim=1, keepdim=True)
    return (rows / torch.where(norms > 0, norms, torch.ones_like(norms))).numpy()
