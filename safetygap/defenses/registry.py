"""The defenses of chapter 6, behind one call: :func:`defended_model`.

Every defense has a registry key, a module and a config of the same name:

============================  ==========================================  ==============================================
key and module                what it changes                             config
============================  ==========================================  ==============================================
``filtering``                 pretraining data: no hazardous documents    :class:`~safetygap.defenses.filtering.FilteringConfig`
``technical_filtering``       pretraining data: no hazardous recipes      :class:`~safetygap.defenses.technical_filtering.TechnicalFilteringConfig`
``deep_alignment``            safety data: recover after a harmful start  :class:`~safetygap.defenses.deep_alignment.DeepAlignmentConfig`
``repnoise``                  harmful representations -> noise            :class:`~safetygap.defenses.repnoise.RepNoiseConfig`
``circuit_breakers``          harmful representations rerouted            :class:`~safetygap.defenses.circuit_breakers.CircuitBreakersConfig`
``rmu``                       hazardous activations misdirected           :class:`~safetygap.defenses.rmu.RMUConfig`
``tar``                       meta-learned against simulated attacks      :class:`~safetygap.defenses.tar.TARConfig`
``gradient_routing``          hazardous gradients routed, then ablated    :class:`~safetygap.defenses.gradient_routing.GradientRoutingConfig`
============================  ==========================================  ==============================================

Every config holds the lab's ``safety`` config it builds on: the five post-hoc
defenses start from that safe model; the two filters and gradient routing change
pretraining and then apply that safety training. Each module's ``defend``
is a cached stage returning a :class:`~safetygap.lab.stages.Trained` model
whose report counts the defender's FLOPs for the defense stage.
"""

from __future__ import annotations

import dataclasses
from types import ModuleType

from safetygap.defenses import circuit_breakers, deep_alignment, filtering, gradient_routing, repnoise, rmu, tar, technical_filtering
from safetygap.lab.configs import SafetyConfig
from safetygap.lab.stages import Trained, base_model, safe_model

MODULES: dict[str, ModuleType] = {
    "filtering": filtering, "technical_filtering": technical_filtering, "deep_alignment": deep_alignment, "repnoise": repnoise,
    "circuit_breakers": circuit_breakers, "rmu": rmu, "tar": tar, "gradient_routing": gradient_routing,
}  # fmt: skip
CONFIGS: dict[str, type] = {
    "filtering": filtering.FilteringConfig, "technical_filtering": technical_filtering.TechnicalFilteringConfig,
    "deep_alignment": deep_alignment.DeepAlignmentConfig,
    "repnoise": repnoise.RepNoiseConfig, "circuit_breakers": circuit_breakers.CircuitBreakersConfig,
    "rmu": rmu.RMUConfig, "tar": tar.TARConfig, "gradient_routing": gradient_routing.GradientRoutingConfig,
}  # fmt: skip
DEFENSES = tuple(MODULES)
CHANGES_PRETRAINING = ("filtering", "technical_filtering", "gradient_routing")  # the rest start from the lab's safe model


def name_of(config) -> str:
    """The registry key of a defense config."""
    for name, kind in CONFIGS.items():
        if isinstance(config, kind):
            return name
    raise TypeError(f"{type(config).__name__} is not a defense config: valid defenses are {DEFENSES}")


def defense_config(defense: str, safety: SafetyConfig):
    """The default config of ``defense`` on top of the lab's ``safety`` config (filtering swaps in the oracle base)."""
    if defense not in DEFENSES:
        raise ValueError(f"defense={defense!r}: valid defenses are {DEFENSES}")
    if defense == "filtering":
        safety = dataclasses.replace(safety, base=dataclasses.replace(safety.base, hazardous_documents=False))
    return CONFIGS[defense](safety)


def defended_model(config) -> Trained:
    """Build (or fetch) the defended model of a defense config."""
    return MODULES[name_of(config)].defend(config)


def release_base(config) -> Trained:
    """The pretrained model a defended model was derived from: the base, the oracle, or the routed-and-ablated base."""
    if isinstance(config, gradient_routing.GradientRoutingConfig):
        return gradient_routing.routed_base(config.safety.base, config.forget_fraction)
    if isinstance(config, technical_filtering.TechnicalFilteringConfig):
        return technical_filtering.technical_base(config.safety.base)
    return base_model(config.safety.base)


def defender_flops(config, defended: Trained) -> float:
    """FLOPs the defender spent after pretraining on ``defended`` (built from ``config``): safety training
    plus the defense stage."""
    if name_of(config) in CHANGES_PRETRAINING:
        return defended.report.flops
    return safe_model(config.safety).report.flops + defended.report.flops
