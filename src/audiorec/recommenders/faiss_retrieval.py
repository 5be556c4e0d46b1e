"""Top-K by inner product through a FAISS index, with every heard track removed exactly, whatever the history.

The exact backend (:mod:`audiorec.recommenders.retrieval`) scores every user against every item. A FAISS index
(``Flat``: exact inner product through FAISS's kernels; ``IVF…``/``HNSW…``: approximate) instead returns each
user's best items, and removing heard items afterwards is where a naive search goes wrong: fetching K + |history|
neighbours fails on FAISS's GPU search, which returns at most 2048 per query, and with it any user whose history
is longer. Here the exclusion never depends on a fetch being large enough:

1. A user with ``h`` heard candidates asks for ``K + h + 1`` neighbours, rounded up to a power of two so that
   users share a few fetch sizes (one search call each), capped at :data:`FETCH_CAP` (the GPU's limit, used
   on the CPU too so that both behave alike). A user whose need is above the cap skips the index.
2. Heard items are dropped from what came back, and the rest is sorted by score, ties by the lower item index.
3. A user's list is accepted only if it is provably the ranking of what the index returned: either the fetch
   holds every candidate, or every unheard candidate, or its K-th unheard item scores strictly above the
   lowest score fetched (every item not fetched scores at most that for ``Flat``, so nothing outside the fetch
   could enter or break a tie at the cut).
4. Every other user (history over the cap, a tie at the fetch boundary, an approximate index that returned
   too few unheard items) is ranked by the exact backend: that user's row scored against every item, heard
   items masked, top K.

So ``Flat`` returns the exact backend's items for every user (scores equal to float rounding, since FAISS's
BLAS sums in its own order), and no index ever returns a heard item or fewer than K items when the catalogue
has K unheard ones. The IVF lists are trained on the items with a fixed k-means seed, so a ranking repeats.

FAISS runs on the GPU when faiss is a GPU build and sees one (``Flat`` and ``IVF`` indexes; HNSW has no GPU
version and stays on the CPU); its CPU threads follow torch's, which the ranking job caps at its allotment.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from audiorec.common.devices import default_device
from audiorec.errors import ParameterError
from audiorec.recommenders.retrieval import top_k_unheard
from audiorec.recommenders.retrieval_options import GPU_MAX_PROBES, INSTALL_HINT, RetrievalOptions

log = logging.getLogger(__name__)

FETCH_CAP = 2048
"""Most neighbours asked of one search: FAISS's GPU limit (``GPU_MAX_SELECTION_K``)."""

MIN_FETCH = 64
"""Smallest fetch size, so that the shortest histories share one search call."""

TRAINING_SEED = 1234
"""Seed of the k-means that trains an IVF index's lists (FAISS's own default, set explicitly)."""

BATCH_RESULTS = 1 << 23
"""Neighbours per search call (queries by fetch size): 96 MB of scores and labels."""


@dataclass(frozen=True)
class FaissRanking:
    """A ranking through FAISS and what it cost.

    ``scores``/``items`` follow :func:`~audiorec.recommenders.retrieval.top_k_unheard`'s contract;
    ``exact_users`` are the rows ranked by the exact backend instead (step 4 of the module docstring).
    """

    scores: np.ndarray
    items: np.ndarray
    exact_users: np.ndarray
    build_s: float
    search_s: float
    exact_s: float
    device: str


def import_faiss() -> Any:
    """The faiss module, or an error saying how to install it."""
    try:
        import faiss
    except ImportError as error:
        raise ParameterError(f"retrieval.backend 'faiss' needs the faiss package: {INSTALL_HINT}") from error
    return faiss


