"""Stages of the report rules: the figures, and the layer sweep that scores every hidden layer of a backbone."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from audiorec.storage.atomic import write_text_atomic
from audiorec.storage.tables import read_table

log = logging.getLogger(__name__)


def figures(
    recommendation_path: str | Path,
    significance_path: str | Path,
    metric: str,
    bars_path: str | Path,
    training_runs: Sequence[Mapping[str, Any]],
    curves_path: str | Path,
    tests: Mapping[str, Any],
    models: Sequence[str],
    backbones: Sequence[str],
    popularity_path: str | Path | None = None,
) -> None:
    """Draw the results bars, the training curves and, at ``popularity_path``, ``metric`` against the average
    recommendation popularity at its K (:mod:`audiorec.reporting.figures`) from the workflow's tables.

    ``training_runs`` name each trained run's ``training_log`` with its ``model``, ``backbone`` and ``seed``;
    ``tests`` are the aggregate rule's (random-init variants and alpha, so the bars carry the table's blocks and
    marks); ``models`` and ``backbones`` are the config's orders, which fix blocks, rows and colours.
    """
    from audiorec.reporting.figures import accuracy_popularity_scatter, recommendation_bars, training_curves

    variants = tests["random_variants"]
    summary = pl.read_csv(recommendation_path)
    recommendation_bars(
        summary,
        metric,
        bars_path,
        significance=pl.read_csv(significance_path),
        alpha=tests["alpha"],
        random_variants=variants,
        model_order=models,
        backbones=backbones,
    )
    logs = {
        (run["model"], run["backbone"], int(run["seed"])): pl.read_csv(run["training_log"]) for run in training_runs
    }
    families = {variant: model for model, names in variants.items() for variant in names}
    training_curves(logs, curves_path, families, backbones)
    if popularity_path is not None:
        accuracy_popularity_scatter(summary, metric, popularity_path, "test", models, backbones, variants)


def layer_sweep(
    shard_paths: Sequence[str | Path],
    split_paths: Mapping[str, str | Path],
    truth_path: str | Path,
    model_spec: Mapping[str, Any],
    ks: Sequence[int],
    csv_path: str | Path,
) -> None:
    """Score every hidden layer stored in a backbone's shards with one training-free model (see
    :mod:`audiorec.reporting.layer_sweep`) on the users of ``truth_path`` (the validation split), and write one row per
    layer. ``split_paths`` names the ``train``, ``heard_before_window`` and ``uncovered`` files: each layer ranks
    the candidate set of the results table with the same exclusions."""
    from audiorec.extraction.embed import read_shard_layers
    from audiorec.protocol.candidates import candidate_track_ids, read_uncovered
    from audiorec.reporting.layer_sweep import sweep_layers

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


def layer_figure(
    sweeps: Mapping[str, str | Path],
    metric: str,
    path: str | Path,
    layers: Mapping[str, str | int],
    backbones: Sequence[str],
) -> None:
    """Draw ``metric`` by layer for every swept backbone (``sweeps`` maps a backbone to its sweep table), marking
    each one's configured layer (``layers``); ``backbones``, the config's order, fixes the colours."""
    from audiorec.reporting.figures import layer_curves

    tables = {backbone: pl.read_csv(table) for backbone, table in sweeps.items()}
    layer_curves(tables, metric, path, layers, backbones)
