"""What every recommender shares: the catalogue, the train interactions indexed, and the output table."""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl
import scipy.sparse as sp

from audiorec.errors import ContractError, ParameterError
from audiorec.recommenders.retrieval import heard_matrix, top_k_unheard


@dataclass(frozen=True)
class Catalogue:
    """The items a model may recommend, sorted by track id, with their embeddings when a backbone is used.

    Sorting fixes the index of every track, which is also the tie-break order of every ranking.
    """

    track_ids: np.ndarray
    embeddings: np.ndarray | None = None

    @classmethod
    def from_tracks(cls, track_ids: Sequence[str], embeddings: np.ndarray | None = None) -> Catalogue:
        ids = np.asarray(track_ids, dtype=object)
        if len(set(ids.tolist())) != len(ids):
            raise ParameterError("catalogue track ids must be unique")
        order = np.argsort(ids.astype(str), kind="stable")
        vectors = None if embeddings is None else np.asarray(embeddings, dtype=np.float32)
        if vectors is not None and vectors.shape[0] != len(ids):
            raise ParameterError(f"{len(ids)} track ids but {vectors.shape[0]} embedding rows")
        if np.any(order != np.arange(len(ids))):  # candidate sets come sorted: no 1 GB copy of a wide table then
            ids = ids[order]
            vectors = None if vectors is None else vectors[order]
        return cls(track_ids=ids, embeddings=vectors)

    def __len__(self) -> int:
        return len(self.track_ids)

    def index_of(self, track_ids: pl.Series) -> np.ndarray:
        """Catalogue index of each track id, ``-1`` for tracks outside the catalogue."""
        lookup = pl.DataFrame({"track_id": self.track_ids.astype(str), "index": np.arange(len(self), dtype=np.int64)})
        return (
            pl.DataFrame({"track_id": track_ids})
            .join(lookup, on="track_id", how="left", maintain_order="left")
            .get_column("index")
            .fill_null(-1)
            .to_numpy()
        )


@dataclass(frozen=True)
class TrainData:
    """Train pairs indexed against a catalogue for a set of users, and what their rankings must leave out.

    ``heard`` is the boolean users × items matrix of train pairs: a user's profile.
    ``excluded`` is every pair a ranking may not return: the train pairs and the tracks the user heard before the
    training window (:func:`audiorec.protocol.split.temporal_split`); none of them can be a first listen after it.
    ``item_plays`` is each catalogue item's total train play count over *every* user of the train table, not only
    the users indexed here, so that popularity does not depend on who is evaluated. ``first_listens`` holds
    each indexed pair's user row, item column and first-listen time (µs), from which :attr:`listen_order` is
    built; it is ``None`` when the table has no ``first_ts`` column.
    """

    user_ids: np.ndarray
    heard: sp.csr_matrix
    excluded: sp.csr_matrix
    item_plays: np.ndarray
    first_listens: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @functools.cached_property
    def listen_order(self) -> sp.csr_matrix | None:
        """Each heard pair's rank in its user's history by first listen in the window (1 = earliest; ties by
        catalogue index), with the sparsity of ``heard``, so sequential models can rebuild listening sequences.

        Built on first use: only sequential models (and a trained model's checkpoint fingerprint) read it, and at
        the Onion's size (5M pairs) the sort costs ~3 s of every ranking job that would not.
        """
        if self.first_listens is None:
            return None
        return listen_order_matrix(*self.first_listens, self.heard.shape)

    @classmethod
    def build(
        cls,
        train: pl.DataFrame,
        catalogue: Catalogue,
        user_ids: Sequence[str],
        heard_before: pl.DataFrame | None = None,
    ) -> TrainData:
        """Index ``train`` (split contract) for ``user_ids``; pairs outside the catalogue are dropped.

        ``heard_before`` holds further (user, track) pairs to exclude from the rankings (the split's
        ``heard_before_window`` table); without it only the train pairs are excluded.
        """
        users = np.asarray(list(user_ids), dtype=object)
        user_lookup = pl.DataFrame({"user_id": users.astype(str), "user_index": np.arange(len(users), dtype=np.int64)})
        shape = (len(users), len(catalogue))
        columns = ["user_id", "track_id", *(["first_ts"] if "first_ts" in train.columns else [])]
        pairs = train.select(columns).join(user_lookup, on="user_id", how="inner")
        item_index = catalogue.index_of(pairs.get_column("track_id"))
        known = item_index >= 0
        user_index = pairs.get_column("user_index").to_numpy()[known]
        item_index = item_index[known]
        first_listens = None
        if "first_ts" in pairs.columns:
            first_ts = pairs.get_column("first_ts").dt.epoch("us").to_numpy()[known]
            first_listens = (user_index, item_index, first_ts)
        heard = heard_matrix(user_index, item_index, *shape)
        excluded = heard
        if heard_before is not None:
            earlier = heard_before.select("user_id", "track_id").join(user_lookup, on="user_id", how="inner")
            earlier_items = catalogue.index_of(earlier.get_column("track_id"))
            inside = earlier_items >= 0
            earlier_users = earlier.get_column("user_index").to_numpy()[inside]
            excluded = heard + heard_matrix(earlier_users, earlier_items[inside], *shape)
        return cls(
            user_ids=users,
            heard=heard,
            excluded=sp.csr_matrix(excluded, dtype=bool),
            item_plays=item_play_counts(train, catalogue),
            first_listens=first_listens,
        )


