"""Accuracy against popularity: does a row earn its HitRate by recommending what everybody already plays?

One point per (model, backbone) row of the results table on one split: the accuracy metric (y) against the average
recommendation popularity at the same K (x, :mod:`audiorec.evaluation.beyond_accuracy`), each with its 95 % t
interval over users, read from the table (never recomputed). A point up and to the left is accurate without
leaning on the hits; the popularity baseline marks the far right. Colour is the backbone's, as in every figure of
the run (grey: no embeddings); the marker is the model's, shared by its random-init variants; a control (shuffled
embeddings, random init at a backbone's width) is drawn hollow in its backbone's colour; every point carries its
row's name, placed by :func:`place_labels` beside its point where it covers no other name and no other point.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from audiorec.evaluation.controls import NO_BACKBONE
from audiorec.reporting.figures.style import (
    COLUMN_WIDTH,
    MODEL_MARKERS,
    backbone_colours,
    backbone_order,
    control_kind,
    new_figure,
    save,
    say_empty,
    styled,
)

LABEL_FONT = 5.5
OFFSETS = tuple(
    (dx * reach, dy * reach)
    for reach in (1, 2, 3.5)
    for dx, dy in ((4, 3), (4, -9), (-4, 3), (-4, -9), (0, 7), (0, -13))
)
"""Points from a marker to its label's anchor, nearest first: right, left, above, below, then farther out."""


def popularity_metric(metric: str) -> str:
    """The ARP column at the cut-off of ``metric`` (``HitRate@50`` → ``ARP@50``)."""
    return f"ARP@{metric.split('@')[1]}"


@styled
def accuracy_popularity_scatter(
    summary: pl.DataFrame,
    metric: str,
    path: str | Path,
    split: str = "test",
    model_order: Sequence[str] = (),
    backbones: Sequence[str] = (),
    random_variants: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """``metric`` against ARP at its K for every row of ``summary`` (the results CSV) on ``split``.

    ``model_order`` and ``backbones`` (the config's orders) fix the markers and the colours; a model's
    ``random_variants`` take its marker (their names tell them apart), so that a family reads as one shape.
    """
    popularity = popularity_metric(metric)
    columns = {metric, popularity, f"{metric} ci_low", f"{popularity} ci_low"}
    rows = summary.filter(pl.col("split") == split) if "split" in summary.columns else summary.clear()
    if rows.is_empty() or not columns <= set(summary.columns):
        figure, axes = new_figure(COLUMN_WIDTH, 1.5, nrows=1)
        say_empty(axes, f"No {split} results with {popularity} yet.")
        save(figure, path)
        return
    rows = rows.filter(pl.col(popularity).is_not_null() & pl.col(popularity).is_not_nan())
    family = {variant: model for model, variants in (random_variants or {}).items() for variant in variants}
    present = {family.get(name, name) for name in rows["model"]}
    models = [name for name in model_order if name in present] + sorted(present - set(model_order))
    markers = {model: MODEL_MARKERS[index % len(MODEL_MARKERS)] for index, model in enumerate(models)}
    markers |= {variant: markers[model] for variant, model in family.items() if model in markers}
    bases = backbone_order(rows["backbone"], backbones)
    colours = backbone_colours([*rows["backbone"], *bases], backbones)
    figure, axes = new_figure(COLUMN_WIDTH, 3.6, nrows=1)
    labels: list[tuple[str, float, float]] = []
    for row in rows.sort("model", "backbone").iter_rows(named=True):
        x, y = row[popularity], row[metric]
        errors = {
            "xerr": np.nan_to_num([[x - row[f"{popularity} ci_low"]], [row[f"{popularity} ci_high"] - x]]),
            "yerr": np.nan_to_num([[y - row[f"{metric} ci_low"]], [row[f"{metric} ci_high"] - y]]),
        }
        colour = colours[row["backbone"]]
        hollow = control_kind(row["backbone"]) in ("shuffled", "width")
        axes.errorbar(x, y, **errors, fmt="none", ecolor=colour, elinewidth=0.6, alpha=0.6, zorder=2)
        axes.scatter(
            x,
            y,
            s=28,
            marker=markers[row["model"]],
            facecolors="white" if hollow else colour,
            edgecolors=colour,
            linewidths=1.0,
            zorder=3,
        )
        label = row["model"] if row["backbone"] == NO_BACKBONE else f"{row['model']} / {row['backbone']}"
        labels.append((label, x, y))
    axes.set_xlabel(f"{popularity} on {split}: mean train listeners of the top {metric.split('@')[1]}")
    axes.set_ylabel(f"{metric} on {split}")
    axes.grid(alpha=0.3)
    axes.margins(x=0.12, y=0.1)  # room for the labels of the outermost points
    handles = [Patch(color=colours[base], label=base) for base in bases]
    handles += [
        Line2D([], [], linestyle="none", marker=markers[model], color="0.3", label=model, markersize=5)
        for model in models
    ]
    if any(control_kind(name) in ("shuffled", "width") for name in rows["backbone"]):
        handles.append(
            Line2D([], [], linestyle="none", marker="o", markerfacecolor="white", color="0.3", label="control")
        )
    figure.legend(handles=handles, loc="outside right upper", title="backbone, model", frameon=False)
    place_labels(figure, axes, labels)
    save(figure, path)


def place_labels(figure: Figure, axes: Axes, labels: list[tuple[str, float, float]]) -> None:
    """Name each point at the first of :data:`OFFSETS` where its text stays inside the axes and covers no name
    placed before it and no marker; where none is free, at the nearest offset (a crowded cluster), with a thin
    leader line whenever the name sits away from its point. The layout is fixed first (the names are left out of
    it), so the positions measured are the ones saved."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    points = [axes.transData.transform((x, y)) for _, x, y in labels]
    markers = [Bbox.from_bounds(px - 3, py - 3, 6, 6) for px, py in points]
    frame = axes.get_window_extent(renderer)
    taken: list[Bbox] = []
    for index, (label, x, y) in enumerate(labels):
        others = markers[:index] + markers[index + 1 :]
        for offset in OFFSETS:
            text = _label(axes, label, x, y, offset)
            box = text.get_window_extent(renderer).padded(1.0)
            inside = frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)
            if inside and not any(box.overlaps(other) for other in taken + others):
                break
            text.remove()
        else:
            offset = OFFSETS[0]
            box = _label(axes, label, x, y, offset).get_window_extent(renderer)
        if abs(offset[0]) + abs(offset[1]) > 14:
            axes.annotate("", (x, y), xytext=offset, textcoords="offset points", arrowprops=_LEADER)
        taken.append(box)


_LEADER = {"arrowstyle": "-", "color": "0.6", "linewidth": 0.4, "shrinkA": 0, "shrinkB": 2}


def _label(axes: Axes, label: str, x: float, y: float, offset: tuple[float, float]) -> Text:
    text = axes.annotate(
        label,
        (x, y),
        xytext=offset,
        textcoords="offset points",
        ha="left" if offset[0] > 0 else "right" if offset[0] < 0 else "center",
        va="bottom" if offset[1] >= 0 else "top",
        fontsize=LABEL_FONT,
        color="0.2",
    )
    text.set_in_layout(False)
    return text
