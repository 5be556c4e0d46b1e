"""The tiny world's results: tables, rankings, probes, cold start, layer sweep, report, bad audio."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from tiny_workflow import (
    CORRUPTED,
    snakemake,
)

from audiorec.storage.tables import read_embeddings, read_table

pytestmark = pytest.mark.workflow


def test_results_table_has_every_run(workdir):
    table = pl.read_csv(workdir / "results/demo/tables/recommendation.csv")
    runs = set(zip(table["split"], table["model"], table["backbone"], strict=True))
    expected = {
        (split, model, backbone)
        for split in ("val", "test")
        for model, backbone in [
            ("knn", "mfcc"),
            ("knn", "mfcc8"),
            ("knn", "ssl_tiny"),
            ("popularity", "none"),
            ("random", "none"),
            ("shallow", "mfcc"),
            ("shallow", "mfcc_shuffled"),
            ("shallow_random", "none"),
            ("shallow_random_matched", "mfcc_width"),
            ("bert4rec", "mfcc"),
        ]
    }
    assert runs == expected
    for column in ("HitRate@10", "Recall@50", "NDCG@50", "Precision@10", "MRR@50", "NDCG@50 ci_low"):
        assert column in table.columns
    markdown = (workdir / "results/demo/tables/recommendation.md").read_text()
    assert "## test" in markdown and "## Split statistics" in markdown and "cold_test" in markdown
    # Beyond accuracy, at every K: per-user means with intervals, per-ranking values, all in range.
    for k in (10, 50):
        assert table[f"Coverage@{k}"].is_between(0, 1).all() and table[f"Gini@{k}"].is_between(0, 1).all()
        assert table[f"ILD@{k}"].is_between(0, 2).all() and (table[f"ILD@{k} ci_low"] <= table[f"ILD@{k}"]).all()
        assert (table[f"ARP@{k}"] >= 1).all() and (table[f"Novelty@{k}"] >= 0).all()  # candidates are train tracks
    popularity = table.filter(pl.col("model") == "popularity")
    assert popularity["ARP@10"].min() > table.filter(pl.col("model") == "random")["ARP@10"].max()
    assert "## Beyond accuracy" in markdown
    families = pl.read_csv(workdir / "results/demo/tables/significance.csv").group_by("family").len()
    assert set(families["family"]) == {"accuracy", "beyond_accuracy"}
    cold = pl.read_csv(workdir / "results/demo/tables/cold_start.csv")
    assert cold["ILD@10"].is_between(0, 2).all() and (cold["ARP@10"] == 0).all()  # new releases: no listeners
    assert cold["Coverage@10"].is_between(0, 1).all()


def test_content_matters_knn_beats_random(workdir):
    table = pl.read_csv(workdir / "results/demo/tables/recommendation.csv").filter(pl.col("split") == "test")
    hit_rate = {row["model"] + "/" + row["backbone"]: row["HitRate@50"] for row in table.iter_rows(named=True)}
    assert hit_rate["knn/mfcc"] > hit_rate["random/none"]


def test_broken_audio_is_recorded_and_every_other_track_embedded(workdir):
    failures = read_table(workdir / "results/demo/embeddings/mfcc.failures.parquet", "failures")
    errors = dict(zip(failures["track_id"], failures["error"], strict=True))
    assert set(errors) == set(CORRUPTED.values())
    assert "empty" in errors[CORRUPTED["empty"]]
    assert "cannot decode" in errors[CORRUPTED["corrupt"]]
    track_ids, vectors = read_embeddings(workdir / "results/demo/embeddings/mfcc.parquet")
    n_tracks = read_table(workdir / "results/demo/data/tracks.parquet", "tracks").height
    assert len(track_ids) == n_tracks - 2 and not set(track_ids) & set(CORRUPTED.values())
    assert vectors.shape == (n_tracks - 2, 104)
    log = (workdir / "results/demo/logs/embed_shard/mfcc/shard0.log").read_text()
    assert CORRUPTED["corrupt"] in log


def test_every_model_ranks_the_train_tracks_every_backbone_embedded(workdir):
    """The broken files are train tracks no backbone embedded: they leave the candidate set of every row, models
    without embeddings included, and the table says how many left."""
    results = workdir / "results/demo"
    train_tracks = set(read_table(results / "split/train.parquet", "split").get_column("track_id").to_list())
    broken = set(CORRUPTED.values()) & train_tracks
    assert broken, "the tiny world's broken files should be train tracks"
    assert pl.read_csv(results / "split/uncovered.csv")["track_id"].to_list() == sorted(broken)
    for model, backbone in [("popularity", "none"), ("random", "none"), ("knn", "mfcc"), ("shallow_random", "none")]:
        lists = read_table(results / f"runs/{model}/{backbone}/seed0/recommendations.parquet", "recommendations")
        assert set(lists.get_column("track_id").to_list()) <= train_tracks - broken, model
    note = f"Candidates: the {len(train_tracks) - len(broken)} train items every backbone embedded; {len(broken)} "
    assert note in (results / "tables/recommendation.md").read_text()


def test_rankings_leave_out_every_track_the_user_heard_before_the_evaluation_window(workdir):
    results = workdir / "results/demo"
    earlier = read_table(results / "split/heard_before_window.parquet", "split")
    train = read_table(results / "split/train.parquet", "split")
    assert earlier.height > 50  # the tiny world has listening history before the training window
    heard = pl.concat([earlier, train]).select("user_id", "track_id").unique()
    candidates = (
        train.select("track_id").unique().join(pl.read_csv(results / "split/uncovered.csv"), on="track_id", how="anti")
    )
    # Exactly K items whenever the candidate set has that many unheard ones, else every unheard one.
    heard_candidates = heard.join(candidates, on="track_id", how="semi").group_by("user_id").len()
    expected = heard_candidates.select(
        "user_id", pl.min_horizontal(100, candidates.height - pl.col("len")).alias("expected")
    )
    for run in ("knn/mfcc", "popularity/none", "shallow/mfcc", "bert4rec/mfcc"):
        lists = read_table(results / f"runs/{run}/seed0/recommendations.parquet", "recommendations")
        assert lists.join(heard, on=["user_id", "track_id"], how="semi").height == 0, run
        counts = lists.group_by("user_id").len().join(expected, on="user_id", how="left")
        assert (counts["len"] == counts["expected"].fill_null(100)).all(), run


def test_significance_table_tests_each_trained_row_against_its_controls(workdir):
    table = pl.read_csv(workdir / "results/demo/tables/significance.csv")
    pairs = set(table.select("model", "backbone", "versus", "reference_model", "reference_backbone").iter_rows())
    assert ("shallow", "mfcc", "random", "shallow_random", "none") in pairs
    assert ("shallow", "mfcc", "shuffled", "shallow", "mfcc_shuffled") in pairs
    assert ("knn", "mfcc8", "baseline", "knn", "mfcc") in pairs
    assert not any(backbone.endswith("_shuffled") or backbone == "none" for _, backbone, *_ in pairs)
    assert set(table["split"]) == {"val", "test"}
    holm_p, raw_p = table["wilcoxon_p_holm"], table["wilcoxon_p_value"]
    assert holm_p.is_between(0, 1).all() and (holm_p >= raw_p).all()
    assert "† the model's random-init variant" in (workdir / "results/demo/tables/recommendation.md").read_text()


def test_mir_versus_recommendation_correlates_over_every_probed_backbone(workdir):
    correlations = pl.read_csv(workdir / "results/demo/tables/mir_vs_recs_correlations.csv")
    knn = correlations.filter((pl.col("model") == "knn") & (pl.col("mir") == "genre SVM")).row(0, named=True)
    assert knn["n_backbones"] == 3 and knn["metric"] == "HitRate@50"
    # On 26 test users the three backbones may tie at HitRate@50, and a rank correlation with a constant is
    # undefined: NaN then, a coefficient otherwise.
    knn_rates = pl.read_csv(workdir / "results/demo/tables/mir_vs_recs.csv")["knn HitRate@50"]
    rho = knn["spearman_rho"]
    assert rho != rho if knn_rates.n_unique() == 1 else -1 <= rho <= 1
    assert "## Spearman rank correlation" in (workdir / "results/demo/tables/mir_vs_recs.md").read_text()


def test_report_renders_every_table_and_figure(workdir):
    for figure in (
        "recommendation.png",
        "training_curves.png",
        "mir_vs_recs.png",
        "layers.png",
        "accuracy_vs_popularity.png",
    ):
        assert (workdir / "results/demo/figures" / figure).read_bytes().startswith(b"\x89PNG")
    snakemake(workdir, "--report", "report.html")
    html = (workdir / "report.html").read_text()
    for name in (
        "recommendation.csv",
        "significance.csv",
        "cold_start.csv",
        "probes.csv",
        "ssl.csv",
        "mir_vs_recs_correlations.csv",
        "recommendation.png",
        "training_curves.png",
        "mir_vs_recs.png",
        "layers.png",
        "accuracy_vs_popularity.png",
    ):
        assert name in html, name
    assert "Paired per-user tests" in html  # a caption


def test_probe_table_has_a_row_per_backbone_in_the_papers_layout(workdir):
    table = pl.read_csv(workdir / "results/demo/tables/probes.csv")
    assert table.get_column("backbone").to_list() == ["mfcc", "mfcc8", "ssl_tiny"]
    columns = ["genre SVM", "genre LR", "instrument SVM", "instrument LR", "playlist HR@10", "playlist MPR"]
    assert set(columns) <= set(table.columns) and "playlist full NDCG@10" in table.columns
    assert table.filter(pl.col("backbone") == "mfcc")["genre LR"].item() > 0.5  # 7 styles: chance is ~0.14
    markdown = (workdir / "results/demo/tables/probes.md").read_text()
    assert "| backbone | dim | genre SVM | genre LR | instrument SVM | instrument LR |" in markdown


def test_ssl_trains_on_training_tracks_only_and_playlists_leave_them_out(workdir):
    import torch

    results = workdir / "results/demo"
    training = set(read_table(results / "ssl/train_tracks.parquet").get_column("track_id").to_list())
    for task in ("genre", "instrument"):
        labels = read_table(results / f"data/labels/{task}.parquet", "labels")
        assert training <= set(labels.filter(pl.col("split") == "train").get_column("track_id").to_list())
    assert training <= set(read_table(results / "split/train.parquet", "split").get_column("track_id").to_list())
    history = torch.load(results / "ssl/ssl_tiny.pt", weights_only=True)["history"]
    assert history["n_tracks"] + len(history["skipped"]) == len(training) > 20
    assert {Path(path).stem for path in history["skipped"]} == training & set(CORRUPTED.values())
    track_ids, vectors = read_embeddings(results / "embeddings/ssl_tiny.parquet")
    assert vectors.shape == (len(track_ids), 5 * 64)  # the concatenated levels' means and stds of 32-d vectors
    playlist = json.loads((results / "probes/playlist/ssl_tiny.json").read_text())
    assert playlist["n_catalogue"] == len(set(track_ids) - training)


def test_cold_start_ranks_only_new_releases_with_the_models_that_can(workdir):
    results = workdir / "results/demo"
    table = pl.read_csv(results / "tables/cold_start.csv")
    assert set(table["split"]) == {"cold_test"} and "HitRate@10" in table.columns and "HitRate@50" not in table.columns
    assert set(zip(table["model"], table["backbone"], strict=True)) == {
        ("knn", "mfcc"),
        ("knn", "mfcc8"),
        ("knn", "ssl_tiny"),
        ("random", "none"),
        ("shallow", "mfcc"),
        ("shallow", "mfcc_shuffled"),
        ("bert4rec", "mfcc"),
    }
    new_releases = set(read_table(results / "split/cold_test.parquet", "split").get_column("track_id").to_list())
    lists = read_table(results / "runs/shallow/mfcc/seed0/new_items.parquet", "recommendations")
    assert set(lists.get_column("track_id").to_list()) <= new_releases
    markdown = (results / "tables/cold_start.md").read_text()
    assert "# Cold-start results" in markdown and f"the {len(new_releases)} new releases" in markdown
    tests = pl.read_csv(results / "tables/cold_start_significance.csv")
    against_chance = tests.filter(pl.col("versus") == "chance")
    assert set(against_chance["reference_model"]) == {"random"} and "knn" in set(against_chance["model"])
    assert "chance" not in set(pl.read_csv(results / "tables/significance.csv")["versus"])


def test_ssl_table_lists_the_baseline_then_each_encoder_as_the_paper_names_it(workdir):
    table = pl.read_csv(workdir / "results/demo/tables/ssl.csv")
    assert table.select("feature", "loss", "backbone").rows() == [
        ("MFCC", "-", "mfcc"),
        ("Siamese-Self-aug", "InfoNCE-Multi", "ssl_tiny"),
    ]
    probes = pl.read_csv(workdir / "results/demo/tables/probes.csv").filter(pl.col("backbone") == "ssl_tiny")
    assert table.filter(pl.col("backbone") == "ssl_tiny")["genre SVM"].item() == probes["genre SVM"].item()


def test_layer_sweep_scores_every_stored_layer_and_its_last_layer_matches_the_knn_run(workdir):
    results = workdir / "results/demo"
    sweep = pl.read_csv(results / "layers/ssl_tiny.csv")
    assert sweep["layer"].to_list() == ["level1", "level2", "level3", "level4", "level5", "concat"]
    assert sweep["dim"].to_list() == [64] * 5 + [320]
    assert (sweep["HitRate@50 ci_low"] <= sweep["HitRate@50"]).all()
    # The configured layer (last = concat) through the sweep gives the knn row of the results table on the
    # validation split: a layer is chosen on validation, never on test.
    assert sweep["n_users"][-1] == read_table(results / "split/val.parquet").get_column("user_id").n_unique()
    table = pl.read_csv(results / "tables/recommendation.csv")
    knn = table.filter((pl.col("split") == "val") & (pl.col("model") == "knn") & (pl.col("backbone") == "ssl_tiny"))
    assert sweep["HitRate@50"][-1] == pytest.approx(knn["HitRate@50"].item(), abs=1e-6)
    assert sweep["NDCG@10"][-1] == pytest.approx(knn["NDCG@10"].item(), abs=1e-6)


def test_trained_runs_keep_their_best_checkpoint_and_a_training_log(workdir):
    import torch

    runs = workdir / "results/demo/runs"
    for run in ("shallow/mfcc", "shallow/mfcc_shuffled", "shallow_random/none", "bert4rec/mfcc"):
        log = pl.read_csv(runs / run / "seed0/training_log.csv")
        assert log.get_column("epoch").to_list()[0] == 0 and "val_HitRate@50" in log.columns
        assert (runs / run / "seed0/last.pt").exists()
        checkpoint = torch.load(runs / run / "seed0/checkpoint.pt", weights_only=True)
        assert checkpoint["epoch"] == log.filter(pl.col("best")).get_column("epoch").max()
    real = read_table(runs / "shallow/mfcc/seed0/recommendations.parquet", "recommendations")
    shuffled = read_table(runs / "shallow/mfcc_shuffled/seed0/recommendations.parquet", "recommendations")
    assert real.height == shuffled.height and not real.equals(shuffled)


def test_tables_and_logs_record_where_each_computation_ran(workdir):
    from audiorec.storage.tables import read_metadata

    results = workdir / "results/demo"
    assert read_metadata(results / "embeddings/mfcc.parquet")["device"] == "cpu"
    for run in ("knn/mfcc", "shallow/mfcc", "bert4rec/mfcc", "popularity/none"):
        assert read_metadata(results / f"runs/{run}/seed0/recommendations.parquet")["device"] == "cpu", run
    assert "training on cpu" in (results / "logs/train_recommender/shallow/mfcc/seed0.log").read_text()
    shard_log = next((results / "logs/embed_shard/mfcc").glob("*.log")).read_text()
    assert "mfcc: extracting on cpu in float32" in shard_log
