"""Which differences in the results table are real: paired per-user tests with Holm's correction.

Each (model, backbone) row is compared, on the users both runs scored, with the references that make its number
interpretable (Tamm & Aljanaki 2024 claim p < 0.05 improvements but report no test):

* ``random``: the same network with randomly initialised item embeddings (the model's random-init variant);
* ``random_width``: that variant trained at the backbone's embedding width (``item_dim: match``), so that the
  comparison with random init does not mix content with capacity;
* ``baseline``: the same model on the baseline backbone (MFCC, the first paper's reference features);
* ``shuffled``: the same model on the shuffled-embedding control of the same backbone;
* ``chance``: a random ranking (only where a ``chance_model`` is named: the cold-start table, where "better than
  chance?" is the open question rather than a formality).

Every comparison is tested on HitRate, Recall and NDCG at every K with a paired t-test and a Wilcoxon
signed-rank test; Holm's adjustment runs over all the tests of one split (one table), per test kind.

The per-user beyond-accuracy metrics (ARP, Novelty and ILD at every K, :mod:`audiorec.evaluation.beyond_accuracy`)
are tested the same way, as a second family with its own Holm adjustment (column ``family``). Adding them to the
accuracy family would raise every accuracy p-value (Holm multiplies the smallest p by the size of the family), so
a cell's significance mark would depend on whether diversity was measured as well; they answer a different question
(does a representation change *what* is recommended?), so each family controls its own error rate. A user whose
value is undefined (ILD of a list with fewer than two embedded items) is left out of that metric's pairs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl
from scipy import stats as scipy_stats

from audiorec.evaluation.beyond_accuracy import PER_USER_METRICS
from audiorec.evaluation.controls import NO_BACKBONE, SHUFFLED_SUFFIX, WIDTH_SUFFIX
from audiorec.evaluation.stats import holm, paired_comparison

COMPARED_METRICS = ("HitRate", "Recall", "NDCG")
"""The first paper's three metrics; Precision and MRR are reported but not tested."""

FAMILIES = {"accuracy": COMPARED_METRICS, "beyond_accuracy": PER_USER_METRICS}
"""Tested metrics by Holm family: each family is adjusted on its own within a split."""

MARKS = {"random": "†", "random_width": "‖", "baseline": "‡", "shuffled": "§", "chance": "¶"}
"""Marks a results-table cell gets when the Holm-adjusted Wilcoxon p against that reference is below ``alpha``."""


def per_user_means(per_user: pl.DataFrame) -> pl.DataFrame:
    """Average each user's metrics over seeds, so a user counts once per (split, model, backbone)."""
    metrics = [name for name in per_user.columns if "@" in name]
    ordered = per_user.sort(["split", "model", "backbone", "user_id", "seed"])  # order-independent float sums
    return ordered.group_by(["split", "model", "backbone", "user_id"], maintain_order=True).agg(
        pl.col(m).mean() for m in metrics
    )


def comparisons(
    runs: pl.DataFrame,
    random_variants: Mapping[str, Sequence[str]],
    baseline_backbone: str | None,
    shuffled_suffix: str,
    chance_model: str | None = None,
) -> list[dict[str, str]]:
    """The (model, backbone) → (reference model, reference backbone) pairs to test, as dicts.

    ``runs`` has one row per (model, backbone) present; ``random_variants`` maps a model name to the names of
    the models that are its random-init variant (e.g. ``shallow`` → ``[shallow_random]``); ``chance_model``
    names the random ranking every row with a backbone is also tested against (None: no such test).
    """
    present = set(runs.select("model", "backbone").iter_rows())
    pairs = []
    for model, backbone in sorted(present):
        if backbone == NO_BACKBONE or backbone.endswith((shuffled_suffix, WIDTH_SUFFIX)):
            continue
        for variant in random_variants.get(model, ()):
            if (variant, NO_BACKBONE) in present:
                pairs.append({"versus": "random", "reference_model": variant, "reference_backbone": NO_BACKBONE})
                pairs[-1] |= {"model": model, "backbone": backbone}
            if (variant, backbone + WIDTH_SUFFIX) in present:
                reference = {"reference_model": variant, "reference_backbone": backbone + WIDTH_SUFFIX}
                pairs.append({"versus": "random_width", **reference, "model": model, "backbone": backbone})
        if baseline_backbone and backbone != baseline_backbone and (model, baseline_backbone) in present:
            pairs.append({"versus": "baseline", "reference_model": model, "reference_backbone": baseline_backbone})
            pairs[-1] |= {"model": model, "backbone": backbone}
        shuffled = backbone + shuffled_suffix
        if (model, shuffled) in present:
            pairs.append({"versus": "shuffled", "reference_model": model, "reference_backbone": shuffled})
            pairs[-1] |= {"model": model, "backbone": backbone}
        if chance_model and (chance_model, NO_BACKBONE) in present:
            pairs.append({"versus": "chance", "reference_model": chance_model, "reference_backbone": NO_BACKBONE})
            pairs[-1] |= {"model": model, "backbone": backbone}
    return pairs


