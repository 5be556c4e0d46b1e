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

Only one pass over the log is needed (a group-by over events before ``T + test_months``); the log may be a
lazy Parquet scan of hundreds of millions of events, and only the pair-level outputs are materialised.
"""

from __future__ import annotations

import calendar
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from audiorec.atomic import atomic_path
from audiorec.errors import ParameterError
from audiorec.names import SPLITS
from audiorec.tables import write_table

SPLIT_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "track_id": pl.String(),
    "first_ts": pl.Datetime("us", "UTC"),
    "plays": pl.Int32(),
}
"""Polars form of the "split" table contract."""

_SORT_KEY = ("user_id", "first_ts", "track_id")


def add_months(moment: datetime, months: int) -> datetime:
    """Shift ``moment`` by calendar months, clamping the day to the target month's length (Mar 31 - 1 = Feb 28/29).

    Calendar months rather than a fixed number of days keep "the previous 12 months" aligned with the
    dates a person would name.
    """
    index = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


@dataclass(frozen=True)
class SplitConfig:
    """Parameters of :func:`temporal_split`.

    Attributes
    ----------
    test_start
        Start of the evaluation window, a timezone-aware datetime (converted to UTC). A naive datetime is
        rejected here because the same wall-clock time means different instants in different zones; use
        :meth:`from_mapping` to read dates from a config file, where they are taken as UTC.
    train_months
        Length of the training window before ``test_start``, in calendar months.
    test_months
        Length of the evaluation window from ``test_start``, in calendar months.
    val_fraction
        Share of evaluation users assigned to ``val`` (rounded half up); the paper splits them in half.
    seed
        Seed of the user permutation, so the assignment is reproducible.
    """

    test_start: datetime
    train_months: int = 12
    test_months: int = 1
    val_fraction: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.test_start, datetime):
            raise ParameterError(
                f"split test_start must be a timezone-aware datetime; got {self.test_start!r} "
                f"of type {type(self.test_start).__name__}"
            )
        if self.test_start.tzinfo is None or self.test_start.utcoffset() is None:
            raise ParameterError(
                f"split test_start must be timezone-aware (UTC); got the naive datetime {self.test_start!r}"
            )
        object.__setattr__(self, "test_start", self.test_start.astimezone(UTC))
        for name in ("train_months", "test_months"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ParameterError(f"split {name} must be an integer >= 1; got {value!r}")
            object.__setattr__(self, name, int(value))
        value = self.val_fraction
        if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not 0.0 <= value <= 1.0:
            raise ParameterError(f"split val_fraction must be a number in [0, 1]; got {value!r}")
        object.__setattr__(self, "val_fraction", float(value))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer) or self.seed < 0:
            raise ParameterError(f"split seed must be a non-negative integer; got {self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed))

    @property
    def train_start(self) -> datetime:
        """First instant of the training window: ``test_start`` minus ``train_months`` calendar months."""
        return add_months(self.test_start, -self.train_months)

    @property
    def test_end(self) -> datetime:
        """First instant after the evaluation window: ``test_start`` plus ``test_months`` calendar months."""
        return add_months(self.test_start, self.test_months)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> SplitConfig:
        """Build a config from a config-file mapping.

        ``test_start`` may be an ISO string (``"2020-02-20"`` or ``"2020-02-20T00:00:00"``, with or without
        an offset), a ``date`` (what YAML makes of an unquoted date) or a ``datetime``; values without a zone
        are read as UTC, the zone every table of the workflow uses.

        Raises
        ------
        ParameterError
            Naming unknown keys, a missing ``test_start`` or an invalid value.
        """
        if not isinstance(mapping, Mapping):
            raise ParameterError(f"split config must be a mapping; got {type(mapping).__name__}")
        values = dict(mapping)
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ParameterError(f"split config: unknown option(s) {unknown}; known options are {sorted(known)}")
        if "test_start" not in values:
            raise ParameterError("split config: test_start is required (e.g. '2020-02-20')")
        values["test_start"] = _parse_moment(values["test_start"])
        return cls(**values)


def _parse_moment(value: Any) -> datetime:
    """Read a config date or datetime as a UTC instant (naive values are UTC)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError as error:
            raise ParameterError(
                f"split test_start {value!r} is not an ISO date such as '2020-02-20': {error}"
            ) from error
    else:
        raise ParameterError(
            f"split test_start must be an ISO date string or a datetime; got {value!r} of type {type(value).__name__}"
        )
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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

    def frames(self) -> dict[str, pl.DataFrame]:
        """The tables by split name, in :data:`SPLITS` order."""
        return {name: getattr(self, name) for name in SPLITS}

    def statistics(self) -> pl.DataFrame:
        """Rows (interactions), distinct users and distinct items of each split, like the paper's Table 2."""
        return pl.DataFrame(
            [
                (name, frame.height, frame["user_id"].n_unique(), frame["track_id"].n_unique())
                for name, frame in self.frames().items()
            ],
            schema={"split": pl.String, "rows": pl.Int64, "users": pl.Int64, "items": pl.Int64},
            orient="row",
        )


