"""Tamper-resistant training (TAR): train against simulated fine-tuning attacks.

:cite:t:`tamirisa2024tar` meta-learn a model whose safeguard survives
fine-tuning: in each outer step the defender runs a simulated attack (a few
steps of fine-tuning on harmful data, with a learning rate and a number of
steps drawn from a *training grid*) on a copy of the weights, measures how
well the attacked copy does on harmful text, and moves the real weights so
that the attacked copy would do worse, while a retain loss keeps the model
useful. We use the first-order approximation (the gradient taken at the
attacked weights is applied to the original ones, as in first-order MAML),
and as tamper-resistance loss the *negative entropy* of the attacked copy's
next-token distribution on harmful answers: after an attack, the recipe should
still be a guess.

The attacks in the battery include ones *off* this grid (other learning rates,
more steps, LoRA, other data), which is where :cite:t:`qi2024durability`
found such defenses fail.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass

import torch

from safetygap import defense_training
from safetygap.defense_training import answer_mask
from safetygap.lab import SafetyConfig
from safetygap.training import TrainConfig


@dataclass(frozen=True)
class TARConfig:
    """TAR from the safe model. ``train`` is the outer loop; each outer step simulates one attack
    (full fine-tuning, AdamW, batch ``attack_batch``) with a learning rate from ``grid_lrs``
    and a length from ``grid_steps``; ``tamper_weight`` weighs its meta-gradient."""

    safe: SafetyConfig = SafetyConfig()
    train: TrainConfig = TrainConfig(steps=40, lr=5e-4, batch_size=16, warmup=0, schedule="constant")
    grid_lrs: tuple[float, ...] = (3e-4, 1e-3)
    grid_steps: tuple[int, ...] = (5, 10)
    attack_batch: int = 10
    tamper_weight: float = 1.0

    def __post_init__(self) -> None:
        if not self.grid_lrs or not self.grid_steps:
            raise ValueError(f"TARConfig grid: grid_lrs={self.grid_lrs!r}, grid_steps={self.grid_steps!r} must be non-empty")
        if min(self.grid_steps) < 1 or self.attack_batch < 1:
            raise ValueError(f"TARConfig grid_steps={self.grid_steps!r}, attack_batch={self.attack_batch!r}: need >= 1")

    def on_grid(self, lr: float, steps: int) -> bool:
        """Whether a full fine-tuning attack with this learning rate and length was simulated in training."""
        return lr in self.grid_lrs and steps <= max(self.grid_steps)


def negative_entropy(logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean ``sum p log p`` of the next-token distribution at harmful-answer positions; logits (B, T, V)."""
    logp = torch.log_softmax(logits[answer_mask(batch)].float(), -1)
    return (logp.exp() * logp).sum(-1).mean()


def train_defense(config: TARConfig) -> tuple:
    """The safe model after tamper-resistant training, and its report."""
    start = defense_training.start_from(config.safe)
    model, data, seed, steps = start.model, start.data, start.seed, config.train.steps
    retain = start.stream(data.retain, config.train.batch_size, steps)
    inner = start.stream(data.harmful, config.attack_batch, steps * max(config.grid_steps), offset=1)
    held = start.stream(data.harmful, config.train.batch_size, steps, offset=2)
    rng = random.Random(seed)

    def step_loss(step: int):
        batch = next(retain)
        return model(**batch).loss, defense_training.n_tokens(batch), 0

    def tamper_gradient(step: int) -> tuple[int, int]:
        """Simulate one attack on a copy, then add the copy's tamper-resistance gradient to the model's."""
        lr, length = rng.choice(config.grid_lrs), rng.choice(config.grid_steps)
        attacked = copy.deepcopy(model).train()
        attacked.requires_grad_(True)
        optimizer = torch.optim.AdamW(attacked.parameters(), lr=lr, betas=(0.9, 0.95))
        tokens = 0
        for _ in range(length):
            batch = next(inner)
            optimizer.zero_grad(set_to_none=True)
            attacked(**batch).loss.backward()
            optimizer.step()
            tokens += defense_training.n_tokens(batch)
        target = next(held)
        attacked.zero_grad(set_to_none=True)
        (config.tamper_weight * negative_entropy(attacked(**target).logits, target)).backward()
        for p, q in zip(model.parameters(), attacked.parameters()):
            if p.requires_grad:
                p.grad = q.grad if p.grad is None else p.grad + q.grad
        return tokens + defense_training.n_tokens(target), 0

    examples = len(data.retain) + len(data.harmful)
    return model, defense_training.fit(model, step_loss, config.train, seed, "tar", examples, after_backward=tamper_gradient)
