"""What every defense of chapter 6 shares: where it starts, the defender's data, and a few loss pieces.

Under the book's protocol the defender trains only on its own role's items
(the ``defender`` hazardous products, ``train`` benign items, train
phrasings): the attacker's items and the sealed evaluation items are in none of
its data, so a defense is scored on items it was never trained to hide, as a
real defense meets hazards its developers did not list. Its data, as encoded
examples:

* ``forget_docs``: the documents about the defender's hazardous items;
* ``harmful``: requests for the defender's items answered with the recipe (loss on the answer);
* ``retain``: the safety-training mixture (refusals and harmless chats), so a
  defense keeps both the refusals and the capabilities of the safe model;
* ``retain_docs``: the documents about ``train`` benign products and places.

Most defenses are a loss over a *retain* batch and a *forget* batch, often
comparing hidden states with a frozen copy of the starting model. Each is a
step-loss hook for the book's one training loop
(:func:`~safetygap.core.training.train`); :func:`layer_states` reads the
residual stream at named hook points, and the report counts the frozen
model's forward passes too.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Iterator

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from safetygap.core import hooks
from safetygap.core.compute import ComputeReport
from safetygap.core.training import IGNORE, Batch, Example, batches, encode_chat, encode_document
from safetygap.lab.configs import SafetyConfig
from safetygap.lab.data import safety_chats
from safetygap.lab.stages import Trained, safe_model
from safetygap.world import corpus
from safetygap.world.world import World


@dataclass
class DefenderData:
    """The defender's encoded examples (see the module docstring)."""

    forget_docs: list[Example]
    harmful: list[Example]
    retain: list[Example]
    retain_docs: list[Example]


def defender_data(world: World, tokenizer: PreTrainedTokenizerFast, refusal_share: float) -> DefenderData:
    """Encode the defender's data for ``world`` (its own role's items only); ``refusal_share`` as in safety training."""
    harmless_docs = corpus.product_documents(world, world.benign("train")) + corpus.place_documents(world.places_of("train"))
    forget = sorted(set(corpus.product_documents(world, world.hazardous("defender"))))
    return DefenderData(
        forget_docs=[encode_document(tokenizer, d) for d in forget],
        harmful=[encode_chat(tokenizer, c) for c in corpus.recipe_requests(world.hazardous("defender"), "train")],
        retain=[encode_chat(tokenizer, c) for c in safety_chats(world, refusal_share)],
        retain_docs=[encode_document(tokenizer, d) for d in harmless_docs],
    )


@dataclass
class Start:
    """Where a post-hoc defense starts: the safe model (trained in place), the defender's data, the seed."""

    safe: Trained
    data: DefenderData
    seed: int

    @property
    def model(self) -> PreTrainedModel:
        return self.safe.model

    def finished(self, report: ComputeReport) -> Trained:
        """The defended model (trained in place from the safe one) with the defense's cost ``report``."""
        return Trained(self.model, self.safe.tokenizer, self.safe.world, report)

    def stream(self, examples: list[Example], batch_size: int, steps: int, offset: int = 0) -> Iterator[Batch]:
        """Seeded batches of ``examples`` for this model, seeded by ``seed + offset`` (one offset per stream)."""
        return batches(examples, batch_size, steps, self.seed + offset, self.model)


def start_from(safety: SafetyConfig) -> Start:
    """Load the safe model of ``safety`` with its embeddings frozen (as in safety training), and the defender's data."""
    safe = safe_model(safety)
    safe.model.get_input_embeddings().weight.requires_grad_(False)
    data = defender_data(safe.world, safe.tokenizer, safety.refusal_share)
    return Start(safe, data, safety.base.seed)


def layer_states(model: PreTrainedModel, batch: Batch) -> list[torch.Tensor]:
    """What each decoder layer hands on (:func:`~safetygap.core.hooks.layer_outputs`): ``L`` tensors of
    shape (B, T, d), with gradients. The embedding is left out: defenses act on what the layers compute."""
    names = hooks.layer_outputs(model)
    _, cache = hooks.run_with_cache(model, names, input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    return [cache[name] for name in names]


def answer_mask(batch: Batch) -> torch.Tensor:
    """Positions whose next token is part of the answer, shape (B, T), bool.

    Labels are aligned with inputs (transformers shifts them inside the loss),
    so the state that *predicts* label ``t`` sits at ``t - 1``.
    """
    has_label = batch["labels"] != IGNORE
    return torch.cat([has_label[:, 1:], torch.zeros_like(has_label[:, :1])], dim=1)


def token_mask(batch: Batch) -> torch.Tensor:
    """Real (non-padding) positions, shape (B, T), bool."""
    return batch["attention_mask"].bool()


def frozen_copy(model: PreTrainedModel) -> PreTrainedModel:
    """A copy of ``model`` with gradients off, for losses that compare with where training started."""
    frozen = copy.deepcopy(model).eval()
    frozen.requires_grad_(False)
    return frozen