def build_index(item_vectors: np.ndarray, options: RetrievalOptions) -> tuple[Any, str]:
    """A FAISS inner-product index over ``item_vectors`` (row = item index), and where it searches.

    An IVF index's lists are trained on the items themselves with :data:`TRAINING_SEED`.
    """
    faiss = import_faiss()
    faiss.omp_set_num_threads(torch.get_num_threads())
    n_items, dim = item_vectors.shape
    index = faiss.index_factory(dim, options.index, faiss.METRIC_INNER_PRODUCT)
    if options.family == "ivf":
        if n_items < options.nlist:
            raise ParameterError(
                f"retrieval.index {options.index!r} needs at least {options.nlist} items to train its lists; "
                f"the catalogue has {n_items}"
            )
        ivf = faiss.extract_index_ivf(index)
        ivf.cp.seed = TRAINING_SEED
        ivf.nprobe = options.nprobe
    if not index.is_trained:
        index.train(item_vectors)
    index.add(item_vectors)
    if options.family == "hnsw":
        faiss.downcast_index(index).hnsw.efSearch = options.ef_search
    return _on_gpu(faiss, index, options)


def _on_gpu(faiss: Any, index: Any, options: RetrievalOptions) -> tuple[Any, str]:
    """The index moved to the first GPU when this faiss build has GPU support and sees one (not HNSW)."""
    if options.family == "hnsw" or not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0:
        return index, "cpu"
    if options.family == "ivf" and options.nprobe > GPU_MAX_PROBES:
        raise ParameterError(f"retrieval.nprobe {options.nprobe}: FAISS's GPU search probes at most {GPU_MAX_PROBES}")
    resources = faiss.StandardGpuResources()
    gpu_index = faiss.index_cpu_to_gpu(resources, 0, index)
    gpu_index.referenced_objects = [resources]  # the resources must outlive the index
    return gpu_index, "cuda:0"


def fetch_sizes(heard_counts: np.ndarray, k: int, n_items: int) -> np.ndarray:
    """Neighbours to ask for per user (0: rank exactly): ``k + h + 1`` rounded up to a power of two, at most
    the catalogue; 0 where that exceeds :data:`FETCH_CAP` and the catalogue is larger than the cap."""
    need = k + heard_counts.astype(np.int64) + 1
    rounded = np.maximum(MIN_FETCH, 1 << np.ceil(np.log2(need)).astype(np.int64))
    fetch = np.minimum(rounded, n_items)
    fetch[(need > FETCH_CAP) & (n_items > FETCH_CAP)] = 0
    return fetch


def heard_mask(excluded_rows: sp.csr_matrix, labels: np.ndarray) -> np.ndarray:
    """Whether each returned label (row i of ``labels`` belongs to row i of ``excluded_rows``) was heard."""
    n_rows, n_items = excluded_rows.shape
    excluded_rows = excluded_rows.tocsr(copy=True)
    excluded_rows.sort_indices()
    heard = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(excluded_rows.indptr)) * n_items
    heard += excluded_rows.indices.astype(np.int64)
    if not len(heard):
        return np.zeros(labels.shape, dtype=bool)
    keys = np.arange(n_rows, dtype=np.int64)[:, None] * n_items + labels
    found = np.minimum(np.searchsorted(heard, keys), len(heard) - 1)
    return (heard[found] == keys) & (labels >= 0)


