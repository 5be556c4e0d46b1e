"""Hyper-parameter studies: settings checked at plan time, seeded TPE from the configured options, resumable, and
never reading the test split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from snakemake.utils import validate

from audiorec.contracts.recommender import CheckWorld
from audiorec.errors import ParameterError
from audiorec.plan import Plan
from audiorec.plan.tuning import first_trial, parse_metric
from audiorec.protocol.split import write_split
from audiorec.recommenders.options import KNNConfig, ShallowNetOptions
from audiorec.stages import tune
from audiorec.storage.tables import embeddings_table, write_table

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[2]


def config_with(**models) -> dict:
    config = yaml.safe_load((REPO / ".test" / "config_tiny" / "config.yaml").read_text())
    config["models"].update(models)
    validate(config, str(REPO / "config" / "schema.yaml"))
    return config


def test_a_tune_block_takes_the_defaults_and_a_shuffled_control_shares_its_backbones_study():
    plan = Plan.from_config(
        config_with(
            knn_tuned={"kind": "knn", "tune": {"trials": 3}},
            shallow_tuned={"kind": "shallow", "tune": {}, "backbones": ["mfcc", {"backbone": "mfcc", "shuffle": True}]},
        )
    )
    plan.check()
    tune_block = plan.models["knn_tuned"].spec["tune"]
    assert tune_block == {
        "trials": 3,
        "seconds": 3600,
        "metric": "NDCG@50",
        "seed": 0,
        "space": {"standardize": {"choices": [False, True]}},
    }
    assert "tune" not in plan.models["knn"].spec
    assert plan.studies() == [("knn_tuned", "mfcc"), ("shallow_tuned", "mfcc")]
    assert plan.tuning_path("shallow_tuned", "mfcc_shuffled") == "results/{dataset}/tuning/shallow_tuned/mfcc/best.json"
    assert plan.tuning_path("shallow", "mfcc") is None
    assert "results/demo/tables/tuning.md" in plan.final_targets()


@pytest.mark.parametrize(
    ("tune_block", "message"),
    [
        ({"space": {"learning_rat": {"low": 0.001, "high": 0.1}}}, r"unknown option\(s\) \['learning_rat'\]"),
        ({"metric": "AUC@10"}, "tuning metric must be HitRate, Recall, NDCG, Precision or MRR @K"),
        ({"space": {"margin": {"low": 0.5, "high": 0.1}}}, "low < high"),
        ({"space": {"learning_rate": {"low": 0.0, "high": 0.1, "log": True}}}, "log scale needs low > 0"),
        ({"space": {"batch_size": {"choices": []}}}, "choices must be a non-empty list"),
    ],
)
def test_a_bad_tune_block_fails_the_plan_naming_the_model(tune_block, message):
    with pytest.raises(ParameterError, match=message) as error:
        Plan.from_config(config_with(shallow_tuned={"kind": "shallow", "tune": tune_block}))
    assert "models.shallow_tuned.tune" in str(error.value)


def test_a_kind_without_a_space_must_be_given_one():
    with pytest.raises(ParameterError, match="no search space for kind 'popularity'"):
        Plan.from_config(config_with(pop_tuned={"kind": "popularity", "tune": {}}))


def test_the_first_trial_is_the_configured_options_or_the_defaults_inside_the_space():
    space = {"learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}, "margin": {"low": 0.3, "high": 0.5}}
    assert first_trial(space, {"learning_rate": 0.002}, ShallowNetOptions) == {"learning_rate": 0.002}
    assert first_trial({"standardize": {"choices": [False, True]}}, {}, KNNConfig) == {"standardize": False}
    assert parse_metric("HitRate@10") == ("HitRate@10", 10)


@pytest.fixture(scope="module")
def study_tables(tmp_path_factory) -> dict[str, Path]:
    """The tiny demo world's split on disk, an empty uncovered list and random embeddings of every track."""
    folder = tmp_path_factory.mktemp("study")
    world = CheckWorld.build()
    write_split(world.split, folder / "split")
    (folder / "uncovered.csv").write_text("track_id\n")
    write_table(embeddings_table(world.embeddings.track_ids, world.embeddings.vectors), folder / "embeddings.parquet")
    paths = {name: folder / "split" / f"{name}.parquet" for name in ("train", "val", "heard_before_window")}
    return {**paths, "uncovered": folder / "uncovered.csv", "embeddings": folder / "embeddings.parquet"}


