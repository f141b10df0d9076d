"""What every defense of chapter 6 shares: the defender's data, a training loop for custom losses, and costs.

The defender owns its pretraining corpus, so it knows every hazardous document
and can write a compliant answer for every hazardous product (train
phrasings). What it does not know is the attacker's data or hyperparameters.
Its data, as encoded examples:

* ``forget_docs``: the hazardous documents (exactly what data filtering removes);
* ``harmful``: hazardous recipe requests answered with the recipe (loss on the answer);
* ``retain``: the safety-training mixture (refusals and harmless chats), so a
  defense keeps both the refusals and the capabilities of the safe model;
* ``retain_docs``: the harmless documents.

Most defenses are a loss over a *retain* batch and a *forget* batch, often
comparing hidden states with a frozen copy of the starting model;
:func:`fit` is the loop they share, :func:`hidden_states` reads the residual
stream, and :class:`DefenseReport` counts FLOPs, including the frozen model's
forward passes.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerFast, get_scheduler

from safetygap import corpus, lab
from safetygap.compute import ComputeReport, forward_flops
from safetygap.models import parameter_count
from safetygap.training import IGNORE, SCHEDULES, Example, TrainConfig, batch_indices, collate, encode_chat, encode_document, show_progress
from safetygap.world import World

Batch = dict[str, torch.Tensor]


@dataclass
class DefenderData:
    """The defender's encoded examples (see the module docstring)."""

    forget_docs: list[Example]
    harmful: list[Example]
    retain: list[Example]
    retain_docs: list[Example]


def hazardous_documents(world: World) -> list[str]:
    """The training documents that data filtering removes."""
    clean = set(corpus.documents(world, "train", include_hazardous=False))
    return [d for d in corpus.documents(world, "train") if d not in clean]


def defender_data(world: World, tokenizer: PreTrainedTokenizerFast, refusal_share: float) -> DefenderData:
    """Encode the defender's data for ``world``; ``refusal_share`` as in safety training."""
    hazardous = set(hazardous_documents(world))
    harmless_docs = [d for d in corpus.documents(world, "train") if d not in hazardous]
    return DefenderData(
        forget_docs=[encode_document(tokenizer, d) for d in sorted(hazardous)],
        harmful=[encode_chat(tokenizer, c) for c in corpus.recipe_requests(world.hazardous(), "train")],
        retain=[encode_chat(tokenizer, c) for c in lab.safety_chats(world, refusal_share)],
        retain_docs=[encode_document(tokenizer, d) for d in harmless_docs],
    )


@dataclass
class Start:
    """Where a post-hoc defense starts: the safe model (trained in place), the defender's data, the seed."""

    safe: lab.Trained
    data: DefenderData
    seed: int

    @property
    def model(self) -> PreTrainedModel:
        return self.safe.model

    def stream(self, examples: list[Example], batch_size: int, steps: int, offset: int = 0) -> Iterator[Batch]:
        """:func:`batches` of ``examples`` for this model, seeded by ``seed + offset`` (one offset per stream)."""
        return batches(examples, batch_size, steps, self.seed + offset, self.safe.tokenizer.pad_token_id, self.model.device)


def start_from(safe_config: lab.SafetyConfig) -> Start:
    """Load the safe model of ``safe_config`` with its embeddings frozen (as in safety training), and the defender's data."""
    safe = lab.safe_model(safe_config)
    safe.model.get_input_embeddings().weight.requires_grad_(False)
    data = defender_data(safe.world, safe.tokenizer, safe_config.refusal_share)
    return Start(safe, data, safe_config.base.seed)


def batches(examples: list[Example], batch_size: int, steps: int, seed: int, pad_id: int, device: torch.device) -> Iterator[Batch]:
    """``steps`` seeded, shuffled, right-padded batches (see :func:`training.collate`)."""
    generator = torch.Generator().manual_seed(seed)
    for idx in batch_indices(len(examples), batch_size, steps, generator):
        yield collate([examples[i] for i in idx], pad_id, device)


def hidden_states(model: PreTrainedModel, batch: Batch) -> tuple[torch.Tensor, ...]:
    """The residual stream after each decoder layer: ``L`` tensors of shape (B, T, d).

    The embedding output is left out: defenses act on what the layers compute.
    transformers applies the final norm to the last entry; that is the input
    of the unembedding, which is what the next token is read from.
    """
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True)
    return out.hidden_states[1:]


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


@dataclass
class DefenseReport(ComputeReport):
    """A :class:`ComputeReport` that also counts the frozen model's forward passes (``2 N`` FLOPs per token)."""

    forward_tokens: int = 0

    @property
    def flops(self) -> float:
        return super().flops + forward_flops(self.params, self.forward_tokens)

    def to_dict(self) -> dict:
        return super().to_dict() | {"forward_tokens": self.forward_tokens}


StepLoss = Callable[[int], tuple[torch.Tensor, int, int]]


def fit(
    model: PreTrainedModel,
    step_loss: StepLoss,
    config: TrainConfig,
    seed: int,
    stage: str,
    examples: int,
    after_backward: Callable[[int], tuple[int, int]] | None = None,
) -> DefenseReport:
    """Minimise ``step_loss`` for ``config.steps`` AdamW steps (warmup, schedule, clipping as in :func:`training.train`).

    ``step_loss(step)`` draws its own batches and returns ``(loss,
    trained_tokens, frozen_forward_tokens)``; the tokens go into the cost.
    ``after_backward(step)``, if given, may add to the gradients before the
    update (tamper-resistant training adds its meta-gradient there) and
    returns its own ``(trained_tokens, forward_tokens)``. ``examples`` is the
    number of distinct training examples, for the report. Only parameters with
    ``requires_grad`` are updated.
    """
    torch.manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, betas=(0.9, 0.95))
    scheduler = get_scheduler(SCHEDULES[config.schedule], optimizer, config.warmup, config.steps)
    report = DefenseReport(stage, config.steps, examples, 0, parameter_count(model), parameter_count(model, trainable_only=True), 0.0)
    start = time.perf_counter()
    model.train()
    for step in tqdm(range(config.steps), desc=stage, leave=False, disable=not show_progress()):
        loss, trained, forward = step_loss(step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if after_backward is not None:
            more_trained, more_forward = after_backward(step)
            trained, forward = trained + more_trained, forward + more_forward
        torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        optimizer.step()
        scheduler.step()
        report.tokens += trained
        report.forward_tokens += forward
        report.losses.append(round(loss.item(), 5))
    model.eval()
    report.seconds = time.perf_counter() - start
    return report


def n_tokens(batch: Batch) -> int:
    return int(batch["attention_mask"].sum())
