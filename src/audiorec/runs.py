"""Path-level entry points of the recommendation runs: the candidate set, ranking (with training), new releases.

Like :mod:`audiorec.stages`, each reads tables, calls the library and writes its output atomically, and imports
the heavy parts (torch) inside the function that needs them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from audiorec.errors import ParameterError, SchemaError
from audiorec.tables import read_embeddings, read_table, write_table

if TYPE_CHECKING:
    from audiorec.recommenders import Catalogue, Recommender, TrainData

log = logging.getLogger(__name__)


def candidates(train_path: str | Path, embeddings: Mapping[str, str | Path], out_path: str | Path) -> None:
    """Write the train items left out of the candidate set (:mod:`audiorec.candidates`): those some backbone of
    ``embeddings`` (name → embeddings table) could not embed."""
    from audiorec.candidates import write_candidates

    write_candidates(train_path, embeddings, out_path)


def recommend(
    model_spec: Mapping[str, Any],
    seed: int,
    split_paths: Mapping[str, str | Path],
    target_paths: Sequence[str | Path],
    embeddings_path: str | Path | None,
    top_k: int,
    out_path: str | Path,
    *,
    shuffle: bool = False,
    checkpoint_path: str | Path | None = None,
    training_log_path: str | Path | None = None,
    threads: int | None = None,
) -> None:
    """Fit a recommender on train and write top-``top_k`` lists for every user of the target splits.

    ``split_paths`` names the split's ``train``, ``heard_before_window`` and ``uncovered`` files (and ``val`` for a
    trained model): the model ranks the candidate set (:mod:`audiorec.candidates`) and every ranking leaves out
    what its user heard before the evaluation window. ``shuffle`` permutes the candidates' embedding rows with
    ``seed`` first (the shuffled-embedding control, see :mod:`audiorec.controls`). A trained model
    (:class:`~audiorec.recommenders.TrainedRecommender`) learns on every train user, early-stops on ``val``,
    and writes its best weights to ``checkpoint_path`` and one row per epoch to ``training_log_path``; its
    per-epoch resume state lives beside the checkpoint. ``threads`` caps torch's CPU threads at the job's
    allotment: more threads than cores make small kernels spin instead of compute.
    """
    from audiorec.recommenders import RunFiles, TrainData, TrainedRecommender, recommendations_frame

    model = build_model(model_spec, seed, threads, embeddings_path)
    train = read_table(split_paths["train"], "split")
    embeddings = read_model_embeddings(model, embeddings_path)
    catalogue = model_catalogue(model, train, split_paths["uncovered"], embeddings, shuffle, seed)
    heard_before = read_table(split_paths["heard_before_window"], "split")
    if isinstance(model, TrainedRecommender):
        if checkpoint_path is None or training_log_path is None or "val" not in split_paths:
            raise ParameterError(
                f"model {model_spec['kind']} trains: it needs the val split, checkpoint_path and training_log_path"
            )
        fit_train, validation = fitting_data(train, split_paths["val"], catalogue, heard_before)
        model.fit(catalogue, fit_train, validation, RunFiles.beside(checkpoint_path, training_log_path))
    users = sorted(set().union(*(read_table(p, "split").get_column("user_id").to_list() for p in target_paths)))
    train_data = TrainData.build(train, catalogue, users, heard_before)
    scores, items = model.recommend(catalogue, train_data, top_k)
    frame = recommendations_frame(train_data.user_ids, catalogue, scores, items)
    complete = frame.group_by("user_id").len().filter(pl.col("len") >= top_k).height
    short = len(users) - complete
    if short:
        log.warning("%d of %d users received fewer than %d recommendations", short, len(users), top_k)
    metadata = {"model": dict(model_spec), "seed": seed, "n_candidates": len(catalogue)}
    write_table(frame, out_path, kind="recommendations", metadata=metadata)


def build_model(
    model_spec: Mapping[str, Any], seed: int, threads: int | None, embeddings_path: str | Path | None = None
) -> Recommender:
    """The configured model; caps torch's CPU threads at ``threads`` first, since the model's work follows.

    A random-init variant with ``item_dim: match`` (:mod:`audiorec.controls`) takes the width of the embeddings
    table at ``embeddings_path``.
    """
    from audiorec.controls import MATCH, matches_width
    from audiorec.recommenders import recommender_class

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    options = dict(model_spec.get("options") or {})
    if matches_width(options):
        if embeddings_path is None:
            raise ParameterError(f"model {model_spec['kind']}: item_dim {MATCH!r} needs a backbone's embeddings table")
        options["item_dim"] = embedding_width(embeddings_path)
        log.info("item_dim %r: %d, the width of %s", MATCH, options["item_dim"], embeddings_path)
    return recommender_class(model_spec["kind"]).from_options(options, seed)


def embedding_width(path: str | Path) -> int:
    """The vector size of an embeddings table, read from its schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    field = schema.field("embedding") if "embedding" in schema.names else None
    if field is None or not pa.types.is_fixed_size_list(field.type):
        raise SchemaError(f"{path}: embeddings table needs a column embedding of fixed-size float lists")
    return int(field.type.list_size)


