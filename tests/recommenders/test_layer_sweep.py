"""HitRate by layer: one training-free model ranks each hidden layer's embeddings."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from audiorec.errors import ParameterError
from audiorec.evaluation.metrics import evaluate_recommendations
from audiorec.evaluation.stats import t_confidence_interval
from audiorec.recommenders import recommendations_frame, recommender_class
from audiorec.reporting.figures import layer_curves
from audiorec.reporting.layer_sweep import sweep_layers


def test_an_informative_layer_beats_a_noise_layer_and_each_row_is_the_models_own_result(neural_world, rng, tmp_path):
    catalogue = neural_world.catalogue
    track_ids = catalogue.track_ids.tolist()
    layers = {"noise": rng.normal(size=catalogue.embeddings.shape).astype(np.float32), "content": catalogue.embeddings}
    spec = {"kind": "knn", "options": {"standardize": True}}
    sweep = sweep_layers(track_ids, layers, neural_world.train_frame, neural_world.val_truth, spec, [10, 50])
    assert sweep["layer"].to_list() == ["noise", "content"] and sweep["layer_index"].to_list() == [0, 1]
    assert sweep["dim"].to_list() == [16, 16]
    assert sweep["HitRate@50"][1] > sweep["HitRate@50"][0] + 0.1
    assert "MRR@50" not in sweep.columns and "NDCG@10 ci_high" in sweep.columns
    # The content row is exactly what the model reports when it runs on that table alone.
    model = recommender_class("knn").from_options(spec["options"], 0)
    scores, items = model.recommend(catalogue, neural_world.val_users, 50)
    frame = recommendations_frame(neural_world.val_users.user_ids, catalogue, scores, items)
    per_user = evaluate_recommendations(frame, neural_world.val_truth, [50])
    mean, low, high = t_confidence_interval(per_user["HitRate@50"].to_numpy())
    row = sweep.row(1, named=True)
    assert (row["HitRate@50"], row["HitRate@50 ci_low"], row["HitRate@50 ci_high"]) == pytest.approx((mean, low, high))
    assert row["n_users"] == per_user.height
    layer_curves({"backbone": sweep}, "HitRate@50", tmp_path / "layers.png")
    assert (tmp_path / "layers.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("kind", ["shallow", "popularity"])
def test_models_that_train_or_ignore_embeddings_cannot_sweep(kind, neural_world):
    layers = {"only": neural_world.catalogue.embeddings}
    with pytest.raises(ParameterError, match="without training"):
        sweep_layers(
            neural_world.catalogue.track_ids.tolist(),
            layers,
            neural_world.train_frame,
            pl.DataFrame(neural_world.val_truth),
            {"kind": kind},
            [10],
        )
