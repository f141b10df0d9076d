"""The seven defenses of chapter 6, behind one call: :func:`defended_model`.

============================  ==========================================  ==========================
defense                       what it changes                             config
============================  ==========================================  ==========================
``filtering``                 pretraining data: no hazardous documents    :class:`FilteringConfig`
``deep_alignment``            safety data: recover after a harmful start  :class:`~safetygap.deep_alignment.AugmentationConfig`
``repnoise``                  harmful representations -> noise            :class:`~safetygap.repnoise.RepNoiseConfig`
``circuit_breakers``          harmful representations rerouted            :class:`~safetygap.circuit_breakers.CircuitBreakerConfig`
``rmu``                       hazardous activations misdirected           :class:`~safetygap.unlearning.RMUConfig`
``tar``                       meta-learned against simulated attacks      :class:`~safetygap.tamper_resistance.TARConfig`
``gradient_routing``          hazardous gradients routed, then ablated    :class:`~safetygap.gradient_routing.RoutingConfig`
============================  ==========================================  ==========================

Every defense starts from the lab's pretraining recipe and seed; the five
post-hoc ones start from the lab's safe model itself. Each result is a
:class:`~safetygap.lab.Trained` model in the store, keyed by its full config,
and its report counts the defender's FLOPs for the defense stage.
:func:`release_base` gives the pretrained model each defended model was derived
from (what a delta-reversion attack moves towards).
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

from safetygap import (
    circuit_breakers,
    deep_alignment,
    defense_training,
    gradient_routing,
    lab,
    repnoise,
    scales,
    store,
    tamper_resistance,
    unlearning,
)
from safetygap.defense_training import DefenseReport
from safetygap.lab import SafetyConfig, Trained

DEFENSES = ("filtering", "deep_alignment", "repnoise", "circuit_breakers", "rmu", "tar", "gradient_routing")
LABELS = {
    "undefended": "undefended (safe)", "filtering": "data filtering", "deep_alignment": "deeper alignment",
    "repnoise": "RepNoise", "circuit_breakers": "circuit breakers", "rmu": "RMU unlearning", "tar": "TAR",
    "gradient_routing": "gradient routing",
}  # fmt: skip
POST_HOC = {
    "deep_alignment": (deep_alignment, deep_alignment.AugmentationConfig),
    "repnoise": (repnoise, repnoise.RepNoiseConfig),
    "circuit_breakers": (circuit_breakers, circuit_breakers.CircuitBreakerConfig),
    "rmu": (unlearning, unlearning.RMUConfig),
    "tar": (tamper_resistance, tamper_resistance.TARConfig),
}


@dataclass(frozen=True)
class FilteringConfig:
    """Data filtering: the lab's safety training on the oracle, pretrained without hazardous documents."""

    safety: SafetyConfig = SafetyConfig()

    def __post_init__(self) -> None:
        if self.safety.base.hazardous_documents:
            raise ValueError("FilteringConfig.safety.base.hazardous_documents=True: filtering needs the oracle base")


def _check(defense: str) -> None:
    if defense not in DEFENSES:
        raise ValueError(f"defense={defense!r}: valid defenses are {DEFENSES}")


def defense_config(defense: str, seed: int, scale: str = "book"):
    """The config of ``defense`` for the lab's model of ``seed`` at ``scale``."""
    _check(defense)
    safe = scales.safety_config(seed, scale)
    if defense == "filtering":
        oracle = dataclasses.replace(safe.base, hazardous_documents=False)
        return FilteringConfig(dataclasses.replace(safe, base=oracle))
    if defense == "gradient_routing":
        return gradient_routing.RoutingConfig(safe)
    return POST_HOC[defense][1](safe)


def _name_of(config) -> str:
    for name, (_, kind) in POST_HOC.items():
        if isinstance(config, kind):
            return name
    if isinstance(config, gradient_routing.RoutingConfig):
        return "gradient_routing"
    raise TypeError(f"{type(config).__name__} is not a defense config: valid defenses are {DEFENSES}")


def _safety_of(config) -> SafetyConfig:
    return config.safety if isinstance(config, (FilteringConfig, gradient_routing.RoutingConfig)) else config.safe


def defended_model(config) -> Trained:
    """Build (or fetch) the defended model of a defense config."""
    if isinstance(config, FilteringConfig):
        return lab.safe_model(config.safety)
    name = _name_of(config)
    module = gradient_routing if name == "gradient_routing" else POST_HOC[name][0]

    def build(tmp: Path) -> None:
        model, report = module.train_defense(config)
        model.save_pretrained(tmp, safe_serialization=True)
        if not isinstance(report, DefenseReport):
            report = DefenseReport(**{k: v for k, v in report.to_dict().items() if k != "flops"})
        store.write_json(tmp / "report.json", report.to_dict())

    code = store.code_version(*lab.TRAINING_CODE, defense_training, module, sys.modules[__name__])
    path = store.get_or_build(name.replace("_", "-"), config, code, build)
    return lab.load_trained(path, _safety_of(config).base.world, DefenseReport)


def release_base(config) -> Trained:
    """The pretrained model a defended model was derived from: the base, the oracle, or the routed-and-ablated base."""
    if isinstance(config, gradient_routing.RoutingConfig):
        return gradient_routing.routed_base(config)
    return lab.base_model(_safety_of(config).base)


def defender_flops(config, defended: Trained) -> float:
    """FLOPs the defender spent after pretraining on ``defended`` (built from ``config``): safety training
    plus the defense stage."""
    if isinstance(config, (FilteringConfig, gradient_routing.RoutingConfig)):
        return defended.report.flops
    return lab.safe_model(config.safe).report.flops + defended.report.flops
