"""Stages of the report rules: the figures, and the layer sweep that scores every hidden layer of a backbone."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from audiorec.atomic import write_text_atomic
from audiorec.tables import read_table

log = logging.getLogger(__name__)


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
