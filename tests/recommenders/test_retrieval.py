"""Exact top-K retrieval with heard tracks removed: KNN, popularity and random baselines, any history length."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from audiorec.errors import ParameterError
from audiorec.recommenders import Catalogue, TrainData, recommendations_frame, recommender_class
from audiorec.recommenders.inner_product import top_k_inner_product
from audiorec.recommenders.knn import KNNRecommender, l2_normalize
from audiorec.recommenders.options import KNNConfig
from audiorec.recommenders.retrieval import heard_matrix, ranking_keys, top_k_unheard


def random_train(rng: np.random.Generator, n_users: int, n_items: int, max_history: int) -> pl.DataFrame:
    rows = []
    for user in range(n_users):
        size = int(rng.integers(1, max_history + 1))
        for item in rng.choice(n_items, size=size, replace=False):
            rows.append((f"u{user:03d}", f"t{item:04d}", int(rng.integers(1, 5))))
    return pl.DataFrame(rows, schema=["user_id", "track_id", "plays"], orient="row").with_columns(
        pl.col("plays").cast(pl.Int32)
    )


def brute_force_knn(vectors: np.ndarray, heard: np.ndarray, k: int) -> list[list[int]]:
    """NumPy reference: cosine of the user's mean embedding with every unheard item, ties by index."""
    items = l2_normalize(vectors)
    result = []
    for row in heard:
        user = vectors[row].mean(axis=0)
        user = user / np.linalg.norm(user)
        scores = items @ user
        scores[row] = -np.inf
        order = np.lexsort((np.arange(len(scores)), -scores))
        result.append([int(i) for i in order[:k] if np.isfinite(scores[i])])
    return result


@pytest.fixture
def world(rng):
    n_items = 300
    train = random_train(rng, n_users=40, n_items=n_items, max_history=120)
    vectors = rng.normal(size=(n_items, 16)).astype(np.float32)
    catalogue = Catalogue.from_tracks([f"t{i:04d}" for i in range(n_items)], vectors)
    data = TrainData.build(train, catalogue, sorted(train["user_id"].unique()))
    return catalogue, data


def test_knn_equals_numpy_brute_force(world):
    catalogue, data = world
    k = 25
    scores, items = KNNRecommender(KNNConfig()).recommend(catalogue, data, k)
    reference = brute_force_knn(catalogue.embeddings, data.heard.toarray(), k)
    assert items.tolist() == reference
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


def test_history_longer_than_any_fixed_overfetch_still_gets_k_items(rng):
    # One user heard 190 of 200 items, so only 10 remain; another heard 150 and must get exactly k=40.
    n_items = 200
    catalogue = Catalogue.from_tracks([f"t{i:04d}" for i in range(n_items)], rng.normal(size=(n_items, 8)))
    rows = [("a", f"t{i:04d}", 1) for i in range(190)] + [("b", f"t{i:04d}", 1) for i in range(0, 150)]
    train = pl.DataFrame(rows, schema=["user_id", "track_id", "plays"], orient="row")
    data = TrainData.build(train, catalogue, ["a", "b"])
    _, items = KNNRecommender(KNNConfig()).recommend(catalogue, data, 40)
    assert sorted(items[0][items[0] >= 0].tolist()) == list(range(190, 200))
    assert np.sum(items[0] >= 0) == 10
    assert np.sum(items[1] >= 0) == 40
    assert set(items[1].tolist()) <= set(range(150, 200))


FAISS_GPU_MAX_K = 2048
"""The most neighbours FAISS's GPU index returns per query: over-fetching K + history fails beyond it."""