def item_play_counts(train: pl.DataFrame, catalogue: Catalogue) -> np.ndarray:
    """Total train plays of each catalogue item over every user of ``train`` (float32, 0 for unplayed items)."""
    totals = train.group_by("track_id").agg(pl.col("plays").sum())
    index = catalogue.index_of(totals.get_column("track_id"))
    counts = np.zeros(len(catalogue), dtype=np.float32)
    inside = index >= 0
    np.add.at(counts, index[inside], totals.get_column("plays").to_numpy()[inside].astype(np.float32))
    return counts


def listen_order_matrix(
    user_index: np.ndarray, item_index: np.ndarray, first_ts: np.ndarray, shape: tuple[int, int]
) -> sp.csr_matrix:
    """CSR matrix of each (user, item) pair's 1-based rank in its user's history, by time then item index."""
    entries = np.lexsort((item_index, first_ts, user_index))
    sorted_users = user_index[entries]
    starts = np.searchsorted(sorted_users, sorted_users, side="left")
    rank = np.empty(len(entries), dtype=np.int32)
    rank[entries] = np.arange(len(entries)) - starts + 1
    matrix = sp.csr_matrix((rank, (user_index, item_index)), shape=shape, dtype=np.int32)
    matrix.sort_indices()
    return matrix


class Recommender(ABC):
    """A recommender: fit on train pairs, then return each user's top-K unheard catalogue items."""

    kind: ClassVar[str]
    # Traits, set from the registry entry of ``kind`` (audiorec.recommenders.ModelTraits documents each):
    # the workflow reads them without importing the class, and the class reads the same values.
    trained: ClassVar[bool]
    uses_gpu: ClassVar[bool]
    uses_embeddings: ClassVar[bool]
    deterministic: ClassVar[bool]
    ranks_unseen_items: ClassVar[bool]
    random_variant: ClassVar[str | None]
    is_chance: ClassVar[bool]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Give a built-in model (a class that names a built-in ``kind``) the traits its registry entry declares.

        A plugin's class gets its traits when the registry loads it (:mod:`audiorec.common.plugins`).
        """
        super().__init_subclass__(**kwargs)
        from audiorec.recommenders import RECOMMENDERS

        if cls.__dict__.get("kind") not in RECOMMENDERS.entries:
            return
        traits = RECOMMENDERS.traits(cls.kind)
        if traits.trained != issubclass(cls, TrainedRecommender):
            raise TypeError(f"{cls.__name__}: registry trait trained={traits.trained} contradicts its base class")
        for name, value in vars(traits).items():
            setattr(cls, name, value)

    @classmethod
    @abstractmethod
    def from_options(cls, options: dict[str, Any], seed: int) -> Recommender:
        """Build the model from its config block's ``options`` (unknown keys are an error)."""

    @abstractmethod
    def recommend(self, catalogue: Catalogue, train: TrainData, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` unheard items for every user of ``train``: ``(scores, items)``, each ``(n_users, k)``."""

    def score_new_items(self, catalogue: Catalogue, train: TrainData, embeddings: np.ndarray) -> np.ndarray:
        """Scores ``(n_users, len(embeddings))`` of tracks outside the catalogue, given their embeddings.

        The cold-start evaluation ranks only new releases (tracks nobody heard before the evaluation window, so
        outside every model's catalogue), which is what tells whether the content side of a model works. Only
        models with :attr:`ranks_unseen_items` can; they implement :meth:`new_item_scores`.
        """
        if not self.ranks_unseen_items:
            raise ParameterError(
                f"model {self.kind} scores items by their train interactions: it cannot rank new items"
            )
        scores = np.asarray(self.new_item_scores(catalogue, train, np.asarray(embeddings, dtype=np.float32)))
        expected = (len(train.user_ids), len(embeddings))
        if scores.shape != expected or not np.all(np.isfinite(scores)):
            raise ContractError(
                f"model kind {self.kind!r}: new_item_scores returned {scores.shape} scores"
                f"{'' if scores.shape != expected else ' with NaN or infinite values'}; expected finite {expected}"
            )
        return scores

    def new_item_scores(self, catalogue: Catalogue, train: TrainData, embeddings: np.ndarray) -> np.ndarray:
        """What :meth:`score_new_items` returns, for a model with :attr:`ranks_unseen_items`."""
        raise NotImplementedError(f"model {self.kind} declares ranks_unseen_items but scores no new items")


class FittedRecommender(Recommender):
    """A recommender that learns in closed form from every train user before it ranks: no epochs, no validation,
    no checkpoint (EASE, item-kNN on co-occurrence).

    The rankings are asked for the evaluation users only, but a collaborative model learns item relations from
    everyone's history: the stages call :meth:`fit` with every train user (:func:`fit_on_every_user`) first.
    """

    @abstractmethod
    def fit(self, catalogue: Catalogue, train: TrainData) -> None:
        """Learn from ``train``, the train pairs of every train user indexed against ``catalogue``."""


def fit_on_every_user(
    model: Recommender, catalogue: Catalogue, train: pl.DataFrame, heard_before: pl.DataFrame | None = None
) -> None:
    """Fit a :class:`FittedRecommender` on the train pairs (split contract) of every train user; other models
    learn elsewhere (trained ones) or not at all."""
    if isinstance(model, FittedRecommender):
        users = sorted(train.get_column("user_id").unique().to_list())
        model.fit(catalogue, TrainData.build(train, catalogue, users, heard_before))


@dataclass(frozen=True)
class RunFiles:
    """Where a trained recommender keeps its artefacts.

    ``checkpoint`` holds the best epoch's weights and ``training_log`` one row per epoch; both are outputs of
    the run. ``resume_state`` is rewritten after every epoch (weights, optimizer, scheduler, early-stopping
    state, random generators), so a run that was killed continues where it stopped.
    """

    checkpoint: Path
    training_log: Path
    resume_state: Path

    @classmethod
    def beside(cls, checkpoint: str | Path, training_log: str | Path) -> RunFiles:
        """Files of a run whose resume state lives next to its checkpoint (``last.pt``)."""
        checkpoint = Path(checkpoint)
        return cls(checkpoint=checkpoint, training_log=Path(training_log), resume_state=checkpoint.with_name("last.pt"))


class TrainedRecommender(Recommender):
    """A recommender with a training step: it learns on every train user and selects epochs on validation.

    The paper's protocol (Tamm & Aljanaki 2024): train on the train split, use the validation split for early
    stopping and learning-rate scheduling, report the test split. :meth:`fit` runs before :meth:`recommend`.
    """

    @abstractmethod
    def fit(self, catalogue: Catalogue, train: TrainData, validation: TrainData, files: RunFiles | None = None) -> None:
        """Train on ``train`` (every train user) and keep the state that is best on ``validation``.

        ``validation`` indexes the validation pairs against the same users as ``train`` (same ``user_ids``).
        With ``files``, every epoch is checkpointed and an interrupted run resumes from its last epoch.
        """

    @abstractmethod
    def restore(self, catalogue: Catalogue, train: TrainData, validation: TrainData, checkpoint: str | Path) -> None:
        """Load what :meth:`fit` saved to ``checkpoint`` on the same catalogue and splits, instead of training."""


def top_k_of_scores(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` columns of each row of a full score matrix, with the tie policy of every ranking (lower index
    first) and ``-1`` padding where the matrix has fewer than ``k`` columns."""
    excluded = sp.csr_matrix(scores.shape, dtype=bool)
    return top_k_unheard(lambda rows: scores[rows], excluded, k)


def recommendations_frame(
    user_ids: np.ndarray, catalogue: Catalogue, scores: np.ndarray, items: np.ndarray
) -> pl.DataFrame:
    """Long table following the ``recommendations`` contract; padding (``-1``) entries are dropped."""
    n_users, k = items.shape
    valid = items >= 0
    user_column = np.repeat(np.asarray(user_ids, dtype=object).astype(str), k).reshape(n_users, k)[valid]
    rank_column = np.tile(np.arange(1, k + 1, dtype=np.int16), (n_users, 1))[valid]
    return pl.DataFrame(
        {
            "user_id": user_column,
            "rank": rank_column,
            "track_id": catalogue.track_ids.astype(str)[items[valid]],
            "score": scores[valid].astype(np.float32),
        },
        schema={"user_id": pl.String, "rank": pl.Int16, "track_id": pl.String, "score": pl.Float32},
    )
