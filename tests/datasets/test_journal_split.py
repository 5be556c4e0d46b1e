"""Protocol ``journal2026``: the journal version's split, checked against a pandas reference of its original steps.

``reference_split`` below follows the original's ``data/src/split.py`` (Tamm & Aljanaki 2026) step by step, in
plain pandas and scikit-learn; our tables must equal its tables row for row, on a hand-made log whose edge cases
are spelled out and on a random one.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import polars as pl
import pytest
from sklearn.model_selection import train_test_split

from audiorec.common.names import SPLITS
from audiorec.errors import ParameterError
from audiorec.protocol.journal import validation_users
from audiorec.protocol.split import SPLIT_SCHEMA, SplitConfig, temporal_split
from audiorec.stages.split import split_dataset
from audiorec.storage.tables import read_table, write_interactions

TEST_DATE = "2020-02-01"  # window [2019-02-01, 2020-03-01): train to 2020-02-01, then the test month
JOURNAL = {"test_start": TEST_DATE, "protocol": "journal2026"}


def reference_split(log: pd.DataFrame, test_date: str) -> dict[str, pd.DataFrame]:
    """The original's ``date_split``: its window, its compression, its hot/cold parts and its user split."""
    test_start = pd.Timestamp(test_date, tz="UTC")
    train_start = test_start - pd.DateOffset(years=1)
    end = test_start + pd.DateOffset(months=1)

    def compress(events: pd.DataFrame) -> pd.DataFrame:
        grouped = events.groupby(["user_id", "track_id"])
        return grouped.agg(timestamp=("timestamp", "min"), count=("timestamp", "count")).reset_index()

    window = log[(log.timestamp >= train_start) & (log.timestamp < end)]
    pairs = compress(window)  # first listen and listens inside the 13-month window
    test = pairs[pairs.timestamp >= test_start]  # first listen inside the window falls in the test month
    train = compress(window[window.timestamp < test_start])
    test = test[test.user_id.isin(train.user_id.unique())]  # warm users only
    hot_rows = test.track_id.isin(train.track_id.unique())
    cold, hot = test[~hot_rows], test[hot_rows]
    # In order of appearance; an array as pandas 2 returned it (pandas 3 returns an Arrow array sklearn cannot index).
    candidates = np.asarray(hot[~hot.user_id.isin(cold.user_id.unique())].user_id.unique(), dtype=object)
    val_users, _ = train_test_split(candidates, test_size=0.7, random_state=42)
    return {
        "train": train,
        "val": hot[hot.user_id.isin(val_users)],
        "test": hot[~hot.user_id.isin(val_users)],
        "cold_test": cold,
    }


def _log(events: list[tuple[str, str, str]]) -> pl.DataFrame:
    return pl.DataFrame(events, schema=["user_id", "track_id", "when"], orient="row").select(
        "user_id",
        "track_id",
        pl.col("when").str.to_datetime("%Y-%m-%dT%H:%M:%S", time_unit="us", time_zone="UTC").alias("timestamp"),
    )


def _pandas(log: pl.DataFrame) -> pd.DataFrame:
    """The log as the original reads it: ids as Python strings (object columns), times as timestamps."""
    return log.to_pandas().astype({"user_id": object, "track_id": object})


def _rows(frame: pl.DataFrame) -> list[tuple[str, str, str, int]]:
    return [
        (user, track, first.strftime("%Y-%m-%dT%H:%M:%S"), plays)
        for user, track, first, plays in frame.select(*SPLIT_SCHEMA).iter_rows()
    ]


def _reference_rows(frame: pd.DataFrame) -> list[tuple[str, str, str, int]]:
    """A reference table in the split contract's order: (user_id, first_ts, track_id)."""
    ordered = frame.sort_values(["user_id", "timestamp", "track_id"])
    return [
        (user, track, when.strftime("%Y-%m-%dT%H:%M:%S"), int(count))
        for user, track, when, count in ordered[["user_id", "track_id", "timestamp", "count"]].itertuples(index=False)
    ]


