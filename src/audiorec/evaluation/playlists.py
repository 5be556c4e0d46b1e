"""Playlist continuation from frozen track embeddings (Choi et al., 2022, sec. 4.4).

Per playlist, a seeded choice of ``n_queries`` tracks is the query and the rest is the ground truth. ItemKNN
content-based filtering scores a candidate by its summed cosine similarity to the query tracks. Two rankings
are evaluated from the same scores:

* **sampled** (the paper's protocol, after He et al. 2017): every ground-truth track is ranked against
  ``n_negatives`` tracks drawn from outside the playlist. ``HR@k`` is the share of ground-truth tracks ranked
  within the top k of their 1 + n_negatives list, and ``MPR`` the mean percentile rank, the share of negatives
  ranked above the track (0 best, 0.5 for a random scorer, 1 worst). Ties count half, so a constant scorer
  also scores 0.5.
* **full**: the whole catalogue except the query tracks is ranked once per playlist, and ``HitRate@k`` and
  ``NDCG@k`` are computed as for the recommenders (:mod:`audiorec.evaluation.metrics`). Sampled metrics can order
  systems differently from full rankings (Krichene & Rendle, KDD 2020), so the report shows both.

The catalogue is every embedded track not in ``excluded`` (the self-supervised encoders' training tracks, which
Choi et al. also removed from their playlist data). A playlist's choices are seeded by its id, so they do not
depend on which other playlists exist, and every backbone with the same embedded tracks faces the same task.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from audiorec.common.validation import check_int
from audiorec.errors import ParameterError
from audiorec.evaluation.metrics import ranking_metrics


@dataclass(frozen=True)
class ContinuationProtocol:
    """Sizes and seed of the playlist-continuation task."""

    n_queries: int = 3
    n_negatives: int = 100
    k: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_queries", "n_negatives", "k"):
            check_int(name, getattr(self, name), minimum=1, where="playlist")


@dataclass
class ContinuationTasks:
    """The queries, ground truth and sampled negatives of every usable playlist, as catalogue row indices.

    Attributes
    ----------
    playlist_ids
        Playlists with at least ``n_queries + 1`` catalogue tracks, sorted.
    queries, ground_truth
        Per playlist, the query rows and the remaining rows.
    negatives
        Per playlist, ``(len(ground_truth), n_negatives)`` rows drawn without replacement from outside the
        playlist, one draw per ground-truth track.
    """

    playlist_ids: list[str]
    queries: list[np.ndarray]
    ground_truth: list[np.ndarray]
    negatives: list[np.ndarray]


def build_tasks(playlists: pl.DataFrame, track_ids: Sequence[str], protocol: ContinuationProtocol) -> ContinuationTasks:
    """Choose queries and negatives for every playlist over the catalogue ``track_ids``.

    Playlist tracks outside the catalogue are ignored; playlists left with fewer than ``n_queries + 1``
    tracks are skipped.
    """
    missing = {"playlist_id", "track_id", "position"} - set(playlists.columns)
    if missing:
        raise ParameterError(f"playlists table lacks column(s) {sorted(missing)}; it has {playlists.columns}")
    row_of = {track_id: row for row, track_id in enumerate(track_ids)}
    members = (
        playlists.filter(pl.col("track_id").is_in(list(row_of)))
        .sort("playlist_id", "position")
        .group_by("playlist_id", maintain_order=True)
        .agg(pl.col("track_id").unique(maintain_order=True))
    )
    tasks = ContinuationTasks([], [], [], [])
    n_catalogue = len(track_ids)
    for playlist_id, tracks in members.iter_rows():
        rows = np.array([row_of[t] for t in tracks], dtype=np.int64)
        if rows.size <= protocol.n_queries:
            continue
        rng = np.random.default_rng([protocol.seed, zlib.crc32(playlist_id.encode())])
        chosen = rng.permutation(rows.size)
        outside = np.setdiff1d(np.arange(n_catalogue), rows)
        n_negatives = min(protocol.n_negatives, outside.size)
        if n_negatives == 0:
            continue
        truth = np.sort(rows[chosen[protocol.n_queries :]])
        tasks.playlist_ids.append(playlist_id)
        tasks.queries.append(np.sort(rows[chosen[: protocol.n_queries]]))
        tasks.ground_truth.append(truth)
        tasks.negatives.append(np.stack([rng.choice(outside, n_negatives, replace=False) for _ in truth]))
    return tasks


def itemknn_scores(vectors: np.ndarray, queries: Sequence[np.ndarray]) -> np.ndarray:
    """``(n_playlists, n_catalogue)`` summed cosine similarity of every track to each playlist's queries."""
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.where(norms > 0, norms, 1.0)
    query_sums = np.stack([unit[rows].sum(axis=0) for rows in queries]) if queries else np.zeros((0, unit.shape[1]))
    return query_sums @ unit.T


