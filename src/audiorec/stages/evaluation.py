"""Stages of the evaluation rules: every run scored per user, and the results tables with their paired tests."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from audiorec.storage.atomic import write_text_atomic
from audiorec.storage.tables import read_table, write_table

log = logging.getLogger(__name__)


def score_runs(runs: Sequence[Mapping[str, Any]], ks: Sequence[int]) -> pl.DataFrame:
    """Per-user metrics of every run (:func:`audiorec.evaluation.metrics.evaluate_recommendations`), one long table.

    Each element of ``runs`` names its ranked lists (``rankings``), the held-out split they are scored against
    (``truth``, whose name is ``split``) and the ``model``, ``backbone`` and ``seed`` its rows are labelled with.
    Every file is read once, however many runs and splits share it (one recommendations table holds the
    rankings of both evaluation splits).
    """
    from audiorec.evaluation.metrics import evaluate_recommendations

    truths: dict[str, pl.DataFrame] = {}
    rankings: tuple[str, pl.DataFrame] | None = None  # a run's splits follow each other: one table in memory
    frames = []
    for index, run in enumerate(runs, start=1):
        started = time.perf_counter()
        if rankings is None or rankings[0] != run["rankings"]:
            rankings = (run["rankings"], read_table(run["rankings"], "recommendations"))
        if run["truth"] not in truths:
            truths[run["truth"]] = read_table(run["truth"], "split")
        scores = evaluate_recommendations(rankings[1], truths[run["truth"]], ks)
        frames.append(
            scores.with_columns(
                pl.lit(run["split"]).alias("split"),
                pl.lit(run["model"]).alias("model"),
                pl.lit(run["backbone"]).alias("backbone"),
                pl.lit(int(run["seed"])).alias("seed"),
            )
        )
        log.info(
            "[%d/%d] %s on %s, seed %s, %s: %d users scored in %.1f s",
            *(index, len(runs), run["model"], run["backbone"], run["seed"], run["split"], scores.height),
            time.perf_counter() - started,
        )
    columns = ["split", "model", "backbone", "seed", "user_id"]
    return pl.concat(frames, how="vertical").select(*columns, pl.exclude(columns))


def aggregate(
    runs: Sequence[Mapping[str, Any]],
    ks: Sequence[int],
    split_stats_path: str | Path,
    csv_path: str | Path,
    markdown_path: str | Path,
    significance_path: str | Path,
    per_user_path: str | Path,
    tests: Mapping[str, Any],
    title: str = "Recommendation results",
    uncovered_path: str | Path | None = None,
) -> None:
    """Score every run (:func:`score_runs`) into the results table (CSV and Markdown) and test its rows.

    ``runs`` are as :func:`score_runs` takes them, scored at the cut-offs ``ks``; their per-user metrics are
    written to ``per_user_path`` (one row per split, model, backbone, seed and user), for tests of one's own.
    ``tests`` holds ``random_variants`` (model -> its random-init variants), ``baseline_backbone``,
    ``shuffled_suffix``, ``alpha`` and optionally ``chance_model`` (see :mod:`audiorec.evaluation.significance`).
    ``title`` heads the Markdown table (the same stage writes the cold-start table); ``uncovered_path`` (the main
    table's candidate set, :mod:`audiorec.protocol.candidates`) adds a note of how many train items every row ranks.
    """
    from audiorec.evaluation.significance import marks_legend, significance_marks, significance_table
    from audiorec.reporting.report import (
        COLD_SPLIT,
        cold_start_note,
        metric_columns,
        recommendation_markdown,
        summarize_runs,
    )

    per_user = score_runs(runs, ks)
    write_table(per_user, per_user_path)
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
        from audiorec.protocol.candidates import coverage_note, read_uncovered

        train_items = int(split_stats.filter(pl.col("split") == "train").get_column("items")[0])
        note = coverage_note(train_items, read_uncovered(uncovered_path))
    models = [run["model"] for run in runs]
    markdown = recommendation_markdown(
        summary, split_stats, marks, legend, title, tests["random_variants"], models, note
    )
    write_text_atomic(markdown, markdown_path)
