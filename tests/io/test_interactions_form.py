"""The interactions table stores its ids once, as sorted dictionary codes; every source writes that form."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dataset_fixtures import local_options, write_local, write_onion

from audiorec.errors import SchemaError
from audiorec.protocol.split import SplitConfig, temporal_split, write_split
from audiorec.stages import fetch_dataset, split_dataset
from audiorec.storage import tables
from audiorec.storage.tables import read_table, scan_interactions, write_interactions, write_table

MOMENT = datetime(2020, 1, 5, 12, 0, tzinfo=UTC)


def _log(n_events: int = 5_000, seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    start = int(datetime(2018, 6, 1, tzinfo=UTC).timestamp())
    span = int(datetime(2020, 4, 1, tzinfo=UTC).timestamp()) - start
    return pl.DataFrame(
        {
            # Ids whose numeric and text orders differ (u10 < u9 as text), so codes must be text ranks.
            "user_id": [f"u{i}" for i in rng.integers(0, 40, n_events)],
            "track_id": [f"t{i}" for i in rng.integers(0, 120, n_events)],
            "timestamp": (start + rng.integers(0, span, n_events)) * 1_000_000,
        }
    ).with_columns(pl.col("timestamp").cast(pl.Datetime("us", "UTC")))


def _assert_coded(path: Path) -> None:
    """Ids stored dictionary-encoded, with a sorted dictionary that Polars reads back as an Enum."""
    schema = pq.read_schema(path)
    for name in ("user_id", "track_id"):
        assert pa.types.is_dictionary(schema.field(name).type), name
        dtype = pl.scan_parquet(path).collect_schema()[name]
        assert isinstance(dtype, pl.Enum) and dtype.categories.is_sorted(), name


def test_written_once_as_sorted_codes_and_read_back_as_the_same_rows(tmp_path: Path) -> None:
    log = _log()
    write_interactions(log.lazy(), tmp_path / "interactions.parquet", {"source": "test"})
    _assert_coded(tmp_path / "interactions.parquet")
    back = read_table(tmp_path / "interactions.parquet", "interactions")
    assert back.schema["user_id"] == pl.String  # readers of the contract still get text ids
    assert back.equals(log)  # and the rows in their order


def test_write_table_of_kind_interactions_writes_the_coded_form(tmp_path: Path) -> None:
    """Sources that write through write_table (the demo world, generated logs) get the coded form too."""
    write_table(_log(), tmp_path / "interactions.parquet", kind="interactions", metadata={"source": "x"})
    _assert_coded(tmp_path / "interactions.parquet")


def test_a_text_id_table_is_encoded_on_read_and_splits_identically(tmp_path: Path) -> None:
    log = _log()
    log.write_parquet(tmp_path / "text.parquet")  # the form before ids were coded
    write_interactions(log, tmp_path / "coded.parquet")
    scanned = scan_interactions(tmp_path / "text.parquet").collect()
    assert isinstance(scanned.schema["user_id"], pl.Enum)
    assert scanned.with_columns(pl.col("user_id", "track_id").cast(pl.String)).equals(log)
    options = {"test_start": "2020-02-20"}
    split_dataset(tmp_path / "text.parquet", options, tmp_path / "from_text")
    split_dataset(tmp_path / "coded.parquet", options, tmp_path / "from_codes")
    for name in ("train", "val", "test", "cold_test", "heard_before_window"):
        a = pl.read_parquet(tmp_path / "from_text" / f"{name}.parquet")
        b = pl.read_parquet(tmp_path / "from_codes" / f"{name}.parquet")
        assert a.equals(b), name
    assert (tmp_path / "from_text" / "stats.csv").read_text() == (tmp_path / "from_codes" / "stats.csv").read_text()


def test_unsorted_dictionaries_give_the_same_split(tmp_path: Path) -> None:
    """An Enum whose categories are not in id order (written by other code) is re-encoded, not misread."""
    log = _log()
    shuffled = pl.Enum(["u" + str(i) for i in range(39, -1, -1)])
    config = SplitConfig.from_mapping({"test_start": "2020-02-20"})
    expected = temporal_split(log, config)
    got = temporal_split(log.with_columns(pl.col("user_id").cast(shuffled)), config)
    for name, frame in expected.frames().items():
        assert got.frames()[name].equals(frame), name
    write_split(got, tmp_path / "split")
    assert read_table(tmp_path / "split" / "train.parquet", "split").equals(expected.train)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (pl.DataFrame({"user_id": ["u"], "timestamp": [MOMENT]}), r"lacks column\(s\) \['track_id'\]"),
        (pl.DataFrame({"user_id": ["u"], "track_id": ["t"], "timestamp": ["2020-01-05"]}), "must be a datetime"),
        (pl.DataFrame({"user_id": [[1]], "track_id": ["t"], "timestamp": [MOMENT]}), "must be text"),
    ],
)
def test_a_table_that_is_not_an_interactions_table_is_refused_naming_the_file(
    tmp_path: Path, table: pl.DataFrame, message: str
) -> None:
    path = tmp_path / "given.parquet"
    table.write_parquet(path)
    with pytest.raises(SchemaError, match=f"{path}: .*{message}"):
        scan_interactions(path)


def test_every_listening_source_writes_the_coded_form(tmp_path: Path) -> None:
    onion = write_onion(tmp_path / "onion")
    fetch_dataset(
        "music4all_onion",
        {"listening_events": str(onion["events"]), "audio_dir": str(onion["audio_dir"])},
        tmp_path / "onion_data",
    )
    _assert_coded(tmp_path / "onion_data" / "interactions.parquet")
    local = write_local(tmp_path / "local")
    options = local_options(local)
    fetch_dataset("local", options, tmp_path / "local_data")
    _assert_coded(tmp_path / "local_data" / "interactions.parquet")
    small = {"n_tracks": 24, "n_users": 20, "n_artists": 6, "clip_seconds": 1.0, "n_playlists": 4}
    fetch_dataset("demo", small, tmp_path / "demo_data")
    _assert_coded(tmp_path / "demo_data" / "interactions.parquet")


def test_row_groups_are_large_so_readers_map_few_dictionaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each row group carries its own dictionaries; the writer sets the group size rather than Polars' small default."""
    monkeypatch.setattr(tables, "INTERACTIONS_ROW_GROUP", 1_000)
    write_interactions(_log(5_000).lazy(), tmp_path / "interactions.parquet")
    metadata = pq.ParquetFile(tmp_path / "interactions.parquet").metadata
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [1_000] * 5