def sampled_ranks(scores: np.ndarray, tasks: ContinuationTasks) -> np.ndarray:
    """Per ground-truth track (playlists in order), the number of its negatives scored above it (ties half)."""
    ranks = []
    for row, truth, negatives in zip(scores, tasks.ground_truth, tasks.negatives, strict=True):
        positive, negative = row[truth][:, None], row[negatives]
        ranks.append((negative > positive).sum(axis=1) + 0.5 * (negative == positive).sum(axis=1))
    return np.concatenate(ranks) if ranks else np.zeros(0)


def continuation_metrics(scores: np.ndarray, tasks: ContinuationTasks, k: int = 10) -> dict[str, float]:
    """Sampled ``HR@k`` and ``MPR`` and full-catalogue ``HitRate@k`` and ``NDCG@k`` of a score matrix.

    Parameters
    ----------
    scores : np.ndarray, shape ``(n_playlists, n_catalogue)``
        Higher is better; row ``i`` scores the catalogue for ``tasks.playlist_ids[i]``.
    tasks
        From :func:`build_tasks`.
    k
        Cut-off.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] != len(tasks.playlist_ids):
        raise ParameterError(f"scores must be ({len(tasks.playlist_ids)} playlists, n_catalogue); got {scores.shape}")
    if not tasks.playlist_ids:
        raise ParameterError("no playlist has enough catalogue tracks for a query and a ground truth")
    ranks = sampled_ranks(scores, tasks)
    n_negatives = np.concatenate([np.full(len(n), n.shape[1]) for n in tasks.negatives])
    full = scores.copy()
    for row, queries in enumerate(tasks.queries):
        full[row, queries] = -np.inf
    depth = min(k, scores.shape[1])
    top = np.argpartition(-full, depth - 1, axis=1)[:, :depth]
    top = np.take_along_axis(top, np.argsort(-np.take_along_axis(full, top, axis=1), axis=1, kind="stable"), axis=1)
    ranking = ranking_metrics(top, tasks.ground_truth, [k])
    return {
        f"HR@{k}": float(np.mean(ranks < k)),
        "MPR": float(np.mean(ranks / n_negatives)),
        f"full HitRate@{k}": float(ranking[f"HitRate@{k}"].mean()),
        f"full NDCG@{k}": float(ranking[f"NDCG@{k}"].mean()),
    }


def probe_playlists(
    track_ids: Sequence[str],
    vectors: np.ndarray,
    playlists: pl.DataFrame,
    excluded: Collection[str] = (),
    protocol: ContinuationProtocol | None = None,
) -> dict[str, object]:
    """ItemKNN playlist continuation over the embedded tracks not in ``excluded`` (module docstring).

    Returns
    -------
    dict
        The metrics of :func:`continuation_metrics` and the task's sizes (``n_playlists``,
        ``n_ground_truth``, ``n_catalogue``, ``n_queries``, ``n_negatives``, ``k``).
    """
    protocol = protocol or ContinuationProtocol()
    excluded = set(excluded)
    keep = np.array([t not in excluded for t in track_ids], dtype=bool)
    catalogue = [t for t, kept in zip(track_ids, keep, strict=True) if kept]
    tasks = build_tasks(playlists, catalogue, protocol)
    scores = itemknn_scores(np.asarray(vectors)[keep], tasks.queries)
    return {
        **continuation_metrics(scores, tasks, protocol.k),
        "n_playlists": len(tasks.playlist_ids),
        "n_ground_truth": int(sum(len(t) for t in tasks.ground_truth)),
        "n_catalogue": len(catalogue),
        "n_queries": protocol.n_queries,
        "n_negatives": protocol.n_negatives,
        "k": protocol.k,
    }
