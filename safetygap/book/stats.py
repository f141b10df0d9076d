"""Intervals for the book's numbers: a bootstrap over seeds, and over seeds then items.

Under the sealed protocol each seed draws its own world, so two sources of
variation are in every number: the seed (world, initialisation, data order)
and the items (which sealed products happen to be asked about). Intervals are
percentile bootstraps at level :data:`LEVEL` with :data:`REPS` resamples:

* :func:`item_ci`, for metrics scored per item (refusal, memorised slots, EDC
  on sealed items): hierarchical, resampling seeds with replacement, then items
  within each drawn seed; the statistic is the mean over seeds of the mean over
  items;
* :func:`seed_ci`, for quantities that exist once per seed (a ratio of FLOPs,
  a capability ratio, a per-seed verdict): the seeds are resampled.

With three to five seeds the intervals are wide, and they should be.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

LEVEL = 0.95
REPS = 2000
BOOTSTRAP_SEED = 0  # the resampling is seeded, so a rebuild prints the same intervals


def _percentiles(stats: np.ndarray) -> tuple[float, float]:
    low, high = np.quantile(stats, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return float(low), float(high)


def seed_ci(values) -> tuple[float, float, float]:
    """(mean, low, high): the mean of per-seed ``values`` and its bootstrap interval over seeds."""
    x = np.asarray(list(values), dtype=float)
    if x.size == 0:
        raise ValueError("seed_ci needs at least one value")
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    means = x[rng.integers(0, x.size, (REPS, x.size))].mean(axis=1)
    return (float(x.mean()), *_percentiles(means))


def item_ci(frame: pd.DataFrame, column: str, seed: str = "seed", item: str = "item") -> tuple[float, float, float]:
    """(mean, low, high) of ``column`` scored per item: the mean over seeds of the mean over items, and its
    hierarchical bootstrap interval (seeds, then items within each seed)."""
    if frame.empty:
        raise ValueError(f"item_ci: no rows for {column!r}")
    if frame.duplicated([seed, item]).any():
        raise ValueError(f"item_ci: more than one row per ({seed}, {item}) for {column!r}; select one model first")
    groups = [g[column].to_numpy(dtype=float) for _, g in frame.groupby(seed, sort=True)]
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    # per seed, REPS bootstrap means of its items: shape (seeds, REPS)
    per_seed = np.stack([g[rng.integers(0, g.size, (REPS, g.size))].mean(axis=1) for g in groups])
    drawn = rng.integers(0, len(groups), (REPS, len(groups)))  # which seeds each resample takes
    means = per_seed[drawn, np.arange(REPS)[:, None]].mean(axis=1)
    return (float(np.mean([g.mean() for g in groups])), *_percentiles(means))


def items_frame(records, keys: tuple[str, ...]) -> pd.DataFrame:
    """One row per (record, item) from records that carry a list of per-item scores under ``items``;
    ``keys`` are the record fields copied onto each row (``seed``, ``model``, ...)."""
    rows = [{k: r[k] for k in keys} | item for r in records for item in r["items"]]
    return pd.DataFrame(rows)


def summarise(frame: pd.DataFrame, by: str | list[str], columns: list[str]) -> pd.DataFrame:
    """Per-seed values summarised per group: one row per group and column with ``mean``, ``low``, ``high``
    (:func:`seed_ci`) and ``n``, in long format."""
    rows = []
    for key, group in frame.groupby(by, sort=False):
        for col in columns:
            keys = key if isinstance(key, tuple) else (key,)
            rows.append((*keys, col, *seed_ci(group[col]), len(group)))
    names = [by] if isinstance(by, str) else list(by)
    return pd.DataFrame(rows, columns=[*names, "metric", "mean", "low", "high", "n"])


def summarise_items(frame: pd.DataFrame, by: str | list[str], columns: list[str]) -> pd.DataFrame:
    """Like :func:`summarise` for per-item scores (:func:`item_ci`); ``n`` counts seeds."""
    rows = []
    for key, group in frame.groupby(by, sort=False):
        for col in columns:
            keys = key if isinstance(key, tuple) else (key,)
            rows.append((*keys, col, *item_ci(group, col), group["seed"].nunique()))
    names = [by] if isinstance(by, str) else list(by)
    return pd.DataFrame(rows, columns=[*names, "metric", "mean", "low", "high", "n"])


def fmt(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


def fmt_interval(mean: float, low: float, high: float, digits: int = 2) -> str:
    """"m [lo, hi]", the book's way of writing a mean and its interval."""
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def fmt_ci(values, digits: int = 2) -> str:
    """:func:`fmt_interval` of per-seed ``values`` (:func:`seed_ci`), as text for glue."""
    return fmt_interval(*seed_ci(values), digits=digits)


def fmt_item_ci(frame: pd.DataFrame, column: str, digits: int = 2) -> str:
    """:func:`fmt_interval` of a per-item score (:func:`item_ci`), as text for glue."""
    return fmt_interval(*item_ci(frame, column), digits=digits)


def fmt_pct_ci(values, digits: int = 1) -> str:
    """Like :func:`fmt_ci` for fractions, written in percent."""
    mean, low, high = (100 * v for v in seed_ci(values))
    return fmt_interval(mean, low, high, digits).replace(" [", "% [", 1)
