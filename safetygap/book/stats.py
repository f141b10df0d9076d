"""Summaries over seeds: means with Student-t confidence intervals, and their text form.

Every headline number in the book is a mean over independently seeded runs
(model init and data order) with a 95% t-interval. With three seeds the
interval is wide, and it should be: that is what three runs tell us.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

# Two-sided 95% quantiles of Student's t, t_{0.975, df}, for df = 1..30 (larger df: 1.96).
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
        2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
        2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip


def mean_ci(values) -> tuple[float, float, float]:
    """(mean, low, high) of a 95% t-interval; a single value gives a zero-width interval."""
    x = np.asarray(list(values), dtype=float)
    if x.size == 0:
        raise ValueError("mean_ci needs at least one value")
    mean = float(x.mean())
    if x.size == 1:
        return mean, mean, mean
    t = T975[x.size - 2] if x.size - 1 <= len(T975) else 1.96
    half = t * float(x.std(ddof=1)) / math.sqrt(x.size)
    return mean, mean - half, mean + half


def summarise(frame: pd.DataFrame, by: str | list[str], columns: list[str]) -> pd.DataFrame:
    """One row per group and column: ``mean``, ``low``, ``high``, ``n`` (long format)."""
    rows = []
    for key, group in frame.groupby(by, sort=False):
        for col in columns:
            mean, low, high = mean_ci(group[col])
            keys = key if isinstance(key, tuple) else (key,)
            rows.append((*keys, col, mean, low, high, len(group)))
    names = [by] if isinstance(by, str) else list(by)
    return pd.DataFrame(rows, columns=[*names, "metric", "mean", "low", "high", "n"])


def fmt(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


def fmt_interval(mean: float, low: float, high: float, digits: int = 2) -> str:
    """"m [lo, hi]", the book's way of writing a mean and its interval."""
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def fmt_ci(values, digits: int = 2, clip: tuple[float, float] | None = None) -> str:
    """:func:`fmt_interval` of the seeds' ``values``, as text for glue.

    ``clip`` bounds the interval to a metric's range (rates live in [0, 1]).
    """
    mean, low, high = mean_ci(values)
    if clip is not None:
        low, high = max(low, clip[0]), min(high, clip[1])
    return fmt_interval(mean, low, high, digits=digits)


def fmt_pct_ci(values, digits: int = 1) -> str:
    """Like :func:`fmt_ci` for fractions, written in percent (clipped to 0-100)."""
    mean, low, high = (100 * v for v in mean_ci(values))
    return fmt_interval(mean, max(low, 0.0), min(high, 100.0), digits).replace(" [", "% [", 1)
