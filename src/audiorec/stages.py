"""Path-level entry points, one per workflow stage: read tables, call the library, write tables atomically.

The Snakemake scripts and the command-line interface both call these, so a stage behaves the same inside
and outside the workflow. Everything below them works on arrays and DataFrames.

Each stage imports the heavy parts of the library (torch, librosa, FAISS, SciPy) inside its function: every
Snakemake job is a fresh process, and a job should not pay seconds of imports for code it never runs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from audiorec.datasets import get_source
from audiorec.errors import ParameterError
from audiorec.tables import read_embeddings, read_table, resolve_audio_path, write_table, write_text_atomic

if TYPE_CHECKING:
    from audiorec.recommenders import Catalogue, Recommender, TrainData

log = logging.getLogger(__name__)


def fetch_dataset(source: str, options: Mapping[str, Any], out_dir: str | Path) -> None:
    """Produce a dataset's tables (tracks, interactions, labels, playlists) in ``out_dir``."""
    get_source(source).fetch(options, out_dir)


def download(name: str, spec: Mapping[str, Any], dest: str | Path) -> None:
    """Fetch a declared file (URL or local path) to ``dest``, verified against its checksum."""
    from audiorec.download import DownloadSpec, fetch

    fetch(DownloadSpec.from_mapping(name, spec), dest)


def extract(archive_path: str | Path, archive_format: str, out_dir: str | Path) -> None:
    """Unpack a downloaded archive into ``out_dir``, refusing members that would land outside it."""
    from audiorec.archives import extract_archive

    extract_archive(archive_path, archive_format, out_dir)


def embed_precomputed(
    source: str,
    dataset_options: Mapping[str, Any],
    backbone_name: str,
    backbone_options: Mapping[str, Any],
    tracks_path: str | Path,
    embeddings_path: str | Path,
    failures_path: str | Path,
) -> None:
    """Write a ``precomputed`` backbone's embeddings: the dataset's own vectors, aligned with its tracks."""
    from audiorec.precomputed import PRECOMPUTED_KIND, import_features, precomputed_options

    feature = precomputed_options(backbone_options).feature
    metadata = {"backbone": backbone_name, "backbone_kind": PRECOMPUTED_KIND, "feature": feature, "source": source}
    import_features(source, dataset_options, feature, tracks_path, embeddings_path, failures_path, metadata)


def shard_count(n_tracks: int, shard_size: int) -> int:
    """Number of extraction shards for a catalogue (at least one)."""
    if shard_size <= 0:
        raise ParameterError(f"shard_size must be positive, got {shard_size}")
    return max(1, math.ceil(n_tracks / shard_size))


def embed_shard(
    tracks_path: str | Path,
    backbone_spec: Mapping[str, Any],
    shard: int,
    shard_size: int,
    vectors_path: str | Path,
    failures_path: str | Path,
    *,
    batch_size: int = 8,
    num_workers: int = 0,
    progress: bool = True,
    weights: str | Path | None = None,
) -> None:
    """Embed the ``shard``-th block of ``shard_size`` tracks (in tracks-table order) with every layer.

    ``weights`` is a checkpoint the workflow trained for this backbone (rule ``ssl_train``); it becomes the
    backbone's ``weights`` option.
    """
    from audiorec.backbones import build_backbone
    from audiorec.embed import extract, write_shard

    tracks = read_table(tracks_path, "tracks").slice(shard * shard_size, shard_size)
    options = dict(backbone_spec.get("options") or {})
    if weights is not None:
        options["weights"] = str(weights)
    backbone = build_backbone(backbone_spec["kind"], options)
    paths = [resolve_audio_path(p, tracks_path) for p in tracks.get_column("audio_path")]
    result = extract(
        tracks.get_column("track_id").to_list(),
        paths,
        backbone,
        batch_size=batch_size,
        num_workers=num_workers,
        progress=progress,
        description=f"{backbone_spec['kind']} shard {shard}",
    )
    log.info("shard %d: %d tracks embedded, %d failed", shard, len(result.track_ids), len(result.failures))
    write_shard(result, backbone, vectors_path, failures_path)


def gather_embeddings(
    shard_paths: Sequence[str | Path],
    failure_paths: Sequence[str | Path],
    backbone_name: str,
    layer: str | int,
    embeddings_path: str | Path,
    failures_path: str | Path,
) -> None:
    """Write a backbone's embeddings table for the configured layer from its shards."""
    from audiorec.embed import gather_shards

    n = gather_shards(shard_paths, failure_paths, layer, embeddings_path, failures_path, {"backbone": backbone_name})
    log.info("%s: %d tracks in %s", backbone_name, n, embeddings_path)