HAND_LOG = [
    ("a", "t1", "2019-05-01T10:00:00"),
    ("a", "t1", "2020-02-05T10:00:00"),  # replay of a train pair in the test month: not an evaluation pair
    ("a", "t2", "2019-06-01T10:00:00"),
    ("a", "t9", "2018-11-01T10:00:00"),  # before the window: not history ...
    ("a", "t9", "2020-02-10T10:00:00"),  # ... so this pair is new in the test month; t9 is hot through c
    ("a", "t3", "2020-02-12T10:00:00"),  # first heard in the test month by a, in train by b: hot
    ("b", "t3", "2019-02-01T00:00:00"),  # exactly the window's start (UTC): inside it, train
    ("b", "t1", "2020-02-01T00:00:00"),  # exactly test_start: the test month
    ("c", "t9", "2019-07-01T00:00:00"),
    ("c", "t2", "2019-01-31T23:59:59"),  # the last second before the window: ignored
    ("c", "t2", "2020-02-15T00:00:00"),  # so new in the test month
    ("d", "t1", "2019-08-01T00:00:00"),
    ("d", "t5", "2020-02-03T00:00:00"),  # t5 is in no train pair: cold
    ("d", "t2", "2020-02-04T00:00:00"),  # d has a hot and a cold item: a test user, never a validation one
    ("e", "t2", "2019-09-01T00:00:00"),
    ("e", "t6", "2020-02-06T00:00:00"),  # e has only a cold item: cold_test only
    ("f", "t6", "2018-06-01T00:00:00"),  # t6 heard before the window only: still cold; f is nowhere
    ("g", "t1", "2020-02-07T00:00:00"),  # g appears only in the test month: not warm, dropped
    ("g", "t5", "2020-02-08T00:00:00"),
    ("h", "t3", "2019-10-01T00:00:00"),
    ("h", "t2", "2020-02-29T23:59:59"),  # the test month's last second
    ("h", "t1", "2020-03-01T00:00:00"),  # the window's end: outside
    ("i", "t1", "2019-11-01T00:00:00"),
    ("i", "t2", "2020-02-20T00:00:00"),
    ("j", "t2", "2019-12-01T00:00:00"),
    ("j", "t3", "2020-02-21T00:00:00"),
    ("j", "t3", "2020-02-22T00:00:00"),  # two listens in the test month: plays 2
]


def test_hand_made_log_exact_rows() -> None:
    result = temporal_split(_log(HAND_LOG), SplitConfig.from_mapping(JOURNAL))

    assert _rows(result.train) == [
        ("a", "t1", "2019-05-01T10:00:00", 1),
        ("a", "t2", "2019-06-01T10:00:00", 1),
        ("b", "t3", "2019-02-01T00:00:00", 1),
        ("c", "t9", "2019-07-01T00:00:00", 1),
        ("d", "t1", "2019-08-01T00:00:00", 1),
        ("e", "t2", "2019-09-01T00:00:00", 1),
        ("h", "t3", "2019-10-01T00:00:00", 1),
        ("i", "t1", "2019-11-01T00:00:00", 1),
        ("j", "t2", "2019-12-01T00:00:00", 1),
    ]
    # Hot users without a cold item, sorted: [a, b, c, h, i, j]. train_test_split(test_size=0.7) puts
    # ceil(0.7 * 6) = 5 in its test side; RandomState(42).permutation(6) = [0, 1, 5, 2, 4, 3], so its test side is
    # positions 0, 1, 5, 2, 4 and its train side, the validation users, is position 3: h.
    assert _rows(result.val) == [("h", "t2", "2020-02-29T23:59:59", 1)]
    assert _rows(result.test) == [
        ("a", "t9", "2020-02-10T10:00:00", 1),
        ("a", "t3", "2020-02-12T10:00:00", 1),
        ("b", "t1", "2020-02-01T00:00:00", 1),
        ("c", "t2", "2020-02-15T00:00:00", 1),
        ("d", "t2", "2020-02-04T00:00:00", 1),
        ("i", "t2", "2020-02-20T00:00:00", 1),
        ("j", "t3", "2020-02-21T00:00:00", 2),
    ]
    assert _rows(result.cold_test) == [("d", "t5", "2020-02-03T00:00:00", 1), ("e", "t6", "2020-02-06T00:00:00", 1)]
    assert result.heard_before_window.height == 0 and result.heard_before_window.schema == SPLIT_SCHEMA
    assert result.replayed == 0  # nothing before the window is read
    assert result.statistics().rows() == [
        ("train", 9, 8, 4),
        ("val", 1, 1, 1),
        ("test", 7, 6, 4),
        ("cold_test", 2, 2, 2),
        ("heard_before_window", 0, 0, 0),
    ]


def test_hand_made_log_equals_the_reference() -> None:
    result = temporal_split(_log(HAND_LOG), SplitConfig.from_mapping(JOURNAL))
    reference = reference_split(_pandas(_log(HAND_LOG)), TEST_DATE)
    for name, table in reference.items():
        assert _rows(getattr(result, name)) == _reference_rows(table), name


def test_the_2024_protocol_differs_where_the_journal_ignores_older_listens() -> None:
    paper = temporal_split(_log(HAND_LOG), SplitConfig.from_mapping({"test_start": TEST_DATE}))
    journal = temporal_split(_log(HAND_LOG), SplitConfig.from_mapping(JOURNAL))
    evaluated = {(user, track) for user, track, *_ in _rows(pl.concat([paper.val, paper.test]))}
    # a and c heard t9 and t2 before the window: in 2024 those pairs are old, never relevant, and (a being an
    # evaluation user) removed from a's rankings; the journal version counts them as new in the test month.
    assert ("a", "t9") not in evaluated and ("c", "t2") not in evaluated
    assert {("a", "t9"), ("c", "t2")} <= {(user, track) for user, track, *_ in _rows(journal.test)}
    assert [(user, track) for user, track, *_ in _rows(paper.heard_before_window)] == [("a", "t9")]
    # t6 was heard before T, so in 2024 it is no new release; in the journal version it is cold (not in train).
    assert [track for _, track, *_ in _rows(paper.cold_test)] == ["t5"]
    assert paper.train.equals(journal.train)  # same train window, same first listens and plays inside it


