"""Figures render from the workflow's tables, headless, as PNG and PDF, with no text running into another.

Every figure is drawn twice: on tables shaped like the tiny demo world's (one to three backbones) and on a
synthetic results table the size of the first paper's Table 3 and more (nine backbones, five models, their
random-init variants and controls). Legibility is checked on the drawn figure: the window extent of every text
that was drawn must lie inside the figure and overlap no other text.
"""

from __future__ import annotations

import itertools

import matplotlib.colors
import matplotlib.text
import numpy as np
import polars as pl
import pytest

from audiorec.reporting.figures import (
    accuracy_popularity_scatter,
    layer_curves,
    mir_scatter,
    recommendation_bars,
    style,
    training_curves,
)
from audiorec.reporting.figures.mir import RHO, spread
from audiorec.reporting.figures.training import restored_epoch

PNG = b"\x89PNG\r\n\x1a\n"
METRIC = "HitRate@50"
TINY = {"backbones": ["mfcc", "mfcc8", "ssl_tiny"], "models": ["knn", "shallow", "bert4rec"]}
LARGE = {
    "backbones": ["mfcc", "musicnn", "mert", "music2vec", "musicfm", "muq", "encodecmae", "jukebox", "ssl_contrastive"],
    "models": ["knn", "shallow", "bert4rec", "ease", "sasrec"],
}
MIR_TASKS = ("genre SVM", "genre LR", "instrument SVM", "instrument LR", "playlist HR@10", "playlist MPR")


def summary_table(backbones: list[str], models: list[str]) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    """A results table, its significance table and the random variants, as the aggregate rule writes them."""
    generator = np.random.default_rng(0)
    runs = [("popularity", "none"), ("random", "none")]
    variants = {}
    for model in models:
        runs += [(model, b) for b in backbones] + [(model, f"{b}_shuffled") for b in backbones[:2]]
        if model != "knn":
            variants[model] = [f"{model}_random", f"{model}_random_matched"]
            runs += [(f"{model}_random", "none")] + [(f"{model}_random_matched", f"{b}_width") for b in backbones[:2]]
    rows, tests = [], []
    for split, (model, backbone) in itertools.product(("val", "test"), runs):
        mean = float(generator.uniform(0.2, 0.9))
        rows.append({"split": split, "model": model, "backbone": backbone, "n_users": 26, "n_seeds": 1, METRIC: mean})
        rows[-1] |= {f"{METRIC} ci_low": mean - 0.1, f"{METRIC} ci_high": mean + 0.1, f"{METRIC} seed_sd": None}
        if model in variants and backbone == backbones[0]:
            for versus, reference in (
                ("random", (f"{model}_random", "none")),
                ("shuffled", (model, f"{backbone}_shuffled")),
            ):
                tests.append(
                    {
                        "split": split,
                        "model": model,
                        "backbone": backbone,
                        "versus": versus,
                        "reference_model": reference[0],
                    }
                    | {"reference_backbone": reference[1], "metric": METRIC, "wilcoxon_p_holm": 0.01}
                )
    return pl.from_dicts(rows), pl.from_dicts(tests), variants


def training_logs(backbones: list[str], models: list[str]) -> tuple[dict, dict]:
    """Logs of every trained run (a cross-entropy near 6, a hinge loss near 0.1) and each variant's family."""
    logs, families = {}, {}
    for model in models[1:]:
        scale = 6.0 if model == "bert4rec" else 0.1
        families[f"{model}_random"] = model
        for index, backbone in enumerate([*backbones, f"{backbones[0]}_shuffled", "none"]):
            name = f"{model}_random" if backbone == "none" else model
            loss = scale * (1 + np.exp(-np.arange(8) / (2 + index)))
            logs[name, backbone, 0] = pl.DataFrame(
                {"epoch": range(8), "train_loss": [None, *loss[1:] * 1.1], "val_loss": loss, METRIC: loss}
            ).with_columns(pl.col(METRIC).alias(f"val_{METRIC}"), best=pl.Series([True] * 6 + [False] * 2))
    return logs, families