def split_dataset(interactions_path: str | Path, split_options: Mapping[str, Any], out_dir: str | Path) -> None:
    """Temporal split of a listening log into train/val/test/cold_test tables and their statistics."""
    from audiorec.split import SplitConfig, temporal_split, write_split

    interactions = pl.scan_parquet(interactions_path)
    result = temporal_split(interactions, SplitConfig.from_mapping(split_options))
    write_split(result, out_dir)
    log.info("split statistics:\n%s", result.statistics())


def recommend(
    model_spec: Mapping[str, Any],
    seed: int,
    train_path: str | Path,
    target_paths: Sequence[str | Path],
    tracks_path: str | Path,
    embeddings_path: str | Path | None,
    top_k: int,
    out_path: str | Path,
    *,
    shuffle: bool = False,
    validation_path: str | Path | None = None,
    checkpoint_path: str | Path | None = None,
    training_log_path: str | Path | None = None,
    threads: int | None = None,
) -> None:
    """Fit a recommender on train and write top-``top_k`` lists for every user of the target splits.

    ``shuffle`` permutes the embedding rows with ``seed`` first (the shuffled-embedding control, see
    :mod:`audiorec.controls`). A trained model (:class:`~audiorec.recommenders.TrainedRecommender`) learns on
    every train user, early-stops on ``validation_path``, and writes its best weights to ``checkpoint_path``
    and one row per epoch to ``training_log_path``; its per-epoch resume state lives beside the checkpoint.
    ``threads`` caps torch's CPU threads at the job's allotment: more threads than cores make small kernels
    spin instead of compute.
    """
    from audiorec.recommenders import RunFiles, TrainData, TrainedRecommender, recommendations_frame, recommender_class

    model = recommender_class(model_spec["kind"]).from_options(dict(model_spec.get("options") or {}), seed)
    catalogue = model_catalogue(model, tracks_path, embeddings_path, shuffle, seed)
    train = read_table(train_path, "split")
    if isinstance(model, TrainedRecommender):
        if validation_path is None or checkpoint_path is None or training_log_path is None:
            raise ParameterError(
                f"model {model_spec['kind']} trains: it needs validation_path, checkpoint_path and training_log_path"
            )
        fit_train, validation = fitting_data(train, validation_path, catalogue, threads)
        model.fit(catalogue, fit_train, validation, RunFiles.beside(checkpoint_path, training_log_path))
    users = sorted(set().union(*(read_table(p, "split").get_column("user_id").to_list() for p in target_paths)))
    train_data = TrainData.build(train, catalogue, users)
    scores, items = model.recommend(catalogue, train_data, top_k)
    frame = recommendations_frame(train_data.user_ids, catalogue, scores, items)
    complete = frame.group_by("user_id").len().filter(pl.col("len") >= top_k).height
    short = len(users) - complete
    if short:
        log.warning("%d of %d users received fewer than %d recommendations", short, len(users), top_k)
    write_table(frame, out_path, kind="recommendations", metadata={"model": dict(model_spec), "seed": seed})


def fitting_data(
    train: pl.DataFrame, validation_path: str | Path, catalogue: Catalogue, threads: int | None
) -> tuple[TrainData, TrainData]:
    """Train and validation pairs indexed for every train user, as a trained model learns (and is restored) on
    them; caps torch's CPU threads at ``threads`` first, since the model's work follows."""
    from audiorec.recommenders import TrainData

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    fit_users = sorted(train.get_column("user_id").unique().to_list())
    validation = TrainData.build(read_table(validation_path, "split"), catalogue, fit_users)
    return TrainData.build(train, catalogue, fit_users), validation


def model_catalogue(
    model: Recommender, tracks_path: str | Path, embeddings_path: str | Path | None, shuffle: bool, seed: int
) -> Catalogue:
    """The items a model ranks: the embeddings table's tracks (permuted when ``shuffle``), else every track."""
    from audiorec.recommenders import Catalogue

    if not model.uses_embeddings:
        return Catalogue.from_tracks(read_table(tracks_path, "tracks").get_column("track_id").to_list())
    if embeddings_path is None:
        raise ParameterError(f"model {model.kind} needs an embeddings table")
    track_ids, vectors = read_embeddings(embeddings_path)
    if shuffle:
        from audiorec.controls import shuffle_rows

        vectors = shuffle_rows(vectors, seed)
    return Catalogue.from_tracks(track_ids, vectors)


