"""The temporal train / validation / test split of the paper (Tamm & Aljanaki 2024, section 2.3), in Polars.

The protocol, for a test start date ``T`` and the training window ``[T - train_months, T)``:

1. The event log is compressed to one row per (user, track) pair with its first-listen time over the *whole*
   log, so "new to the user" is judged against everything the user ever heard.
2. ``train`` holds every pair with at least one listen inside the training window, replays of tracks first
   heard before it included: music listening is mostly replays, and a user's established favourites belong in
   their profile. ``first_ts`` is the pair's first listen *inside the window* (the order sequence models read)
   and ``plays`` its listens inside the window.
3. Evaluation candidates are the pairs first heard in ``[T, T + test_months)``: tracks the user had never
   listened to before ``T``, which is what a recommender that filters out known tracks can still predict.
4. Candidates whose user or track does not occur in ``train`` are dropped, since no model trained on
   ``train`` can score them.
5. The remaining candidates are split *by user* into ``val`` and ``test`` with a seeded permutation, so that
   the two sets share no user and tuning on ``val`` cannot leak a test user's held-out tracks.
6. ``cold_test`` keeps the candidates of warm users (present in ``train``) on tracks that have no event at
   all before ``T``; the paper found too few of them for a proper evaluation, so they are reported apart.
7. ``heard_before_window`` keeps, for the val and test users, the pairs on train tracks they heard before the
   training window and not inside it. A ranking removes every track its user heard before ``T`` (train and
   these pairs): such a track can never be relevant, since relevance means a first listen after ``T``.

That is the ``paper2024`` protocol, the default. ``journal2026`` (the journal version's, :mod:`.journal`)
groups only the events inside ``[T - train_months, T + test_months)`` and splits them its own way.

One pass over the log is needed: the events before ``T + test_months`` are grouped by (user, track) on
integer codes (:mod:`audiorec.protocol.pairs`); the log may be a lazy Parquet scan of hundreds of millions of events.
The interactions table stores its ids as codes (:func:`audiorec.storage.tables.write_interactions`), ranked like the
ids, so the split sorts integers and turns them back into ids only in its (much smaller) output tables.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from audiorec.common.names import SPLITS
from audiorec.errors import ParameterError
from audiorec.protocol.journal import journal_protocol
from audiorec.protocol.pairs import BEFORE, CANDIDATE, TRAIN, Pairs, group_pairs
from audiorec.protocol.split_config import SplitConfig
from audiorec.storage.atomic import atomic_path
from audiorec.storage.tables import encode_ids, write_table

SPLIT_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "track_id": pl.String(),
    "first_ts": pl.Datetime("us", "UTC"),
    "plays": pl.Int32(),
}
"""Polars form of the "split" table contract."""

_STATISTICS_SCHEMA = {"split": pl.String, "rows": pl.Int64, "users": pl.Int64, "items": pl.Int64}


@dataclass(frozen=True)
class SplitResult:
    """The split tables, each following the "split" contract, sorted by (user_id, first_ts, track_id).

    ``replayed`` counts the train pairs first heard before the training window (kept in train as replays).
    """

    train: pl.DataFrame
    val: pl.DataFrame
    test: pl.DataFrame
    cold_test: pl.DataFrame
    heard_before_window: pl.DataFrame
    replayed: int = 0
    counts: pl.DataFrame | None = None
    """:meth:`statistics`, when the split already counted them (on integer codes, before decoding the ids)."""

    def frames(self) -> dict[str, pl.DataFrame]:
        """The tables by split name, in :data:`SPLITS` order."""
        return {name: getattr(self, name) for name in SPLITS}

    def statistics(self) -> pl.DataFrame:
        """Rows (interactions), distinct users and distinct items of each split, like the paper's Table 2."""
        if self.counts is not None:
            return self.counts
        return pl.DataFrame(
            [
                (name, frame.height, frame["user_id"].n_unique(), frame["track_id"].n_unique())
                for name, frame in self.frames().items()
            ],
            schema=_STATISTICS_SCHEMA,
            orient="row",
        )


