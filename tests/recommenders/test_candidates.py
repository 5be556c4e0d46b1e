"""One candidate set per dataset: the train tracks every backbone embedded, ranked by every model alike."""

from __future__ import annotations

import logging

import numpy as np
import polars as pl
import pytest

from audiorec.errors import ParameterError
from audiorec.protocol.candidates import (
    candidate_track_ids,
    coverage_note,
    read_uncovered,
    uncovered_items,
    write_candidates,
)
from audiorec.recommenders import recommender_class
from audiorec.recommenders.runs import model_catalogue
from audiorec.stages import build_model, read_model_embeddings, recommend
from audiorec.storage.tables import embeddings_table, read_table, write_table

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_uncovered_items_list_the_train_tracks_each_backbone_lacks():
    train_tracks = pl.Series(["t1", "t2", "t3", "t4", "t2"])
    covered = {"mfcc": pl.Series(["t1", "t2", "t3", "t9"]), "musicnn": pl.Series(["t2", "t3", "t4"])}
    uncovered = uncovered_items(train_tracks, covered)
    assert uncovered.rows() == [("t1", "musicnn"), ("t4", "mfcc")]
    train = pl.DataFrame({"user_id": ["u", "u", "v", "v"], "track_id": ["t1", "t2", "t3", "t4"]})
    assert candidate_track_ids(train, uncovered) == ["t2", "t3"]
    both = uncovered_items(pl.Series(["t1"]), {"b": pl.Series([], dtype=pl.String), "a": pl.Series(["t2"])})
    assert both.rows() == [("t1", "a,b")]
    assert uncovered_items(train_tracks, {}).height == 0
    assert coverage_note(4, uncovered) == (
        "Candidates: the 2 train items every backbone embedded; 2 train items (50.00 %) left out, not embedded by "
        "mfcc, musicnn."
    )
    assert coverage_note(4, uncovered.clear()).endswith("(all of them).")


@pytest.fixture(scope="module")
def split_files(neural_world, tmp_path_factory):
    """The neural world's split and a content embeddings table that lacks one train track."""
    from neural_world import run_paths, world_files

    folder = world_files(tmp_path_factory, "candidates", left_out=3)
    paths = run_paths(folder, "val")
    missing = sorted(read_table(paths["train"]).get_column("track_id").unique())[3]
    return folder, paths, missing


def test_a_track_one_backbone_missed_leaves_the_candidates_of_every_model(split_files, tmp_path, caplog):
    folder, paths, missing = split_files
    with caplog.at_level(logging.INFO, logger="audiorec.protocol.candidates"):
        uncovered = write_candidates(paths["train"], {"content": folder / "embeddings.parquet"}, paths["uncovered"])
    assert uncovered.rows() == [(missing, "content")]
    assert "1 train items" in caplog.text
    train = read_table(paths["train"], "split")
    candidates = set(train.get_column("track_id").unique().to_list()) - {missing}
    tracks = set(read_table(folder.parent / "neural-world" / "tracks.parquet").get_column("track_id").to_list())
    assert len(tracks - candidates) > 10  # the catalogue the old code ranked held tracks no one heard in train
    for kind in ("knn", "popularity", "random"):
        out = tmp_path / f"{kind}.parquet"
        embeddings = folder / "embeddings.parquet" if kind == "knn" else None
        recommend({"kind": kind}, 0, paths, [paths["val"]], embeddings, 300, out)
        ranked = set(read_table(out, "recommendations").get_column("track_id").to_list())
        assert ranked <= candidates and len(ranked) > len(candidates) / 2, kind


def test_more_than_one_percent_left_out_is_a_warning(split_files, tmp_path, caplog):
    folder, paths, _ = split_files
    with caplog.at_level(logging.INFO, logger="audiorec.protocol.candidates"):
        write_candidates(paths["train"], {"content": folder / "embeddings.parquet"}, tmp_path / "u.csv")
    assert all(record.levelno == logging.INFO for record in caplog.records)  # 1 of ~200 train tracks
    empty = embeddings_table([], np.zeros((0, 4), dtype=np.float32))
    write_table(empty, tmp_path / "empty.parquet")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="audiorec.protocol.candidates"):
        write_candidates(paths["train"], {"broken": tmp_path / "empty.parquet"}, tmp_path / "u.csv")
    assert [record.levelno for record in caplog.records if record.levelno >= logging.WARNING] == [logging.WARNING]
    assert "(100.00 %) left out, not embedded by broken" in caplog.text


def test_the_shuffled_control_permutes_embeddings_within_the_candidate_set(split_files):
    folder, paths, missing = split_files
    write_candidates(paths["train"], {"content": folder / "embeddings.parquet"}, paths["uncovered"])
    train = read_table(paths["train"], "split")
    model = recommender_class("knn").from_options({}, 0)
    table = read_model_embeddings(model, folder / "embeddings.parquet")
    candidates = candidate_track_ids(train, read_uncovered(paths["uncovered"]))
    plain = model_catalogue(model, candidates, table, False, 3)
    shuffled = model_catalogue(model, candidates, table, True, 3)
    assert missing not in plain.track_ids.tolist()
    assert np.array_equal(plain.track_ids, shuffled.track_ids)
    assert not np.array_equal(plain.embeddings, shuffled.embeddings)
    assert sorted(map(tuple, plain.embeddings)) == sorted(map(tuple, shuffled.embeddings))


def test_item_dim_match_takes_the_width_of_the_backbone(split_files):
    folder, _, _ = split_files
    spec = {"kind": "bert4rec_random", "options": {"item_dim": "match", "max_epochs": 1}}
    assert build_model(spec, 0, None, folder / "embeddings.parquet").options.item_dim == 16
    with pytest.raises(ParameterError, match="needs a backbone's embeddings table"):
        build_model(spec, 0, None)