def recommend_new_items(
    model_spec: Mapping[str, Any],
    seed: int,
    train_path: str | Path,
    cold_path: str | Path,
    tracks_path: str | Path,
    embeddings_path: str | Path | None,
    top_k: int,
    out_path: str | Path,
    *,
    shuffle: bool = False,
    validation_path: str | Path | None = None,
    checkpoint_path: str | Path | None = None,
    threads: int | None = None,
) -> None:
    """Rank the new releases of the evaluation window for every user of the cold-item split.

    The candidates are the tracks of ``cold_path`` (tracks first heard in the evaluation window, so nobody heard
    them in train) that are in the model's catalogue; every other track is left out of the ranking, so the list
    measures how well the model orders unseen items, not how it trades them against known ones. A trained model
    is restored from ``checkpoint_path`` (what rule train_recommender wrote), not trained again; ``threads`` caps
    torch's CPU threads as in :func:`recommend`.
    """
    from audiorec.recommenders import TrainData, TrainedRecommender, recommendations_frame, recommender_class
    from audiorec.recommenders.base import top_k_of_candidates

    model = recommender_class(model_spec["kind"]).from_options(dict(model_spec.get("options") or {}), seed)
    if not model.ranks_unseen_items:
        raise ParameterError(f"model {model.kind} cannot rank items unheard in train; it has no cold-start ranking")
    catalogue = model_catalogue(model, tracks_path, embeddings_path, shuffle, seed)
    train = read_table(train_path, "split")
    cold = read_table(cold_path, "split")
    if isinstance(model, TrainedRecommender):
        if validation_path is None or checkpoint_path is None:
            raise ParameterError(f"model {model.kind} is restored from a checkpoint: it needs validation_path too")
        model.restore(catalogue, *fitting_data(train, validation_path, catalogue, threads), checkpoint_path)
    candidate_index = catalogue.index_of(cold.get_column("track_id").unique().sort())
    missing = int((candidate_index < 0).sum())
    if missing:
        log.warning("%d new tracks of %s have no embedding and are not ranked", missing, cold_path)
    candidates = candidate_index[candidate_index >= 0]
    users = sorted(cold.get_column("user_id").unique().to_list())
    train_data = TrainData.build(train, catalogue, users)
    log.info("ranking %d new tracks for %d users", len(candidates), len(users))
    scores, items = top_k_of_candidates(
        model.score_candidates(catalogue, train_data, candidates), candidates, train_data.heard, top_k
    )
    frame = recommendations_frame(train_data.user_ids, catalogue, scores, items)
    write_table(frame, out_path, kind="recommendations", metadata={"model": dict(model_spec), "seed": seed})


def evaluate(recommendations_path: str | Path, truth_path: str | Path, ks: Sequence[int], out_path: str | Path) -> None:
    """Per-user ranking metrics of one run on one split."""
    from audiorec.metrics import evaluate_recommendations

    recommendations = read_table(recommendations_path, "recommendations")
    truth = read_table(truth_path, "split")
    write_table(evaluate_recommendations(recommendations, truth, ks), out_path)


def aggregate(
    runs: Sequence[Mapping[str, Any]],
    split_stats_path: str | Path,
    csv_path: str | Path,
    markdown_path: str | Path,
    significance_path: str | Path,
    tests: Mapping[str, Any],
    title: str = "Recommendation results",
) -> None:
    """Collect per-user metrics of every run into the results table (CSV and Markdown) and test its rows.

    Each element of ``runs`` names a metrics file (``path``) and its ``split``, ``model``, ``backbone`` and
    ``seed``. ``tests`` holds ``random_variants`` (model -> its random-init variants), ``baseline_backbone``,
    ``shuffled_suffix``, ``alpha`` and optionally ``chance_model`` (see :mod:`audiorec.significance`).
    ``title`` heads the Markdown table (the same stage writes the cold-start table).
    """
    from audiorec.report import COLD_SPLIT, cold_start_note, metric_columns, recommendation_markdown, summarize_runs
    from audiorec.significance import marks_legend, significance_marks, significance_table

    frames = [
        read_table(run["path"]).with_columns(
            pl.lit(run["split"]).alias("split"),
            pl.lit(run["model"]).alias("model"),
            pl.lit(run["backbone"]).alias("backbone"),
            pl.lit(int(run["seed"])).alias("seed"),
        )
        for run in runs
    ]
    per_user = pl.concat(frames, how="vertical")
    summary = summarize_runs(per_user)
    chance_model = tests.get("chance_model")
    significance = significance_table(
        per_user, tests["random_variants"], tests["baseline_backbone"], tests["shuffled_suffix"], chance_model
    )
    log.info("%d paired tests, Holm-adjusted per split", significance.height)
    marks = significance_marks(significance, tests["alpha"])
    legend = marks_legend(tests["baseline_backbone"], tests["alpha"], chance_model)
    split_stats = pl.read_csv(split_stats_path)
    write_text_atomic(summary.write_csv(float_precision=6), csv_path)
    write_text_atomic(significance.write_csv(float_precision=6), significance_path)
    cold = any(run["split"] == COLD_SPLIT for run in runs)
    note = cold_start_note(split_stats, metric_columns(per_user)) if cold else None
    models = [run["model"] for run in runs]
    markdown = recommendation_markdown(
        summary, split_stats, marks, legend, title, tests["random_variants"], models, note
    )
    write_text_atomic(markdown, markdown_path)


