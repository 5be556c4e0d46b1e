"""Exact top-K retrieval with heard tracks removed: KNN (FAISS), popularity and random baselines."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from audiorec.errors import ParameterError
from audiorec.recommenders import Catalogue, TrainData, recommendations_frame, recommender_class
from audiorec.recommenders.knn import KNNConfig, KNNRecommender, l2_normalize
from audiorec.recommenders.retrieval import heard_matrix, top_k_excluding


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


def test_knn_never_recommends_heard_and_returns_exactly_k(world):
    catalogue, data = world
    k = 50
    _, items = KNNRecommender(KNNConfig()).recommend(catalogue, data, k)
    heard = data.heard.toarray()
    assert np.all(items >= 0), "every user has more than K unheard items, so no padding is allowed"
    for user, row in enumerate(items):
        assert len(set(row.tolist())) == k
        assert not heard[user, row].any()


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


def test_top_k_excluding_with_user_exceeding_batch_overfetch():
    # A search that only returns what it is asked for: users with long histories need larger fetches.
    n_items = 30
    heard = heard_matrix(np.array([0] * 25 + [1]), np.array([*range(25), 29]), 2, n_items)
    scores_all = np.tile(np.arange(n_items, 0, -1, dtype=np.float32), (2, 1))

    def search(rows, fetch):
        return scores_all[rows, :fetch], np.tile(np.arange(fetch), (len(rows), 1))

    _, items = top_k_excluding(search, heard, k=5, batch_size=1)
    assert items[0].tolist() == [25, 26, 27, 28, 29]
    assert items[1].tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ParameterError, match="k must be positive"):
        top_k_excluding(search, heard, k=0)


def test_popularity_orders_by_train_plays_with_ties_by_track_id():
    train = pl.DataFrame(
        {
            "user_id": ["a", "a", "b", "b", "c"],
            "track_id": ["t2", "t3", "t2", "t1", "t4"],
            "plays": [5, 1, 1, 3, 3],
        }
    )
    catalogue = Catalogue.from_tracks(["t4", "t3", "t2", "t1", "t5"])
    data = TrainData.build(train, catalogue, ["a", "b", "c"])
    model = recommender_class("popularity").from_options({}, seed=0)
    scores, items = model.recommend(catalogue, data, 3)
    frame = recommendations_frame(data.user_ids, catalogue, scores, items)
    by_user = {u: g.sort("rank")["track_id"].to_list() for (u,), g in frame.group_by("user_id")}
    # Plays: t2=6, t1=3, t4=3 (tie → t1 before t4), t3=1, t5=0.
    assert by_user == {"a": ["t1", "t4", "t5"], "b": ["t4", "t3", "t5"], "c": ["t2", "t1", "t3"]}
    assert frame.filter(pl.col("user_id") == "c")["score"].to_list() == [6.0, 3.0, 1.0]


def test_random_baseline_is_seeded_and_excludes_heard(world):
    catalogue, data = world
    model_class = recommender_class("random")
    _, first = model_class.from_options({}, seed=3).recommend(catalogue, data, 20)
    _, again = model_class.from_options({}, seed=3).recommend(catalogue, data, 20)
    _, other = model_class.from_options({}, seed=4).recommend(catalogue, data, 20)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    heard = data.heard.toarray()
    assert not any(heard[user, row].any() for user, row in enumerate(first))


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
