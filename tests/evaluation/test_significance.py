"""Paired tests, Holm's correction, bootstrap intervals and the significance table of the results."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from audiorec.evaluation.significance import marks_legend, significance_marks, significance_table
from audiorec.evaluation.stats import bootstrap_intervals, holm, paired_comparison, spearman, t_confidence_interval
from audiorec.reporting.report import recommendation_markdown, summarize_runs


def test_a_system_better_by_construction_is_significant_and_identical_systems_are_not(rng):
    reference = rng.random(200)
    better = np.clip(reference + 0.1 + rng.normal(0, 0.05, 200), 0, None)
    result = paired_comparison(better, reference)
    assert result.n_users == 200 and result.mean_difference == pytest.approx(np.mean(better - reference))
    assert result.t_p_value < 1e-10 and result.wilcoxon_p_value < 1e-10
    assert result.cohens_dz > 1 and result.rank_biserial > 0.9
    same = paired_comparison(reference, reference.copy())
    assert (same.t_p_value, same.wilcoxon_p_value, same.cohens_dz, same.rank_biserial) == (1.0, 1.0, 0.0, 0.0)


def test_paired_tests_equal_scipy_and_noise_is_not_significant(rng):
    a, b = rng.random(80), rng.random(80)
    result = paired_comparison(a, b)
    assert result.t_p_value == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert result.wilcoxon_p_value == pytest.approx(stats.wilcoxon(a - b).pvalue)
    differences = a - b
    assert result.cohens_dz == pytest.approx(differences.mean() / differences.std(ddof=1))
    p_values = [paired_comparison(rng.random(60), rng.random(60)).wilcoxon_p_value for _ in range(200)]
    assert 0.01 < np.mean(np.array(p_values) < 0.05) < 0.1  # about 5 % false positives, as a level-5 % test has


def test_rank_biserial_is_one_when_every_user_gains():
    result = paired_comparison(np.array([1.0, 1.0, 0.5, 0.75]), np.array([0.0, 0.5, 0.0, 0.5]))
    assert result.rank_biserial == 1.0


def test_holm_equals_statsmodels(rng):
    for size in (1, 2, 7, 50):
        p_values = rng.random(size) ** 3
        np.testing.assert_allclose(holm(p_values), multipletests(p_values, method="holm")[1])
    ties = np.array([0.01, 0.01, 0.04, 0.5])
    np.testing.assert_allclose(holm(ties), multipletests(ties, method="holm")[1])


def test_bootstrap_interval_is_seeded_and_agrees_with_the_t_interval_on_normal_data(rng):
    values = rng.normal(0.3, 0.1, (400, 2))
    low, high = bootstrap_intervals(values, seed=1)
    assert np.array_equal((low, high), bootstrap_intervals(values, seed=1))
    for column in range(2):
        _, t_low, t_high = t_confidence_interval(values[:, column])
        assert low[column] == pytest.approx(t_low, abs=0.003) and high[column] == pytest.approx(t_high, abs=0.003)
    assert np.isnan(bootstrap_intervals(np.array([0.5]))[0]).all()


def test_spearman_equals_scipy(rng):
    x, y = rng.random(9), rng.random(9)
    expected = stats.spearmanr(x, y)
    assert spearman(x, y) == pytest.approx((expected.statistic, expected.pvalue))
    assert np.isnan(spearman(x[:2], y[:2])).all()


def per_user_frame(rng) -> pl.DataFrame:
    """Shallow on mfcc (good), on its shuffled control (worse) and on musicnn (better still), and the random
    variant, on 300 users; two seeds of everything."""
    base = rng.random(300) * 0.5
    systems = {
        ("shallow", "mfcc"): base + 0.2,
        ("shallow", "mfcc_shuffled"): base,
        ("shallow", "musicnn"): base + 0.4,
        ("shallow_random", "none"): base + 0.2,
    }
    frames = []
    for (model, backbone), values in systems.items():
        for seed in (0, 1):
            noisy = values + rng.normal(0, 0.01, 300)
            frames.append(
                pl.DataFrame(
                    {
                        "split": "test",
                        "model": model,
                        "backbone": backbone,
                        "seed": seed,
                        "user_id": [f"u{i}" for i in range(300)],
                        "HitRate@10": noisy,
                        "NDCG@10": noisy / 2,
                        "MRR@10": noisy,
                    }
                )
            )
    return pl.concat(frames)


def test_significance_table_compares_each_row_with_its_controls(rng):
    per_user = per_user_frame(rng)
    table = significance_table(per_user, {"shallow": ["shallow_random"]}, "mfcc")
    pairs = set(table.select("backbone", "versus", "reference_model", "reference_backbone").iter_rows())
    assert pairs == {
        ("mfcc", "random", "shallow_random", "none"),
        ("mfcc", "shuffled", "shallow", "mfcc_shuffled"),
        ("musicnn", "random", "shallow_random", "none"),
        ("musicnn", "baseline", "shallow", "mfcc"),
    }
    assert set(table["metric"]) == {"HitRate@10", "NDCG@10"}  # MRR is reported, not tested
    assert (table["n_users"] == 300).all()
    np.testing.assert_allclose(table["wilcoxon_p_holm"], holm(table["wilcoxon_p_value"].to_numpy()))
    marks = significance_marks(table)
    assert marks[("test", "shallow", "musicnn", "HitRate@10")] == "†‡"
    assert marks[("test", "shallow", "mfcc", "NDCG@10")] == "§"  # mfcc equals the random variant by construction
    summary = summarize_runs(per_user)
    text = recommendation_markdown(summary, pl.DataFrame({"split": ["train"]}), marks, marks_legend("mfcc"))
    assert "over 2 seeds)†‡ |" in text and "‡ the same model on `mfcc`" in text
    row = summary.filter(pl.col("backbone") == "musicnn").row(0, named=True)
    assert row["HitRate@10 boot_low"] < row["HitRate@10"] < row["HitRate@10 boot_high"]
    assert row["HitRate@10 seed_sd"] > 0


def test_summary_and_tests_do_not_depend_on_the_order_of_the_per_user_rows(rng):
    per_user = per_user_frame(rng)
    shuffled = per_user.sample(fraction=1.0, shuffle=True, seed=3)
    assert summarize_runs(per_user).equals(summarize_runs(shuffled))
    variants = {"shallow": ["shallow_random"]}
    assert significance_table(per_user, variants, "mfcc").equals(significance_table(shuffled, variants, "mfcc"))


def test_rows_are_tested_against_chance_only_where_a_chance_model_is_named(rng):
    """The cold-start table asks whether each row beats the random ranking; a row at chance level does not."""
    per_user = per_user_frame(rng)
    chance = per_user.filter(pl.col("backbone") == "mfcc_shuffled").with_columns(
        pl.lit("random").alias("model"), pl.lit("none").alias("backbone")
    )
    with_chance = pl.concat([per_user, chance])
    assert "chance" not in significance_table(with_chance, {}, "mfcc")["versus"].to_list()
    table = significance_table(with_chance, {}, "mfcc", chance_model="random")
    against = table.filter(pl.col("versus") == "chance")
    assert set(against["backbone"]) == {"mfcc", "musicnn"} and set(against["reference_model"]) == {"random"}
    marks = significance_marks(table)
    assert "¶" in marks[("test", "shallow", "musicnn", "HitRate@10")]
    # shallow/mfcc_shuffled *is* the chance ranking here, and is not a row that gets tested.
    assert ("test", "shallow", "mfcc_shuffled", "HitRate@10") not in marks
    assert "¶ the random ranking `random`" in marks_legend("mfcc", 0.05, "random")


def test_audio_rows_are_also_tested_against_the_random_init_variant_at_their_width(rng):
    """shallow_random at mfcc's width (backbone mfcc_width) equals shallow/mfcc by construction, while the
    paper's fixed-width row is worse: the row is marked † but not ‖, and musicnn gets no width test."""
    per_user = per_user_frame(rng)
    matched = per_user.filter((pl.col("model") == "shallow") & (pl.col("backbone") == "mfcc")).with_columns(
        pl.lit("shallow_random").alias("model"), pl.lit("mfcc_width").alias("backbone")
    )
    weaker = per_user.filter(pl.col("model") == "shallow_random").with_columns(pl.col("HitRate@10") - 0.1)
    per_user = pl.concat([per_user.filter(pl.col("model") != "shallow_random"), weaker, matched])
    table = significance_table(per_user, {"shallow": ["shallow_random"]}, "mfcc")
    pairs = set(table.select("backbone", "versus", "reference_model", "reference_backbone").iter_rows())
    assert ("mfcc", "random_width", "shallow_random", "mfcc_width") in pairs
    assert not any(b == "mfcc_width" or (b == "musicnn" and v == "random_width") for b, v, _, _ in pairs)
    marks = significance_marks(table)
    assert "‖" not in marks[("test", "shallow", "mfcc", "HitRate@10")]
    assert "†" in marks[("test", "shallow", "mfcc", "HitRate@10")]
    assert "‖ that variant at the backbone's width" in marks_legend("mfcc")


