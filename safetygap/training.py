"""Training loops: pretraining on documents and supervised fine-tuning on chats.

Plain, readable PyTorch in the spirit of nanoGPT's ``train.py``: examples are
tokenised once, shuffled each epoch with a seeded generator, padded on the
right into batches, and fed to the model's own causal-LM loss. Supervised
fine-tuning (SFT) puts the loss on the assistant's tokens only, using the chat
template's generation mask. Every run returns a :class:`ComputeReport`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerFast, get_scheduler

from safetygap.compute import ComputeReport
from safetygap.corpus import Chat
from safetygap.models import parameter_count

IGNORE = -100  # label value the loss skips
SCHEDULES = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser settings for one training stage (AdamW, warmup then ``schedule``)."""

    steps: int
    lr: float
    batch_size: int = 64
    warmup: int = 0
    schedule: str = "cosine"
    weight_decay: float = 0.0
    grad_clip: float = 1.0

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"TrainConfig.schedule={self.schedule!r}: valid schedules are {tuple(SCHEDULES)}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"TrainConfig steps={self.steps!r}, batch_size={self.batch_size!r}: both must be >= 1")
        if not 0 < self.lr < 1:
            raise ValueError(f"TrainConfig.lr={self.lr!r}: must be in (0, 1)")
        if not 0 <= self.warmup < self.steps:
            raise ValueError(f"TrainConfig.warmup={self.warmup!r}: must be in [0, steps={self.steps})")


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


def collate(batch: list[Example], pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
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


def batch_indices(n: int, batch_size: int, steps: int, generator: torch.Generator):
    """Yield ``steps`` index lists: epochs of a fresh random permutation, cut into batches."""
    size = min(batch_size, n)
    order: list[int] = []
    for _ in range(steps):
        if len(order) < size:
            order += torch.randperm(n, generator=generator).tolist()
        yield order[:size]
        order = order[size:]


def show_progress() -> bool:
    """Progress bars are on unless ``SAFETYGAP_PROGRESS=0`` (the book build turns them off)."""
    return os.environ.get("SAFETYGAP_PROGRESS", "1") != "0"


def train(
    model: PreTrainedModel,
    examples: list[Example],
    config: TrainConfig,
    seed: int,
    stage: str,
    on_step: Callable[[int, int], None] | None = None,
) -> ComputeReport:
    """Train ``model`` in place on ``examples`` for ``config.steps`` steps; return what it cost.

    ``seed`` fixes the data order (and any dropout), so a run is repeatable.
    ``on_step(step, tokens_so_far)``, if given, is called after every step with
    the model in eval mode: attack curves use it to evaluate checkpoints
    without retraining.
    """
    if not examples:
        raise ValueError(f"stage {stage!r}: no training examples")
    device = model.device
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, betas=(0.9, 0.95))
    scheduler = get_scheduler(SCHEDULES[config.schedule], optimizer, config.warmup, config.steps)
    pad_id = model.config.pad_token_id

    model.train()
    losses: list[float] = []
    tokens = 0
    start = time.perf_counter()
    bar = tqdm(total=config.steps, desc=stage, leave=False, disable=not show_progress())
    for idx in batch_indices(len(examples), config.batch_size, config.steps, generator):
        batch = collate([examples[i] for i in idx], pad_id, device)
        loss = model(**batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        optimizer.step()
        scheduler.step()
        tokens += int(batch["attention_mask"].sum())
        losses.append(round(loss.item(), 5))
        if on_step is not None:
            model.eval()
            on_step(len(losses), tokens)
            model.train()
        bar.update()
        bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
    bar.close()
    model.eval()
    return ComputeReport(
        stage=stage,
        steps=config.steps,
        examples=len(examples),
        tokens=tokens,
        params=parameter_count(model),
        trainable_params=parameter_count(model, trainable_only=True),
        seconds=time.perf_counter() - start,
        losses=losses,
    )