def test_histories_longer_than_the_gpu_search_limit_get_exactly_k_exact_items(rng, monkeypatch):
    """Users who heard 3000 and 4990 of 5000 items: the retrieval never asks its top-k for more than K (so the
    2048-neighbour limit of a GPU search cannot bite), and returns the brute-force answer."""
    n_items, k = 5000, 50
    users = rng.normal(size=(3, 8)).astype(np.float32)
    items = rng.normal(size=(n_items, 8)).astype(np.float32)
    long_history = rng.choice(n_items, size=3000, replace=False)
    almost_all = rng.choice(n_items, size=n_items - 10, replace=False)
    rows = np.concatenate([np.zeros(3000, int), np.ones(n_items - 10, int), [2]])
    cols = np.concatenate([long_history, almost_all, [7]])
    excluded = heard_matrix(rows, cols, 3, n_items)
    real_topk = torch.topk

    def limited_topk(input, k, *args, **kwargs):
        assert k <= FAISS_GPU_MAX_K, f"asked for {k} neighbours"
        return real_topk(input, k, *args, **kwargs)

    monkeypatch.setattr(torch, "topk", limited_topk)
    scores, top = top_k_inner_product(users, items, excluded, k)
    dense = excluded.toarray()
    for user in range(3):
        exact = items @ users[user]
        exact[dense[user]] = -np.inf
        order = [int(i) for i in np.lexsort((np.arange(n_items), -exact)) if np.isfinite(exact[i])][:k]
        kept = top[user][top[user] >= 0].tolist()
        assert kept == order
        assert not dense[user, kept].any()
    assert (top[0] >= 0).sum() == k and (top[2] >= 0).sum() == k
    assert (top[1] >= 0).sum() == 10 and (top[1, 10:] == -1).all() and np.isneginf(scores[1, 10:]).all()


def test_ties_break_by_the_lower_index_across_blocks_and_padding_follows_the_unheard_items():
    scores = np.array([[0.1, 0.9, 0.9, 0.5, -0.0, 0.0], [0.3, 0.2, 0.1, 0.0, 0.2, 0.2]], dtype=np.float32)
    excluded = heard_matrix(np.array([1, 1]), np.array([0, 4]), 2, 6)
    for rows_per_block in (1, 2):
        top_scores, top_items = top_k_unheard(lambda rows: scores[rows], excluded, 8, rows_per_block)
        # Row 0: 1 and 2 tie at 0.9; -0.0 and 0.0 are the same score, so 4 comes before 5.
        assert top_items[0].tolist() == [1, 2, 3, 0, 4, 5, -1, -1]
        # Row 1: 0 and 4 are excluded; 1 and 5 tie at 0.2.
        assert top_items[1].tolist() == [1, 5, 2, 3, -1, -1, -1, -1]
        np.testing.assert_allclose(top_scores[1, :4], [0.2, 0.2, 0.1, 0.0])
    keys = ranking_keys(torch.tensor([[-np.inf, -1.5, -0.0, 0.0, 1e-30, 2.0, 2.0]]))
    assert torch.argsort(keys, descending=True, stable=True).tolist() == [[5, 6, 4, 2, 3, 1, 0]]
    with pytest.raises(ParameterError, match="k must be a positive integer"):
        top_k_unheard(lambda rows: scores[rows], excluded, 0)
    with pytest.raises(ParameterError, match="NaN"):
        top_k_unheard(lambda rows: np.full((rows.stop - rows.start, 6), np.nan), excluded, 2)


@pytest.mark.parametrize("distinct_scores", [3, 40, None])
def test_top_k_is_the_lexicographic_order_whether_or_not_ties_straddle_the_cut(rng, distinct_scores):
    """Coarse scores put ties across the K-th place in most rows (ranked again by exact keys), continuous
    scores in none (the float top-k alone); both must equal (score descending, index ascending)."""
    n_users, n_items, k = 60, 50, 7
    if distinct_scores is None:
        scores = rng.standard_normal((n_users, n_items)).astype(np.float32)
    else:
        scores = rng.integers(0, distinct_scores, (n_users, n_items)).astype(np.float32)
    heard = rng.random((n_users, n_items)) < 0.2
    heard[0, 3:] = True  # fewer unheard items than k: padding after them
    excluded = heard_matrix(*np.nonzero(heard), n_users, n_items)
    top_scores, top_items = top_k_unheard(lambda rows: scores[rows], excluded, k, rows_per_block=16)
    for user in range(n_users):
        masked = np.where(heard[user], -np.inf, scores[user])
        order = [int(i) for i in np.lexsort((np.arange(n_items), -masked)) if np.isfinite(masked[i])][:k]
        assert top_items[user].tolist() == order + [-1] * (k - len(order))
        np.testing.assert_array_equal(top_scores[user, : len(order)], masked[order])


