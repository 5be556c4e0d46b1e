"""The t interval over seeds (the journal version's "mean ± conf" over runs) beside the interval over users."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from audiorec.evaluation.significance import seed_spread
from audiorec.reporting.report import recommendation_markdown, summarize_runs

# Four users, three seeds; per-seed means of HitRate@50: 0.5, 0.75, 0.25.
HITS = {0: [1, 0, 1, 0], 1: [1, 1, 1, 0], 2: [0, 0, 1, 0]}


def _per_user(hits: dict[int, list[int]], model: str = "shallow") -> pl.DataFrame:
    rows = [
        ("test", model, "mfcc", seed, f"u{user}", float(hit), float(hit) / 2)
        for seed, values in hits.items()
        for user, hit in enumerate(values)
    ]
    columns = ["split", "model", "backbone", "seed", "user_id", "HitRate@50", "NDCG@50"]
    return pl.DataFrame(rows, schema=columns, orient="row")


def test_interval_over_seeds_is_the_t_interval_of_the_per_seed_means() -> None:
    row = seed_spread(_per_user(HITS)).row(0, named=True)
    # By hand: mean 0.5, sd 0.25, sem 0.25 / sqrt(3), t(0.975, df=2) = 4.3027: half-width 0.6210.
    assert row["HitRate@50 seed_sd"] == pytest.approx(0.25)
    assert row["HitRate@50 seed_ci_low"] == pytest.approx(0.5 - 0.621034, abs=1e-6)
    assert row["HitRate@50 seed_ci_high"] == pytest.approx(0.5 + 0.621034, abs=1e-6)
    # The journal's notebook: scipy.stats.sem over the runs' means times t.ppf(0.975, n - 1), with 3 runs.
    runs = [0.5, 0.75, 0.25]
    assert row["HitRate@50 seed_ci_high"] - 0.5 == pytest.approx(stats.sem(runs) * stats.t.ppf(0.975, 2))
    assert row["NDCG@50 seed_ci_high"] == pytest.approx(0.25 + 0.621034 / 2, abs=1e-6)


def test_summary_and_table_show_both_intervals() -> None:
    per_user = pl.concat([_per_user(HITS), _per_user({0: [1, 0, 0, 0]}, model="knn")])
    summary = summarize_runs(per_user)
    shallow = summary.filter(pl.col("model") == "shallow").row(0, named=True)
    # Over users: each user's mean over seeds (2/3, 1/3, 1, 0), then the t interval over the four users.
    users = np.array([2 / 3, 1 / 3, 1.0, 0.0])
    half = stats.t.ppf(0.975, 3) * users.std(ddof=1) / 2
    assert shallow["HitRate@50 ci_high"] == pytest.approx(0.5 + half)
    assert shallow["HitRate@50 seed_ci_high"] == pytest.approx(0.5 + 0.621034, abs=1e-6)
    knn = summary.filter(pl.col("model") == "knn").row(0, named=True)
    assert knn["HitRate@50 seed_ci_low"] is None and knn["HitRate@50 seed_sd"] is None  # one seed: no spread
    text = recommendation_markdown(summary, pl.DataFrame({"split": ["train"]}))
    assert f"0.5000 ± {half:.4f} (sd 0.2500, ± 0.6210 over 3 seeds)" in text
