"""The self-supervised encoders side by side, in the layout of Table 3 of Choi et al. (2022).

Rows are the baseline features (MFCC in the paper) and every self-supervised backbone of the run, named by
their positive-sampling strategy ("Feature") and loss as the paper names them; columns are the frozen-embedding
probes of ``tables/probes.csv``: genre and instrument accuracy with a linear SVM and logistic regression, and
playlist continuation (HR@10 against sampled negatives, and MPR). The numbers are read from the probes table,
never recomputed, so the two tables cannot disagree. ``dim`` is the encoder's output per segment as the paper's
table gives it (128; 5 × 128 = 640 for InfoNCE-Multi; MelCPC's 256-d GRU), ``probed dim`` the width the probes
read: the mean and standard deviation over the track's segments, twice that.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from audiorec.reporting.report import PAPER_PROBE_COLUMNS, markdown_table
from audiorec.ssl.config import SSLConfig

FEATURE_NAMES = {"self": "Siamese-Self-aug", "adjacent": "Siamese-Adjacent", "random": "Siamese-Random"}
"""The paper's row names by positive strategy; the CPC encoder is "MelCPC"."""
LOSS_NAMES = {"infonce": "InfoNCE", "multi": "InfoNCE-Multi", "cpc": "InfoNCE"}
LOWER_IS_BETTER = ("playlist MPR",)
_ROW_ORDER = [*FEATURE_NAMES.values(), "MelCPC"]


def table_columns(columns: list[str]) -> list[str]:
    """The paper's columns among a probes table's."""
    return [column for column in PAPER_PROBE_COLUMNS if column in columns]


def describe_encoder(options: Mapping[str, Any] | None) -> tuple[str, str]:
    """``(feature, loss)`` as the paper names them; ``options`` is a backbone's ssl options, None for a baseline."""
    if options is None:
        return "", "-"
    loss = options.get("loss", "infonce")
    feature = "MelCPC" if loss == "cpc" else FEATURE_NAMES[options.get("positive")]
    return feature, LOSS_NAMES[loss]


def ssl_table(probes: pl.DataFrame, encoders: Mapping[str, Mapping[str, Any] | None]) -> pl.DataFrame:
    """One row per backbone of ``encoders`` found in ``probes``: baselines first, then the paper's row order.

    ``encoders`` maps a backbone name to its ssl options (``loss``, ``positive``), or to None for a baseline
    (its feature is shown as the backbone's name). Columns the probes lack are left out.
    """
    rows = []
    for backbone, options in encoders.items():
        found = probes.filter(pl.col("backbone") == backbone)
        if found.is_empty():
            continue
        feature, loss = describe_encoder(options)
        rank = -1 if options is None else _ROW_ORDER.index(feature)
        dim = None if options is None else SSLConfig.from_mapping(options).output_dim
        rows.append(
            {"feature": feature or backbone.upper(), "loss": loss, "backbone": backbone, "rank": rank, "dim": dim}
        )
    schema = {"feature": pl.String, "loss": pl.String, "backbone": pl.String, "rank": pl.Int64, "dim": pl.Int64}
    order = pl.DataFrame(rows, schema=schema)
    metrics = table_columns(probes.columns)
    probed = probes.select("backbone", pl.col("dim").alias("probed dim"), *metrics)
    joined = order.join(probed, on="backbone", how="left").with_columns(pl.col("dim").fill_null(pl.col("probed dim")))
    loss_order = pl.col("loss").replace_strict({"-": 0, "InfoNCE": 1, "InfoNCE-Multi": 2}, default=3)
    return joined.sort(pl.col("rank"), loss_order, pl.col("backbone")).drop("rank")


def ssl_markdown(table: pl.DataFrame) -> str:
    """The table with the paper's headings; the best value of each column in bold (lowest for MPR)."""
    metrics = table_columns(table.columns)
    cells = table.select("feature", "loss", "backbone", "dim", "probed dim").with_columns(
        pl.col("dim", "probed dim").cast(pl.String)
    )
    for column in metrics:
        values = table.get_column(column)
        best = values.min() if column in LOWER_IS_BETTER else values.max()
        shown = [_score_cell(value, value == best and table.height > 1) for value in values.to_list()]
        cells = cells.with_columns(pl.Series(column, shown))
    return "\n".join(
        [
            "# Self-supervised encoders (Choi et al. 2022, Table 3)",
            "",
            "Frozen embeddings probed on genre and instrument classification (test accuracy of a linear SVM and of",
            "logistic regression) and on playlist continuation (ItemKNN; HR@10 against 100 sampled tracks, higher is",
            "better; MPR, lower is better). Self-aug: the positive is an augmented copy of the anchor; Adjacent: the",
            "next segment; Random: any segment of the same track; InfoNCE-Multi: InfoNCE on every convolutional",
            "block's output. dim: the encoder's output per segment as the paper lists it; probed dim: the mean and",
            "standard deviation over the track's segments that the probes read. **Bold**: the best of each column.",
            "Every probe metric: tables/probes.md.",
            "",
            markdown_table(cells, cells.columns),
            "",
        ]
    )


def _score_cell(value: float | None, bold: bool) -> str:
    if value is None:
        return "-"
    return f"**{value:.3f}**" if bold else f"{value:.3f}"