def test_tracks_heard_before_the_window_leave_the_ranking_but_not_the_profile():
    """u1 heard A before the training window and again inside it, and B only before it: A is in u1's profile
    (train), and neither A nor B is ever recommended to u1."""
    catalogue = Catalogue.from_tracks(["A", "B", "C", "D"], np.eye(4, dtype=np.float32) + 0.1)
    train = pl.DataFrame({"user_id": ["u1", "u2"], "track_id": ["A", "B"], "plays": [1, 1]})
    heard_before = pl.DataFrame({"user_id": ["u1", "u9"], "track_id": ["B", "C"]})
    data = TrainData.build(train, catalogue, ["u1"], heard_before)
    assert data.heard.toarray().tolist() == [[True, False, False, False]]
    assert data.excluded.toarray().tolist() == [[True, True, False, False]]
    _, items = KNNRecommender(KNNConfig()).recommend(catalogue, data, 4)
    assert sorted(items[0, :2].tolist()) == [2, 3] and items[0, 2:].tolist() == [-1, -1]
    _, popular = recommender_class("popularity").from_options({}, 0).recommend(catalogue, data, 4)
    assert set(popular[0][popular[0] >= 0].tolist()) == {2, 3}


def test_popularity_orders_by_train_plays_with_ties_by_track_id():
    train = pl.DataFrame(
        {
            "user_id": ["a", "a", "b", "b", "c"],
            "track_id": ["t2", "t3", "t2", "t1", "t4"],
            "plays": [5, 1, 1, 3, 3],
        }
    )
    catalogue = Catalogue.from_tracks(["t4", "t3", "t2", "t1", "t5"])
    model = recommender_class("popularity").from_options({}, seed=0)
    # Only users a and c are ranked, but b's plays count too: t2=6, t1=3, t4=3 (tie → t1 before t4), t3=1, t5=0.
    data = TrainData.build(train, catalogue, ["a", "c"])
    scores, items = model.recommend(catalogue, data, 3)
    frame = recommendations_frame(data.user_ids, catalogue, scores, items)
    by_user = {u: g.sort("rank")["track_id"].to_list() for (u,), g in frame.group_by("user_id")}
    assert by_user == {"a": ["t1", "t4", "t5"], "c": ["t2", "t1", "t3"]}
    assert frame.filter(pl.col("user_id") == "c")["score"].to_list() == [6.0, 3.0, 1.0]
    np.testing.assert_array_equal(data.item_plays, [3, 6, 1, 3, 0])  # catalogue order: t1, t2, t3, t4, t5


def test_knn_requires_embeddings_and_rejects_unknown_options(world):
    _, data = world
    with pytest.raises(ParameterError, match="needs item embeddings"):
        KNNRecommender(KNNConfig()).recommend(Catalogue.from_tracks(["t0000"]), data, 5)
    with pytest.raises(ParameterError, match="unknown option"):
        KNNRecommender.from_options({"standardise": True}, seed=0)
    with pytest.raises(ParameterError, match="unknown model kind"):
        recommender_class("svd")


def test_recommendations_frame_drops_padding_and_ranks_from_one():
    catalogue = Catalogue.from_tracks(["x", "y", "z"])
    scores = np.array([[0.9, 0.5, -np.inf]], dtype=np.float32)
    items = np.array([[2, 0, -1]])
    frame = recommendations_frame(np.array(["u"], dtype=object), catalogue, scores, items)
    assert frame.to_dicts() == [
        {"user_id": "u", "rank": 1, "track_id": "z", "score": pytest.approx(0.9)},
        {"user_id": "u", "rank": 2, "track_id": "x", "score": pytest.approx(0.5)},
    ]
