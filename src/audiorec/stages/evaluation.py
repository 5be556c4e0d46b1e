"""Stages of the evaluation rules: every run scored per user, and the results tables with their paired tests."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from audiorec.storage.atomic import write_text_atomic
from audiorec.storage.tables import read_table, write_table

if TYPE_CHECKING:
    from audiorec.evaluation.beyond_accuracy import ItemReference

log = logging.getLogger(__name__)


def score_runs(runs: Sequence[Mapping[str, Any]], ks: Sequence[int]) -> pl.DataFrame:
    """Per-user metrics of every run (:func:`audiorec.evaluation.metrics.evaluate_recommendations`), one long table.

    Each element of ``runs`` names its ranked lists (``rankings``), the held-out split they are scored against
    (``truth``, whose name is ``split``) and the ``model``, ``backbone`` and ``seed`` its rows are labelled with.
    Every file is read once, however many runs and splits share it (one recommendations table holds the
    rankings of both evaluation splits).
    """
    return score_rankings(runs, ks)[0]


def score_rankings(
    runs: Sequence[Mapping[str, Any]],
    ks: Sequence[int],
    items: ItemReference | None = None,
    candidates: Sequence[str] = (),
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """:func:`score_runs`, and with ``items`` the beyond-accuracy metrics (:mod:`audiorec.evaluation.beyond_accuracy`).

    Returns the per-user table (accuracy metrics, then ARP, Novelty and ILD when ``items`` is given) and the
    per-ranking table: one row per split, model, backbone and seed with Coverage and Gini over ``candidates`` (the
    items every main-table row ranks) or, for the cold split, over the new releases of its truth table, the only
    items a cold-start ranking draws from. Without ``items`` the per-ranking table is empty.
    """
    from audiorec.common.names import COLD_SPLIT
    from audiorec.evaluation.beyond_accuracy import beyond_accuracy
    from audiorec.evaluation.metrics import evaluate_recommendations

    truths: dict[str, pl.DataFrame] = {}
    rankings: tuple[str, pl.DataFrame] | None = None  # a run's splits follow each other: one table in memory
    frames, per_ranking = [], []
    for index, run in enumerate(runs, start=1):
        started = time.perf_counter()
        if rankings is None or rankings[0] != run["rankings"]:
            rankings = (run["rankings"], read_table(run["rankings"], "recommendations"))
        if run["truth"] not in truths:
            truths[run["truth"]] = read_table(run["truth"], "split")
        labels = {key: run[key] for key in ("split", "model", "backbone")} | {"seed": int(run["seed"])}
        scores = evaluate_recommendations(rankings[1], truths[run["truth"]], ks)
        if items is not None:
            users = scores.get_column("user_id").to_list()
            pool = truths[run["truth"]].get_column("track_id").unique() if run["split"] == COLD_SPLIT else candidates
            beyond, exposure = beyond_accuracy(rankings[1], users, items, pool, ks)
            scores = scores.join(beyond, on="user_id", how="left", maintain_order="left")
            per_ranking.append(labels | exposure)
        frames.append(scores.with_columns(pl.lit(value).alias(key) for key, value in labels.items()))
        log.info(
            "[%d/%d] %s on %s, seed %s, %s: %d users scored in %.1f s",
            *(index, len(runs), run["model"], run["backbone"], run["seed"], run["split"], scores.height),
            time.perf_counter() - started,
        )
    columns = ["split", "model", "backbone", "seed", "user_id"]
    per_user = pl.concat(frames, how="vertical").select(*columns, pl.exclude(columns))
    if not per_ranking:
        return per_user, pl.DataFrame(schema={"split": pl.String, "model": pl.String, "backbone": pl.String})
    return per_user, pl.from_dicts(per_ranking, infer_schema_length=None)


def item_reference(train: pl.DataFrame, reference_path: str | Path | None = None) -> ItemReference:
    """The popularity in ``train`` (the train split) and, from an embeddings table, the reference space of the
    beyond-accuracy metrics."""
    from audiorec.evaluation.beyond_accuracy import ItemReference
    from audiorec.storage.tables import read_embeddings

    if reference_path is None:
        return ItemReference.build(train)
    track_ids, vectors = read_embeddings(reference_path)
    log.info("ILD in the space of %s: %d tracks, %d-d", reference_path, *vectors.shape)
    return ItemReference.build(train, track_ids, vectors)


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
    train_path: str | Path | None = None,
    reference_path: str | Path | None = None,
) -> None:
    """Score every run (:func:`score_runs`) into the results table (CSV and Markdown) and test its rows.

    ``runs`` are as :func:`score_runs` takes them, scored at the cut-offs ``ks``; their per-user metrics are
    written to ``per_user_path`` (one row per split, model, backbone, seed and user), for tests of one's own.
    ``tests`` holds ``random_variants`` (model -> its random-init variants), ``baseline_backbone``,
    ``shuffled_suffix``, ``alpha`` and optionally ``chance_model`` (see :mod:`audiorec.evaluation.significance`).
    ``title`` heads the Markdown table (the same stage writes the cold-start table); ``uncovered_path`` (the main
    table's candidate set, :mod:`audiorec.protocol.candidates`) adds a note of how many train items every row ranks.

    With ``train_path`` (the train split: item popularity) every run is also described beyond accuracy
    (:func:`score_rankings`): ARP, Novelty and, with ``reference_path`` (the diversity backbone's embeddings table),
    ILD per user, tested as a family of their own; Coverage and Gini per ranking, over the candidate set (the train
    items less those of ``uncovered_path``) or, in the cold-start table, over the new releases.
    """
    from audiorec.evaluation.significance import marks_legend, significance_marks, significance_table
    from audiorec.reporting.report import (
        COLD_SPLIT,
        cold_start_note,
        metric_columns,
        recommendation_markdown,
        summarize_runs,
        with_ranking_metrics,
    )

    if train_path is None:
        per_user, per_ranking = score_rankings(runs, ks)
    else:
        from audiorec.protocol.candidates import candidate_track_ids, read_uncovered

        train = read_table(train_path, "split")
        uncovered = pl.DataFrame(schema={"track_id": pl.String})
        candidates = candidate_track_ids(train, read_uncovered(uncovered_path) if uncovered_path else uncovered)
        per_user, per_ranking = score_rankings(runs, ks, item_reference(train, reference_path), candidates)
    write_table(per_user, per_user_path)
    summary = with_ranking_metrics(summarize_runs(per_user), per_ranking)
    chance_model = tests.get("chance_model")
    significance = significance_table(
        per_user, tests["random_variants"], tests["baseline_backbone"], tests["shuffled_suffix"], chance_model
    )
    log.info("%d paired tests, Holm-adjusted per split and metric family", significance.height)
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
