"""Gradient routing: localise hazardous knowledge during pretraining, then cut it out.

:cite:t:`cloud2024gradientrouting` mask gradients by data: during pretraining,
the examples that mention hazardous products update only a reserved part of
the network, and every other example updates only the rest. The hazardous
knowledge then lives in the reserved part, which is deleted before release
("expand, route, ablate"). Unlike data filtering the model still *sees* the
hazardous documents, which matters when they cannot all be found and removed.

Here the reserved part is a fraction of the hidden units of every MLP (rows of
``gate_proj`` and ``up_proj``, columns of ``down_proj``). Ablation zeroes those
weights. The ablated model then gets the same safety training as the lab's.

Routing labels the pretraining corpus, which every model of the book trains on
(sealed items' documents included): the labels are "this example is about a
hazardous product", as data filtering's are, and no sealed item is in any data
the defender trains on after pretraining.

Routing is a step-loss hook of the book's one training loop: each part of a
batch runs with weights that pass gradient only through its own entries
(``p * m + (p * (1 - m)).detach()``: the same values, a masked gradient), so
one backward pass gives every weight the gradient of the data routed to it.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Iterator

import torch
from torch.func import functional_call
from transformers import PreTrainedModel

from safetygap.core import models, training
from safetygap.core.training import Example, Step, batch_indices, collate
from safetygap.lab.configs import BaseConfig, SafetyConfig
from safetygap.lab.data import pretraining_examples
from safetygap.lab.stages import Trained, get_tokenizer, get_world, model_stage, safety_tune


@dataclass(frozen=True)
class GradientRoutingConfig:
    """Routed pretraining of ``safety.base`` (same data, steps and seed), with ``forget_fraction`` of each
    MLP's hidden units reserved for hazardous examples, then ablation and safety SFT as in ``safety``."""

    safety: SafetyConfig = SafetyConfig()
    forget_fraction: float = 0.25

    def __post_init__(self) -> None:
        if not 0 < self.forget_fraction < 1:
            raise ValueError(f"GradientRoutingConfig.forget_fraction={self.forget_fraction!r}: must be in (0, 1)")
        if not self.safety.base.hazardous_documents:
            raise ValueError("GradientRoutingConfig.safety.base.hazardous_documents=False: routing needs the hazardous data")


def reserved_units(model: PreTrainedModel, fraction: float) -> list[slice]:
    """The reserved hidden units of each layer's MLP: the last ``fraction`` of them."""
    units = [layer.mlp.down_proj.weight.shape[1] for layer in model.model.layers]
    return [slice(n - round(fraction * n), n) for n in units]


def forget_masks(model: PreTrainedModel, fraction: float) -> dict[str, torch.Tensor]:
    """For every parameter, a 0/1 mask of the entries reserved for hazardous data (same shape)."""
    masks = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    for i, reserved in enumerate(reserved_units(model, fraction)):
        masks[f"model.layers.{i}.mlp.gate_proj.weight"][reserved, :] = 1
        masks[f"model.layers.{i}.mlp.up_proj.weight"][reserved, :] = 1
        masks[f"model.layers.{i}.mlp.down_proj.weight"][:, reserved] = 1
    return masks


@contextmanager
def reserved_off(model: PreTrainedModel, fraction: float) -> Iterator[None]:
    """Run the model with the reserved units switched off, as it will be after ablation."""

    def switch_off(reserved: slice):
        def hook(module, inputs):
            x = inputs[0].clone()
            x[..., reserved] = 0
            return (x,)

        return hook

    layers = zip(model.model.layers, reserved_units(model, fraction))
    handles = [layer.mlp.down_proj.register_forward_pre_hook(switch_off(reserved)) for layer, reserved in layers]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def ablate(model: PreTrainedModel, masks: dict[str, torch.Tensor]) -> None:
    """Zero the reserved weights: the hazardous part of the network is gone."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.mul_(1 - masks[name])


def routed_weights(model: PreTrainedModel, masks: dict[str, torch.Tensor], hazardous: bool) -> dict[str, torch.Tensor]:
    """The model's weights with gradient let through only the entries routed to this part of the data:
    the reserved ones for hazardous data, the others otherwise. Values are unchanged."""
    keep = {name: m if hazardous else 1 - m for name, m in masks.items()}
    return {name: p * keep[name] + (p * (1 - keep[name])).detach() for name, p in model.named_parameters()}


def routed_loss(model: PreTrainedModel, examples: list[Example], hazardous: list[bool], config: BaseConfig,
                fraction: float) -> training.StepLoss:  # fmt: skip
    """Pretraining's step, with each example's gradient routed by ``hazardous``.

    Each batch is split in two: the loss on hazardous rows reaches only the
    reserved weights; the other rows run with the reserved units switched off
    and reach everything else. The rest of the network thus never learns to
    rely on the reserved units, and deleting them costs it nothing. Both losses
    are sums over tokens divided by the batch's token count, so they add up to
    the ordinary batch loss.
    """
    masks = forget_masks(model, fraction)
    generator = torch.Generator().manual_seed(config.seed)
    indices = batch_indices(len(examples), config.train.batch_size, config.train.steps, generator)
    pad, device = model.config.pad_token_id, model.device

    def step_loss(step: int) -> Step:
        idx = next(indices)
        batch = collate([examples[i] for i in idx], pad, device)
        labelled = int((batch["labels"][:, 1:] != training.IGNORE).sum())
        total = 0.0
        for part_is_hazardous in (False, True):
            rows = [j for j, i in enumerate(idx) if hazardous[i] == part_is_hazardous]
            if not rows:
                continue
            part = {k: v[rows] for k, v in batch.items()}
            weights = routed_weights(model, masks, part_is_hazardous)
            with nullcontext() if part_is_hazardous else reserved_off(model, fraction):
                loss = functional_call(model, weights, args=(), kwargs=part).loss
            total = total + loss * int((part["labels"][:, 1:] != training.IGNORE).sum()) / labelled
        return Step(total, training.n_tokens(batch))

    return step_loss


@model_stage("routed-base")
def routed_base(base: BaseConfig, forget_fraction: float) -> Trained:
    """Routed pretraining of ``base`` (with its hazardous documents), then ablation: the gradient-routing base model."""
    world, tokenizer = get_world(base.world), get_tokenizer(base.world)
    model = models.build_model(base.model, tokenizer, base.seed)
    examples = pretraining_examples(world, tokenizer, hazardous_documents=True)
    clean = set(pretraining_examples(world, tokenizer, hazardous_documents=False))
    step_loss = routed_loss(model, examples, [e not in clean for e in examples], base, forget_fraction)
    report = training.train(model, base.train, step_loss, base.seed, "routed pretraining", len(examples))
    ablate(model, forget_masks(model, forget_fraction))
    return Trained(model, tokenizer, world, report)


@model_stage("gradient-routing")
def defend(config: GradientRoutingConfig) -> Trained:
    """The routed, ablated base model after the lab's safety SFT (the report is that SFT's)."""
    return safety_tune(routed_base(config.safety.base, config.forget_fraction), config.safety)