def _coded_events(interactions: pl.LazyFrame | pl.DataFrame) -> tuple[pl.LazyFrame, pl.Series, pl.Series]:
    """The log as integer columns (user and track codes, UTC microseconds), with the ids each code stands for.

    The codes are the ranks of the ids (:func:`audiorec.storage.tables.encode_ids`), so ordering by code orders by id.
    A table written by :func:`audiorec.storage.tables.write_interactions` already holds them; ids given as text are
    encoded here, at the cost of one more pass over the log. Events missing an id or a time are skipped.
    """
    frame = interactions.lazy()
    schema = frame.collect_schema()
    missing = [name for name in ("user_id", "track_id", "timestamp") if name not in schema]
    if missing:
        raise ParameterError(f"interactions lack column(s) {missing}; they have {schema.names()}")
    dtype = schema["timestamp"]
    if not isinstance(dtype, pl.Datetime):
        raise ParameterError(f"interactions column timestamp must be a datetime; got {dtype}")
    if dtype.time_zone is None:
        raise ParameterError(
            "interactions column timestamp has no time zone; the contract is timestamp[us, UTC], and a naive "
            "timestamp cannot be placed relative to test_start without guessing its zone"
        )
    coded = encode_ids(frame.select("user_id", "track_id", "timestamp"))
    schema = coded.collect_schema()
    users, tracks = schema["user_id"].categories, schema["track_id"].categories
    # A zone conversion changes no stored value: the physical integers are UTC microseconds once the unit is us.
    events = coded.select(
        pl.col("user_id").to_physical().cast(pl.UInt32),
        pl.col("track_id").to_physical().cast(pl.UInt32),
        pl.col("timestamp").dt.cast_time_unit("us").to_physical().alias("timestamp"),
    ).drop_nulls()
    return events, users, tracks


def _microseconds(moment: datetime) -> int:
    """A UTC instant as integer microseconds since the epoch, exactly (no float rounding)."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

EVENTS_PER_PASS = 100_000_000
"""Events grouped in one pass. A pass holds its events' codes and times twice (as read, and scattered by user,
16 bytes each) besides its pairs: a generated 100-million-event log (32M pairs) peaked at 5.4 GB in one pass
(benchmarks/split_scale.py). A larger log is grouped in several passes over disjoint ranges of users, at the
cost of reading it once per pass, so that the Onion's 252 million events stay under 8 GB."""


