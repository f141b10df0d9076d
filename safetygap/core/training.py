"""The book's one training loop, and the data it usually trains on.

Plain, readable PyTorch in the spirit of nanoGPT's ``train.py``. Every stage of
the book (pretraining, safety training, every attack and every defense) runs
through :func:`train`: AdamW, warmup then a schedule, gradient clipping, and a
:class:`~safetygap.core.compute.ComputeReport` of what the run cost. What
differs between stages is only the *loss of a step*, which the caller passes in
as a hook, ``step_loss(step) -> Step``:

* :func:`lm_loss` is the ordinary one: seeded, shuffled, right-padded batches of
  examples and the model's own causal-LM loss (pretraining, SFT, attacks);
* a defense writes its own (RepNoise's noise term, a circuit breaker's
  rerouting, RMU's misdirection, TAR's loss after a simulated attack).

Examples are tokenised once. Supervised fine-tuning (SFT) puts the loss on the
assistant's tokens only, using the chat template's generation mask.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerFast, get_scheduler

from safetygap.core.compute import ComputeReport
from safetygap.core.models import parameter_count
from safetygap.world.corpus import Chat

IGNORE = -100  # label value the loss skips
SCHEDULES = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}
BETAS = (0.9, 0.95)  # AdamW's betas, for every run in the book

Batch = dict[str, torch.Tensor]


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser settings for one run (AdamW, warmup then ``schedule``; ``grad_clip=None`` clips nothing)."""

    steps: int
    lr: float
    batch_size: int = 64
    warmup: int = 0
    schedule: str = "cosine"
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"TrainConfig.schedule={self.schedule!r}: valid schedules are {tuple(SCHEDULES)}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"TrainConfig steps={self.steps!r}, batch_size={self.batch_size!r}: both must be >= 1")
        if not 0 < self.lr < 1:
            raise ValueError(f"TrainConfig.lr={self.lr!r}: must be in (0, 1)")
        if not 0 <= self.warmup < self.steps:
            raise ValueError(f"TrainConfig.warmup={self.warmup!r}: must be in [0, steps={self.steps})")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"TrainConfig.grad_clip={self.grad_clip!r}: must be > 0, or None for no clipping")


@dataclass(frozen=True)
class Example:
    """A tokenised training sequence; ``labels`` is ``IGNORE`` where no loss is taken."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]


def encode_document(tokenizer: PreTrainedTokenizerFast, text: str) -> Example:
    """``<|bos|> text <|end|>`` with the loss on every token."""
    ids = [tokenizer.bos_token_id] + tokenizer.encode(text, add_special_tokens=False) + [tokenizer.eos_token_id]
    return Example(tuple(ids), tuple(ids))


def encode_chat(tokenizer: PreTrainedTokenizerFast, chat: Chat) -> Example:
    """The chat template applied to the conversation, loss on the assistant's reply only."""
    enc = tokenizer.apply_chat_template(
        chat.messages(), tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids = enc["input_ids"]
    labels = [t if m else IGNORE for t, m in zip(ids, enc["assistant_masks"])]
    return Example(tuple(ids), tuple(labels))


def collate(batch: list[Example], pad_id: int, device: torch.device) -> Batch:
    """Right-pad a list of examples into ``input_ids``, ``attention_mask``, ``labels`` of shape (B, T)."""
    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, e in enumerate(batch):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        labels[i, :n] = torch.tensor(e.labels)
        mask[i, :n] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}


def batch_indices(n: int, batch_size: int, steps: int, generator: torch.Generator) -> Iterator[list[int]]:
    """Yield ``steps`` index lists: epochs of a fresh random permutation, cut into batches."""
    size = min(batch_size, n)
    order: list[int] = []
    for _ in range(steps):
        if len(order) < size:
            order += torch.randperm(n, generator=generator).tolist()
        yield order[:size]
        order = order[size:]


