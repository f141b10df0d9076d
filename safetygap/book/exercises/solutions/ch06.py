"""Chapter 6's graded exercises: the trial the attacker keeps, and RMU's loss."""

from __future__ import annotations

import pandas as pd
import torch


def attacker_pick(trials: pd.DataFrame) -> pd.Series:
    """The trial (row) an attacker keeps, chosen only on what it can see: highest validation EDC, then most validation
    memorised slots, then fewest validation refusals, then fewest FLOPs."""
    order = trials.sort_values(["edc_validation", "memorised_validation", "refusal_validation", "flops"],
                               ascending=[False, False, True, True], kind="stable")  # fmt: skip
    return order.iloc[0]


def rmu_loss(forget: torch.Tensor, retain: torch.Tensor, retain_frozen: torch.Tensor, steer: torch.Tensor,
             retain_weight: float) -> torch.Tensor:  # fmt: skip
    """RMU's loss on hidden states (tokens, d): forget states pulled to ``steer``, retain states held where the
    frozen model has them, the second term weighted by ``retain_weight``."""
    misdirect = (forget - steer).pow(2).mean()
    keep = (retain - retain_frozen).pow(2).mean()
    return misdirect + retain_weight * keep
