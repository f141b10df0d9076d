"""Chapter 4's graded exercises: the marginal uplift over search, and the AUROC of a detector."""

from __future__ import annotations

import numpy as np
import pandas as pd


def marginal_uplift(uplift: pd.DataFrame) -> pd.Series:
    """Per publicity class, the mean over seeds of the attacked model's EDC minus the search attacker's.

    ``uplift`` has one row per (source, seed, sealed item) with columns ``source`` ("attacked", "search", ...),
    ``seed``, ``item``, ``publicity`` ("public", "partly_public", "not_public") and ``edc``. Average the items of
    each (source, publicity, seed) first, then the seeds; index the result by publicity class in that order.
    """
    per_seed = uplift.groupby(["source", "publicity", "seed"])["edc"].mean()
    gap = per_seed["attacked"] - per_seed["search"]
    return gap.groupby("publicity").mean().reindex(["public", "partly_public", "not_public"])


def auroc(scores, labels) -> float:
    """The chance that a random positive (``labels`` true) scores above a random negative; a tie counts half."""
    s, y = np.asarray(scores, dtype=float), np.asarray(labels, dtype=bool)
    pos, neg = s[y], s[~y]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))
