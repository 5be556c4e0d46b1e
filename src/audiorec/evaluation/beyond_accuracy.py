"""Beyond-accuracy metrics: how popular, how novel and how varied the ranked lists are, and how much of the catalogue
they expose.

Two systems with the same HitRate can serve very different music: one recommends the hits everybody already
plays, the other spreads its lists over the catalogue. A representation that helps with the long tail is worth
knowing about even when it does not win on accuracy, so every ranking is also described by the following, computed
from the same ranked lists as :mod:`audiorec.evaluation.metrics` (an integer matrix of item codes, ``missing``
where a list is shorter), at every cut-off K, over the items at ranks 1..K that a list has:

Per user (averaged over users, with intervals and paired tests, like the accuracy metrics):

- ``ARP@K``, average recommendation popularity (Abdollahpouri et al., FLAIRS 2019; Yin et al., VLDB 2012): the
  mean train popularity of the user's top-K items, where an item's popularity is the number of train users who
  heard it. The split keeps one row per (user, track), so this is also the item's interaction count in train,
  the ``φ(i)`` of RecBole's ``AveragePopularity``;
- ``Novelty@K``, mean self-information (Zhou et al., PNAS 2010; Vargas & Castells, RecSys 2011):
  ``−log2(pop_i / n_train_users)`` averaged over the top K. An item nobody heard in train (``pop_i = 0``: a new
  release) counts as if one user had heard it, the most novel value a train item can have, rather than being left
  out, which would make a list of unheard music look less novel than a list holding one rare known track;
- ``ILD@K``, intra-list diversity (Ziegler et al., WWW 2005): the mean cosine distance ``1 − cos`` over the
  unordered pairs of the user's top-K items, in **one** reference embedding space (``evaluation.diversity_backbone``)
  whatever backbone the run itself read, so rows of different backbones are measured with the same ruler. Items
  without a vector in that space (a track it could not embed, or a zero vector) are left out of the pairs; a list
  with fewer than two items left has no pairs, and its ILD is null (not 0, which would claim a uniform list). The
  range is [0, 2]: 0 for identical directions, 1 for orthogonal ones.

Users with an empty list have null ARP and Novelty, as they have no items to average.

Per ranking (one number per run and split, over the lists of every user of the split):

- ``Coverage@K`` (RecBole's ``ItemCoverage``; Ge et al., RecSys 2010): the distinct items in all top-K lists over
  the number of candidate items;
- ``Gini@K`` (RecBole's ``GiniIndex``): the Gini index of the candidates' exposure counts in all top-K lists,
  every candidate counted, zero exposures included: with counts sorted ascending ``P(1) ≤ … ≤ P(n)``,
  ``Σ (2i − n − 1) P(i) / (n Σ P(i))``, 0 when every candidate is shown equally often and ``(n − 1) / n`` when
  one candidate takes every slot. With no exposure at all it is undefined (NaN).

``tests/evaluation/test_beyond_accuracy.py`` checks these against hand-computed cases and against RecBole 1.2.1's
``ItemCoverage``, ``AveragePopularity`` and ``GiniIndex`` on the same rankings and popularity vector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import polars as pl

from audiorec.errors import ParameterError
from audiorec.evaluation.metrics import _reject_nulls, _require_columns, _validate_ks

PER_USER_METRICS: tuple[str, ...] = ("ARP", "Novelty", "ILD")
"""Per-user beyond-accuracy metrics, in their column order within each K."""
PER_RANKING_METRICS: tuple[str, ...] = ("Coverage", "Gini")
"""Metrics of a whole ranking (every user's list at once): one number per run, no interval, no test."""

_BLOCK_ELEMENTS = 1 << 22
"""Float64 elements of one block of gathered vectors (32 MiB): bounds ILD's memory at any catalogue and width."""


def beyond_accuracy_columns(ks: Sequence[int], metrics: Sequence[str] = PER_USER_METRICS) -> list[str]:
    """Column names ``"{metric}@{k}"``: ks ascending, ``metrics`` in their order within each k."""
    return [f"{metric}@{k}" for k in _validate_ks(ks) for metric in metrics]


def _ranked(ranked: np.ndarray, missing: int) -> tuple[np.ndarray, np.ndarray]:
    """The ranked matrix as int64 and its mask of filled positions."""
    ranked = np.asarray(ranked)
    if ranked.ndim != 2:
        raise ParameterError(f"ranked must be a 2-D (n_users, ranks) array; got shape {ranked.shape}")
    if ranked.size and not np.issubdtype(ranked.dtype, np.integer):
        raise ParameterError(f"ranked must hold integer item codes; got dtype {ranked.dtype}")
    ranked = ranked.astype(np.int64, copy=False)
    return ranked, ranked != missing


def _check_codes(ranked: np.ndarray, present: np.ndarray, n_items: int, what: str) -> None:
    codes = ranked[present]
    if codes.size and (codes.min() < 0 or codes.max() >= n_items):
        raise ParameterError(f"ranked holds item codes outside [0, {n_items}) of {what}")


def _mean_over_top(values: np.ndarray, present: np.ndarray, ks: tuple[int, ...], name: str) -> dict[str, np.ndarray]:
    """Per row, the mean of ``values`` over the filled positions among the first K, NaN where there are none.

    Each K sums its values in sorted order, so two lists holding the same items in another order get the same
    bits: a paired test must see their difference as zero, not as a rounding residue it could call significant.
    """
    out = {}
    for k in ks:
        usable = min(k, values.shape[1])
        filled = present[:, :usable]
        count = filled.sum(axis=1)
        total = np.sort(np.where(filled, values[:, :usable], 0.0), axis=1).sum(axis=1)
        out[f"{name}@{k}"] = np.divide(total, count, out=np.full(count.shape, np.nan), where=count > 0)
    return out


def average_popularity(
    ranked: np.ndarray, popularity: np.ndarray, ks: Sequence[int], missing: int = -1
) -> dict[str, np.ndarray]:
    """``ARP@K`` per row of ``ranked`` (item codes into ``popularity``, ``missing`` where a list is shorter).

    A list shorter than K averages the items it has; an empty one gives NaN.
    """
    ks = _validate_ks(ks)
    ranked, present = _ranked(ranked, missing)
    popularity = np.asarray(popularity, dtype=np.float64)
    _check_codes(ranked, present, popularity.size, "the popularity vector")
    values = popularity[np.where(present, ranked, 0)] if popularity.size else np.zeros(ranked.shape)
    return _mean_over_top(values, present, ks, "ARP")


def self_information(popularity: np.ndarray, n_train_users: int) -> np.ndarray:
    """``−log2(max(pop, 1) / n_train_users)`` of each item: an item nobody heard counts as heard by one user."""
    if n_train_users < 1:
        raise ParameterError(f"novelty needs at least one train user; got n_train_users={n_train_users}")
    popularity = np.asarray(popularity, dtype=np.float64)
    if np.any(popularity > n_train_users):
        raise ParameterError(f"an item's popularity exceeds the {n_train_users} train users")
    return -np.log2(np.maximum(popularity, 1.0) / n_train_users)


def novelty(
    ranked: np.ndarray, popularity: np.ndarray, n_train_users: int, ks: Sequence[int], missing: int = -1
) -> dict[str, np.ndarray]:
    """``Novelty@K`` per row of ``ranked``: the mean :func:`self_information` of the top-K items (NaN if none)."""
    ks = _validate_ks(ks)
    ranked, present = _ranked(ranked, missing)
    information = self_information(popularity, n_train_users)
    _check_codes(ranked, present, information.size, "the popularity vector")
    values = information[np.where(present, ranked, 0)] if information.size else np.zeros(ranked.shape)
    return _mean_over_top(values, present, ks, "Novelty")


class Directions(NamedTuple):
    """A reference space ready for cosines: ``rows`` float32 (zeros where an item has no direction: not finite, or
    zero), their float64 ``norms`` (1 there) and which items are ``valid``. A gathered row divided by its norm in
    float64 is a unit vector, without a float64 copy of the whole table."""

    rows: np.ndarray
    norms: np.ndarray
    valid: np.ndarray


def directions(vectors: np.ndarray) -> Directions:
    """The :class:`Directions` of ``(n_items, dim)`` vectors."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ParameterError(f"vectors must be a 2-D (n_items, dim) matrix; got shape {vectors.shape}")
    finite = np.isfinite(vectors).all(axis=1)
    kept = np.where(finite[:, None], vectors, np.float32(0))
    norms = np.sqrt(np.einsum("ij,ij->i", kept, kept, dtype=np.float64))
    valid = norms > 0
    return Directions(np.where(valid[:, None], kept, np.float32(0)), np.where(valid, norms, 1.0), valid)


def intra_list_diversity(
    ranked: np.ndarray, vectors: np.ndarray | Directions, ks: Sequence[int], missing: int = -1
) -> dict[str, np.ndarray]:
    """``ILD@K`` per row of ``ranked``: mean pairwise cosine distance of the top-K items in the space of ``vectors``.

    ``vectors`` has one row per item code (or is their :func:`directions`, computed once for many rankings); rows
    that are not finite or are zero have no direction and are left out of the pairs. The sum of the cosines over
    the ordered pairs of ``m`` unit vectors is ``‖Σx‖² − m``, so each K costs one sum over the list rather than
    ``K²`` products, computed in blocks of users that bound the memory. NaN where fewer than two items of the top K
    have a direction.
    """
    ks = _validate_ks(ks)
    ranked, present = _ranked(ranked, missing)
    space = vectors if isinstance(vectors, Directions) else directions(vectors)
    _check_codes(ranked, present, space.rows.shape[0], "the reference vectors")
    out = {f"ILD@{k}": np.full(ranked.shape[0], np.nan) for k in ks}
    if space.rows.shape[0] == 0:
        return out
    width = min(ks[-1], ranked.shape[1])
    usable = present[:, :width] & space.valid[np.where(present[:, :width], ranked[:, :width], 0)]
    codes = np.where(usable, ranked[:, :width], -1)
    block = max(1, _BLOCK_ELEMENTS // max(1, width * space.rows.shape[1]))
    for start in range(0, ranked.shape[0], block):
        rows = slice(start, start + block)
        for k in ks:
            # The top K's items in code order (unusable ones, -1, first and zeroed), so that the same set of items
            # sums to the same bits whatever their ranks: see _mean_over_top.
            top = np.sort(codes[rows, : min(k, width)], axis=1)
            kept = top >= 0
            gathered = space.rows[np.maximum(top, 0)] / space.norms[np.maximum(top, 0)][:, :, None] * kept[:, :, None]
            total = gathered.sum(axis=1)
            m = kept.sum(axis=1).astype(np.float64)
            pairs = m * (m - 1)
            mean_cosine = np.divide((total * total).sum(axis=1) - m, pairs, out=np.zeros_like(m), where=pairs > 0)
            out[f"ILD@{k}"][rows] = np.where(pairs > 0, np.clip(1.0 - mean_cosine, 0.0, 2.0), np.nan)
    return out


def _exposures(ranked: np.ndarray, n_items: int, k: int, missing: int) -> np.ndarray:
    ranked, present = _ranked(ranked, missing)
    _check_codes(ranked, present, n_items, "the candidate items")
    top, filled = ranked[:, :k], present[:, :k]
    return np.bincount(top[filled], minlength=n_items)


def coverage(ranked: np.ndarray, n_items: int, ks: Sequence[int], missing: int = -1) -> dict[str, float]:
    """``Coverage@K`` of a whole ranking: distinct items in every row's top K over ``n_items`` candidates."""
    if n_items < 1:
        raise ParameterError(f"coverage needs at least one candidate item; got n_items={n_items}")
    return {
        f"Coverage@{k}": float(np.count_nonzero(_exposures(ranked, n_items, k, missing)) / n_items)
        for k in _validate_ks(ks)
    }


def gini(exposures: np.ndarray) -> float:
    """The Gini index of exposure counts, one per candidate (zeros included), as RecBole's ``GiniIndex`` computes
    it: ``Σ (2i − n − 1) P(i) / (n Σ P)`` over the counts sorted ascending; NaN when nothing was exposed."""
    counts = np.sort(np.asarray(exposures, dtype=np.float64))
    n, total = counts.size, counts.sum()
    if n == 0 or total == 0:
        return float("nan")
    index = np.arange(1, n + 1, dtype=np.float64)
    return float(np.sum((2 * index - n - 1) * counts) / (n * total))


def gini_index(ranked: np.ndarray, n_items: int, ks: Sequence[int], missing: int = -1) -> dict[str, float]:
    """``Gini@K`` of a whole ranking over ``n_items`` candidates (codes ``0..n_items-1``)."""
    if n_items < 1:
        raise ParameterError(f"the Gini index needs at least one candidate item; got n_items={n_items}")
    return {f"Gini@{k}": gini(_exposures(ranked, n_items, k, missing)) for k in _validate_ks(ks)}


@dataclass(frozen=True)
class ItemReference:
    """What the per-user metrics look an item up in: its train popularity and its direction in the reference space.

    Attributes
    ----------
    track_ids
        Every known item, sorted: the train tracks and the tracks of the reference space.
    popularity
        Train users who heard each item (0 for a track only the reference space knows).
    n_train_users
        Distinct users of the train split: the denominator of the self-information.
    space
        The items' :class:`Directions` in the reference space (no direction for an item it has no vector of);
        None when no reference space is configured, and then ILD is not computed.
    """

    track_ids: np.ndarray
    popularity: np.ndarray
    n_train_users: int
    space: Directions | None = None

    @classmethod
    def build(
        cls,
        train: pl.DataFrame,
        reference_ids: Sequence[str] | None = None,
        reference_vectors: np.ndarray | None = None,
    ) -> ItemReference:
        """From the train split (``user_id``, ``track_id``) and, optionally, the reference embeddings table."""
        if (reference_ids is None) != (reference_vectors is None):
            raise ParameterError("a reference space needs both its track ids and its vectors")
        pairs = train.select(pl.col("user_id").cast(pl.String), pl.col("track_id").cast(pl.String)).unique()
        counts = pairs.group_by("track_id").len()
        reference = pl.DataFrame({"track_id": pl.Series(list(reference_ids or []), dtype=pl.String)})
        if reference.get_column("track_id").n_unique() != reference.height:
            raise ParameterError("the reference space lists a track more than once")
        index = pl.concat([counts.select("track_id"), reference]).unique().sort("track_id")
        popularity = index.join(counts, on="track_id", how="left", maintain_order="left").get_column("len")
        space = None
        if reference_vectors is not None:
            reference_vectors = np.asarray(reference_vectors, dtype=np.float32)
            if reference_vectors.ndim != 2 or reference_vectors.shape[0] != reference.height:
                raise ParameterError(
                    f"reference vectors must be ({reference.height}, dim) to match their ids; "
                    f"got shape {reference_vectors.shape}"
                )
            rows = index.join(reference.with_row_index("row"), on="track_id", how="left", maintain_order="left")
            row = rows.get_column("row")
            vectors = np.full((index.height, reference_vectors.shape[1]), np.nan, dtype=np.float32)
            vectors[row.is_not_null().to_numpy()] = reference_vectors[row.drop_nulls().to_numpy()]
            space = directions(vectors)
        return cls(
            track_ids=index.get_column("track_id").to_numpy(),
            popularity=popularity.fill_null(0).to_numpy().astype(np.int64),
            n_train_users=pairs.get_column("user_id").n_unique(),
            space=space,
        )


def _top_lists(recommendations: pl.DataFrame, users: Sequence[str], k_max: int) -> tuple[pl.DataFrame, int]:
    """The (row, rank, track_id) entries at ranks ≤ ``k_max`` of ``users`` (row: position in ``users``). Only
    these entries are read, so only they are checked (by :func:`_matrix`, for repeats): one table holds the lists
    of both evaluation splits, each split reads its own users, and no metric here looks past rank ``k_max``."""
    _require_columns(recommendations, ("user_id", "rank", "track_id"), "recommendations")
    order = pl.DataFrame({"user_id": pl.Series(list(users), dtype=pl.String)}).with_row_index("row")
    if order.get_column("user_id").n_unique() != order.height:
        raise ParameterError("users lists a user more than once")
    recs = recommendations.select(
        pl.col("user_id").cast(pl.String), pl.col("rank").cast(pl.Int64), pl.col("track_id").cast(pl.String)
    ).join(order, on="user_id", how="inner")
    _reject_nulls(recs, "recommendations")
    if recs.filter(pl.col("rank") < 1).height:
        raise ParameterError("recommendations has rank(s) < 1; ranks are 1-based")
    lists = recs.filter(pl.col("rank") <= k_max)
    return lists.select(pl.col("row").cast(pl.Int64), "rank", "track_id"), order.height


def _matrix(lists: pl.DataFrame, codes: np.ndarray, n_users: int, k_max: int) -> np.ndarray:
    """The ``(n_users, k_max)`` matrix of item ``codes`` (-1 where a list has no item at a rank); a rank or an
    item repeated within a user's list is an error, as :func:`~audiorec.evaluation.metrics.evaluate_recommendations`
    has it (checked here on integers, far cheaper than on the string keys)."""
    rows, ranks = lists.get_column("row").to_numpy(), lists.get_column("rank").to_numpy() - 1
    if np.bincount(rows * k_max + ranks, minlength=1).max(initial=0) > 1:
        raise ParameterError("recommendations lists the same rank twice for a user")
    ranked = np.full((n_users, k_max), -1, dtype=np.int64)
    ranked[rows, ranks] = codes
    ordered = np.sort(ranked, axis=1)
    if np.any((ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)):
        raise ParameterError("recommendations lists the same track twice for a user")
    return ranked


def per_user_beyond_accuracy(
    recommendations: pl.DataFrame, users: Sequence[str], items: ItemReference, ks: Sequence[int]
) -> pl.DataFrame:
    """``user_id`` then ``ARP@K``, ``Novelty@K`` and (with a reference space) ``ILD@K`` of each of ``users``, in
    their order, from a "recommendations" table (``rank`` authoritative, as for
    :func:`~audiorec.evaluation.metrics.evaluate_recommendations`). Undefined values are null.

    An item ``items`` does not know (neither a train track nor in the reference space) has popularity 0 and no
    vector.
    """
    ks = _validate_ks(ks)
    return _per_user(*_top_lists(recommendations, users, ks[-1]), users, items, ks)


def per_ranking_beyond_accuracy(
    recommendations: pl.DataFrame, users: Sequence[str], candidates: Sequence[str], ks: Sequence[int]
) -> dict[str, float]:
    """``Coverage@K`` and ``Gini@K`` of the lists of ``users`` over the ``candidates`` every list was drawn from
    (NaN when there are none).

    Raises
    ------
    ParameterError
        If a list holds an item outside ``candidates``: coverage could then exceed 1, and the exposure counts would
        not describe the catalogue the model was asked to rank.
    """
    ks = _validate_ks(ks)
    return _per_ranking(*_top_lists(recommendations, users, ks[-1]), candidates, ks)


def beyond_accuracy(
    recommendations: pl.DataFrame,
    users: Sequence[str],
    items: ItemReference,
    candidates: Sequence[str],
    ks: Sequence[int],
) -> tuple[pl.DataFrame, dict[str, float]]:
    """:func:`per_user_beyond_accuracy` and :func:`per_ranking_beyond_accuracy` of one ranking, its lists read and
    checked once."""
    ks = _validate_ks(ks)
    lists, n_users = _top_lists(recommendations, users, ks[-1])
    return _per_user(lists, n_users, users, items, ks), _per_ranking(lists, n_users, candidates, ks)


def _per_user(
    lists: pl.DataFrame, n_users: int, users: Sequence[str], items: ItemReference, ks: tuple[int, ...]
) -> pl.DataFrame:
    known = items.track_ids.size
    index = pl.DataFrame({"track_id": items.track_ids, "code": np.arange(known)})
    coded = lists.join(index, on="track_id", how="left", maintain_order="left")
    unknown = coded.filter(pl.col("code").is_null()).get_column("track_id").unique().sort()
    extra = pl.DataFrame({"track_id": unknown, "extra": np.arange(unknown.len()) + known})
    coded = coded.join(extra, on="track_id", how="left", maintain_order="left")
    codes = coded.select(pl.coalesce("code", "extra")).to_series().to_numpy().astype(np.int64)
    ranked = _matrix(coded, codes, n_users, ks[-1])
    popularity = np.concatenate([items.popularity, np.zeros(unknown.len(), dtype=np.int64)])
    scores = average_popularity(ranked, popularity, ks) | novelty(ranked, popularity, items.n_train_users, ks)
    if items.space is not None:  # an unknown item has no vector: for ILD it is as absent as an empty position
        scores |= intra_list_diversity(np.where(ranked < known, ranked, -1), items.space, ks)
    names = [name for name in beyond_accuracy_columns(ks) if name in scores]
    columns = [pl.Series(name, scores[name], dtype=pl.Float64, nan_to_null=True) for name in names]
    return pl.DataFrame([pl.Series("user_id", list(users), dtype=pl.String), *columns])


def _per_ranking(lists: pl.DataFrame, n_users: int, candidates: Sequence[str], ks: tuple[int, ...]) -> dict[str, float]:
    catalogue = pl.DataFrame({"track_id": pl.Series(list(candidates), dtype=pl.String).unique().sort()})
    coded = lists.join(catalogue.with_row_index("code"), on="track_id", how="left", maintain_order="left")
    outside = coded.filter(pl.col("code").is_null())
    if outside.height:
        example = outside.get_column("track_id").unique().sort().head(3).to_list()
        raise ParameterError(f"{outside.height} recommended item(s) are not candidates, e.g. {example}")
    if catalogue.height == 0:  # nothing to rank (a dataset without new releases): nothing to describe
        return {name: float("nan") for name in beyond_accuracy_columns(ks, PER_RANKING_METRICS)}
    ranked = _matrix(coded, coded.get_column("code").to_numpy().astype(np.int64), n_users, ks[-1])
    out: dict[str, float] = {}
    for k in ks:
        out |= coverage(ranked, catalogue.height, [k]) | gini_index(ranked, catalogue.height, [k])
    return out
