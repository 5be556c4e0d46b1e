"""The Snakemake workflow end to end on the tiny demo world: results, idempotence, partial rebuilds, bad audio."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from audiorec.tables import read_embeddings, read_table

pytestmark = pytest.mark.workflow

REPO = Path(__file__).resolve().parents[1]
CORRUPTED = {"corrupt": "t0003", "empty": "t0007"}


TABLE_RULES = ("aggregate", "cold_start", "probe_table", "ssl_table", "mir_vs_recs", "figures", "layer_figure")
"""Rules that gather a whole dataset's results into tables; they rerun whenever any of their inputs do."""


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run Snakemake in ``workdir``; fail the test with its output if it fails."""
    command = [sys.executable, "-m", "snakemake", "--cores", "2", *args]
    process = subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=False)
    if process.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed:\n{process.stdout}\n{process.stderr}")
    return process


def planned_jobs(workdir: Path, *args: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job a dry run (with extra ``args``) would execute, leaving out rule ``all``."""
    return jobs_in(snakemake(workdir, "--dry-run", *args).stdout)


def jobs_in(output: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job Snakemake's output announces, leaving out rule ``all``."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?(?:rule|checkpoint) \w+:)", output):
        header = re.match(r"(?:local)?(?:rule|checkpoint) (\w+):", block.strip())
        if not header or header.group(1) == "all":
            continue
        found = re.search(r"wildcards: (.*)", block)
        wildcards = dict(item.split("=", 1) for item in found.group(1).split(", ")) if found else {}
        jobs.append((header.group(1), wildcards))
    return jobs


def planned_after(workdir: Path, config: dict, change) -> list[tuple[str, dict[str, str]]]:
    """The jobs a dry run plans after ``change`` edits a copy of ``config``; the config is restored afterwards."""
    changed = yaml.safe_load(yaml.safe_dump(config, sort_keys=False))  # key order is the table order
    change(changed)
    write_config(workdir, changed)
    try:
        return planned_jobs(workdir)
    finally:
        write_config(workdir, config)


def executed_after(workdir: Path, config: dict, change, scratch: Path) -> list[tuple[str, dict[str, str]]]:
    """The jobs a real run executes after ``change`` edits ``config``, in a copy of ``workdir`` (times kept)."""
    copy = scratch / "workflow"
    shutil.copytree(workdir, copy, symlinks=True)
    changed = yaml.safe_load(yaml.safe_dump(config, sort_keys=False))
    change(changed)
    write_config(copy, changed)
    process = snakemake(copy)
    return jobs_in(process.stdout + process.stderr)


def write_config(workdir: Path, config: dict) -> None:
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture(scope="module")
def tiny_config() -> dict:
    config = yaml.safe_load((REPO / ".test" / "config_tiny" / "config.yaml").read_text())
    # A second backbone, so a change to one of them can be shown not to touch the other.
    config["backbones"]["mfcc8"] = {"kind": "mfcc", "options": {"n_mfcc": 8}}
    # A self-supervised backbone the workflow trains: a tiny encoder, one epoch, augmented positives (the tiny
    # world's 3-s clips hold one segment, too short for adjacent or random positives), with the multi-level loss
    # so that its shards hold six layers (five blocks and their concatenation) for the layer sweep.
    options = {"loss": "multi", "positive": "self", "channels": [4, 8, 8, 16, 16], "embedding_dim": 32, "epochs": 1}
    config["backbones"]["ssl_tiny"] = {"kind": "ssl", "options": {**options, "batch_size": 16}}
    config["layer_sweep"] = {"backbones": ["ssl_tiny"], "model": "knn"}
    return config


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tiny_config) -> Path:
    """A copy of the workflow, run once on the tiny world with two audio files broken after generation."""
    root = tmp_path_factory.mktemp("workflow")
    shutil.copy(REPO / "Snakefile", root / "Snakefile")
    shutil.copytree(REPO / "workflow", root / "workflow")
    shutil.copytree(REPO / "config", root / "config")
    # profiles/default (picked up automatically) sets the rerun triggers the rebuild tests rely on.
    shutil.copytree(REPO / "profiles", root / "profiles")
    write_config(root, tiny_config)
    snakemake(root, "results/demo/data/tracks.parquet")
    audio = root / "results" / "demo" / "data" / "audio"
    (audio / f"{CORRUPTED['corrupt']}.flac").write_bytes(b"fLaC\x00\x00\x00\x22" + b"\x13" * 500)
    (audio / f"{CORRUPTED['empty']}.flac").write_bytes(b"")
    snakemake(root)
    return root


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


