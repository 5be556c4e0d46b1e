"""Uncertainty of per-user metric means."""

from __future__ import annotations

import numpy as np
from scipy import stats as scipy_stats


def t_confidence_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of the mean of ``values``.

    Users are the independent units of a recommendation evaluation, so the interval is over users. With
    fewer than two values the interval is undefined and returned as NaN rather than as a false zero width.
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
