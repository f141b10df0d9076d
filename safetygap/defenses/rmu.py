"""Unlearning with RMU (representation misdirection for unlearning).

:cite:t:`li2024wmdp` unlearn a hazardous domain by scrambling the activations
it produces at one layer: on hazardous text the activations are pushed towards
a fixed random vector ``c u``; on harmless text they are held where the frozen
original had them. Only the layers up to that one are updated, so the later
layers, which read the scrambled activations, no longer find the knowledge.

The forget set is the documents and recipe answers of the defender's own
hazardous items (:mod:`~safetygap.defenses.shared`): the sealed items are
scored without ever having been in it. Whether the knowledge is *gone* or only
hidden is what the relearning attack (fine-tuning on the attacker's items) tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from safetygap.core import training
from safetygap.core.training import Step, TrainConfig, n_tokens
from safetygap.defenses.shared import frozen_copy, layer_states, start_from, token_mask
from safetygap.lab.configs import SafetyConfig
from safetygap.lab.stages import Trained, model_stage


@dataclass(frozen=True)
class RMUConfig:
    """RMU from the safe model of ``safety``.

    * ``layer``: the decoder layer (1-based) whose output is misdirected; layers
      ``1..layer`` are trained, the rest are frozen;
    * ``steering``: ``c`` as a multiple of the mean norm of that layer's output on harmless text;
    * ``retain_weight``: ``alpha``, the weight of the retain term.
    """

    safety: SafetyConfig = SafetyConfig()
    train: TrainConfig = TrainConfig(steps=150, lr=1e-3, batch_size=16, warmup=10)
    layer: int = 1
    steering: float = 4.0
    retain_weight: float = 20.0

    def __post_init__(self) -> None:
        if self.layer < 1:
            raise ValueError(f"RMUConfig.layer={self.layer!r}: must be >= 1 (decoder layers count from 1)")
        if self.steering <= 0 or self.retain_weight < 0:
            raise ValueError(f"RMUConfig steering={self.steering!r}, retain_weight={self.retain_weight!r}: need > 0, >= 0")


@model_stage("rmu")
def defend(config: RMUConfig) -> Trained:
    """The safe model after RMU."""
    start = start_from(config.safety)
    model, data, seed, layers = start.model, start.data, start.seed, start.model.model.layers
    if config.layer > len(layers):
        raise ValueError(f"RMUConfig.layer={config.layer}: the model has layers 1..{len(layers)}")
    original = frozen_copy(model)
    model.requires_grad_(False)
    for layer in layers[: config.layer]:
        layer.requires_grad_(True)
    size, at = config.train.batch_size, config.layer - 1
    retain = start.stream(data.retain + data.retain_docs, size, config.train.steps)
    forget = start.stream(data.forget_docs + data.harmful, size, config.train.steps, offset=1)

    generator = torch.Generator().manual_seed(seed)
    u = torch.rand(model.config.hidden_size, generator=generator).to(model.device)
    with torch.no_grad():
        probe = next(start.stream(data.retain, 256, 1))
        typical = layer_states(original, probe)[at][token_mask(probe)].norm(dim=-1).mean()
    target = config.steering * typical * u / u.norm()

    def step_loss(step: int) -> Step:
        r, f = next(retain), next(forget)
        with torch.no_grad():
            r0 = layer_states(original, r)[at]
        misdirect = (layer_states(model, f)[at][token_mask(f)] - target).pow(2).mean()
        keep = (layer_states(model, r)[at][token_mask(r)] - r0[token_mask(r)]).pow(2).mean()
        return Step(misdirect + config.retain_weight * keep, n_tokens(r) + n_tokens(f), forward_tokens=n_tokens(r))

    examples = len(data.retain) + len(data.retain_docs) + len(data.forget_docs) + len(data.harmful)
    return start.finished(training.train(model, config.train, step_loss, seed, "rmu", examples))
