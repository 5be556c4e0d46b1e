"""Path-level entry points, one per workflow stage: read tables, call the library, write tables atomically.

The Snakemake scripts and the command-line interface both call these, so a stage behaves the same inside
and outside the workflow. Everything below them works on arrays and DataFrames.

Each stage imports the heavy parts of the library (torch, librosa, SciPy) inside its function: every
Snakemake job is a fresh process, and a job should not pay seconds of imports for code it never runs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from audiorec.datasets import get_source
from audiorec.errors import ParameterError
from audiorec.tables import read_embeddings, read_table, resolve_audio_path, write_table, write_text_atomic

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
    share = result.replayed / max(result.train.height, 1)
    log.info("%d train pairs (%.1f %%) replay tracks first heard before the window", result.replayed, 100 * share)


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
    uncovered_path: str | Path | None = None,
) -> None:
    """Collect per-user metrics of every run into the results table (CSV and Markdown) and test its rows.

    Each element of ``runs`` names a metrics file (``path``) and its ``split``, ``model``, ``backbone`` and
    ``seed``. ``tests`` holds ``random_variants`` (model -> its random-init variants), ``baseline_backbone``,
    ``shuffled_suffix``, ``alpha`` and optionally ``chance_model`` (see :mod:`audiorec.significance`).
    ``title`` heads the Markdown table (the same stage writes the cold-start table); ``uncovered_path`` (the main
    table's candidate set, :mod:`audiorec.candidates`) adds a note of how many train items every row ranks.
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
    if uncovered_path is not None:
        from audiorec.candidates import coverage_note, read_uncovered

        train_items = int(split_stats.filter(pl.col("split") == "train").get_column("items")[0])
        note = coverage_note(train_items, read_uncovered(uncovered_path))
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
    split_paths: Mapping[str, str | Path],
    truth_path: str | Path,
    model_spec: Mapping[str, Any],
    ks: Sequence[int],
    csv_path: str | Path,
) -> None:
    """Score every hidden layer stored in a backbone's shards with one training-free model (see
    :mod:`audiorec.layer_sweep`) on the users of ``truth_path`` (the validation split), and write one row per
    layer. ``split_paths`` names the ``train``, ``heard_before_window`` and ``uncovered`` files: each layer ranks
    the candidate set of the results table with the same exclusions."""
    from audiorec.candidates import candidate_track_ids, read_uncovered
    from audiorec.embed import read_shard_layers
    from audiorec.layer_sweep import sweep_layers

    combined, per_layer, _ = read_shard_layers(shard_paths)
    track_ids = combined.column("track_id").to_pylist()
    log.info("%d layers of %d tracks: %s", len(per_layer), len(track_ids), ", ".join(per_layer))
    train = read_table(split_paths["train"], "split")
    candidates = candidate_track_ids(train, read_uncovered(split_paths["uncovered"]))
    table = sweep_layers(
        track_ids,
        per_layer,
        train,
        read_table(truth_path, "split"),
        model_spec,
        ks,
        heard_before=read_table(split_paths["heard_before_window"], "split"),
        candidates=candidates,
    )
    write_text_atomic(table.write_csv(float_precision=6), csv_path)


def layer_figure(sweeps: Mapping[str, str | Path], metric: str, path: str | Path) -> None:
    """Draw ``metric`` by layer for every swept backbone (``sweeps`` maps a backbone to its sweep table)."""
    from audiorec.figures import layer_curves

    layer_curves({backbone: pl.read_csv(table) for backbone, table in sweeps.items()}, metric, path)
