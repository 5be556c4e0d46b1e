"""Uncertainty of per-user metric means, and paired tests between systems evaluated on the same users.

Users are the independent units of a recommendation evaluation: intervals are over users, and two systems are
compared user by user (paired), which removes the large between-user variance that unpaired tests would
count against the difference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats


def t_confidence_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of the mean of ``values``.

    With fewer than two values the interval is undefined and returned as NaN rather than as a false zero width.
    """
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean()) if values.size else float("nan")
    if values.size < 2:
        return mean, float("nan"), float("nan")
    sem = values.std(ddof=1) / np.sqrt(values.size)
    if sem == 0:
        return mean, mean, mean
    low, high = scipy_stats.t.interval(level, df=values.size - 1, loc=mean, scale=sem)
    return mean, float(low), float(high)


def bootstrap_intervals(
    values: np.ndarray, level: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap intervals of the column means of ``values`` (users × metrics), resampling users.

    HitRate is a 0/1 variable per user and NDCG is skewed, so the t interval's normal approximation can be off
    for small user counts; the bootstrap makes no such assumption. One set of resamples serves every column
    (each resample is a multinomial count per user, so the means are one matrix product), and it is seeded, so
    tables are reproducible. Columns of fewer than two users get NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    n_users, n_metrics = values.shape
    if n_users < 2:
        return np.full(n_metrics, np.nan), np.full(n_metrics, np.nan)
    rng = np.random.default_rng(seed)
    means = np.empty((n_resamples, n_metrics))
    for start in range(0, n_resamples, 250):  # blocks bound the memory of the count matrix
        count = min(250, n_resamples - start)
        weights = rng.multinomial(n_users, np.full(n_users, 1 / n_users), size=count)
        means[start : start + count] = weights @ values / n_users
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail], axis=0)
    return low, high


@dataclass(frozen=True)
class PairedComparison:
    """Two systems on the same users: ``differences`` = system − reference, one per user.

    Attributes
    ----------
    n_users
        Users both systems were evaluated on.
    mean_difference
        Mean of the per-user differences (positive: the system is better on a higher-is-better metric).
    t_statistic, t_p_value
        Paired t-test (``scipy.stats.ttest_rel``), two-sided.
    wilcoxon_statistic, wilcoxon_p_value
        Wilcoxon signed-rank test, two-sided, zero differences dropped (Wilcoxon's original treatment).
    cohens_dz
        Standardised mean difference of paired data: mean difference / sd of the differences.
    rank_biserial
        Effect size of the signed-rank test in [-1, 1]: (sum of positive ranks - sum of negative ranks) / total.
    """

    n_users: int
    mean_difference: float
    t_statistic: float
    t_p_value: float
    wilcoxon_statistic: float
    wilcoxon_p_value: float
    cohens_dz: float
    rank_biserial: float


def paired_comparison(system: np.ndarray, reference: np.ndarray) -> PairedComparison:
    """Paired t-test and Wilcoxon signed-rank test of ``system`` against ``reference``, with effect sizes.

    Identical systems (every difference zero) have no evidence of a difference: p = 1, effects 0, rather
    than the NaN the tests would return.
    """
    system = np.asarray(system, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if system.shape != reference.shape or system.ndim != 1:
        raise ValueError(
            f"paired values must be two 1-d arrays of one length; got {system.shape} and {reference.shape}"
        )
    differences = system - reference
    nonzero = differences[differences != 0]
    n = differences.size
    mean_difference = float(differences.mean()) if n else float("nan")
    if nonzero.size == 0:
        return PairedComparison(n, mean_difference, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0)
    spread = differences.std(ddof=1) if n > 1 else 0.0
    if spread > 0:
        t = scipy_stats.ttest_rel(system, reference)
        t_statistic, t_p_value = float(t.statistic), float(t.pvalue)
    else:  # every user differs by the same nonzero amount: a certain difference
        t_statistic, t_p_value = float(np.sign(mean_difference) * np.inf), 0.0
    wilcoxon = scipy_stats.wilcoxon(nonzero, zero_method="wilcox", alternative="two-sided")
    ranks = scipy_stats.rankdata(np.abs(nonzero))
    positive, negative = ranks[nonzero > 0].sum(), ranks[nonzero < 0].sum()
    return PairedComparison(
        n_users=n,
        mean_difference=mean_difference,
        t_statistic=t_statistic,
        t_p_value=t_p_value,
        wilcoxon_statistic=float(wilcoxon.statistic),
        wilcoxon_p_value=float(wilcoxon.pvalue),
        cohens_dz=float(mean_difference / spread) if spread > 0 else float(np.sign(mean_difference) * np.inf),
        rank_biserial=float((positive - negative) / (positive + negative)),
    )


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (controls the family-wise error rate).

    The smallest p is multiplied by m, the next by m - 1, ...; adjusted values are made monotone in that order
    and capped at 1. Equal to ``statsmodels.stats.multitest.multipletests(p, method="holm")[1]``.
    """
    p_values = np.asarray(p_values, dtype=np.float64)
    m = p_values.size
    order = np.argsort(p_values, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p_values[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Spearman's rank correlation and its two-sided p-value (NaN with fewer than 3 pairs)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.size < 3:
        return float("nan"), float("nan")
    result = scipy_stats.spearmanr(x, y)
    return float(result.statistic), float(result.pvalue)