def fitting_data(
    train: pl.DataFrame, validation_path: str | Path, catalogue: Catalogue, heard_before: pl.DataFrame
) -> tuple[TrainData, TrainData]:
    """Train and validation pairs indexed for every train user, as a trained model learns (and is restored) on
    them; the validation rankings leave out what each user heard before the evaluation window."""
    from audiorec.recommenders import TrainData

    fit_users = sorted(train.get_column("user_id").unique().to_list())
    validation = TrainData.build(read_table(validation_path, "split"), catalogue, fit_users)
    return TrainData.build(train, catalogue, fit_users, heard_before), validation


@dataclass(frozen=True)
class EmbeddingsTable:
    """An embeddings table read once per job: its track ids, its vectors, and the file (for error messages)."""

    path: Path
    track_ids: list[str]
    vectors: np.ndarray

    @classmethod
    def read(cls, path: str | Path) -> EmbeddingsTable:
        track_ids, vectors = read_embeddings(path)
        return cls(Path(path), track_ids, vectors)

    def rows(self, track_ids: Sequence[str]) -> np.ndarray:
        """Row of each of ``track_ids`` in the table (``-1`` when absent)."""
        lookup = pl.DataFrame({"track_id": self.track_ids, "row": np.arange(len(self.track_ids), dtype=np.int64)})
        wanted = pl.DataFrame({"track_id": list(track_ids)}, schema={"track_id": pl.String})
        joined = wanted.join(lookup, on="track_id", how="left", maintain_order="left")
        return joined.get_column("row").fill_null(-1).to_numpy()


def read_model_embeddings(model: Recommender, embeddings_path: str | Path | None) -> EmbeddingsTable | None:
    """The embeddings table a model ranks with (None for a model without one); an error if it needs one."""
    if not model.uses_embeddings:
        return None
    if embeddings_path is None:
        raise ParameterError(f"model {model.kind} needs an embeddings table")
    return EmbeddingsTable.read(embeddings_path)


def model_catalogue(
    model: Recommender,
    train: pl.DataFrame,
    uncovered_path: str | Path,
    embeddings: EmbeddingsTable | None,
    shuffle: bool,
    seed: int,
) -> Catalogue:
    """The items a model ranks: the dataset's candidate set, with their embeddings (rows permuted within the set
    when ``shuffle``) for a model that uses them."""
    from audiorec.candidates import candidate_track_ids, read_uncovered
    from audiorec.recommenders import Catalogue

    track_ids = candidate_track_ids(train, read_uncovered(uncovered_path))
    if not model.uses_embeddings:
        return Catalogue.from_tracks(track_ids)
    if embeddings is None:
        raise ParameterError(f"model {model.kind} needs an embeddings table")
    rows = embeddings.rows(track_ids)
    missing = int((rows < 0).sum())
    if missing:
        raise ParameterError(
            f"{embeddings.path}: {missing} candidate tracks have no embedding; the candidate set is older than this "
            "table (rerun rule candidates)"
        )
    vectors = embeddings.vectors[rows]
    if shuffle:
        from audiorec.controls import shuffle_rows

        vectors = shuffle_rows(vectors, seed)
    return Catalogue.from_tracks(track_ids, vectors)