def mir_versus_recommendation(
    probes_path: str | Path,
    recommendation_path: str | Path,
    metric: str,
    csv_path: str | Path,
    correlations_path: str | Path,
    markdown_path: str | Path,
    scatter_path: str | Path,
) -> None:
    """Write the MIR-versus-recommendation table, Spearman correlations and scatter (:mod:`audiorec.mir_vs_recs`)."""
    from audiorec.figures import mir_scatter
    from audiorec.mir_vs_recs import mir_vs_recs, mir_vs_recs_markdown

    table, correlations = mir_vs_recs(pl.read_csv(probes_path), pl.read_csv(recommendation_path), metric)
    write_text_atomic(table.write_csv(float_precision=6), csv_path)
    write_text_atomic(correlations.write_csv(float_precision=6), correlations_path)
    write_text_atomic(mir_vs_recs_markdown(table, correlations, "test"), markdown_path)
    mir_scatter(table, correlations, scatter_path)


def figures(
    recommendation_path: str | Path,
    metric: str,
    bars_path: str | Path,
    training_runs: Sequence[Mapping[str, Any]],
    curves_path: str | Path,
) -> None:
    """Draw the results bars and the training curves (:mod:`audiorec.figures`) from the workflow's tables.

    ``training_runs`` name each trained run's ``training_log`` with its ``model``, ``backbone`` and ``seed``.
    """
    from audiorec.figures import recommendation_bars, training_curves

    recommendation_bars(pl.read_csv(recommendation_path), metric, bars_path)
    logs = {
        f"{run['model']}/{run['backbone']}/seed{run['seed']}": pl.read_csv(run["training_log"]) for run in training_runs
    }
    training_curves(logs, curves_path)


def ssl_training_tracks(
    tracks_path: str | Path,
    label_paths: Sequence[str | Path],
    train_split_path: str | Path | None,
    out_path: str | Path,
) -> None:
    """Write the tracks self-supervised encoders may train on (:mod:`audiorec.ssl.data`): ``track_id``."""
    from audiorec.ssl import training_track_ids

    track_ids = read_table(tracks_path, "tracks").get_column("track_id").to_list()
    labels = [read_table(path, "labels") for path in label_paths]
    train = read_table(train_split_path, "split") if train_split_path is not None else None
    chosen = training_track_ids(track_ids, labels, train)
    log.info("%d of %d tracks are self-supervised training tracks", len(chosen), len(track_ids))
    write_table(pl.DataFrame({"track_id": chosen}, schema={"track_id": pl.String}), out_path)


def ssl_train(
    tracks_path: str | Path,
    training_tracks_path: str | Path,
    options: Mapping[str, Any],
    out_path: str | Path,
    *,
    num_workers: int = 0,
    progress: bool = True,
) -> None:
    """Train a self-supervised encoder on the training tracks' audio and write its checkpoint.

    The training state after every epoch is kept beside the checkpoint (``<name>.state.pt``), so an
    interrupted job resumes, and a job rerun with more ``epochs`` continues where the last one ended.
    """
    from audiorec.ssl import SSLConfig, save_checkpoint, train

    config = SSLConfig.from_mapping(options)
    chosen = read_table(training_tracks_path).get_column("track_id").to_list()
    tracks = read_table(tracks_path, "tracks").filter(pl.col("track_id").is_in(chosen))
    paths = [resolve_audio_path(p, tracks_path) for p in tracks.get_column("audio_path")]
    state_path = Path(out_path).with_suffix(".state.pt")
    model, history = train(config, paths, resume_path=state_path, num_workers=num_workers, progress=progress)
    save_checkpoint(model, history, out_path)
    log.info("losses per epoch: %s", ", ".join(f"{loss:.4f}" for loss in history.losses))


