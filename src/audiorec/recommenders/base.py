"""What every recommender shares: the catalogue, the train interactions indexed, and the output table."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl
import scipy.sparse as sp

from audiorec.errors import ParameterError
from audiorec.recommenders.retrieval import DEFAULT_BATCH_SIZE, exclude_and_cut, heard_matrix


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
        vectors = None if embeddings is None else np.asarray(embeddings, dtype=np.float32)[order]
        if vectors is not None and vectors.shape[0] != len(ids):
            raise ParameterError(f"{len(ids)} track ids but {vectors.shape[0]} embedding rows")
        return cls(track_ids=ids[order], embeddings=vectors)

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
    """Train pairs indexed against a catalogue: user ids, and a users × items heard matrix with play counts.

    ``listen_order`` has the sparsity of ``heard`` and holds each pair's rank in its user's history by first
    listen (1 = earliest; ties by catalogue index), so sequential models can rebuild listening sequences. It
    is ``None`` when the table has no ``first_ts`` column.
    """

    user_ids: np.ndarray
    heard: sp.csr_matrix
    plays: sp.csr_matrix
    listen_order: sp.csr_matrix | None = None

    @classmethod
    def build(cls, train: pl.DataFrame, catalogue: Catalogue, user_ids: Sequence[str]) -> TrainData:
        """Index ``train`` (split contract) for ``user_ids``; pairs outside the catalogue are dropped."""
        users = np.asarray(list(user_ids), dtype=object)
        user_lookup = pl.DataFrame({"user_id": users.astype(str), "user_index": np.arange(len(users), dtype=np.int64)})
        columns = ["user_id", "track_id", "plays", *(["first_ts"] if "first_ts" in train.columns else [])]
        pairs = train.select(columns).join(user_lookup, on="user_id", how="inner")
        item_index = catalogue.index_of(pairs.get_column("track_id"))
        known = item_index >= 0
        user_index = pairs.get_column("user_index").to_numpy()[known]
        item_index = item_index[known]
        plays = pairs.get_column("plays").to_numpy()[known].astype(np.float32)
        shape = (len(users), len(catalogue))
        play_matrix = sp.csr_matrix((plays, (user_index, item_index)), shape=shape)
        play_matrix.sum_duplicates()
        order = None
        if "first_ts" in pairs.columns:
            first_ts = pairs.get_column("first_ts").dt.epoch("us").to_numpy()[known]
            order = listen_order_matrix(user_index, item_index, first_ts, shape)
        heard = heard_matrix(user_index, item_index, *shape)
        return cls(user_ids=users, heard=heard, plays=play_matrix, listen_order=order)


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
    uses_embeddings: ClassVar[bool] = False
    deterministic: ClassVar[bool] = True
    uses_gpu: ClassVar[bool] = False
    """Whether a run asks the scheduler for a GPU (neural models); the workflow's recommend rule reads it."""
    random_variant: ClassVar[str | None] = None
    """Kind of the same network with randomly initialised item embeddings, the reference its results are tested
    against (the first paper's random-init rows)."""
    ranks_unseen_items: ClassVar[bool] = False
    """Whether :meth:`score_candidates` can score items nobody heard in train: true of models that score an item
    from its content (an audio embedding), and of the random ranking, the chance reference of that table."""

    @classmethod
    @abstractmethod
    def from_options(cls, options: dict[str, Any], seed: int) -> Recommender:
        """Build the model from its config block's ``options`` (unknown keys are an error)."""

    @abstractmethod
    def recommend(self, catalogue: Catalogue, train: TrainData, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` unheard items for every user of ``train``: ``(scores, items)``, each ``(n_users, k)``."""

    def score_candidates(self, catalogue: Catalogue, train: TrainData, candidates: np.ndarray) -> np.ndarray:
        """Scores ``(n_users, len(candidates))`` of the catalogue items ``candidates`` for every user of ``train``.

        The cold-start evaluation ranks only new releases (items with no train interaction), which is what
        tells whether the content side of a model works. Only models with :attr:`ranks_unseen_items` can; they
        implement :meth:`candidate_scores`.
        """
        if not self.ranks_unseen_items:
            raise ParameterError(
                f"model {self.kind} scores items by their train interactions: it cannot rank new items"
            )
        return self.candidate_scores(catalogue, train, candidates)

    def candidate_scores(self, catalogue: Catalogue, train: TrainData, candidates: np.ndarray) -> np.ndarray:
        """What :meth:`score_candidates` returns, for a model with :attr:`ranks_unseen_items`."""
        raise NotImplementedError(f"model {self.kind} declares ranks_unseen_items but scores no candidates")


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

    deterministic = False
    uses_gpu = True

    @abstractmethod
    def fit(self, catalogue: Catalogue, train: TrainData, validation: TrainData, files: RunFiles | None = None) -> None:
        """Train on ``train`` (every train user) and keep the state that is best on ``validation``.

        ``validation`` indexes the validation pairs against the same users as ``train`` (same ``user_ids``).
        With ``files``, every epoch is checkpointed and an interrupted run resumes from its last epoch.
        """

    @abstractmethod
    def restore(self, catalogue: Catalogue, train: TrainData, validation: TrainData, checkpoint: str | Path) -> None:
        """Load what :meth:`fit` saved to ``checkpoint`` on the same catalogue and splits, instead of training."""


def top_k_of_candidates(
    scores: np.ndarray, candidates: np.ndarray, heard: sp.csr_matrix, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` of ``candidates`` (catalogue indices) for each row of ``scores``, heard items removed.

    The same contract as :meth:`Recommender.recommend`: ``(scores, items)`` of shape ``(n_users, k)`` with catalogue
    indices, ties broken by catalogue index, ``-1`` padding where fewer than ``k`` candidates are unheard.
    """
    candidates = np.asarray(candidates, dtype=np.int64)
    if scores.shape != (heard.shape[0], len(candidates)):
        raise ParameterError(f"scores have shape {scores.shape}, expected {(heard.shape[0], len(candidates))}")
    top_scores = np.full((len(scores), k), -np.inf, dtype=np.float32)
    top_items = np.full((len(scores), k), -1, dtype=np.int64)
    for start in range(0, len(scores), DEFAULT_BATCH_SIZE):  # bounds the sort's temporaries
        rows = slice(start, start + DEFAULT_BATCH_SIZE)
        block = np.asarray(scores[rows], dtype=np.float32)
        items = np.broadcast_to(candidates, block.shape).copy()
        top_scores[rows], top_items[rows] = exclude_and_cut(block, items, heard[rows], k)
    return top_scores, top_items


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
