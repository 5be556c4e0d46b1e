"""Stages of the evaluate rules: per-user metrics of a run, and the results tables with their paired tests."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from audiorec.atomic import write_text_atomic
from audiorec.tables import read_table, write_table

log = logging.getLogger(__name__)


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
