"""The collaborative references (EASE, iALS, item-kNN) against hand computations and the reference library."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from audiorec.errors import ParameterError
from audiorec.recommenders import Catalogue, TrainData, recommender_class
from audiorec.recommenders.ease import ease_memory_bytes
from audiorec.recommenders.item_knn import item_similarities

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def train_data(heard: np.ndarray) -> tuple[Catalogue, TrainData]:
    """Users u0.. and items t0.. of a dense 0/1 matrix, indexed as the stages index a split."""
    matrix = sp.csr_matrix(np.asarray(heard, dtype=bool))
    n_users, n_items = matrix.shape
    catalogue = Catalogue.from_tracks([f"t{i:03d}" for i in range(n_items)])
    users = np.array([f"u{u:03d}" for u in range(n_users)], dtype=object)
    plays = np.asarray(matrix.sum(axis=0), dtype=np.float32).ravel()
    return catalogue, TrainData(user_ids=users, heard=matrix, excluded=matrix, item_plays=plays)


def fitted(kind: str, options: dict, heard: np.ndarray, seed: int = 0):
    catalogue, train = train_data(heard)
    model = recommender_class(kind).from_options(options, seed)
    model.fit(catalogue, train)
    return model, catalogue, train


# -- EASE ------------------------------------------------------------------------------------------------------

HAND_HEARD = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 1, 1], [0, 0, 1, 1]])


@pytest.mark.parametrize(("dtype", "tolerance"), [("float64", 1e-7), ("float32", 1e-5)])
def test_ease_weights_are_steck_s_closed_form_computed_by_hand(dtype, tolerance):
    x = HAND_HEARD.astype(np.float64)
    inverse = np.linalg.inv(x.T @ x + 2.0 * np.eye(4))
    expected = np.eye(4) - inverse / np.diag(inverse)[None, :]  # B = I - P diag(1/diag(P))
    np.testing.assert_allclose(np.diag(expected), 0.0, atol=1e-12)
    model, catalogue, train = fitted("ease", {"l2": 2.0, "dtype": dtype}, HAND_HEARD)
    assert model.weights.dtype == np.float32
    np.testing.assert_allclose(model.weights, expected, rtol=tolerance, atol=tolerance)
    # Scores are X_u B, heard items left out: user 0 heard items 0 and 1.
    scores, items = model.recommend(catalogue, train, 2)
    user_scores = x[0] @ expected
    order = [2, 3] if user_scores[2] >= user_scores[3] else [3, 2]
    np.testing.assert_array_equal(items[0], order)
    np.testing.assert_allclose(scores[0], user_scores[order], rtol=tolerance, atol=tolerance)


def test_ease_on_a_larger_random_catalogue_matches_the_inverse_formula(rng):
    heard = rng.random((60, 150)) < 0.1  # the Gram matrix in several blocks once the block size is small
    x = heard.astype(np.float64)
    inverse = np.linalg.inv(x.T @ x + 5.0 * np.eye(150))
    expected = np.eye(150) - inverse / np.diag(inverse)[None, :]
    from audiorec.recommenders import ease

    previous = ease.GRAM_BLOCK_ELEMENTS
    ease.GRAM_BLOCK_ELEMENTS = 150 * 7
    try:
        weights = ease.ease_weights(sp.csr_matrix(heard), 5.0)
    finally:
        ease.GRAM_BLOCK_ELEMENTS = previous
    np.testing.assert_allclose(weights, expected, rtol=1e-6, atol=1e-7)


def test_ease_refuses_a_catalogue_above_max_items_naming_the_memory_it_would_need():
    catalogue, train = train_data(HAND_HEARD)
    model = recommender_class("ease").from_options({"max_items": 3}, 0)
    message = r"option max_items is 3, but the catalogue has 4 items: the fit would need 192 bytes \(items² x 12"
    with pytest.raises(ParameterError, match=message):
        model.fit(catalogue, train)
    # At the Onion's 56k items the float64 fit needs 37.6 GB: more than a 24 GB machine has.
    assert ease_memory_bytes(56_000) == 56_000**2 * 12 > 24 * 2**30
    assert ease_memory_bytes(56_000, "float32") == 56_000**2 * 4


# -- iALS ------------------------------------------------------------------------------------------------------


def test_ials_is_implicit_used_directly_on_the_same_confidences_and_seed(rng):
    from implicit.cpu.als import AlternatingLeastSquares

    heard = rng.random((50, 40)) < 0.15
    options = {"factors": 6, "regularization": 0.05, "alpha": 3.0, "iterations": 4, "num_threads": 1}
    model, catalogue, train = fitted("ials", options, heard, seed=7)
    with threadpool_limits(1, "blas"):
        reference = AlternatingLeastSquares(factors=6, regularization=0.05, iterations=4, num_threads=1, random_state=7)
        confidence = sp.csr_matrix(heard.astype(np.float32) * 4.0)  # 1 + alpha for every train pair
        reference.fit(confidence, show_progress=False)
        ids, reference_scores = reference.recommend(np.arange(50), confidence, N=5, filter_already_liked_items=True)
    np.testing.assert_array_equal(model.item_factors, reference.item_factors)
    np.testing.assert_array_equal(model.user_factors(train), reference.user_factors)
    scores, items = model.recommend(catalogue, train, 5)
    np.testing.assert_array_equal(items, ids)
    np.testing.assert_allclose(scores, reference_scores, rtol=1e-5, atol=1e-6)


def test_ials_ranks_a_subset_of_the_fitted_users_with_their_rows_and_recomputes_unseen_ones(rng):
    heard = rng.random((30, 25)) < 0.2
    model, _, train = fitted("ials", {"factors": 4, "iterations": 2, "num_threads": 1}, heard, seed=1)
    subset = TrainData(
        user_ids=np.array(["u007", "u003", "new"], dtype=object),
        heard=train.heard[[7, 3, 5]],
        excluded=train.excluded[[7, 3, 5]],
        item_plays=train.item_plays,
    )
    vectors = model.user_factors(subset)
    np.testing.assert_array_equal(vectors[:2], model.model.user_factors[[7, 3]])
    with threadpool_limits(1, "blas"):
        recomputed = model.model.recalculate_user(5, sp.csr_matrix(heard[5:6].astype(np.float32) * 2.0))
    np.testing.assert_allclose(vectors[2], recomputed, rtol=1e-6)


# -- item-kNN --------------------------------------------------------------------------------------------------

# Three users: u0 heard items 0 and 1, u1 items 0, 1 and 2, u2 items 2 and 3. Item columns (1,1,0), (1,1,0),
# (0,1,1), (0,0,1): norms √2, √2, √2, 1; co-occurrences (0,1) = 2, (0,2) = (1,2) = (2,3) = 1, the others 0.
KNN_HEARD = np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 1, 1]])


@pytest.mark.parametrize("shrink", [0.0, 1.0])
def test_item_knn_keeps_each_item_s_top_cosine_neighbours_computed_by_hand(shrink):
    def cosine(count: int, norm_product: float) -> float:
        return count / (norm_product + shrink)

    s01, s02, s23 = cosine(2, 2.0), cosine(1, 2.0), cosine(1, math.sqrt(2))
    # Two neighbours per target item (column): item 2's are item 3, then items 0 and 1 tie and the lower index
    # wins; item 3 has one neighbour with a positive similarity.
    expected = np.zeros((4, 4))
    expected[[1, 2], 0] = [s01, s02]
    expected[[0, 2], 1] = [s01, s02]
    expected[[3, 0], 2] = [s23, s02]
    expected[2, 3] = s23
    similarities = item_similarities(sp.csr_matrix(KNN_HEARD.astype(bool)), neighbours=2, shrink=shrink)
    np.testing.assert_allclose(similarities.toarray(), expected, rtol=1e-6)

    model, catalogue, train = fitted("itemknn", {"neighbours": 2, "shrink": shrink}, KNN_HEARD)
    scores, items = model.recommend(catalogue, train, 2)
    # u0: item 2 scores S[0,2] + S[1,2] = s02, item 3 scores 0; u1: only item 3 is unheard, S[2,3] = s23;
    # u2: items 0 and 1 both score S[2,0] = S[2,1] = s02 (a tie: the lower index first).
    np.testing.assert_array_equal(items, [[2, 3], [3, -1], [0, 1]])
    np.testing.assert_allclose(scores[:, 0], [s02, s23, s02], rtol=1e-6)
    np.testing.assert_allclose(scores[[0, 2], 1], [0.0, s02], rtol=1e-6, atol=1e-7)


def test_item_knn_in_blocks_equals_the_dense_computation(rng):
    from audiorec.recommenders import item_knn

    heard = rng.random((40, 90)) < 0.2
    x = heard.astype(np.float64)
    norms = np.sqrt(x.sum(axis=0))
    dense = (x.T @ x) / (np.outer(norms, norms) + 0.5)
    np.fill_diagonal(dense, -np.inf)
    expected = np.zeros_like(dense)
    for target in range(90):
        order = np.lexsort((np.arange(90), -dense[:, target]))[:7]  # score descending, then lower index
        expected[order, target] = np.maximum(dense[order, target], 0.0)
    previous = item_knn.SIMILARITY_BLOCK_ELEMENTS
    item_knn.SIMILARITY_BLOCK_ELEMENTS = 90 * 8
    try:
        blocked = item_similarities(sp.csr_matrix(heard), neighbours=7, shrink=0.5)
    finally:
        item_knn.SIMILARITY_BLOCK_ELEMENTS = previous
    np.testing.assert_allclose(blocked.toarray(), expected, rtol=1e-6)


# -- options ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        ("ease", {"l2": 0}, "model ease option l2 must be positive, got 0"),
        ("ease", {"dtype": "float16"}, "model ease option dtype must be 'float64' or 'float32', got 'float16'"),
        ("ease", {"max_items": 0}, "model ease option max_items must be an integer >= 1, got 0"),
        ("itemknn", {"shrink": -1.0}, "model itemknn option shrink must be a finite number >= 0, got -1.0"),
        ("itemknn", {"neighbours": 2.5}, "model itemknn option neighbours must be an integer >= 1, got 2.5"),
        ("ials", {"factors": 0}, "model ials option factors must be an integer >= 1, got 0"),
        ("ials", {"alpha": -2}, "model ials option alpha must be a finite number >= 0, got -2"),
        ("cf_hybrid", {"mapping": "svm"}, "model cf_hybrid option mapping must be 'ridge' or 'mlp', got 'svm'"),
        ("cf_hybrid", {"iterations": 0}, "model cf_hybrid option iterations must be an integer >= 1, got 0"),
        ("cf_hybrid", {"lr": 0.01}, r"model cf_hybrid: unknown option\(s\) \['lr'\]"),
    ],
)
def test_a_bad_option_is_refused_naming_the_model_the_option_and_the_value(kind, options, message):
    from audiorec.recommenders import RECOMMENDERS

    with pytest.raises(ParameterError, match=message):
        RECOMMENDERS.check_options(kind, options, f"model {kind}")
