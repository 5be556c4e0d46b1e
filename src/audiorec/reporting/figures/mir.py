"""MIR versus recommendation: each backbone's probe score against each model's recommendation score.

Every model's point of a backbone shares that backbone's MIR score, so a backbone is named once per panel, in a
strip above it, spread so that no two names collide and tied to its x by a leader line; colour and marker tell
the models apart. Spearman's rho (from the correlations table, never recomputed) is written under each panel,
one line per model, only where enough backbones make a rank correlation mean something.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import polars as pl
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator

from audiorec.reporting.figures.style import (
    COLUMN_WIDTH,
    MODEL_MARKERS,
    MODEL_PALETTE,
    SMALL_FONT,
    new_figure,
    save,
    say_empty,
    styled,
)

MIN_BACKBONES = 3
"""Fewer backbones leave no rank correlation (:func:`audiorec.evaluation.stats.spearman` returns NaN below three)."""
RHO = "\N{GREEK SMALL LETTER RHO}"
NAME_FONT = 6.5
NAME_GAP = 1.35
"""Centre-to-centre distance of two backbone names, in their own font heights."""


def spread(targets: list[float], gap: float) -> list[float]:
    """Positions in [0, 1], in the order of ``targets`` (sorted ascending), each as close to its target as a
    distance of at least ``gap`` from its neighbours allows (shrunk when the names cannot all fit)."""
    gap = min(gap, 1.0 / max(len(targets) - 1, 1))
    placed: list[float] = []
    for target in targets:
        placed.append(max(target, placed[-1] + gap) if placed else max(target, 0.0))
    for index in range(len(placed) - 1, -1, -1):  # pushed past the right edge: pull back leftwards
        limit = 1.0 if index == len(placed) - 1 else placed[index + 1] - gap
        placed[index] = min(placed[index], limit)
    return placed


def _name_backbones(axes: Axes, positions: Mapping[str, float], gap: float) -> None:
    """Backbone names above the panel, spread apart, each with a leader line to its MIR score."""
    low, high = axes.get_xlim()
    ordered = sorted(positions.items(), key=lambda item: (item[1], item[0]))
    targets = [(x - low) / (high - low) for _, x in ordered]
    for (name, x), target, place in zip(ordered, targets, spread(targets, gap), strict=True):
        axes.axvline(x, color="0.85", linewidth=0.6, zorder=0)
        axes.plot(
            [target, target, place],
            [1.0, 1.02, 1.05],
            color="0.6",
            linewidth=0.5,
            transform=axes.transAxes,
            clip_on=False,
        )
        axes.text(
            place, 1.06, name, transform=axes.transAxes, rotation=90, ha="center", va="bottom", fontsize=NAME_FONT
        )


def _rho_line(model: str, row: dict | None) -> str:
    """What one model's correlation says, in words where there is no number to give."""
    if row is None:
        return f"{model}: no backbone"
    n = row["n_backbones"]
    if n < MIN_BACKBONES:
        return f"{model}: n = {n}, too few for {RHO}"
    rho, p = row["spearman_rho"], row["p_value"]
    if rho is None or math.isnan(rho):
        return f"{model}: {RHO} undefined (ties, n = {n})"
    return f"{model}: {RHO} = {rho:.2f} (p = {p:.2g}, n = {n})"


@styled
def mir_scatter(table: pl.DataFrame, correlations: pl.DataFrame, path: str | Path) -> None:
    """One panel per MIR column of ``table`` (:func:`audiorec.reporting.mir_vs_recs.mir_vs_recs`): every backbone's MIR
    score against every model's recommendation score, with Spearman's rho per model from ``correlations``."""
    metric = correlations["metric"][0] if correlations.height else "recommendation"
    tasks = [task for task in correlations["mir"].unique(maintain_order=True).to_list() if task in table.columns]
    models = [
        m for m in correlations["model"].unique(maintain_order=True).to_list() if f"{m} {metric}" in table.columns
    ]
    if not tasks or not models:
        figure, axes = new_figure(COLUMN_WIDTH, 1.5, nrows=1)
        say_empty(axes, "No probed backbone with a recommendation result to compare.")
        save(figure, path)
        return
    most = int(correlations["n_backbones"].max())
    longest = max(len(name) for name in table["backbone"])
    columns = min(3, len(tasks))
    rows = math.ceil(len(tasks) / columns)
    lines = len(models) + 1 if most >= MIN_BACKBONES else 1
    height = rows * (1.9 + 0.075 * longest + 0.13 * lines) + 0.5
    figure, grid = new_figure(COLUMN_WIDTH, height, nrows=rows, ncols=columns, squeeze=False, sharey=True)
    panel_width = 0.75 * (COLUMN_WIDTH - 1.0) / columns
    gap = NAME_GAP * NAME_FONT / 72 / panel_width
    for axes, task in zip(grid.ravel(), tasks, strict=False):
        scored = table.select("backbone", task, *[f"{m} {metric}" for m in models]).drop_nulls(task)
        for index, model in enumerate(models):
            points = scored.select(task, f"{model} {metric}").drop_nulls()
            style = {
                "color": MODEL_PALETTE[index % len(MODEL_PALETTE)],
                "marker": MODEL_MARKERS[index % len(MODEL_MARKERS)],
            }
            axes.scatter(points[task], points[f"{model} {metric}"], s=16, label=model, zorder=3, **style)
        low, high = scored[task].min(), scored[task].max()
        pad = 0.08 * (high - low) if high > low else 0.05 * max(abs(high), 1.0)
        axes.set_xlim(low - pad, high + pad)
        axes.xaxis.set_major_locator(MaxNLocator(4))  # long scores such as 0.4125 must not touch
        _name_backbones(axes, dict(scored.select("backbone", task).iter_rows()), gap)
        label = [task]
        if most >= MIN_BACKBONES:
            found = {row["model"]: row for row in correlations.filter(pl.col("mir") == task).iter_rows(named=True)}
            label += [_rho_line(model, found.get(model)) for model in models]
        axes.set_xlabel("\n".join(label), fontsize=SMALL_FONT)
        axes.grid(alpha=0.3)
    for axes in grid[:, 0]:
        axes.set_ylabel(f"{metric} (test)")
    for axes in grid.ravel()[len(tasks) :]:
        axes.set_visible(False)
    handles, labels = grid[0, 0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside right upper", title="model", frameon=False)
    if most < MIN_BACKBONES:
        # Below the panels: above them, the legend in the right margin would share its line.
        figure.supxlabel(
            f"No rank correlation: each model ran on at most {most} probed backbone{'s' if most != 1 else ''} "
            f"(Spearman's {RHO} needs {MIN_BACKBONES})."
        )
    save(figure, path)