def test_beyond_accuracy_metrics_are_tested_as_their_own_family_and_undefined_users_are_left_out(rng):
    """Adding ILD changes no accuracy test's Holm-adjusted p; users with an undefined ILD (null) drop out of its
    pairs and of its mean, interval and bootstrap, not into them as NaN."""
    per_user = per_user_frame(rng)
    undefined = pl.col("user_id").str.slice(1).cast(pl.Int64) % 10 == 0  # 30 of 300 users
    with_ild = per_user.with_columns(pl.when(undefined).then(None).otherwise(pl.col("HitRate@10")).alias("ILD@10"))
    variants = {"shallow": ["shallow_random"]}
    table = significance_table(with_ild, variants, "mfcc")
    accuracy = table.filter(pl.col("family") == "accuracy").drop("family")
    assert accuracy.equals(significance_table(per_user, variants, "mfcc").drop("family"))
    ild = table.filter(pl.col("metric") == "ILD@10")
    assert set(ild["family"]) == {"beyond_accuracy"} and (ild["n_users"] == 270).all()
    np.testing.assert_allclose(ild["wilcoxon_p_holm"], holm(ild["wilcoxon_p_value"].to_numpy()))
    summary = summarize_runs(with_ild).filter(pl.col("backbone") == "musicnn").row(0, named=True)
    defined = with_ild.filter(pl.col("backbone") == "musicnn").group_by("user_id").agg(pl.col("ILD@10").mean())
    assert summary["ILD@10"] == pytest.approx(defined["ILD@10"].drop_nulls().mean())
    assert summary["ILD@10 boot_low"] < summary["ILD@10"] < summary["ILD@10 boot_high"]
    assert summary["ILD@10 ci_low"] < summary["ILD@10"] < summary["ILD@10 ci_high"]
