"""What every figure shares: sizes, fonts, one colour per backbone across a run's figures, and atomic saving.

A backbone keeps its colour in every figure of a run because the colour comes from the config's order of
backbones (passed by the rules), not from which runs happen to be in one table; names the order does not list
(a model's own controls, a test's tables) follow in sorted order. A control (``<b>_shuffled``, ``<b>_width``)
takes its backbone's colour and is told apart by hatching or line style, so the eye pairs it with its backbone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: figures render on cluster nodes without a display

import matplotlib.pyplot as plt  # after the backend is chosen
from matplotlib.axes import Axes
from matplotlib.colors import to_hex

from audiorec.evaluation.controls import NO_BACKBONE, SHUFFLED_SUFFIX, WIDTH_SUFFIX
from audiorec.storage.atomic import atomic_path

COLUMN_WIDTH = 7.0
"""Inches: a full text width of a two-column paper, so that fonts print at their nominal size."""
FONT_SIZE = 8.0
SMALL_FONT = 7.0
DPI = 150
NO_BACKBONE_COLOUR = "#7f7f7f"
PALETTE = tuple(to_hex(colour) for colour in (*plt.get_cmap("tab10").colors[:7], *plt.get_cmap("tab10").colors[8:]))
"""tab10 without its grey, which stands for runs without embeddings; tab20's light shades follow past nine."""
EXTRA_PALETTE = tuple(to_hex(colour) for colour in plt.get_cmap("tab20").colors[1::2])
MODEL_PALETTE = tuple(to_hex(colour) for colour in plt.get_cmap("Dark2").colors)
"""Models get colours of their own where colour stands for a model, so they are not read as backbones."""
MODEL_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
RC = {
    "font.size": FONT_SIZE,
    "axes.titlesize": FONT_SIZE,
    "axes.labelsize": FONT_SIZE,
    "xtick.labelsize": SMALL_FONT,
    "ytick.labelsize": SMALL_FONT,
    "legend.fontsize": SMALL_FONT,
    "legend.title_fontsize": SMALL_FONT,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "pdf.fonttype": 42,  # TrueType in the PDF: text stays text, and journals accept it
}


def base_backbone(backbone: str) -> str:
    """The backbone a run backbone stands for: ``musicnn`` for ``musicnn``, ``musicnn_shuffled``, ``musicnn_width``."""
    return backbone.removesuffix(SHUFFLED_SUFFIX).removesuffix(WIDTH_SUFFIX)


def control_kind(backbone: str) -> str:
    """``shuffled``, ``width``, ``none`` or ``real``: how a run's item vectors relate to its backbone's audio."""
    if backbone == NO_BACKBONE:
        return "none"
    if backbone.endswith(SHUFFLED_SUFFIX):
        return "shuffled"
    if backbone.endswith(WIDTH_SUFFIX):
        return "width"
    return "real"


def backbone_order(names: Iterable[str], order: Sequence[str] = ()) -> list[str]:
    """Base backbones of ``names``: those of ``order`` in its order, then the rest sorted (``none`` last)."""
    bases = {base_backbone(name) for name in names} - {NO_BACKBONE}
    known = [name for name in order if name in bases]
    return known + sorted(bases - set(known)) + ([NO_BACKBONE] if NO_BACKBONE in names else [])


def backbone_colours(names: Iterable[str], order: Sequence[str] = ()) -> dict[str, str]:
    """A colour for every run backbone of ``names``; controls share their backbone's colour."""
    names = list(names)
    palette = PALETTE + EXTRA_PALETTE
    known = backbone_order([*order, *names], order)
    colours = {base: palette[index % len(palette)] for index, base in enumerate(b for b in known if b != NO_BACKBONE)}
    colours[NO_BACKBONE] = NO_BACKBONE_COLOUR
    return {name: colours[base_backbone(name)] for name in names}


def run_sort_key(backbone: str, order: Sequence[str]) -> tuple[int, int]:
    """Backbones in ``order`` (from :func:`backbone_order`), each followed by its controls; no embeddings first."""
    if backbone == NO_BACKBONE:
        return (-1, 0)
    base = base_backbone(backbone)
    position = order.index(base) if base in order else len(order)
    return (position, ("real", "width", "shuffled").index(control_kind(backbone)))


def new_figure(width: float, height: float, **grid: object) -> tuple[plt.Figure, object]:
    """A figure with constrained layout, so that no label runs into a neighbour (call it inside :func:`styled`)."""
    figure = plt.figure(figsize=(width, height), layout="constrained", dpi=DPI)
    axes = figure.subplots(**grid) if grid else None
    figure.get_layout_engine().set(w_pad=0.04, h_pad=0.04, wspace=0.04, hspace=0.04)
    return figure, axes


def styled(function):
    """Run a drawing function under the shared rc parameters (they apply when artists are created)."""

    def wrapper(*args, **kwargs):
        with plt.rc_context(RC):
            return function(*args, **kwargs)

    wrapper.__doc__, wrapper.__name__, wrapper.__wrapped__ = function.__doc__, function.__name__, function
    return wrapper


def say_empty(axes: Axes, text: str) -> None:
    """Write why a panel shows nothing, in the panel, instead of leaving it blank or printing ``n/a``."""
    axes.text(0.5, 0.5, text, transform=axes.transAxes, ha="center", va="center", wrap=True, color="0.3")
    axes.set_xticks([])
    axes.set_yticks([])


def pdf_path(path: str | Path) -> Path:
    """The vector copy of a PNG figure: the same stem, ``.pdf``."""
    return Path(path).with_suffix(".pdf")


def save(figure: plt.Figure, path: str | Path) -> None:
    """Write ``figure`` as PNG at ``path`` and as PDF beside it, each atomically, and free it."""
    for target, kind in ((Path(path), "png"), (pdf_path(path), "pdf")):
        with atomic_path(target) as tmp:
            figure.savefig(tmp, format=kind, dpi=DPI, metadata={"CreationDate": None} if kind == "pdf" else None)
    plt.close(figure)
