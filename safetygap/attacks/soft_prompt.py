"""A universal soft prompt: the embedding-space attack.

An attacker with the weights need not speak in tokens: it can hand the model
any vector in embedding space. :cite:t:`schwinn2024softprompt` showed that such
attacks break safety training and unlearning of open models, and
:cite:t:`schwinn2024revisiting` that they break circuit breakers, which
had been tested mainly against attacks in token space.

Here ``tokens`` placeholder positions (the tokenizer's unknown-word token,
which no text of the world contains) are appended to the user's request; a
forward hook on the input embedding replaces them with ``tokens`` learned
vectors. With the model frozen, the vectors are trained to make the model give
the recipe on the attacker's harmful examples, through the book's one training
loop. The prompt is *universal*: one set of vectors for every request,
evaluated on sealed items it never saw.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from safetygap.core import training
from safetygap.core.compute import ComputeReport
from safetygap.core.training import Example, TrainConfig, encode_chat
from safetygap.world.corpus import Chat
from safetygap.world.tokenizer import UNK

PLACEHOLDER = UNK  # every word of the world is in the vocabulary, so this token occurs in no text


@dataclass(frozen=True)
class SoftPromptConfig:
    """``tokens`` learned vectors after the request, trained with ``train`` (model frozen)."""

    tokens: int = 8
    train: TrainConfig = TrainConfig(steps=100, lr=1e-2, batch_size=10, schedule="constant")

    def __post_init__(self) -> None:
        if self.tokens < 1:
            raise ValueError(f"SoftPromptConfig.tokens={self.tokens!r}: must be >= 1")


class SoftPrompt(torch.nn.Module):
    """The learned vectors, shape (tokens, d), started at the mean input embedding."""

    def __init__(self, model: PreTrainedModel, tokens: int) -> None:
        super().__init__()
        mean = model.get_input_embeddings().weight.detach().mean(dim=0)
        self.vectors = torch.nn.Parameter(mean.repeat(tokens, 1))


def with_placeholders(chat: Chat, tokens: int) -> Chat:
    """``chat`` with ``tokens`` placeholders after the request."""
    return Chat(f"{chat.prompt} {' '.join([PLACEHOLDER] * tokens)}", chat.response, chat.kind, chat.item)


@contextmanager
def soft_prompt(model: PreTrainedModel, prompt: SoftPrompt, placeholder_id: int) -> Iterator[PreTrainedModel]:
    """Run ``model`` with every placeholder's embedding replaced by ``prompt``'s vectors, in order.

    A prompt row of the batch has either no placeholder (a harmless prompt) or
    exactly ``tokens`` of them. Decoding steps after the prompt (one token a row)
    are left alone: a model that generates the placeholder token reads its own
    embedding back.
    """
    n = prompt.vectors.shape[0]

    def hook(module, inputs, output: torch.Tensor) -> torch.Tensor:
        mask = inputs[0] == placeholder_id  # (B, T)
        rows = mask.sum(dim=1)
        if mask.shape[1] == 1 or not bool(mask.any()):
            return output
        if not bool(((rows == 0) | (rows == n)).all()):
            raise ValueError(f"soft prompt: a row has {rows.tolist()} placeholders, expected 0 or {n}")
        out = output.clone()
        out[mask] = prompt.vectors.to(out.dtype).repeat(int((rows == n).sum()), 1)
        return out

    handle = model.get_input_embeddings().register_forward_hook(hook)
    try:
        yield model
    finally:
        handle.remove()


def train_soft_prompt(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, chats: list[Chat], config: SoftPromptConfig,
                      seed: int) -> tuple[PreTrainedModel, SoftPrompt, ComputeReport]:  # fmt: skip
    """A frozen copy of ``model`` with a soft prompt trained on ``chats`` (loss on the answers) attached as
    its only trainable parameters; the prompt and the run's report."""
    attacked = copy.deepcopy(model)
    attacked.requires_grad_(False)
    prompt = SoftPrompt(attacked, config.tokens)
    attacked.soft_prompt = prompt  # registered as a submodule: the one thing the training loop updates
    examples: list[Example] = [encode_chat(tokenizer, with_placeholders(c, config.tokens)) for c in chats]
    with soft_prompt(attacked, prompt, tokenizer.convert_tokens_to_ids(PLACEHOLDER)):
        report = training.fit(attacked, examples, config.train, seed, "soft-prompt")
    return attacked, prompt, report
