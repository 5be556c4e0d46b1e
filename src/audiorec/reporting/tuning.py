"""The tuning table and its figure: what each study found on the validation split, and how it got there.

The first trial of every study is the configured options, so "untuned" in the table is the model's validation
value before the search and the gap to "best" is what tuning bought on validation (the tables report test).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import polars as pl

from audiorec.reporting.figures.style import COLUMN_WIDTH, backbone_colours, new_figure, save, say_empty, styled
from audiorec.reporting.report import markdown_table


def tuning_markdown(table: pl.DataFrame) -> str:
    """The tuning table as Markdown, with a note on what its columns mean."""
    note = (
        "# Hyper-parameter tuning\n\nEach study searched a model's options on one backbone, maximising the metric "
        "on the **validation** users (the test split is never read by a study). `untuned` is the first trial, "
        "the configured options; `best` the best trial, whose options the tuned runs train with.\n\n"
    )
    if table.is_empty():
        return note + "No model is tuned.\n"
    shown = table.with_columns(
        pl.col("untuned_value").round(4).alias("untuned"),
        pl.col("best_value").round(4).alias("best"),
        pl.col("seconds").round(1),
    )
    columns = ["model", "backbone", "metric", "untuned", "best", "best_params", "completed_trials", "seconds"]
    return note + markdown_table(shown, columns) + "\n"


@styled
def tuning_figure(curves: Mapping[tuple[str, str], pl.DataFrame], path: str | Path) -> None:
    """The validation value of every trial (dots) and the best so far (a step line), one panel per model, one
    colour per backbone."""
    models = sorted({model for model, _ in curves})
    columns = min(3, max(1, len(models)))
    rows = max(1, math.ceil(len(models) / columns))
    figure, axes = new_figure(COLUMN_WIDTH, 2.4 * rows, nrows=rows, ncols=columns, squeeze=False)
    panels = axes.ravel()
    if not curves:
        say_empty(panels[0], "No model is tuned (a models.<name>.tune block in the config).")
    colours = backbone_colours(sorted({backbone for _, backbone in curves}))
    for panel, model in zip(panels, models, strict=False):
        for (name, backbone), trials in sorted(curves.items()):
            if name != model:
                continue
            done = trials.filter(pl.col("state") == "COMPLETE").sort("number")
            values = done["value"].to_numpy()
            panel.plot(done["number"].to_numpy(), values, "o", markersize=3, color=colours[backbone], alpha=0.6)
            best = pl.Series(values).cum_max().to_numpy() if len(values) else values
            panel.step(done["number"].to_numpy(), best, where="post", color=colours[backbone], label=backbone)
        panel.set_title(model)
        panel.set_xlabel("trial")
        panel.set_ylabel("validation value")
        panel.legend(fontsize="small")
    for panel in panels[max(1, len(models)) :]:
        panel.set_visible(False)
    save(figure, path)