def test_second_run_has_nothing_to_do(workdir):
    assert planned_jobs(workdir) == []


def test_changing_one_backbone_reruns_only_its_descendants(workdir, tiny_config, tmp_path):
    """mfcc8's options change: the candidate set is rebuilt, but every backbone still embeds every train track
    except the two broken files, so its checksum is unchanged and no run of another backbone or model ranks or
    trains again (their evaluations, seconds each, are redone with the same numbers). A dry run, which cannot
    know that before extraction, lists more; adding a backbone is checked the same way in
    tests/test_dataset_workflow.py."""

    def change(changed: dict) -> None:
        changed["backbones"]["mfcc8"]["options"]["n_fft"] = 1024

    jobs = executed_after(workdir, tiny_config, change, tmp_path)
    assert sorted({rule for rule, _ in jobs}) == [
        "aggregate",
        "candidates",
        "cold_start",
        "embed_gather",
        "embed_shard",
        "evaluate",
        "figures",
        "layer_figure",  # a table rule: it redraws from the unchanged sweep
        "mir_vs_recs",
        "probe",
        "probe_table",
        "recommend",
        "recommend_new_items",
        "ssl_table",
    ]
    assert {w["backbone"] for rule, w in jobs if rule not in (*TABLE_RULES, "candidates", "evaluate")} == {"mfcc8"}
    assert sum(rule == "embed_shard" for rule, _ in jobs) == 3  # 200 tracks in shards of 80
    assert [w["model"] for rule, w in jobs if rule in ("recommend", "recommend_new_items")] == ["knn", "knn"]


@pytest.mark.parametrize(
    ("backbone", "options", "own_rules"),
    [
        ("mfcc20", {"kind": "mfcc", "options": {"n_mfcc": 20}}, {"embed_shard", "embed_gather", "probe"}),
        ("ssl_tiny", {"similarity": "cosine"}, {"ssl_train", "embed_shard", "embed_gather", "probe"}),
    ],
)
def test_adding_or_retraining_a_backbone_extracts_and_probes_only_that_backbone(
    workdir, tiny_config, backbone, options, own_rules
):
    """The forward passes and probes a dry run plans, before the candidate set is known: only the new or retrained
    backbone's (jobs behind the candidate set, the layer sweep among them, are listed as an upper bound)."""

    def change(changed: dict) -> None:
        if backbone in changed["backbones"]:
            changed["backbones"][backbone]["options"].update(options)
        else:
            changed["backbones"][backbone] = options

    jobs = planned_after(workdir, tiny_config, change)
    heavy = {"ssl_train", "embed_shard", "embed_gather", "probe"}
    assert {rule for rule, _ in jobs} & heavy == own_rules
    assert {w["backbone"] for rule, w in jobs if rule in heavy} == {backbone}
    assert ("candidates", {"dataset": "demo"}) in jobs


def test_changing_only_the_layer_reruns_no_forward_pass(workdir, tiny_config):
    def change(changed: dict) -> None:
        changed["backbones"]["mfcc"]["layer"] = "mean"

    jobs = planned_after(workdir, tiny_config, change)
    assert "embed_shard" not in {rule for rule, _ in jobs}
    assert ("embed_gather", {"dataset": "demo", "backbone": "mfcc"}) in jobs


def test_changing_a_model_reruns_only_that_model(workdir, tiny_config):
    def change(changed: dict) -> None:
        changed["models"]["knn"]["options"] = {"standardize": True}

    jobs = planned_after(workdir, tiny_config, change)
    assert sorted({rule for rule, _ in jobs}) == [
        "aggregate",
        "cold_start",
        "evaluate",
        "figures",
        "layer_figure",
        "layer_sweep",  # it ranks every layer with knn
        "mir_vs_recs",
        "recommend",
        "recommend_new_items",
    ]
    assert {w["model"] for rule, w in jobs if rule not in TABLE_RULES and "model" in w} == {"knn"}


