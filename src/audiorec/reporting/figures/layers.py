"""The layer sweep: validation HitRate of every hidden layer, one line per swept backbone, the configured layer marked.

Backbones differ in depth, so the x axis is the layer's position in its backbone (0 = the first stored layer);
when every backbone stores the same layers their names label the axis instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from audiorec.reporting.figures.style import COLUMN_WIDTH, backbone_colours, new_figure, save, say_empty, styled


def configured_index(table: pl.DataFrame, layer: str | int | None) -> int | None:
    """The ``layer_index`` of the configured ``layer`` (``last``, an index, a name) in a sweep table; None for
    ``mean`` (an average of every layer, not one of them) or a layer the sweep did not score."""
    indices = table["layer_index"].to_list()
    if layer == "last":
        return indices[-1]
    if isinstance(layer, int) and -len(indices) <= layer < len(indices):
        return indices[layer]
    names = table["layer"].cast(pl.String).to_list()
    return indices[names.index(layer)] if layer in names else None


@styled
def layer_curves(
    tables: Mapping[str, pl.DataFrame],
    metric: str,
    path: str | Path,
    layers: Mapping[str, str | int] | None = None,
    backbones: Sequence[str] = (),
) -> None:
    """``metric`` by hidden layer for every swept backbone, with its 95 % t interval as a band.

    ``tables`` maps a backbone to its layer-sweep table (:func:`audiorec.reporting.layer_sweep.sweep_layers`),
    ``layers`` a backbone to its configured ``layer`` (a star on its line), ``backbones`` is the config's order of
    backbones, which fixes each one's colour across the run's figures.
    """
    layers = layers or {}
    swept = {name: table for name, table in tables.items() if not table.is_empty()}
    figure, axes = new_figure(COLUMN_WIDTH, 3.0, nrows=1)
    if not swept:
        say_empty(axes, "No backbone is swept (layer_sweep.backbones in the config).")
        save(figure, path)
        return
    colours = backbone_colours(swept, backbones)
    ordered = sorted(
        swept, key=lambda name: (list(backbones).index(name) if name in backbones else len(backbones), name)
    )
    for name in ordered:
        table = swept[name]
        x = table["layer_index"].to_numpy()
        chosen = configured_index(table, layers.get(name))
        configured = layers.get(name, "?") if chosen is not None else f"{layers.get(name, '?')}, not a swept layer"
        axes.plot(
            x,
            table[metric].to_numpy(),
            marker="o",
            markersize=3,
            color=colours[name],
            label=f"{name} (layer: {configured})",
        )
        axes.fill_between(
            x,
            table[f"{metric} ci_low"].to_numpy(),
            table[f"{metric} ci_high"].to_numpy(),
            color=colours[name],
            alpha=0.15,
            linewidth=0,
        )
        if chosen is not None:
            value = table.filter(pl.col("layer_index") == chosen)[metric][0]
            axes.plot(
                [chosen], [value], "*", markersize=11, color=colours[name], markeredgecolor="black", markeredgewidth=0.6
            )
    names = {tuple(table["layer"].cast(pl.String).to_list()) for table in swept.values()}
    if len(names) == 1:
        (shared,) = names
        axes.set_xticks(
            range(len(shared)),
            shared,
            rotation=30 if max(map(len, shared)) > 6 else 0,
            ha="right" if max(map(len, shared)) > 6 else "center",
        )
        axes.set_xlabel("layer")
    else:
        axes.set_xlabel("layer position in its backbone (0: first stored layer)")
    axes.set_ylabel(f"{metric} (validation)")
    axes.grid(alpha=0.3)
    axes.plot([], [], "*", markersize=9, color="white", markeredgecolor="black", label="configured layer")
    axes.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, title="backbone")
    save(figure, path)
