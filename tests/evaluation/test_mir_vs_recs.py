"""The MIR-versus-recommendation table and its rank correlations."""

from __future__ import annotations

import polars as pl
import pytest
from scipy import stats

from audiorec.reporting.mir_vs_recs import mir_vs_recs, mir_vs_recs_markdown


def test_rows_join_per_backbone_and_correlations_equal_scipy():
    probes = pl.DataFrame(
        {
            "backbone": ["a", "b", "c", "d"],
            "dim": [8, 8, 8, 8],
            "genre SVM": [0.9, 0.7, 0.5, 0.6],
            "playlist MPR": [0.1, 0.2, 0.4, 0.3],
        }
    )
    recommendation = pl.DataFrame(
        {
            "split": ["test"] * 5 + ["val"],
            "model": ["knn", "knn", "knn", "knn", "popularity", "knn"],
            "backbone": ["a", "b", "c", "d", "none", "a"],
            "HitRate@50": [0.8, 0.6, 0.3, 0.5, 0.4, 0.0],
        }
    )
    table, correlations = mir_vs_recs(probes, recommendation, "HitRate@50")
    assert table.columns == ["backbone", "genre SVM", "playlist MPR", "knn HitRate@50"]
    assert table["knn HitRate@50"].to_list() == [0.8, 0.6, 0.3, 0.5]  # the test split; no row for "none"
    genre = correlations.filter(pl.col("mir") == "genre SVM").row(0, named=True)
    expected = stats.spearmanr([0.9, 0.7, 0.5, 0.6], [0.8, 0.6, 0.3, 0.5])
    assert genre["n_backbones"] == 4
    assert (genre["spearman_rho"], genre["p_value"]) == pytest.approx((expected.statistic, expected.pvalue))
    assert correlations.filter(pl.col("mir") == "playlist MPR")["spearman_rho"].item() == pytest.approx(-1.0)
    text = mir_vs_recs_markdown(table, correlations, "test")
    assert "| a | 0.9 | 0.1 | 0.8 |" in text and "## Spearman rank correlation" in text
