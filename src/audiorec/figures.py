"""Figures of the results: what the tables say, in a form a reader takes in at a glance.

Each function reads the workflow's own tables (never recomputes a number) and writes one PNG atomically.
matplotlib runs headless (Agg), so figures render on cluster nodes without a display.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # after the backend is chosen
import numpy as np
import polars as pl

from audiorec.atomic import atomic_path


def _save(figure: plt.Figure, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(figure)


def recommendation_bars(summary: pl.DataFrame, metric: str, path: str | Path, split: str = "test") -> None:
    """Bars of ``metric`` per model, one per backbone the model ran on, with the 95 % t interval as error bars.

    Each model's bars are centred on its tick (models run on different backbones, so a fixed slot per backbone
    would leave gaps); a backbone keeps its colour across models, and the legend sits outside the axes.
    """
    rows = summary.filter(pl.col("split") == split).sort("model", "backbone")
    models = rows["model"].unique(maintain_order=True).to_list()
    backbones = rows["backbone"].unique(maintain_order=True).to_list()
    colours = {backbone: plt.get_cmap("tab10")(index % 10) for index, backbone in enumerate(backbones)}
    widest = max((rows.filter(pl.col("model") == model).height for model in models), default=1)
    width = 0.8 / widest
    figure, axes = plt.subplots(figsize=(max(6.0, 0.5 * rows.height + 2.0), 4.0))
    labelled: set[str] = set()
    for tick, model in enumerate(models):
        block = rows.filter(pl.col("model") == model)
        for index, row in enumerate(block.iter_rows(named=True)):
            mean, low, high = row[metric], row[f"{metric} ci_low"], row[f"{metric} ci_high"]
            error = np.nan_to_num([[mean - low], [high - mean]])
            backbone = row["backbone"]
            axes.bar(
                tick + (index - (block.height - 1) / 2) * width,
                mean,
                width,
                yerr=error,
                capsize=2,
                color=colours[backbone],
                label=None if backbone in labelled else backbone,
            )
            labelled.add(backbone)
    axes.set_xticks(range(len(models)), models, rotation=20, ha="right")
    axes.set_ylabel(f"{metric} ({split}, mean and 95 % CI over users)")
    axes.legend(title="backbone", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes.grid(axis="y", alpha=0.3)
    _save(figure, path)


def mir_scatter(table: pl.DataFrame, correlations: pl.DataFrame, path: str | Path) -> None:
    """One panel per MIR column: each backbone's MIR score against each model's recommendation score."""
    metric = correlations["metric"][0] if correlations.height else "recommendation"
    tasks = correlations["mir"].unique(maintain_order=True).to_list() or ["(no probes)"]
    models = correlations["model"].unique(maintain_order=True).to_list()
    columns = min(3, len(tasks))
    figure, grid = plt.subplots(
        math.ceil(len(tasks) / columns), columns, figsize=(4.2 * columns, 3.6 * math.ceil(len(tasks) / columns))
    )
    for axes, task in zip(np.atleast_1d(grid).ravel(), tasks, strict=False):
        for model in models:
            column = f"{model} {metric}"
            if task not in table.columns or column not in table.columns:
                continue
            points = table.select("backbone", task, column).drop_nulls()  # a model may skip some backbones
            axes.scatter(points[task], points[column], label=model)
            for backbone, x, y in points.iter_rows():
                axes.annotate(backbone, (x, y), fontsize="x-small", alpha=0.7)
            row = correlations.filter((pl.col("mir") == task) & (pl.col("model") == model))
            if row.height:
                rho, n = row["spearman_rho"][0], row["n_backbones"][0]
                shown = "n/a" if rho is None or math.isnan(rho) else f"{rho:.2f}"
                axes.plot([], [], " ", label=f"{model}: Spearman rho = {shown} (n = {n})")
        axes.set_xlabel(task)
        axes.set_ylabel(metric)
        axes.legend(fontsize="x-small")
    for axes in np.atleast_1d(grid).ravel()[len(tasks) :]:
        axes.set_visible(False)
    _save(figure, path)


def training_curves(logs: Mapping[str, pl.DataFrame], path: str | Path) -> None:
    """Training and validation loss per epoch of every trained run, labelled ``model/backbone/seed``."""
    figure, (losses, hit_rates) = plt.subplots(1, 2, figsize=(11, 4))
    for label, log in sorted(logs.items()):
        line = losses.plot(log["epoch"], log["val_loss"], label=label)[0]
        losses.plot(log["epoch"], log["train_loss"], linestyle="--", color=line.get_color())
        hit_column = next((c for c in log.columns if c.startswith("val_HitRate@")), None)
        if hit_column:
            hit_rates.plot(log["epoch"], log[hit_column], color=line.get_color())
            hit_rates.set_ylabel(hit_column.removeprefix("val_") + " (validation)")
    losses.set_xlabel("epoch")
    losses.set_ylabel("loss (solid: validation, dashed: train)")
    hit_rates.set_xlabel("epoch")
    losses.legend(fontsize="x-small")
    _save(figure, path)


def layer_curves(tables: Mapping[str, pl.DataFrame], metric: str, path: str | Path) -> None:
    """``metric`` by hidden layer, one panel per backbone (their layers differ), the 95 % t interval as a band.

    ``tables`` maps a backbone to its layer-sweep table (:func:`audiorec.layer_sweep.sweep_layers`).
    """
    names = sorted(tables) or ["(no sweep)"]
    figure, grid = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.6), squeeze=False)
    for axes, backbone in zip(grid[0], names, strict=True):
        table = tables.get(backbone)
        if table is None or table.is_empty():
            continue
        x = table["layer_index"].to_numpy()
        axes.plot(x, table[metric].to_numpy(), marker="o")
        axes.fill_between(x, table[f"{metric} ci_low"].to_numpy(), table[f"{metric} ci_high"].to_numpy(), alpha=0.25)
        axes.set_xticks(x, table["layer"].to_list(), rotation=45, ha="right", fontsize="x-small")
        axes.set_title(backbone)
        axes.set_xlabel("layer")
        axes.set_ylabel(f"{metric} (validation)")
    _save(figure, path)
