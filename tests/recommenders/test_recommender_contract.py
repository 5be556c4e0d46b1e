"""The contract every registered recommender keeps, checked for each kind of ``RECOMMENDERS``.

A tiny hand-built world (eight users, 30 tracks, 8-dimensional content embeddings) is enough to exercise it:
a heavy listener who has fewer than K unheard tracks left, a user with no train tracks at all, and tracks heard
before the training window that no ranking may return. Trained models get one epoch of a tiny network. A kind
added to the registry is checked here without further work (with its default options unless it has an entry in
:data:`TINY_OPTIONS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from audiorec.errors import ParameterError
from audiorec.recommenders import (
    RECOMMENDERS,
    Catalogue,
    FittedRecommender,
    Recommender,
    RunFiles,
    TrainData,
    TrainedRecommender,
    recommendations_frame,
    recommender_class,
)
from audiorec.storage.tables import SCHEMAS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

K = 5
N_TRACKS = 30
DIM = 8
N_NEW_TRACKS = 7

KINDS = sorted(RECOMMENDERS)
CONTENT_KINDS = [kind for kind in KINDS if RECOMMENDERS.traits(kind).ranks_unseen_items]
INTERACTION_KINDS = [kind for kind in KINDS if not RECOMMENDERS.traits(kind).ranks_unseen_items]

_TINY_BERT = {
    "max_epochs": 1,
    "batch_size": 4,
    "max_len": 12,
    "n_layers": 1,
    "n_heads": 2,
    "feedforward_dim": 16,
    "attention_dropout": 0.0,
}
_TINY_ELSA = {"elsa_factors": DIM, "elsa_max_epochs": 1, "elsa_batch_size": 4}
TINY_OPTIONS: dict[str, dict[str, Any]] = {
    "shallow": {"max_epochs": 1, "batch_size": 16, "n_negatives": 3, "standardize": True},
    "shallow_random": {"max_epochs": 1, "batch_size": 16, "n_negatives": 3, "item_dim": DIM},
    "bert4rec": {**_TINY_BERT, "hidden_size": DIM, "standardize": True},
    "bert4rec_random": {**_TINY_BERT, "item_dim": DIM},
    "elsa": {"max_epochs": 1, "factors": DIM},
    "hybrid": {"max_epochs": 1, "factors": DIM},
    **{
        f"bimodal_{scoring}": {"max_epochs": 1, "batch_size": 16, "hidden_dim": DIM, **_TINY_ELSA}
        for scoring in ("content", "collaborative", "average")
    },
}
"""Options that keep each trained model to a second of CPU time; other kinds are built with their defaults."""


@dataclass(frozen=True)
class World:
    """The candidate catalogue, the train users (``train``) with their validation pairs, a user unknown at fit
    time (``newcomer``), and content embeddings of tracks outside the catalogue."""

    catalogue: Catalogue
    train: TrainData
    validation: TrainData
    newcomer: TrainData
    new_embeddings: np.ndarray
    heard_pairs: frozenset[tuple[str, str]]
    """Every (user, track) pair heard in train or before the training window, read from the raw rows."""


def track(index: int) -> str:
    return f"t{index:02d}"


def build_world() -> World:
    """Six ordinary users, a heavy listener with two unheard tracks left, and a user without train tracks.

    Every user also heard one track before the training window only; the user without train tracks, and the
    newcomer (not a train user), have that one track and nothing else.
    """
    rng = np.random.default_rng(7)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    train_rows, earlier_rows, validation_rows = [], [], []
    for number in range(6):
        user = f"u{number}"
        tracks = rng.permutation(N_TRACKS)
        size = int(rng.integers(4, 11))
        for day, index in enumerate(tracks[:size]):
            train_rows.append((user, track(index), start + timedelta(days=day), int(rng.integers(1, 5))))
        earlier_rows.append((user, track(tracks[size])))
        for day, index in enumerate(tracks[size + 1 : size + 3]):
            validation_rows.append((user, track(index), start + timedelta(days=100 + day), 1))
    for index in range(27):
        train_rows.append(("heavy", track(index), start + timedelta(days=index), 1))
    earlier_rows += [("heavy", track(27)), ("cold", track(3)), ("newcomer", track(5))]
    validation_rows.append(("heavy", track(28), start + timedelta(days=100), 1))

    columns = ["user_id", "track_id", "first_ts", "plays"]
    train = pl.DataFrame(train_rows, schema=columns, orient="row").with_columns(pl.col("plays").cast(pl.Int32))
    validation = pl.DataFrame(validation_rows, schema=columns, orient="row").with_columns(
        pl.col("plays").cast(pl.Int32)
    )
    earlier = pl.DataFrame(earlier_rows, schema=["user_id", "track_id"], orient="row")
    catalogue = Catalogue.from_tracks(
        [track(index) for index in range(N_TRACKS)], rng.normal(size=(N_TRACKS, DIM)).astype(np.float32)
    )
    users = [*(f"u{number}" for number in range(6)), "heavy", "cold"]
    return World(
        catalogue=catalogue,
        train=TrainData.build(train, catalogue, users, earlier),
        validation=TrainData.build(validation, catalogue, users),
        newcomer=TrainData.build(train, catalogue, ["newcomer"], earlier),
        new_embeddings=rng.normal(size=(N_NEW_TRACKS, DIM)).astype(np.float32),
        heard_pairs=frozenset((user, track_id) for user, track_id, *_ in [*train_rows, *earlier_rows]),
    )


def build_model(kind: str, seed: int, world: World, folder: Path) -> Recommender:
    """The model of ``kind``, fitted on the world's train users when it has a training step or a closed form."""
    model = recommender_class(kind).from_options(dict(TINY_OPTIONS.get(kind, {})), seed)
    if isinstance(model, TrainedRecommender):
        files = RunFiles.beside(folder / "checkpoint.pt", folder / "training_log.csv")
        model.fit(world.catalogue, world.train, world.validation, files)
    if isinstance(model, FittedRecommender):
        model.fit(world.catalogue, world.train)
    return model