def mir_tables(backbones: list[str], models: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    generator = np.random.default_rng(1)
    table = pl.DataFrame(
        {"backbone": backbones} | {task: generator.uniform(0, 1, len(backbones)) for task in MIR_TASKS}
    )
    for index, model in enumerate(models):  # the first model ran on every backbone, later ones on fewer
        scores = generator.uniform(0, 1, len(backbones))
        table = table.with_columns(
            pl.Series(f"{model} {METRIC}", [s if i <= len(backbones) - index else None for i, s in enumerate(scores)])
        )
    correlations = [
        {"mir": task, "model": model, "metric": METRIC, "n_backbones": table[f"{model} {METRIC}"].count()}
        | {"spearman_rho": float("nan") if table[f"{model} {METRIC}"].count() < 3 else 0.4, "p_value": 0.3}
        for task in MIR_TASKS
        for model in models
    ]
    return table, pl.from_dicts(correlations)


def layer_tables(backbones: list[str]) -> dict[str, pl.DataFrame]:
    tables = {}
    for depth, backbone in zip(itertools.cycle((6, 13, 25)), backbones):
        values = np.linspace(0.3, 0.6, depth)
        tables[backbone] = pl.DataFrame(
            {"layer_index": range(depth), "layer": [f"layer{i}" for i in range(depth)], METRIC: values}
        ).with_columns(
            (pl.col(METRIC) - 0.05).alias(f"{METRIC} ci_low"), (pl.col(METRIC) + 0.05).alias(f"{METRIC} ci_high")
        )
    return tables


@pytest.fixture
def drawn(monkeypatch):
    """The figures the functions save, kept open, and the texts each canvas draw paints."""
    figures, painted = [], []
    monkeypatch.setattr(style.plt, "close", figures.append)
    original = matplotlib.text.Text.draw

    def draw(self, renderer):
        painted.append(self)
        return original(self, renderer)

    monkeypatch.setattr(matplotlib.text.Text, "draw", draw)
    return figures, painted


def legible(figure, painted: list) -> list[str]:
    """Problems of a figure: a drawn text outside it, or two drawn texts overlapping."""
    painted.clear()
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    texts = [t for t in painted if t.get_visible() and t.get_text().strip() and t.figure is figure]
    boxes = [(t.get_text(), t.get_window_extent(renderer).expanded(1.0, 1.0).shrunk(0.98, 0.9)) for t in texts]
    frame = figure.bbox.padded(1.0)
    problems = [
        f"{text!r} leaves the figure"
        for text, box in boxes
        if not frame.contains(box.x0, box.y0) or not frame.contains(box.x1, box.y1)
    ]
    problems += [
        f"{a!r} overlaps {b!r}" for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2) if box_a.overlaps(box_b)
    ]
    return problems


@pytest.mark.parametrize("world", [TINY, LARGE], ids=["tiny", "large"])
def test_every_figure_is_legible_and_written_as_png_and_pdf(tmp_path, drawn, world):
    figures, painted = drawn
    backbones, models = world["backbones"], world["models"]
    summary, significance, variants = summary_table(backbones, models)
    recommendation_bars(summary, METRIC, tmp_path / "bars.png", "test", significance, 0.05, variants, models, backbones)
    logs, families = training_logs(backbones, models)
    training_curves(logs, tmp_path / "curves.png", families, backbones)
    layers = {name: "last" if index else 2 for index, name in enumerate(backbones[:3])}
    layer_curves(layer_tables(backbones[:3]), METRIC, tmp_path / "layers.png", layers, backbones)
    mir_scatter(*mir_tables(backbones, models[:3]), tmp_path / "scatter.png")
    for figure, name in zip(figures, ("bars", "curves", "layers", "scatter"), strict=True):
        assert legible(figure, painted) == [], name
        assert (tmp_path / f"{name}.png").read_bytes().startswith(PNG), name
        assert (tmp_path / f"{name}.pdf").read_bytes().startswith(b"%PDF"), name
    assert not list(tmp_path.glob(".*"))  # no temporaries left behind


