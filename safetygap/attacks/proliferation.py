"""Proliferation: an attack's weight change, computed once, added to a later release.

Once an uncensored variant is published it cannot be recalled, and what it
publishes is, in effect, a weight difference. :func:`transplanted_model` takes
that difference, ``Δ = W_attacked - W_safe`` for every parameter tensor, and
adds it to a *later release*: a second safe model made from the same base by a
fresh run of safety training (another data mixture, so other weights). Nothing
is trained; the attacker's only cost is the addition. Whether refusal and the
hazardous answers come back on the release measures how much of the attack is
a property of the base model that every release shares, rather than of the one
safe model it was computed on.
"""

from __future__ import annotations

import torch

from safetygap.attacks.finetuning import AttackConfig, attacked_model
from safetygap.core.compute import ComputeReport
from safetygap.core.models import parameter_count
from safetygap.lab.configs import SafetyConfig
from safetygap.lab.stages import Trained, model_stage, safe_model


@torch.no_grad()
def add_delta(target: torch.nn.Module, after: torch.nn.Module, before: torch.nn.Module) -> None:
    """``target += after - before``, tensor by tensor (in place). The three models must share one architecture."""
    names = [n for n, _ in target.named_parameters()]
    if names != [n for n, _ in after.named_parameters()] or names != [n for n, _ in before.named_parameters()]:
        raise ValueError("add_delta: the three models have different parameters; a delta moves only between copies of one architecture")
    for p, a, b in zip(target.parameters(), after.parameters(), before.parameters()):
        p.add_(a - b)


@model_stage("transplant")
def transplanted_model(attack: AttackConfig, release: SafetyConfig) -> Trained:
    """The safe model of ``release`` plus the weight change of ``attack`` (its attacked minus its safe model).

    ``release`` must start from the attack's base model (a later release of the same pretrained weights) and differ
    from the attack's safety training, or the transplant is the attack itself.
    """
    if release.base != attack.safety.base:
        raise ValueError("transplanted_model: the release must be safety-trained from the attacked model's base "
                         f"(release base seed {release.base.seed}, attack base seed {attack.safety.base.seed})")  # fmt: skip
    if release == attack.safety:
        raise ValueError("transplanted_model: the release is the attacked model's own safe model; choose another safety run")
    target = safe_model(release)
    add_delta(target.model, attacked_model(attack).model, safe_model(attack.safety).model)
    params = parameter_count(target.model)
    report = ComputeReport("transplant", steps=0, examples=0, tokens=0, params=params, trainable_params=params, seconds=0.0)
    return Trained(target.model, target.tokenizer, target.world, report)
