"""Results tables: per-user metrics of every run → one row per (split, model, backbone) with 95 % intervals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from audiorec.common.names import COLD_SPLIT, EVALUATION_SPLITS
from audiorec.evaluation.beyond_accuracy import PER_RANKING_METRICS, PER_USER_METRICS
from audiorec.evaluation.controls import NO_BACKBONE, WIDTH_SUFFIX
from audiorec.evaluation.significance import COMPARED_METRICS, seed_spread
from audiorec.evaluation.stats import bootstrap_intervals, t_confidence_interval

RUN_KEYS = ("split", "model", "backbone")


def metric_columns(frame: pl.DataFrame) -> list[str]:
    """Metric columns of a per-user metrics table (every column named like ``Metric@K``)."""
    return [name for name in frame.columns if "@" in name]


def summarize_runs(per_user: pl.DataFrame, level: float = 0.95, seed: int = 0) -> pl.DataFrame:
    """Summarise per-user metrics.

    ``per_user`` has columns split, model, backbone, seed, user_id and the metrics. Several seeds of one
    (model, backbone) are first averaged per user, so the interval stays an interval over users, the
    independent units, and does not shrink by counting a user once per seed. Each metric gets its t interval
    (``ci_low``/``ci_high``), a percentile bootstrap interval over users (``boot_low``/``boot_high``, seeded
    by ``seed``) and, for runs with several seeds, the sd over seeds of the per-seed means (``seed_sd``) and the t
    interval of their mean over seeds (``seed_ci_low``/``seed_ci_high``, the journal version's "± conf" over runs).
    A metric undefined for some users (null: ILD of a list with fewer than two embedded items) is summarised over
    the users it is defined for.
    """
    metrics = metric_columns(per_user)
    # Sorted input makes every float sum, and so every digit of the table, independent of the order in which
    # jobs finished (a cluster run and a local run must write the same bytes).
    per_user = per_user.sort([*RUN_KEYS, "seed", "user_id"])
    by_user = per_user.group_by([*RUN_KEYS, "user_id"], maintain_order=True).agg(
        pl.col("seed").n_unique().alias("n_seeds"), *[pl.col(m).mean() for m in metrics]
    )
    rows = []
    for keys, unordered in by_user.group_by(list(RUN_KEYS), maintain_order=False):
        group = unordered.sort("user_id")  # the bootstrap draws users by position: fix the order it sees
        row: dict[str, object] = dict(zip(RUN_KEYS, keys, strict=True))
        row["n_users"] = group.height
        row["n_seeds"] = int(group.get_column("n_seeds").max())
        boot_low, boot_high = bootstrap_intervals(group.select(metrics).to_numpy(), level, seed=seed)
        for index, metric in enumerate(metrics):
            values = group.get_column(metric).drop_nulls().to_numpy()
            mean, low, high = t_confidence_interval(values, level)
            row[metric], row[f"{metric} ci_low"], row[f"{metric} ci_high"] = mean, low, high
            if values.size < group.height:  # the shared resamples hold its nulls: resample its own users
                low_bound, high_bound = bootstrap_intervals(values, level, seed=seed)
                boot_low[index], boot_high[index] = low_bound[0], high_bound[0]
            row[f"{metric} boot_low"], row[f"{metric} boot_high"] = float(boot_low[index]), float(boot_high[index])
        rows.append(row)
    if not rows:  # e.g. a cold-start table of a dataset where nobody heard a new release
        statistics = ("", " ci_low", " ci_high", " boot_low", " boot_high", " seed_sd")
        statistics += (" seed_ci_low", " seed_ci_high")
        schema = dict.fromkeys(RUN_KEYS, pl.String) | {"n_users": pl.Int64, "n_seeds": pl.Int64}
        return pl.DataFrame(schema=schema | {f"{m}{kind}": pl.Float64 for m in metrics for kind in statistics})
    split_order = pl.Enum([*EVALUATION_SPLITS, COLD_SPLIT])
    summary = pl.DataFrame(rows).join(seed_spread(per_user, level), on=list(RUN_KEYS), how="left")
    for metric in metrics:  # runs of one seed have no spread over seeds
        for column in (f"{metric} seed_sd", f"{metric} seed_ci_low", f"{metric} seed_ci_high"):
            if column not in summary.columns:
                summary = summary.with_columns(pl.lit(None, dtype=pl.Float64).alias(column))
    return (
        summary.with_columns(pl.col("split").cast(split_order))
        .sort(["split", "model", "backbone"])
        .with_columns(pl.col("split").cast(pl.String))
    )


def with_ranking_metrics(summary: pl.DataFrame, per_ranking: pl.DataFrame) -> pl.DataFrame:
    """``summary`` with the per-ranking metrics (Coverage, Gini; one value per split, model, backbone and seed in
    ``per_ranking``) appended, each the mean over the run's seeds: a run's lists have no users to put an interval
    over, and its seeds are few."""
    metrics = [name for name in per_ranking.columns if "@" in name]
    if not metrics:
        return summary
    means = (
        per_ranking.sort([*RUN_KEYS, "seed"])
        .group_by(list(RUN_KEYS), maintain_order=True)
        .agg(pl.col(m).fill_nan(None).mean() for m in metrics)
    )
    return summary.join(means, on=list(RUN_KEYS), how="left", maintain_order="left")


def markdown_table(frame: pl.DataFrame, columns: Sequence[str]) -> str:
    """A GitHub-flavoured Markdown table of ``columns`` (floats to 4 decimals)."""

    def cell(value: object) -> str:
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(row[c]) for c in columns) + " |" for row in frame.iter_rows(named=True)]
    return "\n".join(lines)


REPORTED_SPLIT_ORDER = (*reversed(EVALUATION_SPLITS), COLD_SPLIT)
"""The split a paper reports comes first; validation (used for early stopping) after it."""
BASELINES_BLOCK = "Baselines"


def result_blocks(
    summary: pl.DataFrame,
    random_variants: Mapping[str, Sequence[str]] | None = None,
    model_order: Sequence[str] = (),
) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """The first paper's Table 3 blocks: ``(heading, [(row label, model, backbone), ...])``.

    A model with backbones gets a block of its own, headed by its name; its random-init variants (from
    ``random_variants``) come first, the paper's fixed-width one and then any width-matched ones (backbone
    ``<name>_width``, :mod:`audiorec.evaluation.controls`), then its backbones and their controls. Models without a
    backbone that are no one's variant (popularity, random) share a final block of baselines. Blocks follow
    ``model_order`` (the config's order: KNN, Shallow Net, BERT4Rec in the paper), then model names.
    """
    random_variants = random_variants or {}
    runs = summary.select("model", "backbone").unique().sort("model", "backbone").rows()
    position = {model: index for index, model in enumerate(model_order)}
    runs = sorted(runs, key=lambda run: (position.get(run[0], len(position)), run[0], run[1]))
    with_backbones = {model for model, backbone in runs if backbone != NO_BACKBONE and not is_width_run(backbone)}
    hosted = {variant for model in with_backbones for variant in random_variants.get(model, ())}
    blocks: list[tuple[str, list[tuple[str, str, str]]]] = []
    baselines: list[tuple[str, str, str]] = []
    for model in dict.fromkeys(model for model, _ in runs):
        backbones = [backbone for name, backbone in runs if name == model]
        if model not in with_backbones:
            if model not in hosted:
                baselines += [(label_of(model, backbone), model, backbone) for backbone in backbones]
            continue
        variants = random_variants.get(model, ())
        paper = [(f"random init (`{v}`)", v, NO_BACKBONE) for v in variants if (v, NO_BACKBONE) in runs]
        matched = [
            (f"random init, width of `{b.removesuffix(WIDTH_SUFFIX)}` (`{v}`)", v, b)
            for v in variants
            for name, b in runs
            if name == v and is_width_run(b)
        ]
        blocks.append((model, paper + matched + [(backbone, model, backbone) for backbone in backbones]))
    if baselines:
        blocks.append((BASELINES_BLOCK, baselines))
    return blocks


def is_width_run(backbone: str) -> bool:
    """Whether a run backbone is a width-matched random-init reference (``<name>_width``)."""
    return backbone.endswith(WIDTH_SUFFIX)


def label_of(model: str, backbone: str) -> str:
    """A baseline row's label: the model, and the backbone whose width it took when it has one."""
    return model if backbone == NO_BACKBONE else f"{model} (width of `{backbone.removesuffix(WIDTH_SUFFIX)}`)"


def recommendation_markdown(
    summary: pl.DataFrame,
    split_stats: pl.DataFrame,
    marks: Mapping[tuple[str, str, str, str], str] | None = None,
    legend: str | None = None,
    title: str = "Recommendation results",
    random_variants: Mapping[str, Sequence[str]] | None = None,
    model_order: Sequence[str] = (),
    note: str | None = None,
) -> str:
    """The human-readable results table in the layout of the first paper's Table 3, then the split sizes.

    Per split (test first), one block per model (see :func:`result_blocks`, which ``random_variants`` and
    ``model_order`` go to) with HitRate, Recall and NDCG at every K as mean ± half-width of the 95 % t interval
    over users; the best mean of a block is bold. ``marks`` maps ``(split, model, backbone, metric)`` to
    significance marks appended to the cell, explained by ``legend`` under the tables; ``note`` says what the
    table ranks when that needs saying (the cold-start table). Runs with several seeds also show the sd over
    seeds and the half-width of the 95 % t interval over seeds. Every other metric and the bootstrap intervals are
    in the CSV.
    """
    marks = marks or {}
    metrics = [name for name in summary.columns if "@" in name and " " not in name]
    shown = [name for name in metrics if name.split("@")[0] in COMPARED_METRICS] or metrics
    shown = sorted(shown, key=lambda name: (int(name.split("@")[1]), COMPARED_METRICS.index(name.split("@")[0])))
    present = summary.get_column("split").unique().to_list()
    splits = [split for split in REPORTED_SPLIT_ORDER if split in present]
    splits += sorted(set(present) - set(splits))
    sections = [f"# {title}", "", *([note, ""] if note else [])]
    if splits:
        sections += [
            "Mean over users ± half-width of its 95 % t interval; **bold**: the best of its block. A row of several "
            "seeds adds, in parentheses, the sd of its per-seed means and the half-width of their 95 % t interval. "
            "Every metric with t and bootstrap intervals is in the CSV beside this file.",
            "",
        ]
    for split in splits:
        in_split = summary.filter(pl.col("split") == split)
        runs = {(row["model"], row["backbone"]): row for row in in_split.iter_rows(named=True)}
        sections += [f"## {split}", ""]
        for heading, block in result_blocks(in_split, random_variants, model_order):
            rows = [(label, runs[model, backbone]) for label, model, backbone in block]
            best = {metric: max(row[metric] for _, row in rows) for metric in shown}
            cells = [
                {
                    "embeddings" if heading != BASELINES_BLOCK else "model": label,
                    "users": row["n_users"],
                    **{
                        metric: _cell(row, metric, len(rows) > 1 and row[metric] == best[metric])
                        + marks.get((split, row["model"], row["backbone"], metric), "")
                        for metric in shown
                    },
                }
                for label, row in rows
            ]
            frame = pl.from_dicts(cells)
            sections += [f"### {heading}", "", markdown_table(frame, frame.columns), ""]
    if legend and splits:
        sections += [legend, ""]
    sections += beyond_accuracy_markdown(summary, splits, marks, random_variants, model_order)
    sections += ["## Split statistics", "", markdown_table(split_stats, split_stats.columns), ""]
    return "\n".join(sections)


def beyond_accuracy_markdown(
    summary: pl.DataFrame,
    splits: Sequence[str],
    marks: Mapping[tuple[str, str, str, str], str],
    random_variants: Mapping[str, Sequence[str]] | None = None,
    model_order: Sequence[str] = (),
) -> list[str]:
    """The "Beyond accuracy" section: per split, every row's ARP, Novelty and ILD (mean ± half-width, with the
    marks of their own test family) and its Coverage and Gini, at every K. No cell is bold: whether more popular
    or more diverse lists are better depends on what a service wants, so the table describes and does not rank."""
    beyond = (*PER_USER_METRICS, *PER_RANKING_METRICS)
    metrics = [name for name in summary.columns if " " not in name and name.split("@")[0] in beyond]
    if not metrics or not splits:
        return []
    metrics = sorted(metrics, key=lambda name: (int(name.split("@")[1]), beyond.index(name.split("@")[0])))
    sections = [
        "## Beyond accuracy",
        "",
        "ARP: mean train popularity (listeners) of the top K; Novelty: mean self-information -log2(popularity / "
        "train users); ILD: mean pairwise cosine distance in the reference embedding space (mean over users ± "
        "half-width of the 95 % t interval); Coverage: share of the candidates in any top K; Gini: inequality of "
        "the candidates' exposure (0: even). Marks as above, tested as a family of their own.",
        "",
    ]
    for split in splits:
        in_split = summary.filter(pl.col("split") == split)
        runs = {(row["model"], row["backbone"]): row for row in in_split.iter_rows(named=True)}
        # In block order, each row once: a random-init variant heads the block of every model it is a variant of.
        ordered = dict.fromkeys(
            (model, backbone)
            for _, block in result_blocks(in_split, random_variants, model_order)
            for _, model, backbone in block
        )
        cells = []
        for model, backbone in ordered:
            row = runs[model, backbone]
            cell = {"model": model, "backbone": backbone}
            for metric in metrics:
                value = row[metric]
                if value is None or value != value:
                    cell[metric] = "-"
                elif metric.split("@")[0] in PER_RANKING_METRICS:
                    cell[metric] = f"{value:.4f}"
                else:
                    cell[metric] = _cell(row, metric, False) + marks.get((split, model, backbone, metric), "")
            cells.append(cell)
        frame = pl.from_dicts(cells)
        sections += [f"### {split}", "", markdown_table(frame, frame.columns), ""]
    return sections


def _cell(row: Mapping[str, object], metric: str, bold: bool) -> str:
    """``mean ± half-width`` (bold mean when it is the block's best), and the sd and the t interval's half-width over
    seeds when there are several."""
    mean = f"**{row[metric]:.4f}**" if bold else f"{row[metric]:.4f}"
    half = (row[f"{metric} ci_high"] - row[f"{metric} ci_low"]) / 2
    cell = f"{mean} ± {half:.4f}" if half == half else mean
    if row[f"{metric} seed_sd"] is not None:
        spread = f"sd {row[f'{metric} seed_sd']:.4f}"
        if row.get(f"{metric} seed_ci_high") is not None:  # the t interval over seeds, as the journal version reports
            spread += f", ± {(row[f'{metric} seed_ci_high'] - row[f'{metric} seed_ci_low']) / 2:.4f}"
        cell += f" ({spread} over {row['n_seeds']} seeds)"
    return cell


def cold_start_note(split_stats: pl.DataFrame, metrics: Sequence[str]) -> str:
    """What the cold-start table ranks, and a warning when a cut-off K admits every candidate."""
    cold = split_stats.filter(pl.col("split") == COLD_SPLIT)
    n_new = int(cold.get_column("items")[0]) if cold.height else 0
    if n_new == 0:
        return "No track was first heard in the evaluation window, so there are no new releases to rank."
    note = (
        f"Each user who first heard a new release in the evaluation window gets a ranking of the {n_new} new "
        "releases only (tracks nobody heard in train). A model that scores a track by its audio can order them; "
        "`random` is chance."
    )
    trivial = sorted({int(m.split("@")[1]) for m in metrics if int(m.split("@")[1]) >= n_new})
    if trivial:
        note += f" With K ≥ {n_new} every candidate is in the top K, so the metrics at K = {trivial} say nothing."
    if any(m.split("@")[0] in ("ARP", "Novelty") for m in metrics):
        note += (
            " A new release has no train listeners (popularity 0, counted as one listener in Novelty), so ARP and "
            "Novelty are the same for every list here; ILD, Coverage and Gini tell the rows apart."
        )
    return note


PROBE_CLASSIFIERS = {"svm": "SVM", "logreg": "LR"}
PAPER_PROBE_COLUMNS = ("genre SVM", "genre LR", "instrument SVM", "instrument LR", "playlist HR@10", "playlist MPR")
"""The probe columns of Choi et al.'s Table 3 (playlist MPR: lower is better), as :func:`probe_summary` names them."""


def probe_summary(results: Sequence[dict]) -> pl.DataFrame:
    """One row per backbone from probe results (the JSON of each probe, with its ``task`` and ``backbone``).

    Columns follow Table 3 of Choi et al. (2022): ``<task> SVM`` and ``<task> LR`` test accuracies for every
    label task (and their ``macro-F1``), then the sampled playlist metrics ``playlist HR@k`` and ``playlist MPR``
    and their full-catalogue counterparts.
    """
    rows: dict[str, dict[str, object]] = {}
    for result in results:
        row = rows.setdefault(result["backbone"], {"backbone": result["backbone"], "dim": result["dim"]})
        task = result["task"]
        if "MPR" in result:
            k = result["k"]
            for key in (f"HR@{k}", "MPR", f"full HitRate@{k}", f"full NDCG@{k}"):
                row[f"{task} {key}"] = result[key]
            continue
        for classifier, short in PROBE_CLASSIFIERS.items():
            row[f"{task} {short}"] = result[classifier]["accuracy"]
            row[f"{task} {short} macro-F1"] = result[classifier]["macro_f1"]
    return pl.from_dicts(list(rows.values()), infer_schema_length=None)


def probe_markdown(summary: pl.DataFrame) -> str:
    """The MIR table in the second paper's layout, then sampled versus full-catalogue playlist metrics and
    the classifiers' macro-F1."""

    def table(columns: list[str]) -> str:
        shown = summary.select(
            "backbone", *[pl.col(c).round(4).cast(pl.String).fill_null("-").alias(c) for c in columns]
        )
        return markdown_table(shown, shown.columns)

    metrics = [c for c in summary.columns if c not in ("backbone", "dim")]
    accuracy = [c for c in metrics if c.endswith((" SVM", " LR"))]
    sampled = [c for c in metrics if " HR@" in c or c.endswith(" MPR")]
    full = [c for c in metrics if " full " in c]
    f1 = [c for c in metrics if c.endswith("macro-F1")]
    sections = [
        "# MIR probes and playlist continuation",
        "",
        "Test accuracy of linear probes on frozen track embeddings (C chosen on the validation split); playlist",
        "continuation by ItemKNN from 3 query tracks, each held-out track ranked against 100 sampled tracks",
        "(HR: higher is better; MPR, mean percentile rank: lower is better, 0.5 is chance).",
        "",
        table(["dim", *accuracy, *sampled]),
        "",
    ]
    if full:
        sections += [
            "## Playlist continuation: sampled versus full-catalogue ranking",
            "",
            "Sampled metrics can order systems differently from full rankings (Krichene & Rendle, KDD 2020).",
            "",
            table([*sampled, *full]),
            "",
        ]
    if f1:
        sections += ["## Macro-F1 of the probes", "", table(f1), ""]
    return "\n".join(sections)