def _random_log(seed: int = 3, n_users: int = 60, n_tracks: int = 90, n_events: int = 4000) -> pl.DataFrame:
    """Events from 2018-10 to 2020-03-10, a tenth of them on the window's UTC boundaries (± 1 s)."""
    rng = np.random.default_rng(seed)
    low = np.datetime64("2018-10-01T00:00:00", "s").astype(np.int64)
    high = np.datetime64("2020-03-10T00:00:00", "s").astype(np.int64)
    seconds = rng.integers(low, high, n_events)
    edges = np.array(["2019-02-01", "2020-02-01", "2020-03-01"], dtype="datetime64[s]").astype(np.int64)
    on_edge = rng.random(n_events) < 0.1
    seconds[on_edge] = rng.choice(edges, on_edge.sum()) + rng.integers(-1, 2, on_edge.sum())
    tracks = np.minimum(rng.zipf(1.5, n_events) - 1, n_tracks - 1)  # popular tracks recur, the tail is cold
    return pl.DataFrame(
        {
            "user_id": [f"u{user:03d}" for user in rng.integers(0, n_users, n_events)],
            "track_id": [f"t{track:03d}" for track in tracks],
            "timestamp": pl.Series(seconds * 1_000_000).cast(pl.Datetime("us", "UTC")),
        }
    )


@pytest.mark.parametrize("passes", [1, 3])
def test_random_log_equals_the_reference(passes: int) -> None:
    log = _random_log()
    result = temporal_split(log.lazy(), SplitConfig.from_mapping(JOURNAL), passes=passes)
    reference = reference_split(_pandas(log), TEST_DATE)
    assert min(table.shape[0] for table in reference.values()) > 0  # every table is exercised
    for name, table in reference.items():
        assert _rows(getattr(result, name)) == _reference_rows(table), name
    assert result.heard_before_window.height == 0


def test_validation_users_are_sklearns_train_side_of_the_legacy_permutation() -> None:
    users = np.array([f"u{index:02d}" for index in range(23)])
    chosen = validation_users(users, 0.3, 42)
    permutation = np.random.RandomState(42).permutation(users.size)  # what ShuffleSplit draws
    n_test = math.ceil(0.7 * users.size)
    assert list(chosen) == list(users[permutation[n_test:]])
    assert len(chosen) == 23 - 17


def test_protocol_defaults_and_checks() -> None:
    journal = SplitConfig.from_mapping(JOURNAL)
    assert (journal.val_fraction, journal.seed, journal.train_months, journal.test_months) == (0.3, 42, 12, 1)
    paper = SplitConfig.from_mapping({"test_start": TEST_DATE})
    assert (paper.protocol, paper.val_fraction, paper.seed) == ("paper2024", 0.5, 0)
    with pytest.raises(ParameterError, match="protocol must be one of"):
        SplitConfig.from_mapping({"test_start": TEST_DATE, "protocol": "journal"})
    with pytest.raises(ParameterError, match="strictly between 0 and 1 with protocol journal2026"):
        SplitConfig.from_mapping(JOURNAL | {"val_fraction": 1.0})
    few = [("a", "t1", "2019-05-01T00:00:00"), ("a", "t2", "2020-02-02T00:00:00")]
    few += [("b", "t2", "2019-05-01T00:00:00"), ("b", "t1", "2020-02-02T00:00:00")]
    with pytest.raises(ParameterError, match="cannot split the 2 hot user"):
        temporal_split(_log(few), SplitConfig.from_mapping(JOURNAL))


def test_split_stage_writes_every_table_of_the_contract(tmp_path) -> None:
    write_interactions(_log(HAND_LOG), tmp_path / "interactions.parquet")
    split_dataset(tmp_path / "interactions.parquet", JOURNAL, tmp_path / "split")
    expected = temporal_split(_log(HAND_LOG), SplitConfig.from_mapping(JOURNAL))
    for name in SPLITS:
        assert read_table(tmp_path / "split" / f"{name}.parquet", kind="split").equals(getattr(expected, name))
    assert pl.read_csv(tmp_path / "split" / "stats.csv").rows() == expected.statistics().rows()


def test_the_split_jobs_parameters_hold_the_protocols_defaults():
    """A block that leaves out the default protocol's val_fraction and seed gives the parameters of one that states
    them (the values results made before the journal protocol carry), so adding the protocol reruns no split."""
    from audiorec.plan.datasets import DatasetPlan

    def split_of(split: dict) -> dict:
        return DatasetPlan.from_entry("demo", {"source": "demo", "split": split}).split

    stated = {"test_start": "2020-02-20", "train_months": 12, "test_months": 1, "val_fraction": 0.5, "seed": 0}
    left_out = {"test_start": "2020-02-20", "train_months": 12, "test_months": 1}
    assert split_of(left_out) == stated
    journal = split_of({**left_out, "protocol": "journal2026"})
    assert (journal["val_fraction"], journal["seed"]) == (0.3, 42)
    assert split_of({**left_out, "protocol": "journal2026", "seed": 7})["seed"] == 7
