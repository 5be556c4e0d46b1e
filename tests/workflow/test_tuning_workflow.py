"""Tuned models through the DAG: one study per backbone on validation, tuned rows beside the untuned ones, the
tuning table and figure, and a budget change that reruns only the tuned model."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from tiny_workflow import jobs_in, snakemake, write_config
from workflow_copies import copy_workflow, small_world_config

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def tuning_config() -> dict:
    config = small_world_config(n_tracks=60, shard_size=60, models=("knn", "popularity"))
    config["models"]["knn_tuned"] = {"kind": "knn", "tune": {"trials": 2, "metric": "NDCG@10"}}
    return config


@pytest.fixture(scope="module")
def tuned_workdir(tmp_path_factory, tuning_config) -> Path:
    root = copy_workflow(tmp_path_factory.mktemp("tuning") / "workflow", tuning_config)
    snakemake(root)
    return root


def test_a_study_reads_train_and_validation_but_never_the_test_split(tmp_path, tuning_config):
    root = copy_workflow(tmp_path / "workflow", tuning_config)
    snakemake(root, "results/demo/split/uncovered.csv")
    output = snakemake(root, "--dry-run", "results/demo/tuning/knn_tuned/mfcc/best.json").stdout
    lines = output.splitlines()
    start = lines.index("rule tune:")
    inputs = next(line for line in lines[start:] if line.strip().startswith("input:"))
    assert "split/train.parquet" in inputs and "split/val.parquet" in inputs
    assert "test" not in inputs


def test_tuned_rows_sit_beside_the_untuned_and_the_tuning_table_tells_what_was_found(tuned_workdir):
    tables = tuned_workdir / "results" / "demo" / "tables"
    rows = pl.read_csv(tables / "recommendation.csv").filter(pl.col("split") == "test")
    assert {("knn", "mfcc"), ("knn_tuned", "mfcc")} <= set(zip(rows["model"], rows["backbone"], strict=True))
    tuning = pl.read_csv(tables / "tuning.csv")
    assert tuning.select("model", "backbone", "metric", "completed_trials").rows() == [
        ("knn_tuned", "mfcc", "NDCG@10", 2)
    ]
    assert tuning["best_value"][0] >= tuning["untuned_value"][0]
    assert "validation" in (tables / "tuning.md").read_text()
    assert (tuned_workdir / "results" / "demo" / "figures" / "tuning.png").stat().st_size > 0


def test_a_larger_budget_reruns_only_the_tuned_model(tuned_workdir, tuning_config):
    changed = {**tuning_config, "models": {**tuning_config["models"]}}
    changed["models"]["knn_tuned"] = {"kind": "knn", "tune": {"trials": 3, "metric": "NDCG@10"}}
    write_config(tuned_workdir, changed)
    process = snakemake(tuned_workdir)
    jobs = jobs_in(process.stdout + process.stderr)
    assert ("tune", {"dataset": "demo", "model": "knn_tuned", "backbone": "mfcc"}) in jobs
    ranked = {w["model"] for rule, w in jobs if rule in ("recommend", "recommend_new_items")}
    assert ranked <= {"knn_tuned"}
    assert not any(rule.startswith("embed") for rule, _ in jobs)
    assert pl.read_csv(tuned_workdir / "results/demo/tables/tuning.csv")["completed_trials"][0] == 3
