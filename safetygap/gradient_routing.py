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
"""

from __future__ import annotations

import dataclasses
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Iterator

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, get_scheduler

from safetygap import lab, models, training
from safetygap.compute import ComputeReport
from safetygap.lab import BaseConfig, SafetyConfig, Trained
from safetygap.models import parameter_count
from safetygap.training import SCHEDULES, Example


@dataclass(frozen=True)
class RoutingConfig:
    """Routed pretraining of ``base`` (same data, steps and seed), with ``forget_fraction`` of each
    MLP's hidden units reserved for hazardous examples, then ablation and safety SFT as in ``safety``."""

    safety: SafetyConfig = SafetyConfig()
    forget_fraction: float = 0.25

    def __post_init__(self) -> None:
        if not 0 < self.forget_fraction < 1:
            raise ValueError(f"RoutingConfig.forget_fraction={self.forget_fraction!r}: must be in (0, 1)")
        if not self.safety.base.hazardous_documents:
            raise ValueError("RoutingConfig.safety.base.hazardous_documents=False: routing needs the hazardous data")


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


def routed_pretraining(model: PreTrainedModel, examples: list[Example], hazardous: list[bool], config: BaseConfig,
                       fraction: float) -> ComputeReport:  # fmt: skip
    """Pretrain like :func:`training.train`, but route each example's gradient by ``hazardous``.

    Each batch is split in two: the loss on hazardous rows updates only the
    reserved weights; the other rows run with the reserved units switched off
    and update everything else. The rest of the network thus never learns to
    rely on the reserved units, and deleting them costs it nothing. Both losses
    are sums over tokens divided by the batch's token count, so they add up to
    the ordinary batch loss.
    """
    masks = forget_masks(model, fraction)
    train = config.train
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    optimizer = torch.optim.AdamW(params, lr=train.lr, weight_decay=train.weight_decay, betas=(0.9, 0.95))
    scheduler = get_scheduler(SCHEDULES[train.schedule], optimizer, train.warmup, train.steps)
    pad, device = model.config.pad_token_id, model.device
    losses, tokens, start = [], 0, time.perf_counter()
    model.train()
    for idx in tqdm(training.batch_indices(len(examples), train.batch_size, train.steps, generator), total=train.steps,
                    desc="routed pretraining", leave=False, disable=not training.show_progress()):  # fmt: skip
        batch = training.collate([examples[i] for i in idx], pad, device)
        labelled = int((batch["labels"][:, 1:] != training.IGNORE).sum())
        routed = {name: torch.zeros_like(p) for name, p in named}
        total = 0.0
        for part_is_hazardous in (False, True):
            rows = [j for j, i in enumerate(idx) if hazardous[i] == part_is_hazardous]
            if not rows:
                continue
            part = {k: v[rows] for k, v in batch.items()}
            with nullcontext() if part_is_hazardous else reserved_off(model, fraction):
                loss = model(**part).loss * int((part["labels"][:, 1:] != training.IGNORE).sum()) / labelled
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for name, p in named:
                mask = masks[name] if part_is_hazardous else 1 - masks[name]
                routed[name] += p.grad * mask
            total += loss.item()
        for name, p in named:
            p.grad = routed[name]
        torch.nn.utils.clip_grad_norm_(params, train.grad_clip)
        optimizer.step()
        scheduler.step()
        tokens += int(batch["attention_mask"].sum())
        losses.append(round(total, 5))
    model.eval()
    return ComputeReport("routed pretraining", train.steps, len(examples), tokens, parameter_count(model),
                         parameter_count(model, trainable_only=True), time.perf_counter() - start, losses)  # fmt: skip


def routed_base(config: RoutingConfig) -> Trained:
    """Routed pretraining then ablation (or fetch from the store): the gradient-routing base model."""
    base = config.safety.base

    def build():
        world, tok = lab.get_world(base.world), lab.get_tokenizer(base.world)
        special = {"bos": tok.bos_token_id, "eos": tok.eos_token_id, "pad": tok.pad_token_id}
        model = models.build_model(base.model, len(tok), special, base.seed)
        examples = lab.pretraining_examples(world, tok, hazardous_documents=True)
        clean = set(lab.pretraining_examples(world, tok, hazardous_documents=False))
        report = routed_pretraining(model, examples, [e not in clean for e in examples], base, config.forget_fraction)
        ablate(model, forget_masks(model, config.forget_fraction))
        return model, report

    key = {"base": dataclasses.asdict(base), "forget_fraction": config.forget_fraction}
    return lab.trained_stage("routed", key, base.world, lab.TRAINING_CODE + (sys.modules[__name__],), build)


def train_defense(config: RoutingConfig) -> tuple:
    """The routed, ablated base model after the lab's safety SFT, and the report of that SFT."""
    return lab.safety_tune(routed_base(config), config.safety)