def test_editing_a_script_reruns_its_rule_and_descendants_only(workdir):
    script = workdir / "workflow" / "scripts" / "evaluate.py"
    original = script.read_text()
    original_times = (script.stat().st_atime_ns, script.stat().st_mtime_ns)
    script.write_text(original + "# an edit\n")
    try:
        changed = snakemake(workdir, "--list-changes", "code").stdout.split()
        summary = snakemake(workdir, "--summary").stdout.splitlines()
        jobs = planned_jobs(workdir)
        # Without the code trigger, the edit is still reported but reruns nothing.
        without_code = planned_jobs(workdir, "--rerun-triggers", "mtime", "params", "input", "software-env")
    finally:
        # Snakemake's code trigger compares a script's mtime with its outputs', so restore both.
        script.write_text(original)
        os.utime(script, ns=original_times)
    metrics = sorted(str(p.relative_to(workdir)) for p in (workdir / "results/demo/runs").rglob("metrics_*.parquet"))
    assert metrics and sorted(path for path in changed if path.startswith("results/")) == metrics
    pending = {row.split("\t")[2] for row in summary[1:] if row.endswith("\tupdate pending")}
    assert pending == {"evaluate", "aggregate", "cold_start", "mir_vs_recs", "figures"}
    assert sorted({rule for rule, _ in jobs}) == ["aggregate", "cold_start", "evaluate", "figures", "mir_vs_recs"]
    assert sum(rule == "evaluate" for rule, _ in jobs) == len(metrics)
    assert without_code == []
    assert planned_jobs(workdir) == []  # the outputs are again newer than the script


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
    for figure in ("recommendation.png", "training_curves.png", "mir_vs_recs.png", "layers.png"):
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


def test_changing_the_cold_start_cut_offs_reevaluates_only_the_new_release_lists(workdir, tiny_config):
    def change(changed: dict) -> None:
        changed.setdefault("evaluation", {})["cold_ks"] = [5, 10]

    jobs = planned_after(workdir, tiny_config, change)
    assert sorted({rule for rule, _ in jobs}) == ["cold_start", "evaluate"]
    assert {w["split"] for rule, w in jobs if rule == "evaluate"} == {"cold_test"}


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


def test_adding_a_shuffled_control_runs_only_that_control(workdir, tiny_config):
    def change(changed: dict) -> None:
        changed["models"]["bert4rec"]["backbones"].append({"backbone": "mfcc", "shuffle": True})

    jobs = planned_after(workdir, tiny_config, change)
    rules = sorted({rule for rule, _ in jobs})
    assert rules == [
        "aggregate",
        "cold_start",
        "evaluate",
        "figures",
        "mir_vs_recs",
        "recommend_new_items",
        "train_recommender",
    ]
    runs = {(w["model"], w["backbone"]) for rule, w in jobs if rule not in TABLE_RULES}
    assert runs == {("bert4rec", "mfcc_shuffled")}


def test_changing_a_trained_model_retrains_only_that_model(workdir, tiny_config):
    def change(changed: dict) -> None:
        changed["models"]["shallow"]["options"]["margin"] = 0.3

    jobs = planned_after(workdir, tiny_config, change)
    trained = sorted(w["backbone"] for rule, w in jobs if rule == "train_recommender")
    assert trained == ["mfcc", "mfcc_shuffled"]
    assert {w["model"] for rule, w in jobs if rule not in TABLE_RULES} == {"shallow"}


def test_invalid_config_is_rejected_before_anything_runs(workdir, tiny_config):
    broken = yaml.safe_load(yaml.safe_dump(tiny_config))
    broken["models"]["knn"]["kind"] = "svd"
    write_config(workdir, broken)
    try:
        process = subprocess.run(
            [sys.executable, "-m", "snakemake", "--cores", "1", "--dry-run"],
            cwd=workdir,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        write_config(workdir, tiny_config)
    assert process.returncode != 0
    assert "svd" in process.stdout + process.stderr
