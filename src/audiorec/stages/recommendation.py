"""Stages of the recommend and train rules: the candidate set, ranking (with training), new releases.

Both ranking stages start from the same :class:`RankingInputs` (the model, the split tables it reads, the
catalogue), so the main ranking and the cold-start ranking of a run see the same model and the same items. What
they decide from these tables lives in :mod:`audiorec.recommenders.runs`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from audiorec.common.names import COLD_SPLIT
from audiorec.errors import ParameterError, SchemaError
from audiorec.storage.tables import read_embeddings, read_table, write_table

if TYPE_CHECKING:
    from audiorec.recommenders import Catalogue, Recommender, TrainData
    from audiorec.recommenders.runs import EmbeddingsTable

log = logging.getLogger(__name__)


def candidates(train_path: str | Path, embeddings: Mapping[str, str | Path], out_path: str | Path) -> None:
    """Write the train items left out of the candidate set (:mod:`audiorec.protocol.candidates`): those some backbone of
    ``embeddings`` (name → embeddings table) could not embed."""
    from audiorec.protocol.candidates import write_candidates

    write_candidates(train_path, embeddings, out_path)


def tuned_spec(model_spec: Mapping[str, Any], tuned_path: str | Path | None) -> dict[str, Any]:
    """``model_spec`` with the options a study found best (``best.json`` of rule tune) over its own, if any."""
    spec = dict(model_spec)
    if tuned_path is not None:
        best = json.loads(Path(tuned_path).read_text())
        spec["options"] = {**dict(spec.get("options") or {}), **best["params"]}
        log.info("options tuned on validation (%s = %.6f): %s", best["metric"], best["value"], best["params"])
    return spec


def build_model(
    model_spec: Mapping[str, Any], seed: int, threads: int | None, embeddings_path: str | Path | None = None
) -> Recommender:
    """The configured model; caps torch's CPU threads at ``threads`` first, since the model's work follows.

    A random-init variant with ``item_dim: match`` (:mod:`audiorec.evaluation.controls`) takes the width of the
    embeddings table at ``embeddings_path``. A tuned model's spec comes through :func:`tuned_spec` first.
    """
    from audiorec.evaluation.controls import MATCH, matches_width
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


def read_model_embeddings(model: Recommender, embeddings_path: str | Path | None) -> EmbeddingsTable | None:
    """The embeddings table a model ranks with (None for a model without one); an error if it needs one."""
    from audiorec.recommenders.runs import EmbeddingsTable

    if not model.uses_embeddings:
        return None
    if embeddings_path is None:
        raise ParameterError(f"model {model.kind} needs an embeddings table")
    return EmbeddingsTable(Path(embeddings_path), *read_embeddings(embeddings_path))


@dataclass(frozen=True)
class RankingInputs:
    """What both ranking stages read before they rank: the model, the split's train and ``heard_before_window``
    tables, the run's embeddings table (None for a model without one, or where the caller does not keep it) and
    the catalogue of candidates."""

    model: Recommender
    train: pl.DataFrame
    heard_before: pl.DataFrame
    embeddings: EmbeddingsTable | None
    catalogue: Catalogue

    @classmethod
    def read(
        cls,
        model_spec: Mapping[str, Any],
        seed: int,
        split_paths: Mapping[str, str | Path],
        embeddings_path: str | Path | None,
        *,
        shuffle: bool,
        threads: int | None,
        tuned_path: str | Path | None = None,
        keep_table: bool = False,
    ) -> RankingInputs:
        """Build the model and read its tables; ``shuffle`` permutes the candidates' embedding rows with ``seed``
        (the shuffled-embedding control, see :mod:`audiorec.evaluation.controls`); ``tuned_path`` is a tuned
        model's ``best.json``. The whole embeddings table is kept only with ``keep_table`` (for tracks outside the
        candidates, as the cold-start stage needs): the catalogue holds the candidates' rows, and the table beside
        it would stay resident through training for nothing (1.9 GB at 4800-d over the Onion's 100k tracks)."""
        from audiorec.protocol.candidates import candidate_track_ids, read_uncovered
        from audiorec.recommenders.runs import model_catalogue

        model = build_model(tuned_spec(model_spec, tuned_path), seed, threads, embeddings_path)
        train = read_table(split_paths["train"], "split")
        embeddings = read_model_embeddings(model, embeddings_path)
        track_ids = candidate_track_ids(train, read_uncovered(split_paths["uncovered"]))
        catalogue = model_catalogue(model, track_ids, embeddings, shuffle, seed)
        heard_before = read_table(split_paths["heard_before_window"], "split")
        return cls(model, train, heard_before, embeddings if keep_table else None, catalogue)

    def fitting_data(self, validation_path: str | Path) -> tuple[TrainData, TrainData]:
        """The train and validation pairs a trained model learns on, and is restored on (see
        :func:`audiorec.recommenders.runs.fitting_data`)."""
        from audiorec.recommenders.runs import fitting_data

        validation = read_table(validation_path, "split")
        return fitting_data(self.train, validation, self.catalogue, self.heard_before)


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
    tuned_path: str | Path | None = None,
    retrieval: str | Mapping[str, Any] | None = None,
) -> None:
    """Fit a recommender on train and write top-``top_k`` lists for every user of the target splits.

    ``split_paths`` names the split's ``train``, ``heard_before_window`` and ``uncovered`` files (and ``val`` for a
    trained model): the model ranks the candidate set (:mod:`audiorec.protocol.candidates`) and every ranking leaves out
    what its user heard before the evaluation window. ``shuffle`` permutes the candidates' embedding rows with
    ``seed`` first (the shuffled-embedding control, see :mod:`audiorec.evaluation.controls`). A trained model
    (:class:`~audiorec.recommenders.TrainedRecommender`) learns on every train user, early-stops on ``val``,
    and writes its best weights to ``checkpoint_path`` and one row per epoch to ``training_log_path``; its
    per-epoch resume state lives beside the checkpoint. ``threads`` caps torch's CPU threads at the job's
    allotment: more threads than cores make small kernels spin instead of compute. ``retrieval`` (the config's
    ``retrieval`` block, or its JSON) is how a model that ranks by inner product finds its top K; the
    recommendations record it.
    """
    from audiorec.recommenders import RunFiles, TrainData, TrainedRecommender, recommendations_frame
    from audiorec.recommenders.base import fit_on_every_user
    from audiorec.recommenders.contract import check_ranking

    run = RankingInputs.read(
        model_spec, seed, split_paths, embeddings_path, shuffle=shuffle, threads=threads, tuned_path=tuned_path
    )
    model, catalogue = run.model, run.catalogue
    retrieval_used = use_retrieval(model, retrieval)
    if isinstance(model, TrainedRecommender):
        if checkpoint_path is None or training_log_path is None or "val" not in split_paths:
            raise ParameterError(
                f"model {model_spec['kind']} trains: it needs the val split, checkpoint_path and training_log_path"
            )
        fit_train, validation = run.fitting_data(split_paths["val"])
        model.fit(catalogue, fit_train, validation, RunFiles.beside(checkpoint_path, training_log_path))
    fit_on_every_user(model, catalogue, run.train, run.heard_before)
    users = sorted(set().union(*(read_table(p, "split").get_column("user_id").to_list() for p in target_paths)))
    train_data = TrainData.build(run.train, catalogue, users, run.heard_before)
    started = time.perf_counter()
    scores, items = model.recommend(catalogue, train_data, top_k)
    check_ranking(model.kind, train_data.user_ids, train_data.excluded, scores, items, top_k)
    log.info(
        "ranked %d users against %d candidates in %.1f s", len(users), len(catalogue), time.perf_counter() - started
    )
    frame = recommendations_frame(train_data.user_ids, catalogue, scores, items)
    complete = frame.group_by("user_id").len().filter(pl.col("len") >= top_k).height
    short = len(users) - complete
    if short:
        log.warning("%d of %d users received fewer than %d recommendations", short, len(users), top_k)
    metadata = {
        "model": dict(model_spec),
        "seed": seed,
        "n_candidates": len(catalogue),
        "device": _device(model),
        "retrieval": retrieval_used,
    }
    write_table(frame, out_path, kind="recommendations", metadata=metadata)