def test_too_few_backbones_for_a_correlation_is_said_once_not_printed_as_na(tmp_path, drawn):
    figures, painted = drawn
    table, correlations = mir_tables(["mfcc", "mfcc8"], ["knn", "shallow"])
    mir_scatter(table, correlations, tmp_path / "scatter.png")
    assert legible(figures[0], painted) == []
    texts = [t.get_text() for t in painted]
    assert sum("No rank correlation" in text for text in texts) == 1
    assert not any("n/a" in text or f"{RHO} =" in text for text in texts)


def test_empty_tables_say_why_the_figure_is_empty(tmp_path, drawn):
    figures, _ = drawn
    layer_curves({}, METRIC, tmp_path / "layers.png")
    training_curves({}, tmp_path / "curves.png")
    texts = [t.get_text() for figure in figures for t in figure.texts + [t for a in figure.axes for t in a.texts]]
    assert any("No backbone is swept" in text for text in texts)
    assert any("No trained recommender" in text for text in texts)


def test_a_backbone_keeps_its_colour_and_its_controls_share_it():
    order = LARGE["backbones"]
    one = style.backbone_colours(["mert", "none", "mert_shuffled"], order)
    other = style.backbone_colours(["mfcc", "mert", "jukebox_width"], order)
    assert one["mert"] == other["mert"] == one["mert_shuffled"]
    assert len(set(style.backbone_colours(order, order).values())) == len(order)
    assert one["none"] not in style.backbone_colours(order, order).values()


def test_backbone_names_are_spread_apart_within_the_strip():
    placed = spread([0.0, 0.01, 0.02, 0.5, 0.99, 1.0], gap=0.1)
    assert all(b - a >= 0.1 - 1e-9 for a, b in itertools.pairwise(placed))
    assert placed[0] >= 0.0 and placed[-1] <= 1.0


def test_restored_epoch_is_the_last_epoch_flagged_best():
    log = pl.DataFrame({"epoch": [0, 1, 2, 3], "best": [True, True, False, False]})
    assert restored_epoch(log) == 1


def beyond_summary(backbones: list[str], models: list[str]) -> pl.DataFrame:
    """:func:`summary_table` with the ARP columns the aggregate rule adds."""
    summary, _, _ = summary_table(backbones, models)
    generator = np.random.default_rng(2)
    arp = generator.uniform(5, 60, summary.height)
    return summary.with_columns(
        pl.Series("ARP@50", arp), pl.Series("ARP@50 ci_low", arp - 2), pl.Series("ARP@50 ci_high", arp + 2)
    )


@pytest.mark.parametrize("world", [TINY, LARGE], ids=["tiny", "large"])
def test_accuracy_against_popularity_names_every_row_and_colours_it_by_backbone(tmp_path, drawn, world):
    """Every test row is a point named by its label; the tiny world's names cover no other name (the large one's
    crowded clusters may, where no free place is left beside a point)."""
    figures, painted = drawn
    backbones, models = world["backbones"], world["models"]
    summary = beyond_summary(backbones, models)
    variants = summary_table(backbones, models)[2]
    accuracy_popularity_scatter(summary, METRIC, tmp_path / "popularity.png", "test", models, backbones, variants)
    figure = figures[0]
    assert (tmp_path / "popularity.png").read_bytes().startswith(PNG)
    assert (tmp_path / "popularity.pdf").read_bytes().startswith(b"%PDF")
    test_rows = summary.filter(pl.col("split") == "test")
    names = {t.get_text() for t in figure.axes[0].texts} - {""}  # "": leader lines
    assert len(names) == test_rows.height and "knn / mfcc" in names and "popularity" in names
    colours = style.backbone_colours(test_rows["backbone"], backbones)
    faces = {tuple(np.round(c, 3)) for collection in figure.axes[0].collections for c in collection.get_edgecolor()}
    assert {tuple(np.round(matplotlib.colors.to_rgba(c), 3)) for c in colours.values()} <= faces
    if world is TINY:
        assert legible(figure, painted) == []


def test_accuracy_against_popularity_says_when_the_table_has_no_popularity(tmp_path, drawn):
    figures, _ = drawn
    summary, _, _ = summary_table(TINY["backbones"], TINY["models"])
    accuracy_popularity_scatter(summary, METRIC, tmp_path / "popularity.png")
    assert any("No test results with ARP@50" in t.get_text() for t in figures[0].axes[0].texts)
