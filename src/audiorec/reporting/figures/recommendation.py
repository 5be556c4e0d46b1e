"""The results figure: the first paper's Table 3 as bars, one panel per block of the Markdown table.

Blocks and their rows come from :func:`audiorec.reporting.report.result_blocks` and the marks from
:func:`audiorec.evaluation.significance.significance_marks`, so the figure and the table cannot disagree. Bars are
horizontal: a row's label reads like the table's, and nine backbones with their controls stay legible in one column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from audiorec.evaluation.controls import NO_BACKBONE
from audiorec.evaluation.significance import MARKS, significance_marks
from audiorec.reporting.figures.style import (
    COLUMN_WIDTH,
    backbone_colours,
    backbone_order,
    control_kind,
    new_figure,
    run_sort_key,
    save,
    say_empty,
    styled,
)
from audiorec.reporting.report import BASELINES_BLOCK, result_blocks

ROW_HEIGHT = 0.2
"""Inches per bar: room for a 7-pt label and its error bar."""
HATCHES = {"shuffled": "////", "width": "...."}
MARK_MEANINGS = {
    "random": "random-init variant",
    "random_width": "random init at the backbone's width",
    "baseline": "baseline backbone",
    "shuffled": "shuffled-embedding control",
    "chance": "random ranking",
}


def _ordered(block: list[tuple[str, str, str]], heading: str, order: Sequence[str]) -> list[tuple[str, str, str]]:
    """The block's random-init rows as the table has them, then its backbones in the config's order."""
    variants = [row for row in block if row[1] != heading]
    own = sorted((row for row in block if row[1] == heading), key=lambda row: run_sort_key(row[2], order))
    return variants + own


@styled
def recommendation_bars(
    summary: pl.DataFrame,
    metric: str,
    path: str | Path,
    split: str = "test",
    significance: pl.DataFrame | None = None,
    alpha: float = 0.05,
    random_variants: Mapping[str, Sequence[str]] | None = None,
    model_order: Sequence[str] = (),
    backbones: Sequence[str] = (),
) -> None:
    """``metric`` on ``split`` for every row of the results table, mean and 95 % t interval over users.

    One panel per block of the Markdown table (a model with its random-init variants, backbones and controls;
    then the baselines); a dashed line carries the paper's random-init variant across its model's panel, the
    reference every backbone has to beat. ``significance`` (the significance CSV) adds the table's marks at
    ``alpha``; ``backbones`` (the config's order) fixes each backbone's place and colour.
    """
    rows = summary.filter(pl.col("split") == split)
    if rows.is_empty():
        figure, axes = new_figure(COLUMN_WIDTH, 1.5, nrows=1)
        say_empty(axes, f"No {split} results yet.")
        save(figure, path)
        return
    marks = significance_marks(significance, alpha) if significance is not None else {}
    marks = {key: mark for key, mark in marks.items() if key[0] == split and key[3] == metric}  # this figure's cells
    order = backbone_order(rows["backbone"], backbones)
    colours = backbone_colours(rows["backbone"], backbones)
    runs = {(row["model"], row["backbone"]): row for row in rows.iter_rows(named=True)}
    blocks = [
        (heading, _ordered(block, heading, order))
        for heading, block in result_blocks(rows, random_variants, model_order)
    ]
    sizes = [len(block) for _, block in blocks]
    figure, grid = new_figure(
        COLUMN_WIDTH,
        ROW_HEIGHT * sum(sizes) + 0.35 * len(blocks) + 1.2,
        nrows=len(blocks),
        sharex=True,
        squeeze=False,
        gridspec_kw={"height_ratios": sizes},
    )
    highest = max(max(row[metric], np.nan_to_num(row[f"{metric} ci_high"])) for row in runs.values())
    references = False
    for axes, (heading, block) in zip(grid[:, 0], blocks, strict=True):
        for position, (_, model, backbone) in enumerate(block):
            row = runs[model, backbone]
            mean, low, high = row[metric], row[f"{metric} ci_low"], row[f"{metric} ci_high"]
            kind = control_kind(backbone)
            axes.barh(
                position,
                mean,
                height=0.7,
                xerr=np.nan_to_num([[mean - low], [high - mean]]),
                color=colours[backbone],
                alpha=0.45 if kind in HATCHES else 1.0,
                hatch=HATCHES.get(kind),
                edgecolor="white" if kind in HATCHES else colours[backbone],
                error_kw={"elinewidth": 0.8, "capsize": 1.5, "ecolor": "0.15"},
            )
            mark = marks.get((split, model, backbone, metric), "")
            if mark:
                axes.text(max(mean, np.nan_to_num(high)) + 0.01 * highest, position, mark, va="center")
            if heading != BASELINES_BLOCK and model != heading and backbone == NO_BACKBONE:
                axes.axvline(mean, color="0.15", linestyle="--", linewidth=0.9, zorder=3)
                references = True
        axes.set_yticks(range(len(block)), [label.replace("`", "") for label, _, _ in block])
        axes.set_ylim(len(block) - 0.5, -0.5)  # the table's order, top to bottom
        axes.set_title(heading, loc="left", fontweight="bold")
        axes.grid(axis="x", alpha=0.3)
        axes.tick_params(axis="y", length=0)
    grid[-1, 0].set_xlim(0, highest * 1.15 if highest > 0 else 1)
    grid[-1, 0].set_xlabel(f"{metric} on {split} (mean over users, 95 % t interval)")
    _legends(figure, [name for name in order if name != NO_BACKBONE], colours, rows, references, marks, alpha)
    save(figure, path)


def _legends(
    figure: Figure,
    bases: list[str],
    colours: Mapping[str, str],
    rows: pl.DataFrame,
    references: bool,
    marks: Mapping[tuple[str, str, str, str], str],
    alpha: float,
) -> None:
    """Backbone colours and control styles at the right; what the marks of this figure mean underneath."""
    kinds = {control_kind(name) for name in rows["backbone"]}
    handles = [Patch(color=colours.get(base, "0.5"), label=base) for base in bases]
    handles += [
        Patch(facecolor="0.6", alpha=0.45, hatch=HATCHES[kind], edgecolor="white", label=label)
        for kind, label in (("width", "random init at its width"), ("shuffled", "shuffled control"))
        if kind in kinds
    ]
    if references:
        handles.append(Line2D([], [], color="0.15", linestyle="--", label="random init (fixed width)"))
    figure.legend(handles=handles, loc="outside right upper", title="backbone", frameon=False)
    shown = "".join(marks.values())
    meanings = [f"{mark} {MARK_MEANINGS[versus]}" for versus, mark in MARKS.items() if mark in shown]
    if meanings:
        figure.legend(
            handles=[Line2D([], [], linestyle="none")] * len(meanings),
            labels=meanings,
            loc="outside lower center",
            ncols=min(3, len(meanings)),
            title=f"significantly different from (paired Wilcoxon, Holm-adjusted p < {alpha})",
            frameon=False,
            handlelength=0,
            handletextpad=0,
        )