def batches(examples: list[Example], batch_size: int, steps: int, seed: int, model: PreTrainedModel) -> Iterator[Batch]:
    """``steps`` seeded, shuffled batches of ``examples``, padded with ``model``'s pad token on its device."""
    if not examples:
        raise ValueError("batches: no examples to draw from")
    generator = torch.Generator().manual_seed(seed)
    for idx in batch_indices(len(examples), batch_size, steps, generator):
        yield collate([examples[i] for i in idx], model.config.pad_token_id, model.device)


def n_tokens(batch: Batch) -> int:
    """Real (non-padding) tokens in a batch."""
    return int(batch["attention_mask"].sum())


@dataclass
class Step:
    """What a step's loss hook returns: the ``loss`` to minimise, the ``tokens`` trained on, and the
    ``forward_tokens`` a frozen reference model read (forward passes only, counted at 2N FLOPs a token)."""

    loss: torch.Tensor
    tokens: int
    forward_tokens: int = 0


StepLoss = Callable[[int], Step]


def lm_loss(model: PreTrainedModel, examples: list[Example], config: TrainConfig, seed: int) -> StepLoss:
    """The ordinary step: the next batch of ``examples`` (order fixed by ``seed``) and the model's causal-LM loss."""
    stream = batches(examples, config.batch_size, config.steps, seed, model)

    def step_loss(step: int) -> Step:
        batch = next(stream)
        return Step(model(**batch).loss, n_tokens(batch))

    return step_loss


def show_progress() -> bool:
    """Progress bars are on unless ``SAFETYGAP_PROGRESS=0`` (the book build turns them off)."""
    return os.environ.get("SAFETYGAP_PROGRESS", "1") != "0"


def train(
    model: PreTrainedModel,
    config: TrainConfig,
    step_loss: StepLoss,
    seed: int,
    stage: str,
    examples: int,
    on_step: Callable[[int, int], None] | None = None,
) -> ComputeReport:
    """Minimise ``step_loss`` for ``config.steps`` steps, updating the parameters that require grad, in place.

    ``step_loss(step)`` draws its own data and returns a :class:`Step`; its
    token counts go into the report, along with ``examples``, the number of
    distinct training examples. ``seed`` seeds torch (dropout, if any; the data
    order is the hook's). ``on_step(step, tokens_so_far)``, if given, is called
    after every step with the model in eval mode: attack curves use it to
    evaluate checkpoints without retraining.
    """
    torch.manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, betas=BETAS)
    scheduler = get_scheduler(SCHEDULES[config.schedule], optimizer, config.warmup, config.steps)
    report = ComputeReport(stage, config.steps, examples, 0, parameter_count(model), parameter_count(model, trainable_only=True), 0.0)
    start = time.perf_counter()
    model.train()
    bar = tqdm(total=config.steps, desc=stage, leave=False, disable=not show_progress())
    for step in range(config.steps):
        out = step_loss(step)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        if config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        optimizer.step()
        scheduler.step()
        report.tokens += out.tokens
        report.forward_tokens += out.forward_tokens
        report.losses.append(round(out.loss.item(), 5))
        if on_step is not None:
            model.eval()
            on_step(step + 1, report.tokens)
            model.train()
        bar.update()
        bar.set_postfix(loss=f"{report.losses[-1]:.3f}", refresh=False)
    bar.close()
    model.eval()
    report.seconds = time.perf_counter() - start
    return report


def fit(
    model: PreTrainedModel,
    examples: list[Example],
    config: TrainConfig,
    seed: int,
    stage: str,
    on_step: Callable[[int, int], None] | None = None,
) -> ComputeReport:
    """:func:`train` with the ordinary loss (:func:`lm_loss`) on ``examples``: pretraining, SFT, fine-tuning attacks."""
    if not examples:
        raise ValueError(f"stage {stage!r}: no training examples")
    return train(model, config, lm_loss(model, examples, config, seed), seed, stage, len(examples), on_step)