def settle(
    distances: np.ndarray, labels: np.ndarray, excluded_rows: sp.csr_matrix, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps 2 and 3 of the module docstring for one search call: ``(scores, items, accepted)``.

    ``distances``/``labels`` are FAISS's results (``-1`` where it found nothing); rows not ``accepted`` must be
    ranked exactly.
    """
    n_rows, n_items = excluded_rows.shape
    valid = labels >= 0
    kept = valid & ~heard_mask(excluded_rows, labels)
    scores = np.where(kept, distances, -np.inf).astype(np.float32)
    items = np.where(kept, labels, n_items)
    order = np.lexsort((items, -scores), axis=-1)  # score descending, then the lower index
    scores = np.take_along_axis(scores, order, axis=1)
    items = np.take_along_axis(items, order, axis=1)
    top_scores = np.full((n_rows, k), -np.inf, dtype=np.float32)
    top_items = np.full((n_rows, k), -1, dtype=np.int64)
    take = min(k, labels.shape[1])
    top_scores[:, :take] = scores[:, :take]
    top_items[:, :take] = np.where(np.isfinite(scores[:, :take]), items[:, :take], -1)

    n_kept = kept.sum(axis=1)
    unheard = n_items - np.diff(excluded_rows.indptr)
    lowest = np.where(valid, distances, np.inf).min(axis=1, initial=np.inf)
    kth = scores[:, k - 1] if labels.shape[1] >= k else np.full(n_rows, -np.inf, dtype=np.float32)
    accepted = (valid.sum(axis=1) == n_items) | (n_kept == unheard) | ((n_kept >= k) & (kth > lowest))
    return top_scores, top_items, accepted


def search_unheard(
    users: np.ndarray | torch.Tensor,
    items: np.ndarray | torch.Tensor,
    excluded: sp.csr_matrix,
    k: int,
    options: RetrievalOptions,
    device: torch.device | None = None,
) -> FaissRanking:
    """Top-``k`` unheard items of every user (row of ``users``) by inner product through the index ``options``
    describes; users the index cannot settle are ranked exactly on ``device`` (default: the first GPU)."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k <= 0:
        raise ParameterError(f"k must be a positive integer, got {k!r}")
    user_vectors = _float_array(users)
    item_vectors = _float_array(items)
    n_users, n_items = excluded.shape
    if user_vectors.shape[0] != n_users or item_vectors.shape[0] != n_items:
        raise ParameterError(
            f"{user_vectors.shape[0]} user and {item_vectors.shape[0]} item vectors for an exclusion matrix of "
            f"shape {excluded.shape}"
        )
    scores = np.full((n_users, k), -np.inf, dtype=np.float32)
    ranked = np.full((n_users, k), -1, dtype=np.int64)
    started = time.perf_counter()
    index, where = build_index(item_vectors, options) if n_items else (None, "cpu")
    built = time.perf_counter()
    fetch = fetch_sizes(np.diff(excluded.indptr), k, n_items) if n_items else np.zeros(n_users, dtype=np.int64)
    pending = [np.flatnonzero(fetch == 0)]
    for size in np.unique(fetch[fetch > 0]):
        rows = np.flatnonzero(fetch == size)
        step = max(1, BATCH_RESULTS // int(size))
        for start in range(0, len(rows), step):
            batch = rows[start : start + step]
            distances, labels = index.search(user_vectors[batch], int(size))
            top_scores, top_items, accepted = settle(distances, labels, excluded[batch], k)
            scores[batch[accepted]], ranked[batch[accepted]] = top_scores[accepted], top_items[accepted]
            pending.append(batch[~accepted])
    searched = time.perf_counter()
    exact_users = np.sort(np.concatenate(pending))
    if len(exact_users):
        device = device or default_device()
        user_block = torch.as_tensor(user_vectors[exact_users]).to(device)
        item_block = torch.as_tensor(item_vectors).to(device)
        exact = top_k_unheard(lambda rows: user_block[rows] @ item_block.T, excluded[exact_users], k)
        scores[exact_users], ranked[exact_users] = exact
    finished = time.perf_counter()
    log.info(
        "%s on %s: index built in %.1f s, %d users searched in %.1f s, %d ranked exactly in %.1f s",
        options.describe(),
        where,
        built - started,
        n_users - len(exact_users),
        searched - built,
        len(exact_users),
        finished - searched,
    )
    return FaissRanking(scores, ranked, exact_users, built - started, searched - built, finished - searched, where)


def top_k_faiss(
    users: np.ndarray | torch.Tensor,
    items: np.ndarray | torch.Tensor,
    excluded: sp.csr_matrix,
    k: int,
    options: RetrievalOptions,
    device: torch.device | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`search_unheard`'s ``(scores, items)``: the contract of
    :func:`~audiorec.recommenders.retrieval.top_k_unheard` (float32 scores descending, int64 items, ``-1``
    padding)."""
    ranking = search_unheard(users, items, excluded, k, options, device)
    return ranking.scores, ranking.items


def _float_array(vectors: np.ndarray | torch.Tensor) -> np.ndarray:
    """C-contiguous float32 numpy rows, as FAISS reads them."""
    if isinstance(vectors, torch.Tensor):
        vectors = vectors.detach().float().cpu().numpy()
    return np.ascontiguousarray(vectors, dtype=np.float32)
