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

from safetygap import defense_training
from safetygap.defense_training import answer_mask, frozen_copy, hidden_states, token_mask
from safetygap.lab import SafetyConfig
from safetygap.training import TrainConfig


@dataclass(frozen=True)
class CircuitBreakerConfig:
    """Representation rerouting from the safe model, with loss weight ``alpha``."""

    safe: SafetyConfig = SafetyConfig()
    train: TrainConfig = TrainConfig(steps=150, lr=7e-4, batch_size=16, warmup=10)
    alpha: float = 10.0

    def __post_init__(self) -> None:
        if self.alpha <= 0:
            raise ValueError(f"CircuitBreakerConfig.alpha={self.alpha!r}: must be > 0")


def train_defense(config: CircuitBreakerConfig) -> tuple:
    """The safe model after representation rerouting, and its report."""
    start = defense_training.start_from(config.safe)
    model, data, seed, steps = start.model, start.data, start.seed, config.train.steps
    original = frozen_copy(model)
    retain = start.stream(data.retain + data.retain_docs, config.train.batch_size, steps)
    harmful = start.stream(data.harmful, config.train.batch_size, steps, offset=1)

    def step_loss(step: int):
        r, h = next(retain), next(harmful)
        c_reroute = config.alpha * (1 - step / (2 * steps))
        c_retain = config.alpha * step / (2 * steps)
        with torch.no_grad():
            h0, r0 = hidden_states(original, h), hidden_states(original, r)
        where_h, where_r = answer_mask(h), token_mask(r)
        reroute = sum(
            torch.relu(torch.cosine_similarity(a[where_h], b[where_h], dim=-1)).mean() for a, b in zip(hidden_states(model, h), h0)
        )
        keep = sum((a[where_r] - b[where_r]).norm(dim=-1).mean() for a, b in zip(hidden_states(model, r), r0))
        tokens = defense_training.n_tokens(r) + defense_training.n_tokens(h)
        return (c_reroute * reroute + c_retain * keep) / len(h0), tokens, tokens

    examples = len(data.retain) + len(data.retain_docs) + len(data.harmful)
    return model, defense_training.fit(model, step_loss, config.train, seed, "circuit-breakers", examples)
