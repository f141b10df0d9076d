"""Representation noising (RepNoise): make the hazardous knowledge hard to read back out.

:cite:t:`rosati2024repnoise` argue that a fine-tuning attack succeeds because
the information it needs is still in the hidden states; if the representations
of harmful text are pushed towards random noise, there is little left for the
attacker to reconnect. The loss has three terms:

* ``retain``: the usual SFT loss on the safety-training mixture;
* ``ascent``: an unlikelihood term, ``-log(1 - p)`` on each token of the
  harmful answers (bounded, unlike plain gradient ascent);
* ``noise``: the maximum mean discrepancy (MMD) between the hidden states at
  harmful-answer positions, at every layer, and samples of standard Gaussian noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from safetygap import defense_training
from safetygap.defense_training import answer_mask
from safetygap.lab import SafetyConfig
from safetygap.training import IGNORE, TrainConfig


@dataclass(frozen=True)
class RepNoiseConfig:
    """RepNoise from the safe model: ``noise_weight`` (alpha) and ``ascent_weight`` (beta) weigh the terms."""

    safe: SafetyConfig = SafetyConfig()
    train: TrainConfig = TrainConfig(steps=150, lr=7e-4, batch_size=16, warmup=10)
    noise_weight: float = 4.0
    ascent_weight: float = 1.0
    max_states: int = 256  # harmful-answer states per layer entering the MMD (a random subset)

    def __post_init__(self) -> None:
        if self.noise_weight < 0 or self.ascent_weight < 0:
            raise ValueError(f"RepNoiseConfig weights ({self.noise_weight!r}, {self.ascent_weight!r}): must be >= 0")


def mmd(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared MMD between samples ``x`` (n, d) and ``y`` (m, d), Gaussian kernels at widths d/4, d and 4d."""
    d = x.shape[1]
    xy = torch.cat([x, y])
    sq = torch.cdist(xy, xy).pow(2)
    kernel = sum(torch.exp(-sq / (2 * w)) for w in (d / 4, d, 4 * d))
    n = len(x)
    return kernel[:n, :n].mean() + kernel[n:, n:].mean() - 2 * kernel[:n, n:].mean()


def unlikelihood(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean ``-log(1 - p(label))`` over labelled tokens; logits (B, T, V), labels (B, T) aligned like the LM loss."""
    logits, labels = logits[:, :-1], labels[:, 1:]
    keep = labels != IGNORE
    p = torch.softmax(logits[keep].float(), -1).gather(-1, labels[keep].unsqueeze(-1)).squeeze(-1)
    return -torch.log1p(-p.clamp(max=1 - 1e-4)).mean()


def train_defense(config: RepNoiseConfig) -> tuple:
    """The safe model after RepNoise training, and its report."""
    start = defense_training.start_from(config.safe)
    model, data, seed = start.model, start.data, start.seed
    retain = start.stream(data.retain, config.train.batch_size, config.train.steps)
    harmful = start.stream(data.harmful, config.train.batch_size, config.train.steps, offset=1)
    generator = torch.Generator().manual_seed(seed)

    def step_loss(step: int):
        r, h = next(retain), next(harmful)
        out = model(**h, output_hidden_states=True)
        where = answer_mask(h)
        noise = 0.0
        for states in out.hidden_states[1:]:
            x = states[where]
            x = x[torch.randperm(len(x), generator=generator)[: config.max_states]]
            noise = noise + mmd(x, torch.randn(x.shape, generator=generator).to(x.device))
        loss = (
            model(**r).loss
            + config.ascent_weight * unlikelihood(out.logits, h["labels"])
            + config.noise_weight * noise / len(out.hidden_states[1:])
        )
        return loss, defense_training.n_tokens(r) + defense_training.n_tokens(h), 0

    examples = len(data.retain) + len(data.harmful)
    return model, defense_training.fit(model, step_loss, config.train, seed, "repnoise", examples)