@pytest.fixture(scope="module")
def world() -> World:
    return build_world()


@pytest.fixture(scope="module")
def fitted(world, tmp_path_factory):
    """``fitted(kind)``: the model of ``kind`` with seed 0, built (and trained) once per module."""
    models: dict[str, Recommender] = {}

    def get(kind: str) -> Recommender:
        if kind not in models:
            models[kind] = build_model(kind, 0, world, tmp_path_factory.mktemp(f"{kind}-seed0"))
        return models[kind]

    return get


@pytest.fixture(scope="module")
def ranked(world, fitted):
    """``ranked(kind)``: ``(scores, items)`` of the seed-0 model's top K for every train user."""
    rankings: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def get(kind: str) -> tuple[np.ndarray, np.ndarray]:
        if kind not in rankings:
            rankings[kind] = fitted(kind).recommend(world.catalogue, world.train, K)
        return rankings[kind]

    return get


def unheard_count(data: TrainData) -> np.ndarray:
    """Number of catalogue tracks each user of ``data`` may be recommended."""
    return data.excluded.shape[1] - data.excluded.getnnz(axis=1)


def test_the_world_has_the_cases_the_contract_speaks_of(world):
    """A user with no train tracks, one with fewer than K unheard tracks, and pairs only heard before the window."""
    heard = world.train.heard.toarray()
    excluded = world.train.excluded.toarray()
    users = world.train.user_ids.tolist()
    assert heard[users.index("cold")].sum() == 0
    assert unheard_count(world.train)[users.index("heavy")] == 2
    assert (unheard_count(world.train)[[users.index(f"u{n}") for n in range(6)]] > K).all()
    assert (excluded & ~heard).sum(axis=1).tolist() == [1] * len(users)
    assert world.newcomer.heard.nnz == 0 and world.newcomer.excluded.nnz == 1


@pytest.mark.parametrize("kind", KINDS)
def test_registered_traits_describe_the_implementation(kind):
    """The registry's traits, which the workflow reads without importing a model, say what the class does."""
    traits = RECOMMENDERS.traits(kind)
    implementation = recommender_class(kind)
    assert issubclass(implementation, Recommender)
    assert issubclass(implementation, TrainedRecommender) == traits.trained
    for name in ("deterministic", "ranks_unseen_items", "uses_embeddings", "uses_gpu", "random_variant"):
        if hasattr(implementation, name):
            assert getattr(implementation, name) == getattr(traits, name), name


@pytest.mark.parametrize("kind", KINDS)
def test_ranked_items_are_unheard_catalogue_items(kind, world, ranked):
    """Every ranked item is a catalogue item, and none was heard in train or before the training window."""
    _, items = ranked(kind)
    assert items.shape == (len(world.train.user_ids), K)
    valid = items >= 0
    assert (items[valid] < len(world.catalogue)).all()
    for user, user_items in zip(world.train.user_ids, items, strict=True):
        tracks = world.catalogue.track_ids[user_items[user_items >= 0]]
        assert not [track_id for track_id in tracks if (user, track_id) in world.heard_pairs], user


@pytest.mark.parametrize("kind", KINDS)
def test_every_user_gets_exactly_k_items_or_all_their_unheard_items(kind, world, ranked):
    """K items whenever K unheard candidates exist; otherwise every unheard candidate, then ``-1`` padding with
    ``-inf`` scores."""
    scores, items = ranked(kind)
    available = unheard_count(world.train)
    excluded = world.train.excluded.toarray()
    for row, (user_scores, user_items) in enumerate(zip(scores, items, strict=True)):
        expected = min(K, int(available[row]))
        assert (user_items[:expected] >= 0).all(), world.train.user_ids[row]
        assert (user_items[expected:] == -1).all() and np.isneginf(user_scores[expected:]).all()
        if expected < K:
            assert sorted(user_items[:expected].tolist()) == np.flatnonzero(~excluded[row]).tolist()


