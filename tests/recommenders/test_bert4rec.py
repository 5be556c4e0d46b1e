"""BERT4Rec: sequences, masking, attention, frozen items, special tokens and learning.

Reproducibility and what every ranking must satisfy are checked for every model in test_recommender_contract.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
import torch

from audiorec.errors import ParameterError
from audiorec.recommenders import Catalogue, TrainData, recommender_class
from audiorec.recommenders.bert4rec import Bert4RecNet, Bert4RecRecommender, prediction_inputs
from audiorec.recommenders.options import Bert4RecOptions
from audiorec.recommenders.sequences import mask_positions, recent_items
from audiorec.recommenders.vectors import pretrained_table

NO_AUDIO = {"max_len": 40, "hidden_size": 32, "feedforward_dim": 64, "attention_dropout": 0.0}
SMALL = {**NO_AUDIO, "standardize": True}


@pytest.fixture(scope="module")
def world(neural_world):
    return neural_world


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def history(events: dict[str, list[tuple[str, int]]]) -> pl.DataFrame:
    """A train table from {user: [(track, day of first listen), ...]}."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [(user, track, start + timedelta(days=day), 1) for user, pairs in events.items() for track, day in pairs]
    return pl.DataFrame(rows, schema=["user_id", "track_id", "first_ts", "plays"], orient="row")


def test_sequences_follow_first_listen_and_truncation_keeps_the_most_recent_items():
    catalogue = Catalogue.from_tracks([f"t{i}" for i in range(6)])
    # Ties on day 3 are broken by track id (t1 before t4).
    train = history({"a": [("t5", 9), ("t0", 1), ("t4", 3), ("t1", 3), ("t2", 7)], "b": [("t3", 2)], "c": []})
    data = TrainData.build(train, catalogue, ["a", "b", "c"])
    assert recent_items(data.listen_order, np.arange(3), 8, pad=-1).tolist() == [
        [-1, -1, -1, 0, 1, 4, 2, 5],
        [-1, -1, -1, -1, -1, -1, -1, 3],
        [-1] * 8,
    ]
    assert recent_items(data.listen_order, np.array([0]), 3, pad=-1).tolist() == [[4, 2, 5]]
    # Prediction: the most recent max_len - 1 tracks, then [MASK] (= pad + 1).
    assert prediction_inputs(data.listen_order, np.array([0, 1]), 4, pad=6).tolist() == [[4, 2, 5, 7], [6, 6, 3, 7]]


def test_listen_order_is_built_only_for_models_that_read_sequences():
    catalogue = Catalogue.from_tracks([f"t{i}" for i in range(6)], np.eye(6, dtype=np.float32))
    train = history({"a": [("t5", 9), ("t0", 1)], "b": [("t3", 2), ("t1", 4)]})
    data = TrainData.build(train, catalogue, ["a", "b"])
    recommender_class("knn").from_options({}, seed=0).recommend(catalogue, data, 3)
    assert "listen_order" not in vars(data), "a KNN ranking must not pay for ordering the listens"
    assert data.listen_order.toarray().tolist() == [[1, 0, 0, 0, 0, 2], [0, 2, 0, 1, 0, 0]]
    assert "listen_order" in vars(data)
    no_times = TrainData.build(train.drop("first_ts"), catalogue, ["a", "b"])
    assert no_times.listen_order is None


def test_masking_rate_is_p_with_at_least_one_mask_per_sequence_and_never_on_padding():
    generator = torch.Generator().manual_seed(0)
    valid = torch.ones(4000, 50, dtype=torch.bool)
    assert float(mask_positions(valid, 0.2, generator).float().mean()) == pytest.approx(0.2, abs=0.005)
    lengths = torch.randint(1, 6, (4000,), generator=generator)
    short = torch.arange(8)[None, :] >= 8 - lengths[:, None]
    masked = mask_positions(short, 0.2, generator)
    assert not (masked & ~short).any()
    assert masked.any(dim=1).all()
    single = masked[lengths == 1]
    assert single.sum() == len(single)


