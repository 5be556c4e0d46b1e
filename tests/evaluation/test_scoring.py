"""Scoring every run into one per-user table: each file read once, every row labelled with its run and split."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

import audiorec.stages.evaluation as evaluation
from audiorec.stages import score_runs
from audiorec.storage.tables import write_table

UTC = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def _write_lists(path, rows: list[tuple[str, int, str]]) -> str:
    schema = {"user_id": pl.String, "rank": pl.Int16, "track_id": pl.String}
    frame = pl.DataFrame(rows, schema=schema, orient="row").with_columns(pl.lit(1.0, pl.Float32).alias("score"))
    write_table(frame, path)
    return str(path)


def _write_split(path, pairs: list[tuple[str, str]]) -> str:
    frame = pl.DataFrame(pairs, schema={"user_id": pl.String, "track_id": pl.String}, orient="row")
    write_table(frame.with_columns(pl.lit(UTC).alias("first_ts"), pl.lit(1, pl.Int32).alias("plays")), path)
    return str(path)


def test_runs_sharing_a_ranked_list_read_it_once_and_each_split_scores_its_own_users(tmp_path, monkeypatch):
    # One list per run holds both splits' users: u1 is a val user, u2 a test user.
    knn = _write_lists(tmp_path / "knn.parquet", [("u1", 1, "a"), ("u1", 2, "b"), ("u2", 1, "c"), ("u2", 2, "d")])
    chance = _write_lists(tmp_path / "random.parquet", [("u1", 1, "x"), ("u1", 2, "a"), ("u2", 1, "y")])
    truth = {"val": _write_split(tmp_path / "val.parquet", [("u1", "a")])}
    truth["test"] = _write_split(tmp_path / "test.parquet", [("u2", "d"), ("u2", "e")])
    runs = [
        {"model": model, "backbone": backbone, "seed": 0, "split": split, "rankings": lists, "truth": truth[split]}
        for model, backbone, lists in (("knn", "mfcc", knn), ("random", "none", chance))
        for split in ("val", "test")
    ]
    reads = []
    original = evaluation.read_table
    monkeypatch.setattr(evaluation, "read_table", lambda path, kind=None: reads.append(path) or original(path, kind))

    scores = score_runs(runs, [1, 2])

    assert sorted(reads) == sorted([knn, chance, truth["val"], truth["test"]])
    assert scores.columns[:5] == ["split", "model", "backbone", "seed", "user_id"]
    rows = {(row["model"], row["split"], row["user_id"]): row for row in scores.iter_rows(named=True)}
    assert set(rows) == {(m, s, u) for m in ("knn", "random") for s, u in (("val", "u1"), ("test", "u2"))}
    assert rows[("knn", "val", "u1")]["HitRate@1"] == 1.0
    assert rows[("knn", "test", "u2")]["HitRate@1"] == 0.0
    assert rows[("knn", "test", "u2")]["Recall@2"] == 0.5  # d at rank 2, one of two relevant tracks
    assert rows[("knn", "test", "u2")]["NDCG@2"] == pytest.approx((1 / 1.5849625) / (1 + 1 / 1.5849625))
    assert rows[("random", "val", "u1")]["MRR@2"] == 0.5
    assert rows[("random", "test", "u2")]["HitRate@2"] == 0.0
