"""The temporal split: exact rows on a hand-made log, invariants and a reference check on a random log."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from audiorec.common.months import add_months
from audiorec.errors import ParameterError
from audiorec.protocol.split import SPLIT_SCHEMA, SplitConfig, SplitResult, temporal_split, write_split
from audiorec.storage.tables import read_table

TEST_START = "2020-02-20"  # train window [2019-02-20, 2020-02-20), evaluation window [2020-02-20, 2020-03-20)


def _log(events: list[tuple[str, str, str]]) -> pl.DataFrame:
    return pl.DataFrame(events, schema=["user_id", "track_id", "when"], orient="row").select(
        "user_id",
        "track_id",
        pl.col("when").str.to_datetime("%Y-%m-%dT%H:%M:%S", time_unit="us", time_zone="UTC").alias("timestamp"),
    )


HAND_LOG = [
    ("u1", "t1", "2019-01-10T08:00:00"),  # (u1, t1) first heard before the train window ...
    ("u1", "t1", "2019-06-01T08:00:00"),  # ... and replayed inside it: a train pair, ordered by this listen
    ("u1", "t7", "2018-10-01T08:00:00"),  # heard only before the window: not train, but never a candidate of u1
    ("u1", "t2", "2019-03-01T10:00:00"),
    ("u1", "t2", "2019-04-01T10:00:00"),  # repeat listen: train plays 2
    ("u1", "t2", "2020-02-25T10:00:00"),  # replay of a train pair after test_start: not a train play, no candidate
    ("u1", "t3", "2020-02-21T09:00:00"),
    ("u1", "t3", "2020-03-01T09:00:00"),  # new to u1 in the evaluation window, plays 2
    ("u1", "t6", "2020-03-20T00:00:00"),  # at test_end: outside every split
    ("u2", "t4", "2018-12-01T00:00:00"),  # t4 is known before test_start but absent from train
    ("u2", "t1", "2019-05-05T12:00:00"),
    ("u2", "t3", "2019-07-07T12:00:00"),
    ("u2", "t2", "2020-03-19T23:59:59"),  # last second of the evaluation window
    ("u2", "t5", "2020-03-02T12:00:00"),  # t5 first appears after test_start: cold track, warm user
    ("u3", "t3", "2019-08-08T12:00:00"),
    ("u3", "t1", "2019-09-09T12:00:00"),
    ("u3", "t1", "2019-10-10T12:00:00"),
    ("u3", "t7", "2019-11-11T12:00:00"),  # t7 is a train track through u3
    ("u3", "t2", "2020-02-20T00:00:00"),  # exactly test_start: an evaluation candidate
    ("u3", "t4", "2020-03-10T12:00:00"),  # t4 not in train: dropped, and not cold either
    ("u3", "t5", "2020-03-05T12:00:00"),
    ("u3", "t5", "2020-03-03T12:00:00"),  # cold track, plays 2, first_ts is the earlier event
    ("u4", "t1", "2020-03-01T12:00:00"),  # u4 is a cold user: dropped everywhere
    ("u4", "t5", "2020-03-04T12:00:00"),  # cold user and cold track: not in cold_test
]


def _rows(frame: pl.DataFrame) -> list[tuple[str, str, str, int]]:
    return [
        (user, track, first.strftime("%Y-%m-%dT%H:%M:%S"), plays)
        for user, track, first, plays in frame.select(*SPLIT_SCHEMA).iter_rows()
    ]


def test_hand_made_log_exact_rows() -> None:
    result = temporal_split(_log(HAND_LOG), SplitConfig.from_mapping({"test_start": TEST_START}))

    assert _rows(result.train) == [
        ("u1", "t2", "2019-03-01T10:00:00", 2),
        ("u1", "t1", "2019-06-01T08:00:00", 1),  # the replay: first listen inside the window, one play there
        ("u2", "t1", "2019-05-05T12:00:00", 1),
        ("u2", "t3", "2019-07-07T12:00:00", 1),
        ("u3", "t3", "2019-08-08T12:00:00", 1),
        ("u3", "t1", "2019-09-09T12:00:00", 2),
        ("u3", "t7", "2019-11-11T12:00:00", 1),
    ]
    assert result.replayed == 1
    # Eligible users sorted: [u1, u2, u3]; default_rng(0).permutation(3) == [2, 0, 1] and
    # round(0.5 * 3) = 2 (half up), so val = {u3, u1} and test = {u2}.
    assert _rows(result.val) == [
        ("u1", "t3", "2020-02-21T09:00:00", 2),
        ("u3", "t2", "2020-02-20T00:00:00", 1),
    ]
    assert _rows(result.test) == [("u2", "t2", "2020-03-19T23:59:59", 1)]
    assert _rows(result.cold_test) == [
        ("u2", "t5", "2020-03-02T12:00:00", 1),
        ("u3", "t5", "2020-03-03T12:00:00", 2),
    ]
    # u1 (a val user) heard t7 before the window only; u2's t4 is not a train track, so no ranking holds it.
    assert _rows(result.heard_before_window) == [("u1", "t7", "2018-10-01T08:00:00", 1)]
    for frame in result.frames().values():
        assert frame.schema == pl.Schema(SPLIT_SCHEMA)

    stats = result.statistics()
    assert stats.schema == pl.Schema({"split": pl.String, "rows": pl.Int64, "users": pl.Int64, "items": pl.Int64})
    assert stats.rows() == [
        ("train", 7, 3, 4),
        ("val", 2, 2, 2),
        ("test", 1, 1, 1),
        ("cold_test", 2, 2, 1),
        ("heard_before_window", 1, 1, 1),
    ]


@pytest.mark.parametrize(("fraction", "val_users"), [(1.0, {"u1", "u2", "u3"}), (0.0, set())])
def test_val_fraction_extremes(fraction: float, val_users: set[str]) -> None:
    config = SplitConfig.from_mapping({"test_start": TEST_START, "val_fraction": fraction})
    result = temporal_split(_log(HAND_LOG).lazy(), config)
    evaluation = pl.concat([result.val, result.test]).sort("user_id", "first_ts", "track_id")
    assert _rows(evaluation) == [
        ("u1", "t3", "2020-02-21T09:00:00", 2),
        ("u2", "t2", "2020-03-19T23:59:59", 1),
        ("u3", "t2", "2020-02-20T00:00:00", 1),
    ]
    assert set(result.val["user_id"]) == val_users


def test_val_share_rounds_half_up() -> None:
    # Five eligible users, val_fraction 0.5: 2.5 rounds up to 3 validation users (not to the even 2).
    events = [("u0", "t2", "2019-06-01T00:00:00")]
    for user in ("u1", "u2", "u3", "u4", "u5"):
        events += [(user, "t1", "2019-06-01T00:00:00"), (user, "t2", "2020-03-01T00:00:00")]
    result = temporal_split(_log(events), SplitConfig.from_mapping({"test_start": TEST_START}))
    assert (result.val["user_id"].n_unique(), result.test["user_id"].n_unique()) == (3, 2)


def test_window_lengths_in_calendar_months() -> None:
    # A 1-month train window, [2020-01-20, 2020-02-20), holds no listen: train is empty, so no evaluation
    # user is warm and val/test are empty too.
    short = temporal_split(_log(HAND_LOG), SplitConfig.from_mapping({"test_start": TEST_START, "train_months": 1}))
    assert short.train.height == 0 and short.val.height == 0 and short.test.height == 0
    # A 2-month evaluation window admits the event at 2020-03-20 (u1, t6), which is cold for train.
    wide = temporal_split(_log(HAND_LOG), SplitConfig.from_mapping({"test_start": TEST_START, "test_months": 2}))
    assert ("u1", "t6", "2020-03-20T00:00:00", 1) in _rows(wide.cold_test)
    assert add_months(datetime(2020, 3, 31, tzinfo=UTC), -1) == datetime(2020, 2, 29, tzinfo=UTC)
    assert add_months(datetime(2020, 2, 20, tzinfo=UTC), -12) == datetime(2019, 2, 20, tzinfo=UTC)
    assert add_months(datetime(2019, 12, 31, tzinfo=UTC), 2) == datetime(2020, 2, 29, tzinfo=UTC)


def _random_log(seed: int = 7, n_events: int = 20_000) -> pl.DataFrame:
    """200 users, 500 tracks over 2018-06 .. 2020-04; tracks 470-499 appear only after test_start."""
    rng = np.random.default_rng(seed)
    start = datetime(2018, 6, 1, tzinfo=UTC)
    span = int((datetime(2020, 4, 10, tzinfo=UTC) - start).total_seconds())
    users = rng.integers(0, 200, n_events)
    tracks = np.minimum(rng.zipf(1.2, n_events) - 1, 469)
    offsets = rng.integers(0, span, n_events)
    late = rng.random(n_events) < 0.02
    tracks[late] = rng.integers(470, 500, int(late.sum()))
    test_start_offset = int((datetime(2020, 2, 20, tzinfo=UTC) - start).total_seconds())
    offsets[late] = rng.integers(test_start_offset, span, int(late.sum()))
    timestamps = [start + timedelta(seconds=int(s)) for s in offsets]
    return pl.DataFrame(
        {
            "user_id": [f"u{u:03d}" for u in users],
            "track_id": [f"t{t:03d}" for t in tracks],
            "timestamp": pl.Series(timestamps, dtype=pl.Datetime("us", "UTC")),
        }
    )


def _reference(log: pl.DataFrame, config: SplitConfig) -> dict[str, set[tuple[str, str, datetime, int]]]:
    """The protocol written out with plain Python dictionaries, for comparison."""
    first: dict[tuple[str, str], datetime] = {}
    plays: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    track_first: dict[str, datetime] = {}
    for user, track, when in log.iter_rows():
        first[(user, track)] = min(first.get((user, track), when), when)
        track_first[track] = min(track_first.get(track, when), when)
        plays[(user, track)].append(when)

    def rows(lo: datetime, hi: datetime) -> set[tuple[str, str, datetime, int]]:
        inside = {pair: f for pair, f in first.items() if lo <= f < hi}
        return {(u, t, f, sum(lo <= w < hi for w in plays[(u, t)])) for (u, t), f in inside.items()}

    lo, hi = config.train_start, config.test_start
    window = {pair: [w for w in times if lo <= w < hi] for pair, times in plays.items()}
    train = {(u, t, min(ws), len(ws)) for (u, t), ws in window.items() if ws}
    candidates = rows(config.test_start, config.test_end)
    train_users = {r[0] for r in train}
    train_tracks = {r[1] for r in train}
    eligible = {r for r in candidates if r[0] in train_users and r[1] in train_tracks}
    cold = {r for r in candidates if track_first[r[1]] >= config.test_start and r[0] in train_users}
    eligible_users = {r[0] for r in eligible}
    before = {
        (u, t, first[(u, t)], sum(w < lo for w in plays[(u, t)]))
        for (u, t), ws in window.items()
        if not ws and first[(u, t)] < lo and u in eligible_users and t in train_tracks
    }
    return {"train": train, "eligible": eligible, "cold_test": cold, "heard_before_window": before}


def _as_set(frame: pl.DataFrame) -> set[tuple[str, str, datetime, int]]:
    return set(frame.select(*SPLIT_SCHEMA).iter_rows())


@pytest.fixture(scope="module")
def random_log() -> pl.DataFrame:
    return _random_log()


@pytest.fixture(scope="module")
def random_split(random_log: pl.DataFrame) -> tuple[SplitConfig, SplitResult]:
    config = SplitConfig(test_start=datetime(2020, 2, 20, tzinfo=UTC), seed=3)
    return config, temporal_split(random_log.lazy(), config)


def test_random_log_matches_reference(random_log, random_split) -> None:
    config, result = random_split
    expected = _reference(random_log, config)
    assert _as_set(result.train) == expected["train"]
    assert _as_set(result.val) | _as_set(result.test) == expected["eligible"]
    assert _as_set(result.cold_test) == expected["cold_test"]
    assert _as_set(result.heard_before_window) == expected["heard_before_window"]
    assert result.cold_test.height > 10 and result.val.height > 100  # the log exercises every split
    assert result.heard_before_window.height > 100 and result.replayed > 100


def test_random_log_invariants(random_log, random_split) -> None:
    config, result = random_split
    train, val, test, cold = result.train, result.val, result.test, result.cold_test
    test_start = config.test_start
    for frame in result.frames().values():
        assert frame.schema == pl.Schema(SPLIT_SCHEMA)
        assert frame.equals(frame.sort("user_id", "first_ts", "track_id"))
        assert frame.select("user_id", "track_id").is_duplicated().sum() == 0

    # No val/test pair was heard before test_start (checked against the raw log, not only first_ts).
    evaluation = pl.concat([val, test])
    earlier = random_log.filter(pl.col("timestamp") < test_start).join(evaluation, on=["user_id", "track_id"])
    assert earlier.height == 0
    # Every train track an evaluation user heard before test_start is in train or heard_before_window: what a
    # ranking removes covers the user's whole past, replays and listens before the window alike.
    removed = pl.concat([train, result.heard_before_window]).select("user_id", "track_id")
    past = (
        random_log.filter(pl.col("timestamp") < test_start)
        .join(evaluation.select("user_id").unique(), on="user_id", how="semi")
        .join(train.select("track_id").unique(), on="track_id", how="semi")
        .select("user_id", "track_id")
        .unique()
    )
    assert past.height > removed.height / 2 and past.join(removed, on=["user_id", "track_id"], how="anti").height == 0
    assert evaluation["first_ts"].min() >= test_start
    assert evaluation["first_ts"].max() < config.test_end

    val_users, test_users = set(val["user_id"]), set(test["user_id"])
    assert not val_users & test_users
    eligible_users = {row[0] for row in _reference(random_log, config)["eligible"]}
    assert val_users | test_users == eligible_users
    assert set(evaluation["user_id"]) <= set(train["user_id"])
    assert set(evaluation["track_id"]) <= set(train["track_id"])
    n = len(eligible_users)
    assert len(val_users) == int(np.floor(config.val_fraction * n + 0.5))
    assert abs(len(val_users) / n - config.val_fraction) <= 1 / n

    assert not set(cold["track_id"]) & set(train["track_id"])
    assert set(cold["user_id"]) <= set(train["user_id"])
    assert random_log.filter(pl.col("timestamp") < test_start).join(cold, on="track_id").height == 0


def test_determinism_and_seed(random_log, random_split) -> None:
    config, result = random_split
    shuffled = random_log.sample(fraction=1.0, shuffle=True, seed=11)
    again = temporal_split(shuffled, config)
    for name, frame in result.frames().items():
        assert frame.equals(again.frames()[name]), name
    other = temporal_split(random_log, SplitConfig(test_start=config.test_start, seed=config.seed + 1))
    assert set(other.val["user_id"]) != set(result.val["user_id"])
    assert set(other.val["user_id"]) | set(other.test["user_id"]) == set(result.val["user_id"]) | set(
        result.test["user_id"]
    )
    assert other.train.equals(result.train) and other.cold_test.equals(result.cold_test)


def test_write_split(tmp_path, random_split) -> None:
    _, result = random_split
    write_split(result, tmp_path / "split")
    for name, frame in result.frames().items():
        assert read_table(tmp_path / "split" / f"{name}.parquet", kind="split").equals(frame)
    stats = pl.read_csv(tmp_path / "split" / "stats.csv")
    assert stats.columns == ["split", "rows", "users", "items"]
    assert stats.rows() == result.statistics().rows()
    assert sorted(p.name for p in (tmp_path / "split").iterdir()) == [
        "cold_test.parquet",
        "heard_before_window.parquet",
        "stats.csv",
        "test.parquet",
        "train.parquet",
        "val.parquet",
    ]


def test_config_from_mapping_accepts_dates_and_zones() -> None:
    expected = datetime(2020, 2, 20, tzinfo=UTC)
    assert SplitConfig.from_mapping({"test_start": "2020-02-20"}).test_start == expected
    assert SplitConfig.from_mapping({"test_start": date(2020, 2, 20)}).test_start == expected
    assert SplitConfig.from_mapping({"test_start": datetime(2020, 2, 20)}).test_start == expected
    assert SplitConfig.from_mapping({"test_start": "2020-02-20T01:00:00+01:00"}).test_start == expected
    aware = SplitConfig(test_start=datetime(2020, 2, 20, 1, tzinfo=timezone(timedelta(hours=1))))
    assert aware.test_start == expected and aware.test_start.tzinfo == UTC
    config = SplitConfig.from_mapping(
        {"test_start": "2020-02-20", "train_months": 6, "test_months": 2, "val_fraction": 0.25, "seed": 4}
    )
    assert config.train_start == datetime(2019, 8, 20, tzinfo=UTC)
    assert config.test_end == datetime(2020, 4, 20, tzinfo=UTC)


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"test_start": "2020-02-20", "train_month": 12}, "unknown option.*train_month"),
        ({"train_months": 12}, "test_start is required"),
        ({"test_start": "20.02.2020"}, "test_start"),
        ({"test_start": 20200220}, "test_start"),
        ({"test_start": "2020-02-20", "train_months": 0}, "train_months"),
        ({"test_start": "2020-02-20", "test_months": 1.5}, "test_months"),
        ({"test_start": "2020-02-20", "train_months": True}, "train_months"),
        ({"test_start": "2020-02-20", "val_fraction": 1.5}, "val_fraction"),
        ({"test_start": "2020-02-20", "val_fraction": "half"}, "val_fraction"),
        ({"test_start": "2020-02-20", "seed": -1}, "seed"),
    ],
)
def test_config_validation(mapping, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        SplitConfig.from_mapping(mapping)


def test_naive_test_start_and_naive_log_are_rejected() -> None:
    with pytest.raises(ParameterError, match="timezone-aware"):
        SplitConfig(test_start=datetime(2020, 2, 20))
    naive = _log(HAND_LOG).with_columns(pl.col("timestamp").dt.replace_time_zone(None))
    with pytest.raises(ParameterError, match="no time zone"):
        temporal_split(naive, SplitConfig.from_mapping({"test_start": TEST_START}))
    with pytest.raises(ParameterError, match="timestamp"):
        temporal_split(_log(HAND_LOG).drop("timestamp"), SplitConfig.from_mapping({"test_start": TEST_START}))