def significance_table(
    per_user: pl.DataFrame,
    random_variants: Mapping[str, Sequence[str]],
    baseline_backbone: str | None,
    shuffled_suffix: str = SHUFFLED_SUFFIX,
    chance_model: str | None = None,
) -> pl.DataFrame:
    """One row per (split, model, backbone, versus, metric) with both tests, effect sizes and Holm's p (adjusted
    within the metric's ``family``, see the module docstring).

    ``per_user`` has columns split, model, backbone, seed, user_id and the metrics (as ``aggregate`` builds it).
    """
    means = per_user_means(per_user)
    family_of = {metric: family for family, metrics in FAMILIES.items() for metric in metrics}
    metrics = [name for name in means.columns if name.split("@")[0] in family_of]
    rows = []
    for (split,), block in means.group_by(["split"], maintain_order=True):
        runs = block.select("model", "backbone").unique()
        for pair in comparisons(runs, random_variants, baseline_backbone, shuffled_suffix, chance_model):
            system = block.filter((pl.col("model") == pair["model"]) & (pl.col("backbone") == pair["backbone"]))
            reference = block.filter(
                (pl.col("model") == pair["reference_model"]) & (pl.col("backbone") == pair["reference_backbone"])
            )
            joined = system.join(reference, on="user_id", how="inner", suffix=" reference").sort("user_id")
            for metric in metrics:
                paired = joined.select(metric, f"{metric} reference").drop_nulls()
                result = paired_comparison(paired[metric].to_numpy(), paired[f"{metric} reference"].to_numpy())
                family = family_of[metric.split("@")[0]]
                rows.append({"split": split, **pair, "family": family, "metric": metric, **vars(result)})
    if not rows:
        return pl.DataFrame(schema={"split": pl.String, "model": pl.String, "backbone": pl.String})
    table = pl.from_dicts(rows)
    adjusted = []
    for _, block in table.group_by(["split", "family"], maintain_order=True):
        adjusted.append(
            block.with_columns(
                pl.Series("t_p_holm", holm(block["t_p_value"].to_numpy())),
                pl.Series("wilcoxon_p_holm", holm(block["wilcoxon_p_value"].to_numpy())),
            )
        )
    columns = ["split", "model", "backbone", "versus", "reference_model", "reference_backbone", "family", "metric"]
    return pl.concat(adjusted).select(*columns, pl.exclude(columns)).sort(columns)


def significance_marks(table: pl.DataFrame, alpha: float = 0.05) -> dict[tuple[str, str, str, str], str]:
    """``(split, model, backbone, metric)`` → the marks of the references it differs from significantly."""
    marks: dict[tuple[str, str, str, str], str] = {}
    if table.is_empty():
        return marks
    significant = table.filter(pl.col("wilcoxon_p_holm") < alpha)
    for row in significant.iter_rows(named=True):
        key = (row["split"], row["model"], row["backbone"], row["metric"])
        marks[key] = "".join(sorted(marks.get(key, "") + MARKS[row["versus"]], key=list(MARKS.values()).index))
    return marks


def marks_legend(baseline_backbone: str | None, alpha: float = 0.05, chance_model: str | None = None) -> str:
    """The sentence under a marked table."""
    baseline = f"the same model on `{baseline_backbone}`" if baseline_backbone else "the baseline backbone"
    chance = f", ¶ the random ranking `{chance_model}`" if chance_model else ""
    return (
        f"Marks: significantly different (paired Wilcoxon signed-rank over users, Holm-adjusted p < {alpha} across "
        "every test of the split and metric family) from † the model's random-init variant, ‖ that variant at the "
        f"backbone's width, "
        f"‡ {baseline}, § the same model on the shuffled-embedding control{chance}. Every test, with the paired "
        "t-test and effect sizes: the "
        "significance CSV beside this table."
    )


def seed_spread(per_user: pl.DataFrame, level: float = 0.95) -> pl.DataFrame:
    """The sd over seeds of each run's per-seed mean, and the t interval of their mean (single-seed rows left out).

    ``{metric} seed_ci_low`` / ``seed_ci_high`` is the interval the journal version of Tamm & Aljanaki reports,
    "mean ± conf" over a run's seeds: the per-seed means over users, their mean, and the standard error over seeds
    times the Student-t quantile at n_seeds - 1 degrees of freedom. It measures training noise, not the spread of
    users, which the t interval over users measures.
    """
    metrics = [name for name in per_user.columns if "@" in name]
    ordered = per_user.sort(["split", "model", "backbone", "seed", "user_id"])  # order-independent float sums
    per_seed = ordered.group_by(["split", "model", "backbone", "seed"], maintain_order=True).agg(
        pl.col(m).mean() for m in metrics
    )
    spread = per_seed.group_by(["split", "model", "backbone"], maintain_order=True).agg(
        pl.len().alias("n_seeds"),
        *[pl.col(m).std(ddof=1).alias(f"{m} seed_sd") for m in metrics],
        *[pl.col(m).mean().alias(f"{m} seed_mean") for m in metrics],
    )
    spread = spread.filter(pl.col("n_seeds") > 1)
    quantile = pl.Series(scipy_stats.t.ppf(0.5 + level / 2, spread.get_column("n_seeds").to_numpy() - 1))
    scale = quantile / spread.get_column("n_seeds").cast(pl.Float64).sqrt()
    bounds = []
    for m in metrics:
        half = pl.col(f"{m} seed_sd") * scale
        bounds += [(pl.col(f"{m} seed_mean") - half).alias(f"{m} seed_ci_low")]
        bounds += [(pl.col(f"{m} seed_mean") + half).alias(f"{m} seed_ci_high")]
    return spread.with_columns(bounds).drop("n_seeds", *[f"{m} seed_mean" for m in metrics])
