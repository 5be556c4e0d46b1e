"""The recommender contract: what the ranking stages and the results tables rely on, checked on one kind.

The kind runs on the tiny demo world's listening log (no audio is synthesised), split by the paper's protocol,
ranking the demo's candidate set for the validation users; a model that reads embeddings gets seeded random
vectors (what is checked is the form of its rankings, never their quality). A trained model trains for real
here, so give it a few epochs in the options (``audiorec check recommender shallow --options '{"epochs": 2}'``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from audiorec.contracts.results import CheckResult, NotApplicable, run_checks, setup_step
from audiorec.datasets.demo import TINY, DemoOptions, evaluation_start
from audiorec.datasets.demo.world import listening_log
from audiorec.protocol.candidates import candidate_track_ids
from audiorec.protocol.split import SplitConfig, SplitResult, temporal_split
from audiorec.recommenders import (
    RECOMMENDERS,
    Catalogue,
    FittedRecommender,
    Recommender,
    RunFiles,
    TrainData,
    TrainedRecommender,
)
from audiorec.recommenders.base import fit_on_every_user
from audiorec.recommenders.contract import check_no_heard_items, check_ranking_shape
from audiorec.recommenders.runs import EmbeddingsTable, fitting_data, model_catalogue

K = 20
EMBEDDING_WIDTH = 16


@dataclass(frozen=True)
class CheckWorld:
    """The tiny demo world split for a check: tables, the candidate set and random vectors for every track."""

    split: SplitResult
    candidates: list[str]
    embeddings: EmbeddingsTable

    @classmethod
    def build(cls, seed: int = 0) -> CheckWorld:
        options = DemoOptions.from_mapping(TINY)
        start = evaluation_start(options)
        config = {"test_start": start, "train_months": options.n_months - 1, "test_months": 1, "seed": seed}
        split = temporal_split(listening_log(options), SplitConfig.from_mapping(config))
        candidates = candidate_track_ids(split.train, pl.DataFrame({"track_id": []}, schema={"track_id": pl.String}))
        tracks = sorted(set(candidates) | set(split.cold_test.get_column("track_id").to_list()))
        vectors = np.random.default_rng(seed).standard_normal((len(tracks), EMBEDDING_WIDTH)).astype(np.float32)
        return cls(split, candidates, EmbeddingsTable(Path("random vectors"), tracks, vectors))


def check_recommender(kind: str, options: Mapping[str, Any] | None = None, seed: int = 0) -> list[CheckResult]:
    """Run the recommender contract on ``kind`` (built in, an import target or an entry point) built from
    ``options`` with ``seed``; one result per check."""
    options = dict(options or {})
    state: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as scratch:

        @setup_step
        def options_check() -> None:
            RECOMMENDERS.check_options(kind, options, "--options")
            state["traits"] = RECOMMENDERS.traits(kind)

        @setup_step
        def builds() -> None:
            state["model"] = _build(kind, options, seed)
            state["world"] = CheckWorld.build(seed)

        def traits_match() -> None:
            model, traits = state["model"], state["traits"]
            if traits.trained != isinstance(model, TrainedRecommender):
                raise TypeError(f"trait trained={traits.trained}, but the class is {type(model).__mro__[1].__name__}")
            if isinstance(model, FittedRecommender) and traits.trained:
                raise TypeError("a FittedRecommender fits in closed form; its trait trained must be False")

        @setup_step
        def fits() -> None:
            state["inputs"] = _fit(state["model"], state["world"], Path(scratch) / "first")

        def ranks() -> None:
            state["ranking"] = _rank(state["model"], state["world"], state["inputs"][0])
            train, scores, items = state["ranking"]
            check_ranking_shape(kind, train.excluded.shape, scores, items, K)

        def excludes_heard() -> None:
            train, _, items = state["ranking"]
            check_no_heard_items(kind, train.user_ids, train.excluded, items)

        def deterministic() -> None:
            again = _build(kind, options, seed)
            catalogue = _fit(again, state["world"], Path(scratch) / "second")[0]
            _, scores, items = _rank(again, state["world"], catalogue)
            _same_ranking(state["ranking"], scores, items, "a second model built with the same seed")

        def round_trip() -> None:
            model = state["model"]
            if not isinstance(model, TrainedRecommender):
                raise NotApplicable("it saves no checkpoint (only trained models do)")
            restored = _build(kind, options, seed)
            catalogue, fit_train, validation, files = state["inputs"]
            restored.restore(catalogue, fit_train, validation, files.checkpoint)
            _, scores, items = _rank(restored, state["world"], catalogue)
            _same_ranking(state["ranking"], scores, items, "the model restored from its checkpoint")

        def new_items() -> None:
            model = state["model"]
            if not model.ranks_unseen_items:
                raise NotApplicable("it does not rank items unheard in train")
            world, (catalogue, *_) = state["world"], state["inputs"]
            cold = world.split.cold_test
            rows = world.embeddings.rows(cold.get_column("track_id").unique().sort().to_list())
            users = sorted(cold.get_column("user_id").unique().to_list())
            train = TrainData.build(world.split.train, catalogue, users)
            model.score_new_items(catalogue, train, world.embeddings.vectors[rows])

        return run_checks(
            [
                ("options are checked at plan time", options_check),
                ("builds from its options and a seed", builds),
                ("its traits match its class", traits_match),
                ("fits on the demo world's train split (trained: early stopping on val)", fits),
                (f"ranks the demo's candidate set: (users, {K}) indices, finite scores, no repeats", ranks),
                ("leaves out every track a user heard before the evaluation window", excludes_heard),
                ("the same seed gives the same ranking", deterministic),
                ("fit, save and load round trip: a restored model ranks the same", round_trip),
                ("scores new items from their embeddings (finite, one per user and item)", new_items),
            ]
        )


def _build(kind: str, options: Mapping[str, Any], seed: int) -> Recommender:
    model = RECOMMENDERS.load(kind).from_options(dict(options), seed)
    if not isinstance(model, Recommender):
        raise TypeError(f"from_options returned {type(model).__name__}, not a Recommender")
    return model


def _fit(model: Recommender, world: CheckWorld, folder: Path) -> tuple[Catalogue, TrainData, TrainData, RunFiles]:
    """Fit ``model`` as the ranking stage would; returns what ranking and restoring need."""
    catalogue = model_catalogue(model, world.candidates, world.embeddings, False, 0)
    train = world.split.train
    fit_train, validation = fitting_data(train, world.split.val, catalogue, world.split.heard_before_window)
    folder.mkdir(parents=True, exist_ok=True)
    files = RunFiles.beside(folder / "model.pt", folder / "training_log.csv")
    if isinstance(model, TrainedRecommender):
        model.fit(catalogue, fit_train, validation, files)
    fit_on_every_user(model, catalogue, train, world.split.heard_before_window)
    return catalogue, fit_train, validation, files


def _rank(model: Recommender, world: CheckWorld, catalogue: Catalogue) -> tuple[TrainData, np.ndarray, np.ndarray]:
    """(train pairs of the validation users, scores, items) of ``model``'s top-K lists, as the ranking stage
    builds them: each list leaves out the train pairs and what the user heard before the training window."""
    users = sorted(world.split.val.get_column("user_id").unique().to_list())
    train = TrainData.build(world.split.train, catalogue, users, world.split.heard_before_window)
    scores, items = model.recommend(catalogue, train, K)
    return train, np.asarray(scores), np.asarray(items)


def _same_ranking(
    first: tuple[TrainData, np.ndarray, np.ndarray], scores: np.ndarray, items: np.ndarray, what: str
) -> None:
    _, first_scores, first_items = first
    if first_items.shape != items.shape or not np.array_equal(first_items, items):
        changed = int((first_items != items).any(axis=1).sum()) if first_items.shape == items.shape else "all"
        raise ValueError(f"{what} ranks differently ({changed} users' lists differ)")
    if not np.allclose(first_scores, scores, rtol=1e-5, atol=1e-6, equal_nan=True):
        raise ValueError(f"{what} ranks the same items with different scores")
