"""Circuit breakers: reroute the representations of harmful text (representation rerouting, RR).

:cite:t:`zou2024circuitbreakers` train the model so that, when a harmful
answer begins, its hidden states turn away from where the original model had
them (and the output degenerates), while harmless text keeps its states:

* ``reroute``: ``ReLU(cos(h, h0))`` at harmful-answer positions, where ``h`` is a
  hidden state of the model being trained and ``h0`` the frozen original's;
* ``retain``: ``|h - h0|`` at every position of harmless text.

The weights move from rerouting to retaining over training:
``c_reroute = alpha (1 - t / 2T)``, ``c_retain = alpha t / 2T``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from safetygap.core import training
from safetygap.core.training import Step, TrainConfig, n_tokens
from safetygap.defenses.shared import answer_mask, frozen_copy, layer_states, start_from, token_mask
from safetygap.lab.configs import SafetyConfig
from safetygap.lab.stages import Trained, model_stage


@dataclass(frozen=True)
class CircuitBreakersConfig:
    """Representation rerouting from the safe model of ``safety``, with loss weight ``alpha``."""

    safety: SafetyConfig = SafetyConfig()
    train: TrainConfig = TrainConfig(steps=150, lr=7e-4, batch_size=16, warmup=10)
    alpha: float = 10.0

    def __post_init__(self) -> None:
        if self.alpha <= 0:
            raise ValueError(f"CircuitBreakersConfig.alpha={self.alpha!r}: must be > 0")


@model_stage("circuit-breakers")
def defend(config: CircuitBreakersConfig) -> Trained:
    """The safe model after representation rerouting."""
    start = start_from(config.safety)
    model, data, seed, steps = start.model, start.data, start.seed, config.train.steps
    original = frozen_copy(model)
    retain = start.stream(data.retain + data.retain_docs, config.train.batch_size, steps)
    harmful = start.stream(data.harmful, config.train.batch_size, steps, offset=1)

    def step_loss(step: int) -> Step:
        r, h = next(retain), next(harmful)
        c_reroute = config.alpha * (1 - step / (2 * steps))
        c_retain = config.alpha * step / (2 * steps)
        with torch.no_grad():
            h0, r0 = layer_states(original, h), layer_states(original, r)
        where_h, where_r = answer_mask(h), token_mask(r)
        reroute = sum(
            torch.relu(torch.cosine_similarity(a[where_h], b[where_h], dim=-1)).mean() for a, b in zip(layer_states(model, h), h0)
        )
        keep = sum((a[where_r] - b[where_r]).norm(dim=-1).mean() for a, b in zip(layer_states(model, r), r0))
        tokens = n_tokens(r) + n_tokens(h)
        return Step((c_reroute * reroute + c_retain * keep) / len(h0), tokens, forward_tokens=tokens)

    examples = len(data.retain) + len(data.retain_docs) + len(data.harmful)
    return start.finished(training.train(model, config.train, step_loss, seed, "circuit-breakers", examples))
