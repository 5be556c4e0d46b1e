"""Do backbones that are good at MIR tasks make good recommenders? (Tamm & Aljanaki 2024, RQ3, Table 4.)

The paper answers by quoting MIR results from other papers; here both sides come from the same embeddings of
the same run: the probes table (genre, instrument, playlist continuation) and the recommendation table. For
every MIR column and every model that uses embeddings, Spearman's rank correlation across backbones says
whether the two orders agree. With few backbones the test has little power, so n is reported beside rho.
"""

from __future__ import annotations

import polars as pl

from audiorec.evaluation.stats import spearman
from audiorec.reporting.report import PAPER_PROBE_COLUMNS, markdown_table


def mir_vs_recs(
    probes: pl.DataFrame, recommendation: pl.DataFrame, metric: str, split: str = "test"
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The per-backbone table and the correlations.

    Parameters
    ----------
    probes
        ``tables/probes.csv``: one row per backbone.
    recommendation
        ``tables/recommendation.csv``: one row per (split, model, backbone).
    metric
        The recommendation column compared, e.g. ``HitRate@50``.
    split
        The split whose recommendation results are used.

    Returns
    -------
    (table, correlations)
        ``table``: backbone, the MIR columns present, and ``<model> <metric>`` per model with embeddings;
        ``correlations``: one row per (MIR column, model) with ``n_backbones``, ``spearman_rho``, ``p_value``.
    """
    mir = [column for column in PAPER_PROBE_COLUMNS if column in probes.columns]  # MPR: rho expected negative
    runs = recommendation.filter(pl.col("split") == split).filter(
        pl.col("backbone").is_in(probes["backbone"].implode())
    )
    wide = runs.select("backbone", "model", metric).pivot(on="model", index="backbone", values=metric)
    models = sorted(column for column in wide.columns if column != "backbone")
    wide = wide.rename({model: f"{model} {metric}" for model in models})
    table = probes.select("backbone", *mir).join(wide, on="backbone", how="inner").sort("backbone")
    rows = []
    for column in mir:
        for model in models:
            pairs = table.select(column, f"{model} {metric}").drop_nulls()
            rho, p_value = spearman(pairs[column].to_numpy(), pairs[f"{model} {metric}"].to_numpy())
            rows.append(
                {
                    "mir": column,
                    "model": model,
                    "metric": metric,
                    "n_backbones": pairs.height,
                    "spearman_rho": rho,
                    "p_value": p_value,
                }
            )
    schema = {"mir": pl.String, "model": pl.String, "metric": pl.String, "n_backbones": pl.Int64}
    schema |= {"spearman_rho": pl.Float64, "p_value": pl.Float64}
    return table, pl.DataFrame(rows, schema=schema)


def mir_vs_recs_markdown(table: pl.DataFrame, correlations: pl.DataFrame, split: str) -> str:
    """Table 4 of the first paper, measured, then the correlations."""

    def rounded(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(pl.col(pl.Float64).round(4).cast(pl.String).fill_null("-"))

    return "\n".join(
        [
            "# MIR tasks versus recommendation",
            "",
            f"Probe accuracies and playlist metrics (tables/probes.md) beside each model's {split} result,",
            "per backbone.",
            "",
            markdown_table(rounded(table), table.columns),
            "",
            "## Spearman rank correlation across backbones",
            "",
            "A positive rho: backbones better at the MIR task also recommend better (for MPR, lower is better,",
            "so agreement shows as a negative rho). NaN below 3 backbones.",
            "",
            markdown_table(rounded(correlations), correlations.columns),
            "",
        ]
    )
