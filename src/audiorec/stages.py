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
from typing import Any

import polars as pl

from audiorec.datasets import get_source
from audiorec.errors import ParameterError
from audiorec.tables import read_embeddings, read_table, resolve_audio_path, write_table, write_text_atomic

log = logging.getLogger(__name__)


def fetch_dataset(source: str, options: Mapping[str, Any], out_dir: str | Path) -> None:
    """Produce a dataset's tables (tracks, interactions, labels, playlists) in ``out_dir``."""
    get_source(source).fetch(options, out_dir)


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
) -> None:
    """Embed the ``shard``-th block of ``shard_size`` tracks (in tracks-table order) with every layer."""
    from audiorec.backbones import build_backbone
    from audiorec.embed import extract, write_shard

    tracks = read_table(tracks_path, "tracks").slice(shard * shard_size, shard_size)
    backbone = build_backbone(backbone_spec["kind"], backbone_spec.get("options"))
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
) -> None:
    """Fit a recommender on train and write top-``top_k`` lists for every user of the target splits."""
    from audiorec.recommenders import Catalogue, TrainData, recommendations_frame, recommender_class

    model_class = recommender_class(model_spec["kind"])
    model = model_class.from_options(dict(model_spec.get("options") or {}), seed)
    if model_class.uses_embeddings:
        if embeddings_path is None:
            raise ParameterError(f"model {model_spec['kind']} needs an embeddings table")
        track_ids, vectors = read_embeddings(embeddings_path)
        catalogue = Catalogue.from_tracks(track_ids, vectors)
    else:
        catalogue = Catalogue.from_tracks(read_table(tracks_path, "tracks").get_column("track_id").to_list())
    train = read_table(train_path, "split")
    users = sorted(set().union(*(read_table(p, "split").get_column("user_id").to_list() for p in target_paths)))
    train_data = TrainData.build(train, catalogue, users)
    scores, items = model.recommend(catalogue, train_data, top_k)
    frame = recommendations_frame(train_data.user_ids, catalogue, scores, items)
    complete = frame.group_by("user_id").len().filter(pl.col("len") >= top_k).height
    short = len(users) - complete
    if short:
        log.warning("%d of %d users received fewer than %d recommendations", short, len(users), top_k)
    write_table(frame, out_path, kind="recommendations", metadata={"model": dict(model_spec), "seed": seed})


def evaluate(recommendations_path: str | Path, truth_path: str | Path, ks: Sequence[int], out_path: str | Path) -> None:
    """Per-user ranking metrics of one run on one split."""
    from audiorec.metrics import evaluate_recommendations

    recommendations = read_table(recommendations_path, "recommendations")
    truth = read_table(truth_path, "split")
    write_table(evaluate_recommendations(recommendations, truth, ks), out_path)


def aggregate(
    runs: Sequence[Mapping[str, Any]], split_stats_path: str | Path, csv_path: str | Path, markdown_path: str | Path
) -> None:
    """Collect per-user metrics of every run into the recommendation results table (CSV and Markdown).

    Each element of ``runs`` names a metrics file (``path``) and its ``split``, ``model``, ``backbone`` and
    ``seed``.
    """
    from audiorec.report import recommendation_markdown, summarize_runs

    frames = [
        pl.read_parquet(run["path"]).with_columns(
            pl.lit(run["split"]).alias("split"),
            pl.lit(run["model"]).alias("model"),
            pl.lit(run["backbone"]).alias("backbone"),
            pl.lit(int(run["seed"])).alias("seed"),
        )
        for run in runs
    ]
    summary = summarize_runs(pl.concat(frames, how="vertical"))
    split_stats = pl.read_csv(split_stats_path)
    write_text_atomic(summary.write_csv(float_precision=6), csv_path)
    write_text_atomic(recommendation_markdown(summary, split_stats), markdown_path)
