"""Table contracts and atomic writes."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from audiorec.errors import SchemaError
from audiorec.storage.tables import (
    atomic_path,
    embeddings_table,
    read_embeddings,
    read_metadata,
    read_table,
    resolve_audio_path,
    write_table,
)


def test_interrupted_write_leaves_neither_final_nor_temporary_file(tmp_path):
    target = tmp_path / "out.parquet"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half a file")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_previous_complete_file(tmp_path):
    target = tmp_path / "tracks.parquet"
    good = pl.DataFrame({"track_id": ["a"], "audio_path": ["a.flac"], "duration_s": [1.0]})
    write_table(good, target, kind="tracks")
    with pytest.raises(SchemaError, match="lacks column"):
        write_table(pl.DataFrame({"track_id": ["b"]}), target, kind="tracks")
    assert read_table(target, "tracks")["track_id"].to_list() == ["a"]
    assert [p.name for p in tmp_path.iterdir()] == ["tracks.parquet"]


def test_write_conforms_types_and_keeps_extra_columns(tmp_path):
    frame = pl.DataFrame({"track_id": ["a"], "audio_path": ["x"], "duration_s": [2.5], "style": ["folk"]})
    write_table(frame, tmp_path / "t.parquet", kind="tracks", metadata={"source": "test"})
    back = read_table(tmp_path / "t.parquet", "tracks")
    assert back.schema["duration_s"] == pl.Float32 and back["style"].to_list() == ["folk"]
    assert read_metadata(tmp_path / "t.parquet") == {"source": "test"}


def test_reader_names_the_file_and_the_problem(tmp_path):
    path = tmp_path / "bad.parquet"
    write_table(pl.DataFrame({"user_id": ["u"]}), path)
    with pytest.raises(SchemaError, match=r"bad\.parquet.*lacks column"):
        read_table(path, "interactions")
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(SchemaError, match=r"junk\.parquet: cannot read"):
        read_table(tmp_path / "junk.parquet")


def test_embeddings_round_trip_as_fixed_size_list(tmp_path):
    vectors = np.arange(12, dtype=np.float32).reshape(3, 4)
    table = embeddings_table(["a", "b", "c"], vectors)
    assert str(table.schema.field("embedding").type) == "fixed_size_list<item: float>[4]"
    write_table(table, tmp_path / "e.parquet")
    ids, back = read_embeddings(tmp_path / "e.parquet")
    assert ids == ["a", "b", "c"]
    np.testing.assert_array_equal(back, vectors)
    with pytest.raises(SchemaError, match="shape"):
        embeddings_table(["a"], vectors)


def test_audio_paths_resolve_relative_to_the_tracks_table(tmp_path):
    tracks = tmp_path / "data" / "tracks.parquet"
    assert resolve_audio_path("audio/x.flac", tracks) == tmp_path / "data" / "audio" / "x.flac"
    assert resolve_audio_path("/abs/x.flac", tracks).as_posix() == "/abs/x.flac"