def temporal_split(
    interactions: pl.LazyFrame | pl.DataFrame, config: SplitConfig, *, passes: int | None = None
) -> SplitResult:
    """Split a listening log into the tables of :data:`SPLITS`, as described in the module docstring.

    Parameters
    ----------
    interactions
        The "interactions" table (``user_id``, ``track_id``, ``timestamp`` with a time zone), eager or lazy,
        its ids dictionary-encoded (:func:`audiorec.storage.tables.scan_interactions`) or text.
    config
        Window and seed.
    passes
        Number of passes over the log, each grouping the events of a disjoint range of users; the result
        does not depend on it. ``None`` takes one pass per :data:`EVENTS_PER_PASS` events.

    Returns
    -------
    SplitResult
        Frames following the "split" contract, one per name of :data:`SPLITS`.

    Raises
    ------
    ParameterError
        If a column is missing, the timestamp is not a zoned datetime, or ``passes`` is not positive.
    """
    events, users, tracks = _coded_events(interactions)
    if passes is None:
        # Counted on the table as given: a Parquet scan answers from its footer without reading the log.
        size = interactions.lazy().select(pl.len()).collect(engine="streaming").item()
        passes = max(1, math.ceil(size / EVENTS_PER_PASS))
    if isinstance(passes, bool) or not isinstance(passes, int) or passes < 1:
        raise ParameterError(f"passes must be a positive integer; got {passes!r}")
    bounds = tuple(_microseconds(moment) for moment in (config.train_start, config.test_start, config.test_end))
    events = events.filter(pl.col("timestamp") < bounds[2])
    if config.protocol == "journal2026":  # listens before the window are no one's history, nor make a pair old
        events = events.filter(pl.col("timestamp") >= bounds[0])
    edges = [users.len() * part // passes for part in range(passes + 1)]
    parts = [_group(events, bounds, edges[part], edges[part + 1], passes) for part in range(passes)]
    pairs = Pairs(*(np.concatenate([getattr(part, name) for part in parts]) for name in Pairs.FIELDS), replayed=0)
    protocol = journal_protocol if config.protocol == "journal2026" else _protocol
    tables = protocol(pairs, users.len(), tracks.len(), config)
    frames = {name: _conform(pairs, rows, users, tracks) for name, rows in tables.items()}
    statistics = pl.DataFrame(
        [(name, rows.size, _distinct(pairs.user[rows]), _distinct(pairs.track[rows])) for name, rows in tables.items()],
        schema=_STATISTICS_SCHEMA,
        orient="row",
    )
    return SplitResult(**frames, replayed=sum(part.replayed for part in parts), counts=statistics)


def _protocol(pairs: Pairs, n_users: int, n_tracks: int, config: SplitConfig) -> dict[str, np.ndarray]:
    """The rows of ``pairs`` in each split (steps 2-7 of the module docstring), as arrays of row numbers.

    The codes are dense, so "users present in train" and the like are boolean arrays indexed by code, and
    each step is a vectorised lookup rather than a join.
    """
    user, track, kind = pairs.user, pairs.track, pairs.kind
    train = np.flatnonzero(kind == TRAIN)
    candidates = np.flatnonzero(kind == CANDIDATE)
    before = np.flatnonzero(kind == BEFORE)
    train_user, train_track = _mask(user[train], n_users), _mask(track[train], n_tracks)
    # A pair first heard before test_start has a listen before it: it is a train or a before-window pair.
    known_track = _mask(track[kind != CANDIDATE], n_tracks)
    warm = train_user[user[candidates]]
    eligible = candidates[warm & train_track[track[candidates]]]
    eligible_users = np.unique(user[eligible])
    is_val = _mask(_val_users(eligible_users, config), n_users)[user[eligible]]
    heard = before[_mask(eligible_users, n_users)[user[before]] & train_track[track[before]]]
    return {
        "train": train,
        "val": eligible[is_val],
        "test": eligible[~is_val],
        "cold_test": candidates[warm & ~known_track[track[candidates]]],
        "heard_before_window": heard,
    }


def _mask(codes: np.ndarray, size: int) -> np.ndarray:
    """A boolean array over all ``size`` codes, true at ``codes``."""
    mask = np.zeros(size, dtype=bool)
    mask[codes] = True
    return mask


def _distinct(codes: np.ndarray) -> int:
    """Number of distinct codes, counted on a boolean array rather than by sorting."""
    return int(np.count_nonzero(_mask(codes, int(codes.max()) + 1))) if codes.size else 0


def _group(events: pl.LazyFrame, bounds: tuple[int, int, int], low: int, high: int, passes: int) -> Pairs:
    """One pass: the pairs of the users whose code is in ``[low, high)``, classified (:func:`group_pairs`).

    Every pair of a user falls in the same pass, so the passes' outputs are disjoint and together equal a
    single pass's.
    """
    if passes > 1:
        events = events.filter(pl.col("user_id").is_between(low, high, closed="left"))
    frame = events.collect()
    columns = [frame[name].to_numpy() for name in ("user_id", "track_id", "timestamp")]
    del frame
    return group_pairs(*columns, bounds)


def _val_users(users: np.ndarray, config: SplitConfig) -> np.ndarray:
    """Pick the validation users from the sorted distinct ``users``: permute them with the seed, take the first share.

    Sorted codes are sorted ids, so the result is independent of the row order the grouping happened to produce.
    """
    order = np.random.default_rng(config.seed).permutation(users.size)
    n_val = int(np.floor(config.val_fraction * users.size + 0.5))
    return users[order[:n_val]]


def _conform(pairs: Pairs, rows: np.ndarray, users: pl.Series, tracks: pl.Series) -> pl.DataFrame:
    """The split table of ``rows``, codes turned back into ids, in the order of ``pairs``.

    :func:`group_pairs` yields the pairs sorted by (user code, time, track code), and the codes are the ids'
    ranks, so that is the contract's order by (user_id, first_ts, track_id); the keys are unique per row, so
    the order, and with it the written file, is fully determined.
    """
    return pl.DataFrame(
        {
            "user_id": users.gather(pairs.user[rows]),
            "track_id": tracks.gather(pairs.track[rows]),
            "first_ts": pl.Series(pairs.time[rows]).cast(pl.Datetime("us", "UTC")),
            "plays": pairs.plays[rows].astype(np.int32),
        },
        schema=SPLIT_SCHEMA,
    )


def write_split(result: SplitResult, out_dir: str | os.PathLike[str]) -> None:
    """Write one Parquet file per split (:data:`SPLITS`) and ``stats.csv`` into ``out_dir``, each atomically."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in result.frames().items():
        write_table(frame, folder / f"{name}.parquet", kind="split")
    with atomic_path(folder / "stats.csv") as tmp:
        result.statistics().write_csv(tmp)
