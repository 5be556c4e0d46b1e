"""Sources with a listening log: Music4All-Onion and a local log with its audio folder."""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from dataset_fixtures import (
    dropped_counts,
    listening_events,
    local_options,
    write_local,
    write_onion,
    written_tables,
)

from audiorec.datasets import get_source
from audiorec.errors import DatasetError, ParameterError
from audiorec.stages import fetch_dataset
from audiorec.storage.tables import read_metadata, read_table


@pytest.fixture(scope="module")
def onion(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("onion")
    files = write_onion(root, extra_rows=True)
    out = root / "data"
    options = {"listening_events": str(files["events"]), "audio_dir": str(files["audio_dir"])}
    fetch_dataset("music4all_onion", options, out)
    return {**files, "out": out, "options": options}


def test_onion_tables_follow_the_contracts_and_timestamps_are_utc(onion: dict) -> None:
    assert written_tables(onion["out"]) == {"tracks", "interactions"}
    tracks = read_table(onion["out"] / "tracks.parquet", "tracks")
    assert tracks["track_id"].to_list() == sorted(onion["track_ids"])
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in tracks["audio_path"])
    assert np.allclose(tracks["duration_s"].to_numpy(), 0.5, atol=0.06)  # mp3 frames pad the 0.5 s clips
    events = read_table(onion["out"] / "interactions.parquet", "interactions")
    expected = listening_events(onion["track_ids"])
    assert events.height == len(expected)
    assert events.schema["timestamp"] == pl.Datetime("us", "UTC")
    got = sorted(events.iter_rows())
    assert got == sorted((u, t, m.replace(microsecond=0)) for u, t, m in expected)


def test_onion_reports_what_itdropped_counts(onion: dict) -> None:
    assert dropped_counts(onion["out"]) == {
        "events: missing user id": 1,
        "events: unparseable timestamp (format '%Y-%m-%d %H:%M:%S')": 1,
        "events: track has no audio clip": 2,
        "tracks heard: no audio clip": 1,
    }
    assert read_metadata(onion["out"] / "interactions.parquet")["source"] == "music4all_onion"


def test_onion_mfcc_statistics_are_read_with_their_problems_counted(onion: dict) -> None:
    source = get_source("music4all_onion")
    ids, vectors, dropped = source.read_features(
        {**onion["options"], "mfcc_stats": str(onion["mfcc_stats"])}, "mfcc_stats"
    )
    assert ids == onion["track_ids"] and vectors.shape == (12, 104) and vectors.dtype == np.float32
    with open(onion["mfcc_stats"]) as stream:
        first = next(row for row in csv.reader(stream, delimiter="\t") if row[0] == ids[0])
    assert np.allclose(vectors[0], np.array(first[1:], dtype=float))  # the duplicate row (zeros) lost
    assert dropped.counts == {"feature rows: missing id or non-numeric value": 1, "feature rows: duplicate id": 1}
    with pytest.raises(ParameterError, match="needs the option mfcc_stats"):
        source.read_features(onion["options"], "mfcc_stats")


def test_onion_mfcc_file_with_the_wrong_width_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "id_mfcc_stats.tsv"
    bad.write_text("id\ta\tb\nx\t1\t2\n")
    with pytest.raises(DatasetError, match=r"expected 104 value columns .* found 2") as error:
        get_source("music4all_onion").read_mfcc_stats(bad)
    assert str(bad) in str(error.value)


def test_onion_missing_column_and_missing_audio_are_clear_errors(tmp_path: Path, onion: dict) -> None:
    log = tmp_path / "userid_trackid_timestamp.tsv"
    log.write_text("user_id\ttrack\ttimestamp\nu\tt\t2019-01-01 00:00:00\n")
    with pytest.raises(DatasetError, match=r"missing column\(s\) 'track_id' \(track column\)") as error:
        fetch_dataset("music4all_onion", {"listening_events": str(log), "audio_dir": str(tmp_path)}, tmp_path / "o")
    assert str(log) in str(error.value)
    options = {"listening_events": str(onion["events"]), "audio_dir": str(tmp_path / "none")}
    with pytest.raises(DatasetError, match=r"option audio_dir: folder .* does not exist"):
        fetch_dataset("music4all_onion", options, tmp_path / "o")
    empty = tmp_path / "empty_audio"
    empty.mkdir()
    with pytest.raises(DatasetError, match=r"no track of .* has a clip"):
        fetch_dataset("music4all_onion", {**options, "audio_dir": str(empty)}, tmp_path / "o")
    assert not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("local")
    return {**write_local(root), "root": root}


def test_local_audio_folder_and_custom_columns(local: dict, tmp_path: Path) -> None:
    options = local_options(local)
    fetch_dataset("local", options, tmp_path)
    assert written_tables(tmp_path) == {"tracks", "interactions"}
    tracks = read_table(tmp_path / "tracks.parquet", "tracks")
    assert tracks["track_id"].to_list() == sorted(local["track_ids"])  # "jazz/song00": path without suffix
    events = read_table(tmp_path / "interactions.parquet", "interactions")
    expected = listening_events(local["track_ids"], seed=1)
    assert sorted(events.iter_rows()) == sorted(expected)
    assert dropped_counts(tmp_path) == {}