@pytest.mark.parametrize(("probability", "share"), [(1.0, 1.0), (0.0, 0.0), (0.5, 0.5)])
def test_last_item_batches_mask_only_each_sequences_most_recent_track(world, probability, share):
    options = Bert4RecOptions(**{**SMALL, "batch_size": 4, "last_item_probability": probability})
    model = Bert4RecRecommender(options, seed=0)
    task = model.build_task(model.initialise(world.catalogue, world.train), world.train, world.validation)
    generator = torch.Generator().manual_seed(0)
    batches = [batch for _ in range(4) for batch in task.batches(generator)]
    last_only = 0
    for inputs, masked, targets in batches:
        assert (inputs[masked] == model.module.mask).all() and masked.any(dim=1).all()
        if masked[:, :-1].any():
            continue
        last_only += 1
        assert masked[:, -1].all() and (targets < len(world.catalogue)).all()
    assert last_only / len(batches) == pytest.approx(share, abs=0.1)


def test_attention_ignores_padding_and_positions_count_from_the_end():
    torch.manual_seed(0)
    options = Bert4RecOptions(max_len=12, n_heads=2, dropout=0.0)
    module = Bert4RecNet(torch.randn(20, 8), freeze_items=True, hidden=8, options=options).eval()
    sequence = torch.tensor([[3, 7, 1, 21]])
    padded = torch.tensor([[20, 20, 20, 3, 7, 1, 21]])
    with torch.no_grad():
        torch.testing.assert_close(module(sequence), module(padded)[:, 3:])
        changed = module(torch.tensor([[3, 7, 2, 21]]))
    assert not torch.allclose(changed[:, -1], module(sequence)[:, -1]), "the last position attends to the others"


def test_frozen_table_is_bit_identical_and_special_rows_train_apart_from_it(world):
    model = Bert4RecRecommender.from_options({**SMALL, "max_epochs": 1}, seed=0)
    initial = model.initialise(world.catalogue, world.train)
    special = initial.special.detach().clone()
    projection = initial.projection.weight.detach().clone()
    model.fit(world.catalogue, world.train, world.validation)
    module = model.module
    frozen = torch.from_numpy(pretrained_table(world.catalogue, standardize=True, model="bert4rec"))
    assert torch.equal(module.item_table, frozen) and not module.item_table.requires_grad
    assert "item_table" not in module.state_dict()
    assert module.special.shape == (2, frozen.shape[1]) and not torch.equal(module.special, special)
    assert not torch.equal(module.projection.weight, projection)
    assert module.bias.shape == (len(world.catalogue),)


def test_random_variant_trains_its_table_directly_at_berts_scale(world):
    """No projection in front of a trainable table: Adam would move the table a fraction of the speed it moves
    an embedding of its own, which left the variant far behind RecBole's BERT4Rec after the same epochs."""
    model = recommender_class("bert4rec_random").from_options({**NO_AUDIO, "item_dim": 32, "max_epochs": 1}, seed=0)
    initial = model.initialise(world.catalogue, world.train)
    table = initial.item_table.detach().clone()
    assert isinstance(initial.projection, torch.nn.Identity) and initial.item_table.requires_grad
    assert table.std().item() == pytest.approx(0.02, rel=0.05)
    model.fit(world.catalogue, world.train, world.validation)
    assert not torch.equal(model.module.item_table, table)
    assert torch.equal(model.module.projected_items(), model.module.item_table)


def test_special_tokens_and_heard_tracks_are_never_recommended(world):
    model = Bert4RecRecommender.from_options({**SMALL, "max_epochs": 1}, seed=0)
    model.fit(world.catalogue, world.train, world.validation)
    with torch.no_grad():  # make [PAD] and [MASK] the most attractive vectors there are
        model.module.special.mul_(1e3)
    _, items = model.recommend(world.catalogue, world.val_users, len(world.catalogue))
    heard = world.val_users.heard.toarray()
    assert items.max() < len(world.catalogue)
    for row, ranked in enumerate(items):
        kept = ranked[ranked >= 0]
        assert sorted(kept.tolist()) == np.flatnonzero(~heard[row]).tolist()


def test_options_are_checked():
    with pytest.raises(ParameterError, match="hidden size 15 is not divisible by n_heads=2"):
        Bert4RecNet(torch.zeros(3, 15), freeze_items=True, hidden=15, options=Bert4RecOptions())
    with pytest.raises(ParameterError, match="option mask_probability must be a number in"):
        Bert4RecOptions(mask_probability=0.0)
    with pytest.raises(ParameterError, match="option last_item_probability must be in"):
        Bert4RecOptions(last_item_probability=1.5)
    with pytest.raises(ParameterError, match="option max_len must be an integer >= 2, got 1"):
        Bert4RecOptions(max_len=1)
    with pytest.raises(ParameterError, match="needs the listening order"):
        prediction_inputs(None, np.arange(2), 5, pad=3)
