"""Training helps: each trained model ranks validation users better after a few epochs than before any.

Run on the trained recommenders' small demo world (the ``neural_world`` fixture, tests/neural_world.py), with
settings small enough for a CPU test and large enough that learning shows.
"""

from __future__ import annotations

import pytest

from audiorec.evaluation.metrics import evaluate_recommendations
from audiorec.recommenders import recommendations_frame, recommender_class

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BERT4REC = {"max_len": 40, "hidden_size": 32, "feedforward_dim": 64, "attention_dropout": 0.0}


def val_hit_rate(model, world) -> float:
    """Mean HitRate@50 of the model's rankings of the validation users."""
    scores, items = model.recommend(world.catalogue, world.val_users, 50)
    frame = recommendations_frame(world.val_users.user_ids, world.catalogue, scores, items)
    return float(evaluate_recommendations(frame, world.val_truth, [50]).get_column("HitRate@50").mean())


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("shallow", {"max_epochs": 6, "standardize": True, "batch_size": 256}),
        ("shallow_random", {"max_epochs": 10, "item_dim": 16, "batch_size": 128}),
        ("bert4rec", {**BERT4REC, "standardize": True, "max_epochs": 8, "batch_size": 32}),
        ("bert4rec_random", {**BERT4REC, "item_dim": 32, "max_epochs": 8, "batch_size": 32}),
    ],
)
def test_training_beats_the_untrained_model_on_validation_hit_rate(neural_world, kind, options):
    world = neural_world
    model = recommender_class(kind).from_options(options, seed=0)
    model.initialise(world.catalogue, world.train)
    untrained = val_hit_rate(model, world)
    model.fit(world.catalogue, world.train, world.validation)
    assert val_hit_rate(model, world) > untrained + 0.05
