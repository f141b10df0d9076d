"""Data filtering of every mention: pretrain without any text about a hazardous product, then safety training.

The filtered model is the lab's *oracle* base (``hazardous_documents=False``)
safety-tuned exactly like the undefended model: it never saw the hazardous
recipes, so no attack can bring them back from its weights. It never saw that
they are poisons either; :mod:`~safetygap.defenses.technical_filtering` is the
filter as it is done in practice, which removes only the recipes.
"""

from __future__ import annotations

from dataclasses import dataclass

from safetygap.lab.configs import SafetyConfig
from safetygap.lab.stages import Trained, safe_model


@dataclass(frozen=True)
class FilteringConfig:
    """Data filtering: the lab's safety training (``safety``) on the oracle base, pretrained without hazardous documents."""

    safety: SafetyConfig = SafetyConfig()

    def __post_init__(self) -> None:
        if self.safety.base.hazardous_documents:
            raise ValueError("FilteringConfig.safety.base.hazardous_documents=True: filtering needs the oracle base")


def defend(config: FilteringConfig) -> Trained:
    """The safe model of the oracle base (a stage of the lab, shared with every chapter that uses it)."""
    return safe_model(config.safety)
