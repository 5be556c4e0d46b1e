"""The partitioned pair grouping of the split against a plain group-by, and the order it promises."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from audiorec.protocol import pairs as pairs_module
from audiorec.protocol.pairs import BEFORE, CANDIDATE, TRAIN, group_pairs

BOUNDS = (1_000, 2_000, 2_500)  # train start, test start, test end


def _reference(users: np.ndarray, tracks: np.ndarray, stamps: np.ndarray) -> pl.DataFrame:
    """The classification of the module docstring, written as one group-by over the events."""
    train_start, test_start, test_end = BOUNDS
    t = pl.col("t")
    window = (t >= train_start) & (t < test_start)
    grouped = (
        pl.DataFrame({"user": users, "track": tracks, "t": stamps})
        .filter(t < test_end)
        .group_by("user", "track")
        .agg(
            t.min().alias("first"),
            t.filter(window).min().alias("window"),
            window.sum().alias("in_window"),
            (t >= test_start).sum().alias("after"),
            (t < train_start).sum().alias("earlier"),
        )
    )
    in_train, later = pl.col("in_window") > 0, pl.col("first") >= test_start
    return grouped.select(
        pl.col("user").cast(pl.UInt32),
        pl.col("track").cast(pl.UInt32),
        pl.when(in_train).then("window").otherwise("first").alias("time"),
        pl.when(in_train)
        .then("in_window")
        .when(later)
        .then("after")
        .otherwise("earlier")
        .cast(pl.UInt32)
        .alias("plays"),
        pl.when(in_train).then(TRAIN).when(later).then(CANDIDATE).otherwise(BEFORE).cast(pl.UInt8).alias("kind"),
        (in_train & (pl.col("first") < train_start)).alias("replay"),
    )


@pytest.mark.parametrize(
    ("compiled_from", "partition_events"), [(0, 1), (0, 64), (0, 8192), (10**9, 8192)], ids=lambda v: str(v)
)
def test_grouping_matches_a_plain_group_by_in_user_time_track_order(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch, compiled_from: int, partition_events: int
) -> None:
    """Few or many users per partition, one very active user, and many equal times (the order's tie-break); the
    compiled kernels (``compiled_from`` 0) and the sort that small logs take instead."""
    monkeypatch.setattr(pairs_module, "COMPILED_FROM_EVENTS", compiled_from)
    monkeypatch.setattr(pairs_module, "EVENTS_PER_PARTITION", partition_events)
    n = 60_000
    users = np.where(rng.random(n) < 0.3, 17, rng.integers(0, 500, n)).astype(np.uint32)
    tracks = rng.integers(0, 300, n).astype(np.uint32)
    stamps = rng.integers(0, 260, n) * 10  # coarse times: many pairs of a user share one
    got = group_pairs(users, tracks, stamps, BOUNDS)
    frame = pl.DataFrame({name: getattr(got, name) for name in got.FIELDS})
    expected = _reference(users, tracks, stamps)
    assert got.replayed == expected["replay"].sum()
    assert frame.equals(expected.drop("replay").sort("user", "time", "track"))
    assert set(np.unique(got.kind)) == {TRAIN, CANDIDATE, BEFORE}


@pytest.mark.parametrize("compiled_from", [0, 10**9])
def test_an_empty_log_and_a_log_after_the_window_give_no_pairs(monkeypatch, compiled_from: int) -> None:
    monkeypatch.setattr(pairs_module, "COMPILED_FROM_EVENTS", compiled_from)
    empty = np.zeros(0, np.uint32)
    assert group_pairs(empty, empty, np.zeros(0, np.int64), BOUNDS).user.size == 0
    late = group_pairs(np.array([0, 1], np.uint32), np.array([0, 1], np.uint32), np.array([2_500, 9_000]), BOUNDS)
    assert late.user.size == 0 and late.replayed == 0