def run_study(tables_paths, out: Path, spec: dict) -> dict:
    splits = {name: tables_paths[name] for name in ("train", "val", "heard_before_window", "uncovered")}
    tune(spec, splits, tables_paths["embeddings"], out / "best.json", out / "trials.csv")
    return json.loads((out / "best.json").read_text())


KNN_SPEC = {
    "kind": "knn",
    "options": {},
    "tune": {
        "trials": 2,
        "seconds": 600,
        "metric": "NDCG@20",
        "seed": 0,
        "space": {"standardize": {"choices": [False, True]}},
    },
}


def test_a_study_starts_from_the_configured_options_and_never_reads_the_test_split(study_tables, tmp_path):
    split = study_tables["train"].parent
    for held_out in ("test", "cold_test"):  # poisoned: reading either one would raise
        (split / f"{held_out}.parquet").write_bytes(b"not parquet: a study must never open this file")
    best = run_study(study_tables, tmp_path, KNN_SPEC)
    trials = pl.read_csv(tmp_path / "trials.csv")
    assert trials["number"].to_list() == [0, 1] and json.loads(trials["params"][0]) == {"standardize": False}
    assert best["first_trial_value"] == pytest.approx(trials["value"][0], abs=1e-6)
    assert best["value"] == pytest.approx(max(trials["value"]), abs=1e-6)
    assert best["completed_trials"] == 2 and best["metric"] == "NDCG@20" and 0 < best["value"] <= 1


def test_a_study_is_refused_any_table_but_its_own(study_tables, tmp_path):
    splits = {name: study_tables[name] for name in ("train", "val", "heard_before_window", "uncovered")}
    with pytest.raises(ParameterError, match="a study reads exactly the tables"):
        tune(KNN_SPEC, {**splits, "test": study_tables["val"]}, None, tmp_path / "b.json", tmp_path / "t.csv")


def test_the_same_seed_finds_the_same_options_and_a_larger_budget_continues_the_study(study_tables, tmp_path):
    first = run_study(study_tables, tmp_path / "a", KNN_SPEC)
    again = run_study(study_tables, tmp_path / "b", KNN_SPEC)
    assert {k: v for k, v in first.items() if k != "seconds"} == {k: v for k, v in again.items() if k != "seconds"}
    before = pl.read_csv(tmp_path / "a" / "trials.csv")
    longer = {**KNN_SPEC, "tune": {**KNN_SPEC["tune"], "trials": 3}}
    assert run_study(study_tables, tmp_path / "a", longer)["completed_trials"] == 3
    after = pl.read_csv(tmp_path / "a" / "trials.csv")
    assert after.height == 3 and after.head(2).drop("seconds").equals(before.drop("seconds"))
    assert len(list((tmp_path / "a").glob("study-*.journal"))) == 1  # the same study, one more trial


def test_a_trained_model_is_tuned_with_early_stopping_on_validation(study_tables, tmp_path):
    spec = {
        "kind": "shallow",
        "options": {"max_epochs": 2, "standardize": True, "batch_size": 256},
        "tune": {
            "trials": 2,
            "seconds": 600,
            "metric": "HitRate@20",
            "seed": 0,
            "space": {"learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}},
        },
    }
    best = run_study(study_tables, tmp_path, spec)
    assert set(best["params"]) == {"learning_rate"} and np.isfinite(best["value"])
    assert json.loads(pl.read_csv(tmp_path / "trials.csv")["params"][0]) == {"learning_rate": 0.001}


def test_a_model_fitted_in_closed_form_is_fitted_on_every_train_user_in_each_trial(study_tables, tmp_path):
    spec = {
        "kind": "ease",
        "options": {},
        "tune": {
            "trials": 2,
            "seconds": 600,
            "metric": "NDCG@20",
            "seed": 0,
            "space": {"l2": {"low": 1.0, "high": 1e4, "log": True}},
        },
    }
    best = run_study(study_tables, tmp_path, spec)
    trials = pl.read_csv(tmp_path / "trials.csv")
    assert trials["state"].to_list() == ["COMPLETE", "COMPLETE"]
    assert json.loads(trials["params"][0]) == {"l2": 500.0} and 0 < best["value"] <= 1