def probe(
    task: str,
    embeddings_path: str | Path,
    task_table_path: str | Path,
    options: Mapping[str, Any],
    out_path: str | Path,
    *,
    excluded_path: str | Path | None = None,
) -> None:
    """Probe a backbone's embeddings on one task and write the result as JSON.

    ``task`` is :data:`audiorec.playlists.PLAYLIST_TASK` (``task_table_path`` is the playlists table; tracks listed in
    ``excluded_path`` leave the catalogue) or a label task (``task_table_path`` is its labels table).
    ``options`` is the config's ``probes`` block.
    """
    import json

    from audiorec.playlists import PLAYLIST_TASK

    track_ids, vectors = read_embeddings(embeddings_path)
    if task == PLAYLIST_TASK:
        from audiorec.config import dataclass_from_mapping
        from audiorec.playlists import ContinuationProtocol, probe_playlists

        protocol = dataclass_from_mapping(ContinuationProtocol, options.get("playlist"), "probes.playlist")
        excluded = read_table(excluded_path).get_column("track_id").to_list() if excluded_path is not None else []
        result = probe_playlists(track_ids, vectors, read_table(task_table_path, "playlists"), excluded, protocol)
    else:
        from audiorec.probes import DEFAULT_CS, probe_labels

        result = probe_labels(
            track_ids,
            vectors,
            read_table(task_table_path, "labels"),
            options.get("C", DEFAULT_CS),
            max_iter=options.get("max_iter", 5000),
            seed=options.get("seed", 0),
        )
    payload = {"task": task, "dim": int(vectors.shape[1]), **result}
    log.info("%s probe: %s", task, json.dumps(payload))
    write_text_atomic(json.dumps(payload, indent=2) + "\n", out_path)


def probe_table(results: Sequence[Mapping[str, Any]], csv_path: str | Path, markdown_path: str | Path) -> None:
    """Collect probe results into the MIR table (CSV and Markdown), one row per backbone.

    Each element of ``results`` names a probe JSON (``path``) and its ``task`` and ``backbone``.
    """
    import json

    from audiorec.report import probe_markdown, probe_summary

    summary = probe_summary(
        [{**json.loads(Path(r["path"]).read_text()), "task": r["task"], "backbone": r["backbone"]} for r in results]
    )
    write_text_atomic(summary.write_csv(float_precision=6), csv_path)
    write_text_atomic(probe_markdown(summary), markdown_path)


def ssl_summary(
    probes_path: str | Path,
    encoders: Mapping[str, Mapping[str, Any] | None],
    csv_path: str | Path,
    markdown_path: str | Path,
) -> None:
    """The self-supervised encoders' probe results in the layout of Choi et al. (2022), Table 3.

    ``encoders`` maps each backbone to show to its ssl options, or to None for a baseline (see
    :func:`audiorec.ssl_table.ssl_table`).
    """
    from audiorec.ssl_table import ssl_markdown, ssl_table

    table = ssl_table(pl.read_csv(probes_path), encoders)
    write_text_atomic(table.write_csv(float_precision=6), csv_path)
    write_text_atomic(ssl_markdown(table), markdown_path)


def layer_sweep(
    shard_paths: Sequence[str | Path],
    train_path: str | Path,
    truth_path: str | Path,
    model_spec: Mapping[str, Any],
    ks: Sequence[int],
    csv_path: str | Path,
) -> None:
    """Score every hidden layer stored in a backbone's shards with one training-free model (see
    :mod:`audiorec.layer_sweep`) and write one row per layer."""
    from audiorec.embed import read_shard_layers
    from audiorec.layer_sweep import sweep_layers

    combined, per_layer, _ = read_shard_layers(shard_paths)
    track_ids = combined.column("track_id").to_pylist()
    log.info("%d layers of %d tracks: %s", len(per_layer), len(track_ids), ", ".join(per_layer))
    table = sweep_layers(
        track_ids, per_layer, read_table(train_path, "split"), read_table(truth_path, "split"), model_spec, ks
    )
    write_text_atomic(table.write_csv(float_precision=6), csv_path)


def layer_figure(sweeps: Mapping[str, str | Path], metric: str, path: str | Path) -> None:
    """Draw ``metric`` by layer for every swept backbone (``sweeps`` maps a backbone to its sweep table)."""
    from audiorec.figures import layer_curves

    layer_curves({backbone: pl.read_csv(table) for backbone, table in sweeps.items()}, metric, path)
