"""The audio-to-CF cold-start hybrid: its maps against scikit-learn and a training curve, its scores of new items."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import Ridge

from audiorec.contracts.recommender import check_recommender
from audiorec.recommenders import Catalogue, TrainData, recommender_class
from audiorec.recommenders.hybrid import fit_mlp_map, fit_ridge_map
from audiorec.recommenders.options import CFHybridOptions
from audiorec.recommenders.vectors import zscore_like

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = {"factors": 4, "iterations": 3, "num_threads": 1}


def world(rng: np.random.Generator, n_users: int = 60, n_items: int = 50, width: int = 6):
    """Items whose embeddings (in scales far apart) carry their latent taste; users hear items near their taste."""
    item_taste = rng.standard_normal((n_items, 3))
    mixing = rng.standard_normal((3, width))
    embeddings = (item_taste @ mixing + 0.1 * rng.standard_normal((n_items, width))) * np.logspace(0, 3, width)
    user_taste = rng.standard_normal((n_users, 3))
    heard = (user_taste @ item_taste.T + rng.standard_normal((n_users, n_items))) > 1.5
    heard[:, -1] = False  # an item nobody heard: outside the map's training rows
    catalogue = Catalogue.from_tracks([f"t{i:03d}" for i in range(n_items)], embeddings.astype(np.float32))
    matrix = sp.csr_matrix(heard)
    users = np.array([f"u{u:03d}" for u in range(n_users)], dtype=object)
    plays = np.asarray(matrix.sum(axis=0), dtype=np.float32).ravel()
    return catalogue, TrainData(user_ids=users, heard=matrix, excluded=matrix, item_plays=plays)


def fitted(options: dict, catalogue: Catalogue, train: TrainData, seed: int = 3):
    model = recommender_class("cf_hybrid").from_options({**SMALL, **options}, seed)
    model.fit(catalogue, train)
    return model


def test_the_ridge_map_is_scikit_learn_s_ridge_with_an_intercept(rng):
    inputs = rng.standard_normal((80, 5)) * [1.0, 10.0, 0.1, 3.0, 1.0] + 2.0
    targets = inputs @ rng.standard_normal((5, 4)) + rng.standard_normal((80, 4)) + 1.5
    mapping = fit_ridge_map(inputs, targets, 7.0)
    reference = Ridge(alpha=7.0, fit_intercept=True, solver="cholesky").fit(inputs, targets)
    np.testing.assert_allclose(mapping.weights, reference.coef_.T, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(mapping.bias, reference.intercept_, rtol=1e-5, atol=1e-8)


def test_the_hybrid_s_item_vectors_are_ridge_predictions_from_standardised_audio(rng):
    catalogue, train = world(rng)
    model = fitted({"mapping": "ridge", "ridge_l2": 2.0}, catalogue, train)
    standardised = zscore_like(catalogue.embeddings, catalogue.embeddings)
    heard = np.asarray(train.heard.sum(axis=0)).ravel() > 0
    assert not heard.all()
    factors = model.collaborative.item_factors
    reference = Ridge(alpha=2.0, fit_intercept=True).fit(standardised[heard], factors[heard])
    np.testing.assert_allclose(model.item_vectors, reference.predict(standardised), rtol=1e-5, atol=1e-5)


def test_the_hybrid_s_collaborative_half_is_ials_with_the_same_seed(rng):
    catalogue, train = world(rng)
    model = fitted({}, catalogue, train, seed=11)
    ials = recommender_class("ials").from_options(SMALL, 11)
    ials.fit(catalogue, train)
    np.testing.assert_array_equal(model.collaborative.item_factors, ials.item_factors)
    users, items = model.scoring_vectors(catalogue, train)
    np.testing.assert_array_equal(users, ials.user_factors(train))
    assert items.shape == (len(catalogue), SMALL["factors"])


def test_the_mlp_map_lowers_the_held_out_error_and_keeps_its_best_epoch(rng):
    inputs = rng.standard_normal((400, 8)).astype(np.float32)
    targets = np.tanh(inputs @ rng.standard_normal((8, 5))).astype(np.float32)
    options = CFHybridOptions(mapping="mlp", hidden=32, epochs=30, learning_rate=3e-3, batch_size=32, patience=5)
    mapping = fit_mlp_map(inputs, targets, options, seed=0)
    history = mapping.heldout_mse
    assert len(history) >= 2 and mapping.best_epoch >= 1
    assert history[mapping.best_epoch] == min(history) < 0.5 * history[0]
    heldout = np.random.default_rng(0).permutation(400)[:40]  # the seeded 10 % held out
    error = float(np.mean((mapping.predict(inputs[heldout]) - targets[heldout]) ** 2))
    assert error == pytest.approx(history[mapping.best_epoch], rel=1e-5)
    again = fit_mlp_map(inputs, targets, options, seed=0)
    assert again.heldout_mse == history


@pytest.mark.parametrize("mapping", ["ridge", "mlp"])
def test_the_hybrid_scores_new_items_as_it_scores_catalogue_items_with_the_same_audio(mapping, rng):
    catalogue, train = world(rng)
    model = fitted({"mapping": mapping, "epochs": 5, "hidden": 16}, catalogue, train)
    scores, items = model.recommend(catalogue, train, 10)
    as_new = model.score_new_items(catalogue, train, catalogue.embeddings)
    np.testing.assert_allclose(np.take_along_axis(as_new, items, axis=1), scores, rtol=1e-5, atol=1e-5)
    # A track outside the catalogue is standardised with the catalogue's statistics, then mapped.
    new = (catalogue.embeddings[:2] * 0.5 + catalogue.embeddings[2:4] * 0.5)[::-1]
    users, _ = model.scoring_vectors(catalogue, train)
    expected = users @ model.mapping.predict(zscore_like(new, catalogue.embeddings)).T
    np.testing.assert_allclose(model.score_new_items(catalogue, train, new), expected, rtol=1e-5, atol=1e-6)


def test_the_ridge_hybrid_passes_the_recommender_contract():
    results = check_recommender("cf_hybrid", {**SMALL, "mapping": "ridge"})
    assert [result.line() for result in results if result.status == "FAIL"] == []