def _events(interactions: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame:
    """Select and normalise the log's columns: string ids and a UTC microsecond timestamp."""
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
    timestamp = pl.col("timestamp")
    if dtype.time_zone != "UTC":
        timestamp = timestamp.dt.convert_time_zone("UTC")
    return frame.select(
        pl.col("user_id").cast(pl.String),
        pl.col("track_id").cast(pl.String),
        timestamp.dt.cast_time_unit("us").alias("timestamp"),
    )


EVENTS_PER_PASS = 50_000_000
"""Events grouped in one pass. Larger logs are grouped in several passes over disjoint sets of users, because
the group-by holds every (user, track) pair of its pass in memory (about 250 bytes each): on a generated
100-million-event log with 32 million pairs, one pass peaked at 8.6 GB and two at 5.3 GB, at the cost of
reading the log once more (benchmarks/split_scale.py)."""


def temporal_split(
    interactions: pl.LazyFrame | pl.DataFrame, config: SplitConfig, *, passes: int | None = None
) -> SplitResult:
    """Split a listening log into the tables of :data:`SPLITS`, as described in the module docstring.

    Parameters
    ----------
    interactions
        The "interactions" table (``user_id``, ``track_id``, ``timestamp`` with a time zone), eager or lazy;
        a lazy Parquet scan lets the filter and the group-by stream without loading the whole log.
    config
        Window and seed.
    passes
        Number of passes over the log, each grouping the events of a disjoint hash-partition of the users;
        the result does not depend on it. ``None`` takes one pass per :data:`EVENTS_PER_PASS` events.

    Returns
    -------
    SplitResult
        Frames following the "split" contract, one per name of :data:`SPLITS`.

    Raises
    ------
    ParameterError
        If a column is missing, the timestamp is not a zoned datetime, or ``passes`` is not positive.
    """
    events = _events(interactions)
    if passes is None:
        passes = max(1, math.ceil(events.select(pl.len()).collect(engine="streaming").item() / EVENTS_PER_PASS))
    if isinstance(passes, bool) or not isinstance(passes, int) or passes < 1:
        raise ParameterError(f"passes must be a positive integer; got {passes!r}")
    parts = [_pairs_by_window(events, config, part, passes) for part in range(passes)]
    train = _conform(pl.concat([part.train for part in parts]))
    candidates = _conform(pl.concat([part.candidates for part in parts]))
    known_tracks = pl.concat([part.known_tracks for part in parts]).unique()
    train_users = train.select("user_id").unique()
    train_tracks = train.select("track_id").unique()
    eligible = candidates.join(train_users, on="user_id", how="semi").join(train_tracks, on="track_id", how="semi")
    val_users = _assign_val_users(eligible["user_id"], config)
    val = eligible.join(val_users, on="user_id", how="semi")
    test = eligible.join(val_users, on="user_id", how="anti")
    cold_test = candidates.join(known_tracks, on="track_id", how="anti").join(train_users, on="user_id", how="semi")
    heard_before_window = (
        pl.concat([part.before_window for part in parts])
        .join(eligible.select("user_id").unique(), on="user_id", how="semi")
        .join(train_tracks, on="track_id", how="semi")
    )
    return SplitResult(
        train=train,
        val=_conform(val),
        test=_conform(test),
        cold_test=_conform(cold_test),
        heard_before_window=_conform(heard_before_window),
        replayed=sum(part.replayed for part in parts),
    )


@dataclass(frozen=True)
class _WindowPairs:
    """What one pass over a share of the users yields (see :func:`_pairs_by_window`)."""

    train: pl.DataFrame
    candidates: pl.DataFrame
    known_tracks: pl.DataFrame
    before_window: pl.DataFrame
    replayed: int


def _pairs_by_window(events: pl.LazyFrame, config: SplitConfig, part: int, passes: int) -> _WindowPairs:
    """One pass: the train pairs, the evaluation candidates, the tracks known before ``test_start`` and the pairs
    heard only before the training window.

    Only users whose id hashes to ``part`` (modulo ``passes``) are grouped; every pair of a user falls in the
    same pass, so the passes' outputs are disjoint and together equal a single pass's.
    """
    test_start, train_start, test_end = config.test_start, config.train_start, config.test_end
    timestamp = pl.col("timestamp")
    # Events from test_end on cannot lower any first-listen time that matters: a pair whose first event is
    # at or after test_end is in no split, so dropping them before the group-by changes no output row.
    selected = events.filter(timestamp < test_end)
    if passes > 1:
        selected = selected.filter(pl.col("user_id").hash(seed=0) % passes == part)
    # The window flags are columns before the group-by, so that it only sums and takes minima, the aggregations
    # Polars runs on its fast path (a null window time is skipped by the minimum).
    in_window = timestamp.is_between(train_start, test_start, closed="left")
    pairs = (
        selected.with_columns(
            in_window.cast(pl.UInt32).alias("train_plays"),
            (timestamp >= test_start).cast(pl.UInt32).alias("eval_plays"),
            (timestamp < train_start).cast(pl.UInt32).alias("before_plays"),
            pl.when(in_window).then(timestamp).alias("window_ts"),
        )
        .group_by("user_id", "track_id")
        .agg(
            timestamp.min().alias("first_ts"),
            pl.col("window_ts").min(),
            pl.col("train_plays").sum(),
            pl.col("eval_plays").sum(),
            pl.col("before_plays").sum(),
        )
    )
    first_ts = pl.col("first_ts")
    in_train = pl.col("train_plays") > 0
    train = pairs.filter(in_train).select(
        "user_id", "track_id", pl.col("window_ts").alias("first_ts"), pl.col("train_plays").alias("plays")
    )
    replayed = pairs.filter(in_train & (first_ts < train_start)).select(pl.len())
    candidates = pairs.filter(first_ts >= test_start).select(
        "user_id", "track_id", "first_ts", pl.col("eval_plays").alias("plays")
    )
    known_tracks = pairs.filter(first_ts < test_start).select("track_id").unique()
    before_window = pairs.filter((first_ts < train_start) & ~in_train).select(
        "user_id", "track_id", "first_ts", pl.col("before_plays").alias("plays")
    )
    # The streaming engine reads the log in batches into the group-by, so the events are never all in memory
    # at once: peak memory follows the number of (user, track) pairs of the pass, not the number of events.
    frames = pl.collect_all([train, candidates, known_tracks, before_window, replayed], engine="streaming")
    return _WindowPairs(*frames[:4], replayed=int(frames[4].item()))


def _assign_val_users(users: pl.Series, config: SplitConfig) -> pl.DataFrame:
    """Pick the validation users: sort the distinct ids, permute them with the seed, take the first share.

    Sorting first makes the result independent of the row order the group-by happened to produce.
    """
    distinct = users.unique().sort()
    order = np.random.default_rng(config.seed).permutation(distinct.len())
    n_val = int(np.floor(config.val_fraction * distinct.len() + 0.5))
    chosen = distinct.gather(order[:n_val]) if n_val else distinct.clear()
    return chosen.to_frame("user_id")


def _conform(frame: pl.DataFrame) -> pl.DataFrame:
    """Cast to the split contract's columns and types and sort, so outputs are byte-for-byte reproducible.

    The sort runs on the streaming engine, which sorts the millions of train pairs of a full-size log in
    parallel chunks; the keys are unique per row, so the order is fully determined.
    """
    columns = (pl.col(name).cast(dtype) for name, dtype in SPLIT_SCHEMA.items())
    return frame.lazy().select(columns).sort(_SORT_KEY).collect(engine="streaming")


def write_split(result: SplitResult, out_dir: str | os.PathLike[str]) -> None:
    """Write one Parquet file per split (:data:`SPLITS`) and ``stats.csv`` into ``out_dir``, each atomically."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in result.frames().items():
        write_table(frame, folder / f"{name}.parquet", kind="split")
    with atomic_path(folder / "stats.csv") as tmp:
        result.statistics().write_csv(tmp)
