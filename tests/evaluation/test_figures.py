"""Figures render from the workflow's tables, headless, into PNG files."""

from __future__ import annotations

import polars as pl

from audiorec.figures import mir_scatter, recommendation_bars, training_curves

PNG = b"\x89PNG\r\n\x1a\n"


def test_every_figure_renders_a_png(tmp_path):
    summary = pl.DataFrame(
        {
            "split": ["test"] * 3,
            "model": ["knn", "knn", "popularity"],
            "backbone": ["mfcc", "musicnn", "none"],
            "HitRate@50": [0.6, 0.7, 0.5],
            "HitRate@50 ci_low": [0.5, 0.6, float("nan")],
            "HitRate@50 ci_high": [0.7, 0.8, float("nan")],
        }
    )
    recommendation_bars(summary, "HitRate@50", tmp_path / "bars.png")
    log = pl.DataFrame({"epoch": [0, 1, 2], "train_loss": [None, 0.5, 0.4], "val_loss": [0.7, 0.6, 0.55]})
    training_curves({"shallow/mfcc/seed0": log.with_columns(pl.lit(0.3).alias("val_HitRate@50"))}, tmp_path / "c.png")
    table = pl.DataFrame(
        {
            "backbone": ["a", "b", "c"],
            "genre SVM": [0.9, 0.7, 0.5],
            "knn HitRate@50": [0.8, 0.6, 0.3],
            "bert4rec HitRate@50": [0.9, None, None],  # a model that ran on one backbone only
        }
    )
    correlations = pl.DataFrame(
        {
            "mir": ["genre SVM", "genre SVM"],
            "model": ["knn", "bert4rec"],
            "metric": ["HitRate@50", "HitRate@50"],
            "n_backbones": [3, 1],
            "spearman_rho": [1.0, None],
        }
    )
    mir_scatter(table, correlations, tmp_path / "scatter.png")
    for name in ("bars.png", "c.png", "scatter.png"):
        content = (tmp_path / name).read_bytes()
        assert content.startswith(PNG) and len(content) > 5_000, name
    assert not list(tmp_path.glob(".*"))  # no temporaries left behind
