"""Confidence intervals and the results table."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from audiorec.evaluation.stats import t_confidence_interval
from audiorec.reporting.report import recommendation_markdown, result_blocks, summarize_runs


def test_t_interval_equals_scipy(rng):
    values = rng.random(37)
    mean, low, high = t_confidence_interval(values)
    expected = stats.t.interval(0.95, df=36, loc=values.mean(), scale=stats.sem(values))
    assert mean == pytest.approx(values.mean())
    assert (low, high) == pytest.approx(expected, rel=1e-12)


def test_t_interval_degenerate_cases():
    assert np.isnan(t_confidence_interval(np.array([0.5]))[1])
    assert t_confidence_interval(np.array([1.0, 1.0, 1.0])) == (1.0, 1.0, 1.0)


def test_summary_averages_seeds_per_user_before_the_interval():
    per_user = pl.DataFrame(
        {
            "split": ["test"] * 6,
            "model": ["random"] * 6,
            "backbone": ["none"] * 6,
            "seed": [0, 0, 0, 1, 1, 1],
            "user_id": ["a", "b", "c", "a", "b", "c"],
            "HitRate@10": [1.0, 0.0, 0.0, 1.0, 1.0, 0.0],
        }
    )
    summary = summarize_runs(per_user)
    row = summary.row(0, named=True)
    assert row["n_users"] == 3 and row["n_seeds"] == 2
    per_user_means = np.array([1.0, 0.5, 0.0])
    assert row["HitRate@10"] == pytest.approx(0.5)
    _, low, high = t_confidence_interval(per_user_means)
    assert (row["HitRate@10 ci_low"], row["HitRate@10 ci_high"]) == pytest.approx((low, high))


def test_markdown_lists_every_run_and_the_split_statistics():
    per_user = pl.DataFrame(
        {
            "split": ["test", "test", "val", "val"],
            "model": ["knn", "knn", "knn", "knn"],
            "backbone": ["mfcc"] * 4,
            "seed": [0] * 4,
            "user_id": ["a", "b", "c", "d"],
            "NDCG@50": [0.25, 0.75, 0.0, 1.0],
        }
    )
    stats_table = pl.DataFrame({"split": ["train"], "rows": [10], "users": [2], "items": [5]})
    text = recommendation_markdown(summarize_runs(per_user), stats_table)
    assert "## val" in text and "## test" in text and "## Split statistics" in text
    assert text.index("## test") < text.index("## val")  # the reported split first
    assert "### knn" in text and "| mfcc | 2 | 0.5000 ± " in text
    assert "| train | 10 | 2 | 5 |" in text


def test_markdown_follows_the_papers_blocks_with_random_init_rows_and_bold_bests():
    """KNN / Shallow Net / BERT4Rec blocks, each with its random-init row first; baselines in a block of their own."""
    runs = [
        ("knn", "mfcc", 0.2),
        ("knn", "musicnn", 0.3),
        ("shallow", "mfcc", 0.4),
        ("shallow", "mfcc_shuffled", 0.1),
        ("shallow_random", "none", 0.25),
        ("popularity", "none", 0.35),
        ("random", "none", 0.05),
    ]
    per_user = pl.DataFrame(
        [
            {"split": "test", "model": m, "backbone": b, "seed": 0, "user_id": u, "HitRate@50": v + d, "MRR@50": v}
            for m, b, v in runs
            for u, d in (("a", -0.05), ("b", 0.05))
        ]
    )
    summary = summarize_runs(per_user)
    blocks = result_blocks(summary, {"shallow": ["shallow_random"]})
    assert [heading for heading, _ in blocks] == ["knn", "shallow", "Baselines"]
    assert blocks[1][1] == [
        ("random init (`shallow_random`)", "shallow_random", "none"),
        ("mfcc", "shallow", "mfcc"),
        ("mfcc_shuffled", "shallow", "mfcc_shuffled"),
    ]
    assert blocks[2][1] == [("popularity", "popularity", "none"), ("random", "random", "none")]
    in_config_order = result_blocks(summary, {"shallow": ["shallow_random"]}, ["random", "shallow", "knn"])
    assert [heading for heading, _ in in_config_order] == ["shallow", "knn", "Baselines"]
    text = recommendation_markdown(
        summary, pl.DataFrame({"split": ["train"]}), random_variants={"shallow": ["shallow_random"]}
    )
    assert text.index("### knn") < text.index("### shallow") < text.index("### Baselines")
    assert "| musicnn | 2 | **0.3000** ± " in text and "| mfcc | 2 | 0.2000 ± " in text
    assert "| random init (`shallow_random`) | 2 | 0.2500 ± " in text
    assert "MRR" not in text  # reported in the CSV, not in the paper's table
    # Without its parent, a random-init variant is just another baseline.
    alone = result_blocks(summary.filter(pl.col("model") != "shallow"), {"shallow": ["shallow_random"]})
    assert ("shallow_random", "shallow_random", "none") in alone[-1][1]


def test_width_matched_random_init_rows_follow_the_papers_row_in_their_models_block():
    runs = [("shallow", "mfcc"), ("shallow_random", "none"), ("shallow_random_matched", "mfcc_width"), ("knn", "mfcc")]
    per_user = pl.DataFrame(
        [
            {"split": "test", "model": m, "backbone": b, "seed": 0, "user_id": u, "HitRate@10": 0.5}
            for m, b in runs
            for u in ("a", "b")
        ]
    )
    variants = {"shallow": ["shallow_random", "shallow_random_matched"]}
    blocks = result_blocks(summarize_runs(per_user), variants, ["knn", "shallow"])
    assert blocks == [
        ("knn", [("mfcc", "knn", "mfcc")]),
        (
            "shallow",
            [
                ("random init (`shallow_random`)", "shallow_random", "none"),
                ("random init, width of `mfcc` (`shallow_random_matched`)", "shallow_random_matched", "mfcc_width"),
                ("mfcc", "shallow", "mfcc"),
            ],
        ),
    ]


def test_the_beyond_accuracy_section_lists_a_shared_random_init_variant_once():
    """``shallow_random`` heads the blocks of both ``shallow`` and ``shallow_tuned``; the section describes rows,
    not blocks, so it must show it once."""
    from audiorec.reporting.report import beyond_accuracy_markdown

    runs = [("shallow", "mfcc"), ("shallow_tuned", "mfcc"), ("shallow_random", "none")]
    per_user = pl.DataFrame(
        [
            {"split": "test", "model": m, "backbone": b, "seed": 0, "user_id": u, "HitRate@10": 0.5, "ARP@10": 3.0}
            for m, b in runs
            for u in ("a", "b")
        ]
    )
    variants = {"shallow": ["shallow_random"], "shallow_tuned": ["shallow_random"]}
    section = "\n".join(beyond_accuracy_markdown(summarize_runs(per_user), ["test"], {}, variants))
    assert section.count("| shallow_random | none |") == 1
    assert section.index("| shallow | mfcc |") < section.index("| shallow_tuned | mfcc |")
