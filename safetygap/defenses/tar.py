"""Tamper-resistant training (TAR): train against simulated fine-tuning attacks.

:cite:t:`tamirisa2024tar` meta-learn a model whose safeguard survives
fine-tuning: in each outer step the defender runs a simulated attack (a few
steps of fine-tuning on harmful data, with a learning rate and a number of
steps drawn from a *training grid*) on a copy of the weights, measures how
well the attacked copy does on harmful text *after every step of the attack*,
and moves the real weights so that the attacked copies would do worse, while a
retain loss keeps the model useful. As in the paper:

* the tamper-resistance loss is taken along the whole simulated trajectory
  (averaged over its steps), not only at its end;
* it is the *negative entropy* of the attacked copy's next-token distribution
  on held-out harmful answers: after an attack, the recipe should still be a guess;
* the retain loss is the language-modelling loss on the safety-training mixture
  plus a representation term: the residual stream on that mixture is held where
  the starting model had it (squared distance, every layer), weighted by
  ``retain_representation``;
* the meta-gradient is first-order (the gradient taken at the attacked weights
  is applied to the original ones, as in first-order MAML), as in the paper's
  implementation.

Where the miniature differs: one simulated attack per outer step (the paper
samples several and runs many more outer steps), and attacks of at most ten
steps.

Both the simulated attack and the defense's own update run through the book's
one training loop: the meta-gradient enters the defender's step as a term whose
value is zero and whose gradient is the attacked copies' (:func:`inject_gradient`).

The attacks in the battery include ones *off* this grid (other learning rates,
more steps, LoRA, other data, and the same learning rate and length with
another schedule or other optimiser settings), which is where
:cite:t:`qi2024durability` found such defenses fail.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass

import torch

from safetygap.core import training
from safetygap.core.training import Step, TrainConfig, n_tokens
from safetygap.defenses.shared import answer_mask, frozen_copy, layer_states, start_from, token_mask
from safetygap.lab.configs import SafetyConfig
from safetygap.lab.stages import Trained, model_stage


@dataclass(frozen=True)
class TARConfig:
    """TAR from the safe model of ``safety``. ``train`` is the outer loop; each outer step simulates one
    attack (full fine-tuning, AdamW with weight decay ``attack_weight_decay``, constant learning rate, no
    clipping, batch ``attack_batch``) with a learning rate from ``grid_lrs`` and a length from
    ``grid_steps``; ``tamper_weight`` weighs its meta-gradient (the tamper-resistance loss averaged over the
    attack's steps) and ``retain_representation`` the representation term of the retain loss."""

    safety: SafetyConfig = SafetyConfig()
    train: TrainConfig = TrainConfig(steps=40, lr=5e-4, batch_size=16, warmup=0, schedule="constant")
    grid_lrs: tuple[float, ...] = (3e-4, 1e-3)
    grid_steps: tuple[int, ...] = (5, 10)
    attack_batch: int = 10
    attack_weight_decay: float = 0.01  # PyTorch's AdamW default, what an attacker gets without asking
    tamper_weight: float = 1.0
    retain_representation: float = 1.0

    def __post_init__(self) -> None:
        if not self.grid_lrs or not self.grid_steps:
            raise ValueError(f"TARConfig grid: grid_lrs={self.grid_lrs!r}, grid_steps={self.grid_steps!r} must be non-empty")
        if min(self.grid_steps) < 1 or self.attack_batch < 1:
            raise ValueError(f"TARConfig grid_steps={self.grid_steps!r}, attack_batch={self.attack_batch!r}: need >= 1")
        if self.tamper_weight < 0 or self.retain_representation < 0:
            raise ValueError(f"TARConfig tamper_weight={self.tamper_weight!r}, "
                             f"retain_representation={self.retain_representation!r}: need >= 0")  # fmt: skip

    def on_grid(self, lr: float, steps: int) -> bool:
        """Whether a full fine-tuning attack with this learning rate and length was simulated in training."""
        return lr in self.grid_lrs and steps <= max(self.grid_steps)

    def simulated_attack(self, lr: float, steps: int) -> TrainConfig:
        """The optimiser settings of one simulated attack."""
        return TrainConfig(steps=steps, lr=lr, batch_size=self.attack_batch, schedule="constant",
                           weight_decay=self.attack_weight_decay, grad_clip=None)  # fmt: skip


def negative_entropy(logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean ``sum p log p`` of the next-token distribution at harmful-answer positions; logits (B, T, V)."""
    logp = torch.log_softmax(logits[answer_mask(batch)].float(), -1)
    return (logp.exp() * logp).sum(-1).mean()


def inject_gradient(params: list[torch.Tensor], grads: list[torch.Tensor | None]) -> torch.Tensor:
    """A scalar whose value is 0 and whose gradient with respect to ``params`` is ``grads``:
    ``s - s.detach()`` with ``s = sum_i <p_i, g_i>``. Added to a loss, it adds ``grads`` to its gradient."""
    s = sum((p * g.detach()).sum() for p, g in zip(params, grads) if g is not None)
    return s - s.detach()


def representation_drift(model, original, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean squared distance between ``model``'s and the frozen ``original``'s layer outputs at real tokens."""
    with torch.no_grad():
        before = layer_states(original, batch)
    mask = token_mask(batch)
    return torch.stack([(h[mask] - h0[mask]).pow(2).mean() for h, h0 in zip(layer_states(model, batch), before)]).mean()


@model_stage("tar")
def defend(config: TARConfig) -> Trained:
    """The safe model after tamper-resistant training."""
    start = start_from(config.safety)
    model, data, seed, steps = start.model, start.data, start.seed, config.train.steps
    original = frozen_copy(model)
    retain = start.stream(data.retain, config.train.batch_size, steps)
    inner = start.stream(data.harmful, config.attack_batch, steps * max(config.grid_steps), offset=1)
    held = start.stream(data.harmful, config.train.batch_size, steps * max(config.grid_steps), offset=2)
    rng = random.Random(seed)
    trainable = [p for p in model.parameters() if p.requires_grad]

    def attack_step(attacked) -> training.StepLoss:
        def step_loss(step: int) -> Step:
            batch = next(inner)
            return Step(attacked(**batch).loss, n_tokens(batch))

        return step_loss

    def step_loss(step: int) -> Step:
        """Retain loss, plus the tamper-resistance gradient along a simulated attack's trajectory."""
        batch = next(retain)
        loss = model(**batch).loss + config.retain_representation * representation_drift(model, original, batch)
        lr, length = rng.choice(config.grid_lrs), rng.choice(config.grid_steps)
        attacked = copy.deepcopy(model)
        attacked.requires_grad_(True)
        params = [q for p, q in zip(model.parameters(), attacked.parameters()) if p.requires_grad]
        grads = [torch.zeros_like(q) for q in params]
        scored = 0

        def tamper(k: int, tokens: int) -> None:
            """After attack step ``k``: add the gradient of the attacked copy's tamper-resistance loss."""
            nonlocal scored
            target = next(held)
            loss_k = config.tamper_weight / length * negative_entropy(attacked(**target).logits, target)
            for g, d in zip(grads, torch.autograd.grad(loss_k, params)):
                g.add_(d)
            scored += n_tokens(target)

        simulated = training.train(attacked, config.simulated_attack(lr, length), attack_step(attacked), seed, "tar-attack",
                                   len(data.harmful), on_step=tamper)  # fmt: skip
        return Step(loss + inject_gradient(trainable, grads), n_tokens(batch) + simulated.tokens + scored,
                    forward_tokens=n_tokens(batch))  # fmt: skip

    examples = len(data.retain) + len(data.harmful)
    return start.finished(training.train(model, config.train, step_loss, seed, "tar", examples))
