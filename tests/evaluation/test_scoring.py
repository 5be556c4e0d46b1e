"""Scoring every run into one per-user table: each file read once, every row labelled with its run and split."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

import audiorec.stages.evaluation as evaluation
from audiorec.evaluation.metrics import metric_columns
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


def test_rankings_are_described_beyond_accuracy_per_user_and_per_ranking(tmp_path):
    """ARP, Novelty and ILD join each user's row; Coverage and Gini describe each run's lists over the candidates,
    or over the new releases of the cold split, the only tracks a cold-start ranking draws from."""
    from audiorec.evaluation.beyond_accuracy import ItemReference
    from audiorec.stages.evaluation import score_rankings

    lists = _write_lists(tmp_path / "knn.parquet", [("u1", 1, "a"), ("u1", 2, "b"), ("u2", 1, "a"), ("u2", 2, "c")])
    new = _write_lists(tmp_path / "new.parquet", [("u2", 1, "n1"), ("u2", 2, "n2")])
    truth = {"test": _write_split(tmp_path / "test.parquet", [("u1", "b"), ("u2", "c")])}
    truth["cold_test"] = _write_split(tmp_path / "cold.parquet", [("u2", "n1"), ("u3", "n2"), ("u3", "n3")])
    train = pl.DataFrame({"user_id": ["v1", "v2", "v1", "v2"], "track_id": ["a", "a", "b", "c"]})
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    items = ItemReference.build(train, ["a", "b", "c", "n1", "n2"], vectors)
    runs = [
        {"model": "knn", "backbone": "mfcc", "seed": 0, "split": split, "rankings": path, "truth": truth[split]}
        for split, path in (("test", lists), ("cold_test", new))
    ]

    per_user, per_ranking = score_rankings(runs, [1, 2], items, ["a", "b", "c", "d"])

    rows = {(row["split"], row["user_id"]): row for row in per_user.iter_rows(named=True)}
    assert rows[("test", "u1")]["ARP@2"] == 1.5 and rows[("test", "u1")]["Novelty@2"] == 0.5
    assert rows[("test", "u1")]["ILD@2"] == pytest.approx(1.0) and rows[("test", "u2")]["ILD@2"] == pytest.approx(0.0)
    assert rows[("cold_test", "u2")]["ARP@2"] == 0.0 and rows[("cold_test", "u2")]["Novelty@2"] == 1.0  # log2(2/1)
    assert rows[("cold_test", "u3")]["ILD@2"] is None  # no list
    ranking = {row["split"]: row for row in per_ranking.iter_rows(named=True)}
    assert ranking["test"]["Coverage@1"] == 0.25 and ranking["test"]["Coverage@2"] == 0.75  # of a, b, c, d
    assert ranking["test"]["Gini@1"] == pytest.approx(0.75)  # a twice, b, c and d never
    assert ranking["cold_test"]["Coverage@2"] == pytest.approx(2 / 3)  # n1, n2 of the new releases n1..n3
    assert score_runs(runs, [1]).columns == ["split", "model", "backbone", "seed", "user_id", *metric_columns([1])]


def test_aggregate_adds_beyond_accuracy_columns_a_table_and_a_separate_holm_family(tmp_path, rng):
    """Accuracy tests keep the Holm adjustment they had without the beyond-accuracy family."""
    from audiorec.evaluation.stats import holm
    from audiorec.stages import aggregate
    from audiorec.storage.tables import embeddings_table

    tracks = [f"t{i:02d}" for i in range(30)]
    users = [f"u{i:02d}" for i in range(40)]
    train = _write_split(tmp_path / "train.parquet", [(u, t) for u in users for t in rng.choice(tracks, 5)])
    truth = _write_split(tmp_path / "test.parquet", [(u, str(rng.choice(tracks))) for u in users])
    write_table(embeddings_table(tracks, rng.normal(size=(30, 4))), tmp_path / "reference.parquet")
    runs = []
    for backbone in ("mfcc", "mfcc8"):
        lists = [(u, r + 1, str(t)) for u in users for r, t in enumerate(rng.permutation(tracks)[:10])]
        path = _write_lists(tmp_path / f"{backbone}.parquet", lists)
        runs.append({"model": "knn", "backbone": backbone, "seed": 0, "split": "test", "rankings": path})
        runs[-1]["truth"] = truth
    pl.DataFrame({"split": ["train", "test"], "rows": [200, 40], "users": [40, 40], "items": [30, 30]}).write_csv(
        tmp_path / "stats.csv"
    )
    pl.DataFrame({"track_id": ["t29"]}).write_csv(tmp_path / "uncovered.csv")  # a candidate no list may hold
    tests = {"random_variants": {}, "baseline_backbone": "mfcc", "shuffled_suffix": "_shuffled", "alpha": 0.05}
    outputs = [tmp_path / name for name in ("table.csv", "table.md", "significance.csv", "per_user.parquet")]
    runs = [run | {"rankings": _without(run["rankings"], "t29")} for run in runs]

    aggregate(
        runs, [5, 10], tmp_path / "stats.csv", *outputs, tests,
        uncovered_path=tmp_path / "uncovered.csv", train_path=train, reference_path=tmp_path / "reference.parquet",
    )  # fmt: skip

    table = pl.read_csv(outputs[0])
    for column in ("ARP@5", "Novelty@10 ci_low", "ILD@10 boot_high", "Coverage@10", "Gini@5"):
        assert column in table.columns, column
    assert table["Coverage@10"].is_between(0, 1).all() and table["ILD@10"].is_between(0, 2).all()
    significance = pl.read_csv(outputs[2])
    assert set(significance["family"]) == {"accuracy", "beyond_accuracy"}
    accuracy = significance.filter(pl.col("family") == "accuracy")
    assert set(accuracy["metric"].str.split("@").list.first()) == {"HitRate", "Recall", "NDCG"}
    expected = holm(accuracy["wilcoxon_p_value"].to_numpy())
    np.testing.assert_allclose(accuracy["wilcoxon_p_holm"], expected, rtol=1e-5)  # the CSV keeps 6 digits
    markdown = outputs[1].read_text()
    assert "## Beyond accuracy" in markdown and "| model | backbone | ARP@5 |" in markdown


def _without(path: str, track: str) -> str:
    """The lists of ``path`` with ``track`` removed (ranks keep their gaps)."""
    lists = pl.read_parquet(path).filter(pl.col("track_id") != track)
    write_table(lists, path)
    return path
