"""Ranking metrics over full rankings, per user, in one vectorised pass.

Every metric is derived from one boolean matrix ``hits`` of shape ``(n_users, K_max)`` (is the item at
rank ``r`` relevant?) and the number of relevant items of each user. Building that matrix is the only step
that depends on how rankings are stored, so the arithmetic below is shared by the array front end
(:func:`ranking_metrics`) and the table front end (:func:`evaluate_recommendations`), and it is checked once
against ``ranx``.

Definitions follow the paper (Tamm & Aljanaki 2024), with ranks 1-based and binary relevance:

- ``HitRate@K``   1 if any of the top K items is relevant, else 0;
- ``Recall@K``    hits in the top K divided by the number of relevant items (*not* by ``min(K, |rel|)``);
- ``NDCG@K``      DCG with gain ``1 / log2(rank + 1)`` over the top K, divided by the ideal DCG of
  ``min(K, |rel|)`` hits at ranks ``1..min(K, |rel|)``;
- ``Precision@K`` hits in the top K divided by K;
- ``MRR@K``       ``1 / rank`` of the first hit within the top K, else 0.

A ranking shorter than K (fewer candidates than K) counts its missing positions as non-hits, so
``Precision@K`` still divides by K and rankings of different lengths stay comparable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl
import scipy.sparse as sp

from audiorec.errors import ParameterError

METRICS: tuple[str, ...] = ("HitRate", "Recall", "NDCG", "Precision", "MRR")
"""Metric names, in the column order used within each cut-off K."""

_RECOMMENDATION_COLUMNS = ("user_id", "rank", "track_id")
_TRUTH_COLUMNS = ("user_id", "track_id")


def metric_columns(ks: Sequence[int]) -> list[str]:
    """Column names ``"{metric}@{k}"``: ks ascending, metrics in :data:`METRICS` order within each k."""
    return [f"{metric}@{k}" for k in _validate_ks(ks) for metric in METRICS]


def _validate_ks(ks: Sequence[int]) -> tuple[int, ...]:
    """Return the distinct cut-offs in ascending order; reject empty lists and non-positive values."""
    if isinstance(ks, int | np.integer):
        ks = [int(ks)]
    values = list(ks)
    if not values:
        raise ParameterError("ks must name at least one cut-off K; got an empty sequence")
    bad = [k for k in values if isinstance(k, bool) or not isinstance(k, int | np.integer) or k <= 0]
    if bad:
        raise ParameterError(f"ks must be positive integers; got invalid value(s) {bad} in {values}")
    return tuple(sorted({int(k) for k in values}))


def metrics_from_hits(hits: np.ndarray, n_relevant: np.ndarray, ks: Sequence[int]) -> dict[str, np.ndarray]:
    """Compute every metric of :data:`METRICS` at every K from a hit matrix.

    Parameters
    ----------
    hits
        Boolean ``(n_users, L)``: ``hits[u, r]`` says whether the item at rank ``r + 1`` of user ``u`` is
        relevant. ``L`` may be smaller than ``max(ks)`` (missing positions are non-hits) or larger (extra
        positions are ignored).
    n_relevant
        ``(n_users,)`` number of distinct relevant items of each user; it is the denominator of Recall and
        bounds the ideal DCG, so it must count all relevant items, not only those that were ranked.
    ks
        Cut-offs; duplicates are merged and the keys come out in ascending K.

    Returns
    -------
    dict
        ``"{metric}@{k}"`` to a float64 ``(n_users,)`` array, ordered as :func:`metric_columns`.

    Raises
    ------
    ParameterError
        If a user has no relevant item (every metric is undefined or trivially zero for such a user, and
        silently scoring it would move the mean; callers decide whether to drop it or count zeros), if a row
        has more hits than relevant items, or if shapes disagree.
    """
    ks = _validate_ks(ks)
    hits = np.asarray(hits)
    if hits.ndim != 2:
        raise ParameterError(f"hits must be a 2-D (n_users, ranks) matrix; got shape {hits.shape}")
    if hits.dtype != np.bool_:
        raise ParameterError(f"hits must be boolean; got dtype {hits.dtype}")
    n_relevant = np.asarray(n_relevant)
    if n_relevant.shape != (hits.shape[0],):
        raise ParameterError(
            f"n_relevant must have shape ({hits.shape[0]},) to match hits {hits.shape}; got {n_relevant.shape}"
        )
    if n_relevant.size and not np.issubdtype(n_relevant.dtype, np.integer):
        raise ParameterError(f"n_relevant must hold integers; got dtype {n_relevant.dtype}")
    n_relevant = n_relevant.astype(np.int64, copy=False)
    empty = np.flatnonzero(n_relevant <= 0)
    if empty.size:
        raise ParameterError(
            f"{empty.size} user(s) have no relevant item (row(s) {empty[:5].tolist()}...); metrics are undefined "
            "for them, so remove them or score them explicitly before calling metrics_from_hits"
        )

    k_max = ks[-1]
    width = min(hits.shape[1], k_max)
    matrix = np.zeros((hits.shape[0], k_max), dtype=bool)
    matrix[:, :width] = hits[:, :width]
    too_many = np.flatnonzero(hits.sum(axis=1) > n_relevant)
    if too_many.size:
        raise ParameterError(
            f"row(s) {too_many[:5].tolist()} of hits have more hits than n_relevant; a ranking that repeats an "
            "item would be counted twice"
        )

    ranks = np.arange(1, k_max + 1, dtype=np.float64)
    discounts = 1.0 / np.log2(ranks + 1.0)
    hit_count = np.cumsum(matrix, axis=1, dtype=np.int64)
    dcg = np.cumsum(matrix * discounts, axis=1)
    # ideal[m] = DCG of m hits at ranks 1..m; ideal[0] is never used because n_relevant >= 1.
    ideal = np.concatenate([[0.0], np.cumsum(discounts)])
    has_hit = matrix.any(axis=1)
    first_rank = np.where(has_hit, matrix.argmax(axis=1) + 1, k_max + 1)

    relevant = n_relevant.astype(np.float64)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        hits_at_k = hit_count[:, k - 1].astype(np.float64)
        out[f"HitRate@{k}"] = (hits_at_k > 0).astype(np.float64)
        out[f"Recall@{k}"] = hits_at_k / relevant
        out[f"NDCG@{k}"] = dcg[:, k - 1] / ideal[np.minimum(n_relevant, k)]
        out[f"Precision@{k}"] = hits_at_k / k
        out[f"MRR@{k}"] = np.where(first_rank <= k, 1.0 / first_rank, 0.0)
    return out


def ranking_metrics(
    ranked: np.ndarray,
    relevant: Sequence[np.ndarray],
    ks: Sequence[int],
    missing: int = -1,
) -> dict[str, np.ndarray]:
    """Compute the metrics of integer-coded rankings against per-user sets of relevant items.

    Parameters
    ----------
    ranked
        Integer ``(n_users, L)``: row ``u`` lists user ``u``'s items best first. Positions holding
        ``missing`` are empty (a user with fewer candidates than ``L``) and count as non-hits.
    relevant
        One integer array per user (same order as ``ranked``) with that user's relevant items; duplicates
        are merged. Every user needs at least one relevant item.
    ks
        Cut-offs.
    missing
        The padding value of ``ranked``; it must not be a real item id.

    Returns
    -------
    dict
        As :func:`metrics_from_hits`.

    Raises
    ------
    ParameterError
        On shape mismatches, on an item repeated within a ranking (it would be counted as two hits), and on
        users without relevant items.
    """
    ranked = np.asarray(ranked)
    if ranked.ndim != 2:
        raise ParameterError(f"ranked must be a 2-D (n_users, ranks) array; got shape {ranked.shape}")
    if ranked.size and not np.issubdtype(ranked.dtype, np.integer):
        raise ParameterError(f"ranked must hold integer item codes; got dtype {ranked.dtype}")
    n_users = ranked.shape[0]
    if len(relevant) != n_users:
        raise ParameterError(f"relevant has {len(relevant)} entries but ranked has {n_users} rows")
    ranked = ranked.astype(np.int64, copy=False)

    sets = [np.unique(np.asarray(items, dtype=np.int64)) for items in relevant]
    n_relevant = np.fromiter((items.size for items in sets), dtype=np.int64, count=n_users)
    flat_items = np.concatenate(sets) if sets else np.empty(0, dtype=np.int64)
    if np.any(flat_items == missing):
        raise ParameterError(f"relevant contains the padding value missing={missing}; choose another one")

    present = ranked != missing
    ordered = np.sort(ranked, axis=1)
    repeated = (ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] != missing)
    bad_rows = np.flatnonzero(repeated.any(axis=1))
    if bad_rows.size:
        raise ParameterError(f"ranked row(s) {bad_rows[:5].tolist()} list the same item more than once")

    # Encode (user, item) pairs as one integer so a single sorted membership test finds every hit.
    codes, inverse = np.unique(np.concatenate([ranked.ravel(), flat_items]), return_inverse=True)
    n_codes = max(codes.size, 1)
    ranked_codes = inverse[: ranked.size].reshape(ranked.shape)
    relevant_codes = inverse[ranked.size :]
    user_of_ranked = np.arange(n_users, dtype=np.int64)[:, None]
    user_of_relevant = np.repeat(np.arange(n_users, dtype=np.int64), n_relevant)
    hits = np.isin(user_of_ranked * n_codes + ranked_codes, user_of_relevant * n_codes + relevant_codes)
    return metrics_from_hits(hits & present, n_relevant, ks)


def hit_rate(ranked: np.ndarray, truth: sp.csr_matrix) -> float:
    """Mean ``HitRate@K`` of integer rankings of width K against a sparse relevance matrix.

    The front end for the trainers' validation, whose ground truth is a users × items matrix rather than
    per-user arrays: ``ranked`` holds item columns best first, ``-1`` where a row has fewer than K candidates,
    and row ``u`` of ``truth`` marks user ``u``'s relevant items (every row needs one, as for
    :func:`metrics_from_hits`). ``NaN`` for no rows, as the mean of nothing.
    """
    ranked = np.asarray(ranked)
    if ranked.shape[0] == 0:
        return math.nan
    rows = np.repeat(np.arange(ranked.shape[0]), ranked.shape[1])
    relevant = np.asarray(truth[rows, np.maximum(ranked, 0).ravel()]).reshape(ranked.shape).astype(bool)
    k = ranked.shape[1]
    scores = metrics_from_hits(relevant & (ranked >= 0), truth.getnnz(axis=1), [k])
    return float(scores[f"HitRate@{k}"].mean())


def evaluate_recommendations(recommendations: pl.DataFrame, truth: pl.DataFrame, ks: Sequence[int]) -> pl.DataFrame:
    """Score a ``recommendations`` table against a held-out split table, one row per user of ``truth``.

    Parameters
    ----------
    recommendations
        The "recommendations" contract: ``user_id``, ``rank`` (1-based), ``track_id`` (``score`` is not
        read). ``rank`` is authoritative: recommenders break score ties before ranking, and re-sorting by
        score here could reorder tied items differently from the recommender's own output. Gaps in the
        ranks are allowed and are non-hits.
    truth
        ``user_id``, ``track_id``: one row per relevant (user, track) pair (a val/test split table);
        repeated pairs are merged.
    ks
        Cut-offs, e.g. ``(10, 50)``.

    Returns
    -------
    polars.DataFrame
        ``user_id`` then ``{metric}@{k}`` Float64 columns (ks ascending, :data:`METRICS` order within each
        k), one row per distinct user of ``truth``, sorted by ``user_id``. Users of ``truth`` without any
        recommendation get 0 for every metric: a recommender that cannot serve a user is scored as having
        failed for that user rather than being excused, so averages stay comparable between recommenders.
        Recommendations for users outside ``truth`` are ignored.

    Raises
    ------
    ParameterError
        If a required column is missing, ids or ranks are null, a rank is < 1, a (user, rank) or a
        (user, track) pair repeats in ``recommendations``, or a K is not positive.
    """
    ks = _validate_ks(ks)
    _require_columns(recommendations, _RECOMMENDATION_COLUMNS, "recommendations")
    _require_columns(truth, _TRUTH_COLUMNS, "truth")

    recs = recommendations.select(
        pl.col("user_id").cast(pl.String),
        pl.col("rank").cast(pl.Int64),
        pl.col("track_id").cast(pl.String),
    )
    relevant = truth.select(pl.col("user_id").cast(pl.String), pl.col("track_id").cast(pl.String)).unique()
    _reject_nulls(recs, "recommendations")
    _reject_nulls(relevant, "truth")
    bad_rank = recs.filter(pl.col("rank") < 1)
    if bad_rank.height:
        raise ParameterError(
            f"recommendations has {bad_rank.height} row(s) with rank < 1 (ranks are 1-based), "
            f"e.g. {bad_rank.head(3).to_dicts()}"
        )
    _reject_duplicates(recs, ("user_id", "rank"), "the same rank twice for a user")
    _reject_duplicates(recs, ("user_id", "track_id"), "the same track twice for a user")

    per_user = relevant.group_by("user_id").agg(pl.len().alias("n_relevant")).sort("user_id")
    per_user = per_user.with_row_index("row")
    k_max = ks[-1]
    found = (
        recs.filter(pl.col("rank") <= k_max)
        .join(relevant, on=["user_id", "track_id"], how="semi")
        .join(per_user.select("user_id", "row"), on="user_id", how="inner")
    )
    hits = np.zeros((per_user.height, k_max), dtype=bool)
    hits[found["row"].to_numpy(), found["rank"].to_numpy() - 1] = True
    scores = metrics_from_hits(hits, per_user["n_relevant"].to_numpy().astype(np.int64), ks)
    return pl.DataFrame(
        [per_user["user_id"], *(pl.Series(name, values, dtype=pl.Float64) for name, values in scores.items())]
    )


def _require_columns(frame: pl.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise ParameterError(f"{what} lacks column(s) {missing}; it has {frame.columns}")


def _reject_nulls(frame: pl.DataFrame, what: str) -> None:
    counts = {name: count for name, count in frame.null_count().row(0, named=True).items() if count}
    if counts:
        raise ParameterError(f"{what} has null values in column(s) {counts}")


def _reject_duplicates(recs: pl.DataFrame, key: tuple[str, ...], problem: str) -> None:
    duplicated = recs.filter(pl.len().over(key) > 1)
    if duplicated.height:
        example = duplicated.sort(key).head(4).to_dicts()
        raise ParameterError(
            f"recommendations lists {problem}: {duplicated.height} rows share a ({', '.join(key)}) pair, e.g. {example}"
        )
