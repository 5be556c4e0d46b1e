"""What a recommendation run ranks and learns on, decided from tables already in memory.

The stages (:mod:`audiorec.stages.recommendation`) read the files and write the lists; the choices between the
two live here, where they can be tested on a handful of hand-written rows: which items a model ranks and with
which vectors, on which pairs a trained model learns, and which new releases the cold-start ranking scores.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from audiorec.errors import ParameterError
from audiorec.evaluation.controls import shuffle_rows
from audiorec.recommenders.base import Catalogue, Recommender, TrainData

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddingsTable:
    """An embeddings table read once per job: its track ids, its vectors, and the file (for error messages)."""

    path: Path
    track_ids: list[str]
    vectors: np.ndarray

    def rows(self, track_ids: Sequence[str]) -> np.ndarray:
        """Row of each of ``track_ids`` in the table (``-1`` when absent)."""
        lookup = pl.DataFrame({"track_id": self.track_ids, "row": np.arange(len(self.track_ids), dtype=np.int64)})
        wanted = pl.DataFrame({"track_id": list(track_ids)}, schema={"track_id": pl.String})
        joined = wanted.join(lookup, on="track_id", how="left", maintain_order="left")
        return joined.get_column("row").fill_null(-1).to_numpy()


def model_catalogue(
    model: Recommender,
    candidates: Sequence[str],
    embeddings: EmbeddingsTable | None,
    shuffle: bool,
    seed: int,
) -> Catalogue:
    """The items a model ranks: the dataset's ``candidates`` (:func:`audiorec.protocol.candidates.candidate_track_ids`),
    with their embeddings (rows permuted within the set when ``shuffle``) for a model that uses them.

    Every candidate must have an embedding: the candidate set is built from the tables of every backbone, so a
    missing row means the set is older than the table, and ranking without that track would quietly compare
    models on different items.
    """
    if not model.uses_embeddings:
        return Catalogue.from_tracks(candidates)
    if embeddings is None:
        raise ParameterError(f"model {model.kind} needs an embeddings table")
    rows = embeddings.rows(candidates)
    missing = int((rows < 0).sum())
    if missing:
        raise ParameterError(
            f"{embeddings.path}: {missing} candidate tracks have no embedding; the candidate set is older than this "
            "table (rerun rule candidates)"
        )
    vectors = embeddings.vectors[rows]
    return Catalogue.from_tracks(candidates, shuffle_rows(vectors, seed) if shuffle else vectors)


def fitting_data(
    train: pl.DataFrame, validation: pl.DataFrame, catalogue: Catalogue, heard_before: pl.DataFrame
) -> tuple[TrainData, TrainData]:
    """Train and validation pairs indexed for every train user, as a trained model learns (and is restored) on
    them; the validation rankings leave out what each user heard before the evaluation window."""
    fit_users = sorted(train.get_column("user_id").unique().to_list())
    return TrainData.build(train, catalogue, fit_users, heard_before), TrainData.build(validation, catalogue, fit_users)


def new_releases(
    cold: pl.DataFrame, embeddings: EmbeddingsTable | None, shuffle: bool = False, seed: int = 0
) -> tuple[list[str], np.ndarray]:
    """The cold split's tracks (sorted) with their embeddings; tracks without one are left out with a warning.

    A model without embeddings gets every track and an empty ``(n, 0)`` matrix. ``shuffle`` permutes the rows
    among the new tracks only, as the shuffled control does within the candidate set.
    """
    tracks = cold.get_column("track_id").unique().sort().to_list()
    if embeddings is None:
        return tracks, np.zeros((len(tracks), 0), dtype=np.float32)
    rows = embeddings.rows(tracks)
    if (rows < 0).any():
        log.warning("%d new tracks have no embedding in %s and are not ranked", int((rows < 0).sum()), embeddings.path)
    vectors = embeddings.vectors[rows[rows >= 0]]
    kept = [track for track, row in zip(tracks, rows, strict=True) if row >= 0]
    return kept, shuffle_rows(vectors, seed) if shuffle else vectors
