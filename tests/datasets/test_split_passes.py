"""The temporal split grouped in several passes over disjoint users gives exactly the one-pass tables."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from audiorec.errors import ParameterError
from audiorec.protocol.split import SplitConfig, temporal_split


def _random_log(rng: np.random.Generator, n_events: int = 20_000) -> pl.DataFrame:
    start = int(datetime(2018, 6, 1, tzinfo=UTC).timestamp())
    span = int(datetime(2020, 4, 1, tzinfo=UTC).timestamp()) - start
    return pl.DataFrame(
        {
            "user_id": [f"u{i}" for i in rng.integers(0, 300, n_events)],
            "track_id": [f"t{i}" for i in rng.integers(0, 400, n_events)],
            "timestamp": (start + rng.integers(0, span, n_events)) * 1_000_000,
        }
    ).with_columns(pl.col("timestamp").cast(pl.Datetime("us", "UTC")))


@pytest.mark.parametrize("passes", [2, 3, 7])
def test_passes_over_user_partitions_give_the_one_pass_tables(rng: np.random.Generator, passes: int) -> None:
    log = _random_log(rng)
    config = SplitConfig.from_mapping({"test_start": "2020-02-20"})
    one = temporal_split(log.lazy(), config, passes=1)
    several = temporal_split(log.lazy(), config, passes=passes)
    for name, frame in one.frames().items():
        assert frame.height > 0 or name == "cold_test"
        assert several.frames()[name].equals(frame), name
    assert temporal_split(log, config).train.equals(one.train)  # the automatic choice: one pass for a small log


def test_passes_must_be_a_positive_integer(rng: np.random.Generator) -> None:
    config = SplitConfig.from_mapping({"test_start": "2020-02-20"})
    with pytest.raises(ParameterError, match="passes must be a positive integer; got 0"):
        temporal_split(_random_log(rng, 10), config, passes=0)
