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

from safetygap.core import hooks, training
from safetygap.core.training import IGNORE, Step, TrainConfig, n_tokens
from safetygap.defenses.shared import answer_mask, start_from
from safetygap.lab.configs import SafetyConfig
from safetygap.lab.stages import Trained, model_stage


@dataclass(frozen=True)
class RepNoiseConfig:
    """RepNoise from the safe model of ``safety``: ``noise_weight`` (alpha) and ``ascent_weight`` (beta) weigh the terms."""

    safety: SafetyConfig = SafetyConfig()
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


@model_stage("repnoise")
def defend(config: RepNoiseConfig) -> Trained:
    """The safe model after RepNoise training."""
    start = start_from(config.safety)
    model, data, seed = start.model, start.data, start.seed
    retain = start.stream(data.retain, config.train.batch_size, config.train.steps)
    harmful = start.stream(data.harmful, config.train.batch_size, config.train.steps, offset=1)
    generator = torch.Generator().manual_seed(seed)
    names = hooks.layer_outputs(model)

    def step_loss(step: int) -> Step:
        r, h = next(retain), next(harmful)
        out, states = hooks.run_with_cache(model, names, **h)
        where = answer_mask(h)
        noise = 0.0
        for name in names:
            x = states[name][where]
            x = x[torch.randperm(len(x), generator=generator)[: config.max_states]]
            noise = noise + mmd(x, torch.randn(x.shape, generator=generator).to(x.device))
        loss = (
            model(**r).loss
            + config.ascent_weight * unlikelihood(out.logits, h["labels"])
            + config.noise_weight * noise / len(names)
        )
        return Step(loss, n_tokens(r) + n_tokens(h))

    examples = len(data.retain) + len(data.harmful)
    return start.finished(training.train(model, config.train, step_loss, seed, "repnoise", examples))