@pytest.mark.parametrize("kind", KINDS)
def test_items_are_ordered_by_non_increasing_score_without_duplicates(kind, ranked):
    scores, items = ranked(kind)
    for user_scores, user_items in zip(scores, items, strict=True):
        kept = user_items >= 0
        assert np.isfinite(user_scores[kept]).all()
        assert (np.diff(user_scores[kept]) <= 0).all()
        assert len(set(user_items[kept].tolist())) == kept.sum()


@pytest.mark.parametrize("kind", KINDS)
def test_the_same_seed_gives_the_same_rankings(kind, world, tmp_path):
    """Two models built (and trained) from the same seed rank alike, score for score. A kind registered as
    ``deterministic`` ranks alike whatever the seed; the others (seeded randomness, training) do not."""
    first = build_model(kind, 3, world, tmp_path / "first").recommend(world.catalogue, world.train, K)
    again = build_model(kind, 3, world, tmp_path / "again").recommend(world.catalogue, world.train, K)
    other = build_model(kind, 4, world, tmp_path / "other").recommend(world.catalogue, world.train, K)
    np.testing.assert_array_equal(first[1], again[1])
    np.testing.assert_array_equal(first[0], again[0])
    if RECOMMENDERS.traits(kind).deterministic:
        np.testing.assert_array_equal(first[1], other[1])
        np.testing.assert_array_equal(first[0], other[0])
    else:
        assert not np.array_equal(first[0], other[0])


@pytest.mark.parametrize("kind", KINDS)
def test_users_without_train_items_get_k_unheard_items(kind, world, fitted):
    """A train user with no train tracks, and a user the model never saw in training, each get K catalogue items
    with finite, non-increasing scores and none of the tracks they heard before the window."""
    model = fitted(kind)
    users = world.train.user_ids.tolist()
    for data, row in ((world.train, users.index("cold")), (world.newcomer, 0)):
        scores, items = model.recommend(world.catalogue, data, K)
        user_scores, user_items = scores[row], items[row]
        assert ((user_items >= 0) & (user_items < len(world.catalogue))).all()
        assert len(set(user_items.tolist())) == K
        assert not data.excluded.toarray()[row, user_items].any()
        assert np.isfinite(user_scores).all() and (np.diff(user_scores) <= 0).all()


@pytest.mark.parametrize("kind", KINDS)
def test_recommendations_frame_has_one_row_per_user_and_rank(kind, world, ranked):
    """The long table of the ``recommendations`` contract: ranks 1..n per user, no padding rows, the ranked
    tracks and scores in rank order."""
    scores, items = ranked(kind)
    frame = recommendations_frame(world.train.user_ids, world.catalogue, scores, items)
    assert frame.columns == SCHEMAS["recommendations"].names
    assert frame.schema == pl.Schema(
        {"user_id": pl.String, "rank": pl.Int16, "track_id": pl.String, "score": pl.Float32}
    )
    assert frame.height == int((items >= 0).sum())
    assert frame.select("user_id", "rank").is_unique().all()
    for row, user in enumerate(world.train.user_ids.tolist()):
        rows = frame.filter(pl.col("user_id") == user).sort("rank")
        kept = items[row] >= 0
        assert rows.get_column("rank").to_list() == list(range(1, int(kept.sum()) + 1))
        assert rows.get_column("track_id").to_list() == world.catalogue.track_ids[items[row][kept]].tolist()
        np.testing.assert_array_equal(rows.get_column("score").to_numpy(), scores[row][kept])


@pytest.mark.parametrize("kind", CONTENT_KINDS)
def test_models_that_rank_unseen_items_score_new_tracks(kind, world, fitted):
    """One finite score per (user, new track), for tracks outside the catalogue given by their embeddings."""
    new_scores = fitted(kind).score_new_items(world.catalogue, world.train, world.new_embeddings)
    assert new_scores.shape == (len(world.train.user_ids), N_NEW_TRACKS)
    assert np.issubdtype(new_scores.dtype, np.floating)
    assert np.isfinite(new_scores).all()


@pytest.mark.parametrize("kind", INTERACTION_KINDS)
def test_models_that_score_items_by_their_interactions_refuse_new_tracks(kind, world, fitted):
    with pytest.raises(ParameterError, match="cannot rank new items"):
        fitted(kind).score_new_items(world.catalogue, world.train, world.new_embeddings)