def use_retrieval(model: Recommender, retrieval: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """Give ``model`` the ``retrieval`` setting (a block or its JSON; None: exact) and return what it ranks with.

    Only a model that ranks by inner product can search an index; the plan tells the others nothing, and asking
    one of them for a non-exact backend is an error rather than a silently exact ranking.
    """
    from audiorec.recommenders.inner_product import InnerProductScoring
    from audiorec.recommenders.retrieval_options import RetrievalOptions

    options = RetrievalOptions.from_config(json.loads(retrieval) if isinstance(retrieval, str) else retrieval)
    if isinstance(model, InnerProductScoring):
        options.check_installed()
        model.retrieval = options
        log.info("retrieval: %s", options.describe())
    elif not options.is_exact:
        raise ParameterError(
            f"model {model.kind} does not rank by inner product, so it cannot use retrieval backend "
            f"{options.backend!r}; it always ranks exactly"
        )
    return options.recorded()


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
    tuned_path: str | Path | None = None,
) -> None:
    """Rank the evaluation window's cold tracks for every user of the cold-item split.

    The candidates are the tracks of ``split_paths[COLD_SPLIT]`` that have an embedding: tracks absent from train.
    Under ``paper2024`` no one heard them before the evaluation window (new releases); under ``journal2026``,
    which reads only the training and evaluation windows, they may have been heard before the training window.
    No other track enters the ranking, so the list measures how well the model orders items unseen in train, not
    how it trades them against known ones. The model sees the same catalogue as in its main run; the new tracks
    are scored from their content
    (:meth:`~audiorec.recommenders.Recommender.score_new_items`), for the shuffled control with their embeddings
    permuted among themselves. A trained model is restored from ``checkpoint_path`` (what rule
    train_recommender wrote), not trained again.
    """
    from audiorec.recommenders import Catalogue, TrainData, TrainedRecommender, recommendations_frame
    from audiorec.recommenders.base import fit_on_every_user, top_k_of_scores
    from audiorec.recommenders.runs import new_releases

    run = RankingInputs.read(
        model_spec,
        seed,
        split_paths,
        embeddings_path,
        shuffle=shuffle,
        threads=threads,
        tuned_path=tuned_path,
        keep_table=True,
    )
    model, catalogue = run.model, run.catalogue
    if not model.ranks_unseen_items:
        raise ParameterError(f"model {model.kind} cannot rank items unheard in train; it has no cold-start ranking")
    cold = read_table(split_paths[COLD_SPLIT], "split")
    new_tracks, new_vectors = new_releases(cold, run.embeddings, shuffle, seed)
    run = replace(run, embeddings=None)  # the whole table is not needed past the new tracks' rows
    if isinstance(model, TrainedRecommender):
        if checkpoint_path is None or "val" not in split_paths:
            raise ParameterError(f"model {model.kind} is restored from a checkpoint: it needs the val split too")
        model.restore(catalogue, *run.fitting_data(split_paths["val"]), checkpoint_path)
    fit_on_every_user(model, catalogue, run.train, run.heard_before)
    users = sorted(cold.get_column("user_id").unique().to_list())
    train_data = TrainData.build(run.train, catalogue, users)
    log.info("ranking %d new tracks for %d users", len(new_tracks), len(users))
    scores, items = top_k_of_scores(model.score_new_items(catalogue, train_data, new_vectors), top_k)
    frame = recommendations_frame(train_data.user_ids, Catalogue.from_tracks(new_tracks), scores, items)
    metadata = {"model": dict(model_spec), "seed": seed, "device": _device(model)}
    write_table(frame, out_path, kind="recommendations", metadata=metadata)


def _device(model: Any) -> str:
    """Where a model's tensors ran: its own device, the default one for torch models without, else the CPU."""
    from audiorec.common.devices import default_device, describe_device

    device = getattr(model, "device", None)
    if device is None:
        device = default_device() if getattr(model, "uses_gpu", False) else None
    description = "cpu" if device is None else describe_device(device)
    log.info("%s ranked on %s", model.kind, description)
    return description