def test_local_tracks_table_wall_clock_times_and_drops(local: dict, tmp_path: Path) -> None:
    tracks = tmp_path / "catalogue.tsv"
    tracks.write_text(
        "id\tfile\tartist\n"
        "a\tjazz/song00.flac\tAnn\n"
        "b\trock/song01.flac\tBob\n"
        "b\trock/song03.flac\tBob again\n"
        "c\tjazz/missing.flac\tNobody\n"
        "\tjazz/song02.flac\tNo id\n"
    )
    log = tmp_path / "log.csv"
    log.write_text(
        "user,id,when\n"
        "u1,a,01/07/2019 14:30\n"  # Vienna summer time: 12:30 UTC
        "u1,b,15/01/2020 09:00\n"  # winter time: 08:00 UTC
        "u2,c,15/01/2020 09:00\n"  # c has no audio file
        "u2,a,yesterday\n"
        "u3,,15/01/2020 09:00\n"
    )
    options = {
        "interactions": str(log),
        "tracks": str(tracks),
        "audio_dir": str(local["audio_dir"]),
        "user_column": "user",
        "track_column": "id",
        "timestamp_column": "when",
        "timestamp_format": "%d/%m/%Y %H:%M",
        "timezone": "Europe/Vienna",
        "audio_column": "file",
    }
    fetch_dataset("local", options, tmp_path / "out")
    catalogue = read_table(tmp_path / "out" / "tracks.parquet", "tracks")
    assert catalogue.select("track_id", "artist").rows() == [("a", "Ann"), ("b", "Bob")]
    events = read_table(tmp_path / "out" / "interactions.parquet", "interactions").sort("timestamp")
    assert events.rows() == [
        ("u1", "a", datetime(2019, 7, 1, 12, 30, tzinfo=UTC)),
        ("u1", "b", datetime(2020, 1, 15, 8, 0, tzinfo=UTC)),
    ]
    assert dropped_counts(tmp_path / "out") == {
        "tracks: missing track id or audio path": 1,
        "tracks: duplicate track id": 1,
        "tracks: audio file does not exist": 1,
        "events: missing track id": 1,
        "events: unparseable timestamp (format '%d/%m/%Y %H:%M')": 1,
        "events: track has no audio file": 1,
        "tracks heard: no audio file": 1,
    }


@pytest.mark.parametrize(
    ("values", "fmt", "expected"),
    [
        (["2020-02-20T10:00:00+01:00", "2020-02-20 10:00:00", "2020-02-20T10:00:00.5Z", "2020-02-20"], None,
         ["2020-02-20T09:00:00", "2020-02-20T10:00:00", "2020-02-20T10:00:00.500000", "2020-02-20T00:00:00"]),
        (["1582192800", "1582192800.25"], "unix", ["2020-02-20T10:00:00", "2020-02-20T10:00:00.250000"]),
        (["1582192800000"], "unix_ms", ["2020-02-20T10:00:00"]),
    ],
)  # fmt: skip
def test_local_timestamp_spellings(local: dict, tmp_path: Path, values: list[str], fmt: str | None, expected) -> None:
    log = tmp_path / "log.csv"
    log.write_text("user_id,track_id,timestamp\n" + "".join(f"u,jazz/song00,{v}\n" for v in values))
    options = {"interactions": str(log), "audio_dir": str(local["audio_dir"]), "timestamp_format": fmt}
    fetch_dataset("local", options, tmp_path / "out")
    events = read_table(tmp_path / "out" / "interactions.parquet", "interactions")
    stamps = sorted(t.replace(tzinfo=None).isoformat() for t in events["timestamp"])
    assert stamps == sorted(expected)


def test_local_parquet_log_with_numeric_epochs(local: dict, tmp_path: Path) -> None:
    log = tmp_path / "log.parquet"
    pl.DataFrame(
        {"user_id": [1, 2], "track_id": ["jazz/song00", "rock/song01"], "timestamp": [0, 86400]}
    ).write_parquet(log)
    fetch_dataset("local", {"interactions": str(log), "audio_dir": str(local["audio_dir"])}, tmp_path / "out")
    events = read_table(tmp_path / "out" / "interactions.parquet", "interactions").sort("timestamp")
    assert events.rows() == [
        ("1", "jazz/song00", datetime(1970, 1, 1, tzinfo=UTC)),
        ("2", "rock/song01", datetime(1970, 1, 2, tzinfo=UTC)),
    ]


def test_local_errors_name_the_file_option_and_value(local: dict, tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match=r"give audio_dir .* or tracks"):
        fetch_dataset("local", {"interactions": str(local["interactions"])}, tmp_path)
    with pytest.raises(ParameterError, match="unknown option"):
        fetch_dataset("local", {"interactions": "x", "audio_dir": "y", "user_col": "u"}, tmp_path)
    with pytest.raises(ParameterError, match="unknown time zone 'Mars/Olympus'"):
        fetch_dataset("local", {"interactions": "x", "audio_dir": "y", "timezone": "Mars/Olympus"}, tmp_path)
    options = {"interactions": str(local["interactions"]), "audio_dir": str(local["audio_dir"])}
    with pytest.raises(DatasetError, match=r"'user_id' \(user column\).* the file has \['listener', 'song'"):
        fetch_dataset("local", options, tmp_path)
    bad_times = {**options, "user_column": "listener", "track_column": "song", "timestamp_column": "device"}
    with pytest.raises(DatasetError, match=re.escape("no timestamp of column 'device' could be read, e.g. 'phone'")):
        fetch_dataset("local", bad_times, tmp_path)
    with pytest.raises(DatasetError, match=r"interactions: file .*nope\.csv does not exist"):
        fetch_dataset("local", {**options, "interactions": str(tmp_path / "nope.csv")}, tmp_path)
    assert not (tmp_path / "tracks.parquet").exists()