def recommend_new_items(
    model_spec: Mapping[str, Any],
    seed: int,
    split_paths: Mapping[str, str | Path],
    embeddings_path: str | Path | None,
    top_k: int,
    out_path: str | Path,
    *,
    shuffle: bool = False,
    checkpoint_path: str | Path | None = None,
    threads: int | None = None,
) -> None:
    """Rank the new releases of the evaluation window for every user of the cold-item split.

    The candidates are the tracks of ``split_paths["cold_test"]`` (tracks first heard in the evaluation window,
    so nobody heard them before it) that have an embedding; no other track enters the ranking, so the list
    measures how well the model orders unseen items, not how it trades them against known ones. The model sees
    the same catalogue as in its main run; the new tracks are scored from their content
    (:meth:`~audiorec.recommenders.Recommender.score_new_items`), for the shuffled control with their embeddings
    permuted among themselves. A trained model is restored from ``checkpoint_path`` (what rule
    train_recommender wrote), not trained again.
    """
    from audiorec.recommenders import Catalogue, TrainData, TrainedRecommender, recommendations_frame
    from audiorec.recommenders.base import top_k_of_scores

    model = build_model(model_spec, seed, threads)
    if not model.ranks_unseen_items:
        raise ParameterError(f"model {model.kind} cannot rank items unheard in train; it has no cold-start ranking")
    train = read_table(split_paths["train"], "split")
    embeddings = read_model_embeddings(model, embeddings_path)
    catalogue = model_catalogue(model, train, split_paths["uncovered"], embeddings, shuffle, seed)
    if isinstance(model, TrainedRecommender):
        if checkpoint_path is None or "val" not in split_paths:
            raise ParameterError(f"model {model.kind} is restored from a checkpoint: it needs the val split too")
        heard_before = read_table(split_paths["heard_before_window"], "split")
        model.restore(catalogue, *fitting_data(train, split_paths["val"], catalogue, heard_before), checkpoint_path)
    cold = read_table(split_paths["cold_test"], "split")
    new_tracks, new_vectors = new_releases(cold, embeddings)
    if shuffle:
        from audiorec.controls import shuffle_rows

        new_vectors = shuffle_rows(new_vectors, seed)
    users = sorted(cold.get_column("user_id").unique().to_list())
    train_data = TrainData.build(train, catalogue, users)
    log.info("ranking %d new tracks for %d users", len(new_tracks), len(users))
    scores, items = top_k_of_scores(model.score_new_items(catalogue, train_data, new_vectors), top_k)
    frame = recommendations_frame(train_data.user_ids, Catalogue.from_tracks(new_tracks), scores, items)
    write_table(frame, out_path, kind="recommendations", metadata={"model": dict(model_spec), "seed": seed})


def new_releases(cold: pl.DataFrame, embeddings: EmbeddingsTable | None) -> tuple[list[str], np.ndarray]:
    """The cold split's tracks (sorted) with their embeddings; tracks without one are left out with a warning. A
    model without embeddings gets every track and an empty ``(n, 0)`` matrix."""
    tracks = cold.get_column("track_id").unique().sort().to_list()
    if embeddings is None:
        return tracks, np.zeros((len(tracks), 0), dtype=np.float32)
    rows = embeddings.rows(tracks)
    if (rows < 0).any():
        log.warning("%d new tracks have no embedding in %s and are not ranked", int((rows < 0).sum()), embeddings.path)
    return [track for track, row in zip(tracks, rows, strict=True) if row >= 0], embeddings.vectors[rows[rows >= 0]]
