"""Chapter 7's graded exercises: the cheapest attack that reaches the bar, and the size of an audit."""

from __future__ import annotations

import pandas as pd

from safetygap.attacks.battery import FINE_TUNING


def cheapest_attack(trials: pd.DataFrame, reach: float) -> pd.DataFrame:
    """Per ``draw``, the fine-tuning trial (``family`` in ``battery.FINE_TUNING``) with the fewest ``flops`` among
    those whose ``edc_validation`` is at least ``reach``: one row per draw where one does, in draw order."""
    tuned = trials[trials["family"].isin(FINE_TUNING)]
    hits = tuned[tuned["edc_validation"] >= reach]
    return hits.sort_values(["draw", "flops"], kind="stable").groupby("draw").head(1)


def configurations_needed(audits: pd.DataFrame, broken: pd.Series, seeds: int, risk: float) -> pd.Series:
    """Per target that ``broken`` marks true, the fewest ``configurations`` among the audits on ``seeds`` seeds whose
    share ``certified`` is at most ``risk``; NaN where none is. Indexed by target, in the order of ``broken``."""
    wrong = audits[audits["target"].map(broken) & (audits["seeds"] == seeds) & (audits["certified"] <= risk)]
    needed = wrong.groupby("target")["configurations"].min()
    return needed.reindex([t for t in broken.index if broken[t]])
