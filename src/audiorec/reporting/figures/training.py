"""Training curves: one row of panels per model family, since the families' losses are not on one scale.

BERT4Rec's cross-entropy sits near 5-8 and the Shallow Net's hinge loss near 0.1; on one axis one of them is a
flat line. A family is a model and its random-init variants (they share the loss), so a row compares a
backbone's run with random init directly. Each row has the train loss, the validation loss and the validation
HitRate in panels of their own, and marks the epoch whose weights the trainer restored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from audiorec.reporting.figures import style

LINE_STYLES = {"real": "-", "none": "-", "shuffled": ":", "width": "-."}
RunKey = tuple[str, str, int]
"""``(model, backbone, seed)`` of a trained run."""


def restored_epoch(log: pl.DataFrame) -> int:
    """The epoch whose weights a run kept: the last one flagged ``best`` (a better validation loss than every
    earlier epoch, :mod:`audiorec.recommenders.trainer`); the last epoch when none is flagged."""
    best = log.filter(pl.col("best").cast(pl.Boolean)) if "best" in log.columns else log.clear()
    return int((best if best.height else log)["epoch"][-1])


def _panels(log: pl.DataFrame) -> list[tuple[str, str | None]]:
    """(title, column) of each panel of a row: train loss, validation loss, validation HitRate."""
    hit = next((c for c in log.columns if c.startswith("val_HitRate@")), None)
    return [
        ("train loss", "train_loss"),
        ("validation loss", "val_loss"),
        ("validation " + (hit or "val_HitRate").removeprefix("val_"), hit),
    ]


@style.styled
def training_curves(
    logs: Mapping[RunKey, pl.DataFrame],
    path: str | Path,
    families: Mapping[str, str] | None = None,
    backbones: Sequence[str] = (),
) -> None:
    """Loss and validation HitRate per epoch of every trained run, one row per model family.

    ``families`` maps a random-init variant to the model it is a variant of (others are their own family);
    ``backbones`` (the config's order) fixes each backbone's colour, shared with the other figures. A run's
    controls keep its backbone's colour with a dotted (shuffled) or dash-dotted (width-matched) line.
    """
    families = families or {}
    if not logs:
        figure, axes = style.new_figure(style.COLUMN_WIDTH, 1.5, nrows=1)
        style.say_empty(axes, "No trained recommender in this configuration.")
        style.save(figure, path)
        return
    names = {backbone for _, backbone, _ in logs}
    order = style.backbone_order(names, backbones)
    colours = style.backbone_colours(names, backbones)
    rows: dict[str, list[RunKey]] = {}
    for key in sorted(logs, key=lambda k: (k[0] != families.get(k[0], k[0]), style.run_sort_key(k[1], order), k)):
        rows.setdefault(families.get(key[0], key[0]), []).append(key)
    heights = [max(1.7, 0.16 * len({(m, b) for m, b, _ in keys}) + 0.5) for keys in rows.values()]
    figure, grid = style.new_figure(style.COLUMN_WIDTH, sum(heights) + 0.3, nrows=len(rows), ncols=3, squeeze=False)
    figure.get_layout_engine().set(hspace=0.08)
    for axes_row, (family, keys) in zip(grid, rows.items(), strict=True):
        for key in keys:
            model, backbone, _ = key
            log = logs[key]
            epoch = restored_epoch(log)
            label = backbone if model == family else f"{model}: {backbone}"
            line = {"color": colours[backbone], "linestyle": LINE_STYLES[style.control_kind(backbone)], "linewidth": 1}
            for axes, (_, column) in zip(axes_row, _panels(log), strict=True):
                if column is None:
                    continue
                points = log.select("epoch", column).drop_nulls()
                axes.plot(points["epoch"], points[column], label=label, **line)
                kept = points.filter(pl.col("epoch") == epoch)
                if kept.height:
                    axes.plot(kept["epoch"], kept[column], "o", markersize=3.5, color=line["color"], zorder=4)
        for axes, (title, _) in zip(axes_row, _panels(logs[keys[0]]), strict=True):
            axes.set_title(f"{family}: {title}" if axes is axes_row[0] else title, loc="left")
            axes.grid(alpha=0.3)
            if not axes.lines:
                style.say_empty(axes, "not logged")
        labels = dict(zip(*reversed(axes_row[1].get_legend_handles_labels()), strict=True))
        axes_row[-1].legend(
            labels.values(), labels.keys(), loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, title="run"
        )
    for axes in grid[-1]:
        axes.set_xlabel("epoch")
    figure.suptitle("dot: the epoch whose weights were restored (best validation loss)", x=0.0, ha="left")
    style.save(figure, path)
