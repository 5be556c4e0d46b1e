"""The ``retrieval`` setting reaches the ranking jobs of the inner-product models and reruns nothing else."""

from __future__ import annotations

import pytest
from tiny_workflow import TABLE_RULES, executed_after

from audiorec.storage.tables import read_metadata

pytestmark = pytest.mark.workflow


def test_switching_to_faiss_reranks_the_inner_product_models_without_training_or_extraction(
    workdir, tiny_config, tmp_path
):
    def change(changed: dict) -> None:
        changed["retrieval"] = {"backend": "faiss", "index": "Flat"}

    jobs = executed_after(workdir, tiny_config, change, tmp_path)
    rules = {rule for rule, _ in jobs}
    assert rules - set(TABLE_RULES) == {"recommend", "train_recommender", "recommend_new_items"}
    assert not rules & {"embed_shard", "embed_gather", "ssl_train", "split_temporal", "layer_sweep", "probe"}
    ranked = {w["model"] for rule, w in jobs if rule == "recommend"}
    assert ranked == {"knn"}  # popularity and random are not told the setting
    # The new-release rankings rerun only because the trained models' checkpoints were rewritten.
    assert {w["model"] for rule, w in jobs if rule == "recommend_new_items"} <= {"shallow", "bert4rec"}
    results = tmp_path / "workflow" / "results" / "demo"
    trained = [(w["model"], w["backbone"], w["seed"]) for rule, w in jobs if rule == "train_recommender"]
    assert trained
    for model, backbone, seed in trained:
        log = (results / "logs" / "train_recommender" / model / backbone / f"seed{seed}.log").read_text()
        assert "resuming after epoch" in log and "retrieval: faiss Flat" in log  # no epoch trained again
        metadata = read_metadata(results / "runs" / model / backbone / f"seed{seed}" / "recommendations.parquet")
        assert metadata["retrieval"] == {"backend": "faiss", "index": "Flat"}
    popularity = read_metadata(results / "runs" / "popularity" / "none" / "seed0" / "recommendations.parquet")
    assert popularity["retrieval"] == {"backend": "exact"}
