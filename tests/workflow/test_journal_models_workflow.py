"""The journal version's recommenders through the workflow: ELSA, the Hybrid and the Bimodal scorings are trained,
ranked and tested beside the other rows; only the models that score audio alone rank new releases."""

from __future__ import annotations

import polars as pl
import pytest
from tiny_workflow import executed_after

pytestmark = pytest.mark.workflow

BIMODAL = {"hidden_dim": 16, "elsa_factors": 16, "elsa_max_epochs": 2, "max_epochs": 2, "batch_size": 64}
AUDIO_ROWS = ["mfcc", {"backbone": "mfcc", "shuffle": True}]


def test_journal_models_train_rank_and_reach_their_tables(workdir, tiny_config, tmp_path):
    def change(changed: dict) -> None:
        models = changed["models"]
        models["elsa"] = {"kind": "elsa", "options": {"factors": 16, "max_epochs": 2}}
        models["hybrid"] = {"kind": "hybrid", "options": {"factors": 16, "max_epochs": 3}, "backbones": AUDIO_ROWS}
        models["bimodal_content"] = {"kind": "bimodal_content", "options": BIMODAL, "backbones": AUDIO_ROWS}
        models["bimodal_average"] = {"kind": "bimodal_average", "options": BIMODAL, "backbones": ["mfcc"]}

    jobs = executed_after(workdir, tiny_config, change, tmp_path)
    trained = {(w["model"], w["backbone"]) for rule, w in jobs if rule == "train_recommender"}
    expected = {
        ("elsa", "none"),
        ("hybrid", "mfcc"),
        ("hybrid", "mfcc_shuffled"),
        ("bimodal_content", "mfcc"),
        ("bimodal_content", "mfcc_shuffled"),
        ("bimodal_average", "mfcc"),
    }
    assert trained == expected
    assert not {rule for rule, _ in jobs} & {"embed_shard", "embed_gather", "split_temporal"}

    results = tmp_path / "workflow" / "results" / "demo"
    table = pl.read_csv(results / "tables" / "recommendation.csv")
    assert expected <= set(table.filter(pl.col("split") == "test").select("model", "backbone").iter_rows())
    log = pl.read_csv(results / "runs" / "elsa" / "none" / "seed0" / "training_log.csv")
    assert log.get_column("epoch").to_list() == [0, 1, 2]
    assert "val_HitRate@50" in log.columns

    # Each audio row is tested against its shuffled control, as every other audio model's is.
    significance = pl.read_csv(results / "tables" / "significance.csv")
    assert {"hybrid", "bimodal_content"} <= set(significance.get_column("model").to_list())

    cold = set(pl.read_csv(results / "tables" / "cold_start.csv").get_column("model").to_list())
    assert {"hybrid", "bimodal_content"} <= cold
    assert not cold & {"elsa", "bimodal_average"}
