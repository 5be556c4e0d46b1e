"""Shallow Net: frozen items, mean-initialised users, true negative users, learning.

Reproducibility and what every ranking must satisfy are checked for every model in test_recommender_contract.py."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from audiorec.errors import ParameterError
from audiorec.recommenders import negatives as negatives_module
from audiorec.recommenders import recommender_class
from audiorec.recommenders.negatives import NegativeUserSampler
from audiorec.recommenders.shallow import ShallowNet, ShallowNetRecommender, ShallowTask
from audiorec.recommenders.vectors import pretrained_table


@pytest.fixture(scope="module")
def world(neural_world):
    return neural_world


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_user_table_starts_at_the_mean_of_each_users_train_items(world):
    model = ShallowNetRecommender.from_options({"standardize": True}, seed=0)
    module = model.initialise(world.catalogue, world.train)
    items = pretrained_table(world.catalogue, standardize=True, model="shallow")
    heard = world.train.heard.toarray()
    expected = np.stack([items[row].mean(axis=0) for row in heard])
    np.testing.assert_allclose(module.user_table.detach().numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(module.item_table.numpy(), items)


@pytest.fixture(params=["direct", "rejection"])
def sampling(request, monkeypatch):
    """Both exact samplers: non-listener lists (small grids) and rejection against interaction keys."""
    if request.param == "rejection":
        monkeypatch.setattr(negatives_module, "DIRECT_SAMPLING_ENTRIES", 0)
    return request.param


def test_no_sampled_negative_user_interacted_with_the_item_over_a_whole_epoch(world, sampling):
    model = ShallowNetRecommender.from_options({"batch_size": 512}, seed=0)
    module = model.initialise(world.catalogue, world.train)
    task = ShallowTask(module, world.train, world.validation, model.options, seed=0)
    assert (task.sampler.non_listeners is not None) == (sampling == "direct")
    heard = world.train.heard.toarray()
    generator = torch.Generator().manual_seed(5)
    seen_pairs = []
    for users, items, negatives in task.batches(generator):
        assert negatives.shape == (len(items), 20)
        assert not heard[negatives.numpy(), items.numpy()[:, None]].any()
        assert heard[users.numpy(), items.numpy()].all()
        seen_pairs += list(zip(users.tolist(), items.tolist(), strict=True))
    assert sorted(seen_pairs) == sorted(zip(*world.train.heard.nonzero(), strict=True)), "each pair once per epoch"
    both = (world.train.heard + world.validation.heard).toarray() > 0
    assert not both[task.val_negatives.numpy(), task.val_items.numpy()[:, None]].any()


def test_negative_users_are_uniform_among_non_listeners(sampling):
    # Item 0 was heard by users 0-5 of 10, item 1 by nobody, item 2 by all but user 7 (in rows, with a
    # repeated entry): draws must be uniform over the others.
    rows = [*range(6), *[u for u in range(10) if u != 7], 3]
    cols = [0] * 6 + [2] * 9 + [2]
    interacted = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(10, 3))
    sampler = NegativeUserSampler(interacted, torch.device("cpu"))
    draws = sampler.sample(torch.tensor([0, 1, 2, 0]), 40_000, torch.Generator().manual_seed(0))
    for row in (0, 3):
        np.testing.assert_allclose(np.bincount(draws[row].numpy(), minlength=10)[6:] / 40_000, 0.25, atol=0.01)
        assert np.bincount(draws[row].numpy(), minlength=10)[:6].sum() == 0
    np.testing.assert_allclose(np.bincount(draws[1].numpy(), minlength=10) / 40_000, 0.1, atol=0.01)
    assert (draws[2] == 7).all()
    assert not (draws[0] == draws[3]).all(), "each row is drawn on its own"
    with pytest.raises(ParameterError, match="every user interacted"):
        NegativeUserSampler(sp.csr_matrix(np.ones((3, 1))), torch.device("cpu")).sample(
            torch.tensor([0]), 1, torch.Generator()
        )


@pytest.mark.parametrize("n_users", [4, 10, 20], ids=["score-matrix", "whole-table-encoded", "rows-encoded"])
def test_hinge_loss_matches_a_numpy_reference(n_users):
    torch.manual_seed(0)
    items, users = torch.randn(5, 3), torch.randn(n_users, 3)
    module = ShallowNet(items, users, freeze_items=True, separate_towers=True)

    def encode(layer, x):
        out = np.maximum(x @ layer[0].weight.detach().numpy().T + layer[0].bias.detach().numpy(), 0)
        return out / np.maximum(np.linalg.norm(out, axis=-1, keepdims=True), 1e-12)

    u = encode(module.towers[0], users.numpy())
    i = encode(module.towers[1], items.numpy())
    # 2 pairs with 8 negatives name 18 user rows: >= 4x a 4-user table, >= a 10-user table, < a 20-user table.
    pair_users, pair_items = np.array([0, 1]), np.array([2, 4])
    negatives = np.array([[1, 3, 2, 2, 0, 3, 1, 2], [0, 2, 3, 3, 1, 0, 2, 3]])
    positive = (u[pair_users] * i[pair_items]).sum(-1)
    negative = (u[negatives] * i[pair_items][:, None]).sum(-1)
    expected = np.maximum(0, 0.2 - positive[:, None] + negative).mean()
    loss = module.hinge_loss(torch.tensor(pair_users), torch.tensor(pair_items), torch.tensor(negatives), 0.2)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_hinge_loss_score_matrix_trains_what_gathered_rows_train():
    """The score-matrix path (small tables) must give the gradients of the plain formula, not only its loss."""
    torch.manual_seed(1)
    module = ShallowNet(torch.randn(6, 5), torch.randn(4, 5), freeze_items=False, separate_towers=True)
    reference = copy.deepcopy(module)
    pair_users, pair_items = torch.tensor([0, 3, 2]), torch.tensor([1, 2, 5])
    negatives = torch.tensor([[1, 2, 3, 1, 2], [0, 1, 2, 0, 1], [3, 0, 1, 3, 1]])  # 18 rows ≥ 4·4 users

    module.hinge_loss(pair_users, pair_items, negatives, 0.5).backward()
    item = reference.encode_items(reference.item_table[pair_items])
    positive = (reference.encode_users(reference.user_table[pair_users]) * item).sum(-1)
    negative = (reference.encode_users(reference.user_table[negatives]) * item[:, None]).sum(-1)
    torch.relu(0.5 - positive[:, None] + negative).mean().backward()

    expected = dict(reference.named_parameters())
    for name, parameter in module.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
        torch.testing.assert_close(parameter.grad, expected[name].grad, rtol=1e-5, atol=1e-7)


def test_frozen_item_table_is_bit_identical_after_training_while_users_and_towers_move(world):
    model = ShallowNetRecommender.from_options({"max_epochs": 2, "standardize": True}, seed=0)
    initial = model.initialise(world.catalogue, world.train)
    users_before = initial.user_table.detach().clone()
    tower_before = initial.towers[0][0].weight.detach().clone()
    model.fit(world.catalogue, world.train, world.validation)
    module = model.module
    frozen = torch.from_numpy(pretrained_table(world.catalogue, standardize=True, model="shallow"))
    assert torch.equal(module.item_table, frozen)
    assert not module.item_table.requires_grad
    assert "item_table" not in dict(module.named_parameters()) and "item_table" not in module.state_dict()
    assert not torch.equal(module.user_table, users_before)
    assert not torch.equal(module.towers[0][0].weight, tower_before)
    assert len(module.towers) == 1, "one tower shared by users and items by default"


def test_random_variant_learns_its_item_table(world):
    model = recommender_class("shallow_random").from_options({"max_epochs": 1, "item_dim": 8}, seed=0)
    before = model.initialise(world.catalogue, world.train).item_table.detach().clone()
    model.fit(world.catalogue, world.train, world.validation)
    assert model.module.item_table.requires_grad and model.module.item_table.shape == (len(world.catalogue), 8)
    assert not torch.equal(model.module.item_table, before)


def test_unknown_options_and_bad_values_are_rejected():
    with pytest.raises(ParameterError, match=r"model shallow: unknown option\(s\) \['margn'\]"):
        ShallowNetRecommender.from_options({"margn": 0.3}, seed=0)
    with pytest.raises(ParameterError, match="option n_negatives must be an integer >= 1, got 0"):
        ShallowNetRecommender.from_options({"n_negatives": 0}, seed=0)
    with pytest.raises(ParameterError, match="model shallow_random: unknown option"):
        recommender_class("shallow_random").from_options({"standardize": True}, seed=0)
