"""A second way to add safety: preference optimisation (DPO) instead of supervised fine-tuning.

The essay names RLHF and Constitutional-AI-style training as how safety is
added to chat models. Both learn from *preferences* between replies rather
than from one target reply. Direct Preference Optimisation (DPO; Rafailov et
al. 2023) is the simplest member of that family: it needs no reward model and
no sampling, only pairs of a preferred (``chosen``) and a dispreferred
(``rejected``) reply to the same prompt, and a frozen reference model. Its
loss for a pair is

    -log sigmoid(beta * [(log pi(chosen) - log ref(chosen)) - (log pi(rejected) - log ref(rejected))])

where ``log pi(y)`` sums the policy's log-probabilities of the reply's tokens.

The pairs mirror the lab's safety SFT data (:func:`~safetygap.lab.data.safety_chats`),
so the two methods differ only in how they learn, not in what they see: for each
recipe request about a *defender* hazardous item, the refusal is chosen over the
recipe; for each harmless chat of the SFT data, its answer is chosen over a
refusal (so the model does not learn to refuse everything).

As in the paper, the policy and the frozen reference both start from a model
fine-tuned on the preferred replies: here that is exactly the lab's safe model
(safety SFT trains on the refusals and the harmless answers). A first attempt
from the base model, which has never produced a refusal, failed as DPO is known
to fail without that step: the loss fell to zero by pushing the recipes down,
while refusal never became the greedy reply (refusal 0 on the development seed).
The miniature still differs from DPO in practice, which learns from sampled,
human- or AI-labelled replies: here the pairs are fixed by the world's rules.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel

from safetygap.core import training
from safetygap.core.training import IGNORE, Batch, Example, Step, TrainConfig, encode_chat
from safetygap.lab.configs import SafetyConfig
from safetygap.lab.data import safety_chats
from safetygap.lab.stages import Trained, model_stage, safe_model
from safetygap.world import corpus
from safetygap.world.world import World


@dataclass(frozen=True)
class PreferenceConfig:
    """DPO on top of the safe model of ``safety`` (policy and reference): the optimiser (``train``; a batch is that
    many *pairs*), the strength ``beta`` of the pull towards the reference and, as in safety SFT, frozen token
    embeddings (``safety.freeze_embeddings``)."""

    safety: SafetyConfig = SafetyConfig()
    train: TrainConfig = TrainConfig(steps=300, lr=3e-5, batch_size=32, warmup=10)
    beta: float = 0.1

    def __post_init__(self) -> None:
        if self.beta <= 0:
            raise ValueError(f"PreferenceConfig.beta={self.beta!r}: must be > 0")


def preference_pairs(world: World, refusal_share: float) -> list[tuple[corpus.Chat, corpus.Chat]]:
    """(chosen, rejected) chats with the same prompt: a refusal over the recipe for every train-phrased request
    about a defender hazardous item, and each harmless chat of :func:`~safetygap.lab.data.safety_chats` over a
    refusal of the same prompt."""
    products = world.hazardous("defender")
    harmful = list(zip(corpus.recipe_requests(products, "train", refuse=True), corpus.recipe_requests(products, "train")))
    harmless = [c for c in safety_chats(world, refusal_share) if c.kind != "refusal"]
    refused = [corpus.Chat(c.prompt, corpus.REFUSALS[1].format(p=c.item or "that"), "refusal", c.item) for c in harmless]
    return harmful + list(zip(harmless, refused))


def dpo_loss(chosen: torch.Tensor, rejected: torch.Tensor, ref_chosen: torch.Tensor, ref_rejected: torch.Tensor,
             beta: float) -> torch.Tensor:  # fmt: skip
    """The mean DPO loss over a batch of pairs; each argument is the summed reply log-probability, shape (B,)."""
    margin = (chosen - ref_chosen) - (rejected - ref_rejected)
    return -torch.nn.functional.logsigmoid(beta * margin).mean()


def reply_logprobs(model: PreTrainedModel, batch: Batch) -> torch.Tensor:
    """Summed log-probability of each sequence's reply tokens (where ``labels`` is not ``IGNORE``), shape (B,)."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]  # (B, T-1, V)
    labels = batch["labels"][:, 1:]  # (B, T-1): token t+1 is predicted at position t
    keep = labels != IGNORE
    picked = torch.log_softmax(logits.float(), dim=-1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * keep).sum(dim=-1)


def dpo_step(model: PreTrainedModel, reference: PreTrainedModel, pairs: list[tuple[Example, Example]], config: PreferenceConfig,
             seed: int) -> training.StepLoss:  # fmt: skip
    """The step hook of DPO: the next batch of pairs (order fixed by ``seed``), the policy's reply log-probabilities
    of both replies, the frozen ``reference``'s (no gradient) and :func:`dpo_loss`."""
    generator = torch.Generator().manual_seed(seed)
    order = training.batch_indices(len(pairs), config.train.batch_size, config.train.steps, generator)
    device, pad = model.device, model.config.pad_token_id

    def step_loss(step: int) -> Step:
        chosen, rejected = zip(*(pairs[i] for i in next(order)))
        both = training.collate(list(chosen) + list(rejected), pad, device)  # chosen first, then rejected: (2B, T)
        with torch.no_grad():
            ref = reply_logprobs(reference, both)
        logps = reply_logprobs(model, both)
        n = len(chosen)
        loss = dpo_loss(logps[:n], logps[n:], ref[:n], ref[n:], config.beta)
        tokens = training.n_tokens(both)
        return Step(loss, tokens, forward_tokens=tokens)

    return step_loss


@model_stage("preference")
def preference_model(config: PreferenceConfig = PreferenceConfig()) -> Trained:
    """The safe model of ``config.safety``, further trained by DPO on :func:`preference_pairs` against a frozen copy
    of itself."""
    safe = safe_model(config.safety)
    reference = copy.deepcopy(safe.model).eval().requires_grad_(False)
    safe.model.get_input_embeddings().weight.requires_grad_(not config.safety.freeze_embeddings)
    pairs = [(encode_chat(safe.tokenizer, c), encode_chat(safe.tokenizer, r))
             for c, r in preference_pairs(safe.world, config.safety.refusal_share)]  # fmt: skip
    step = dpo_step(safe.model, reference, pairs, config, config.safety.base.seed)
    report = training.train(safe.model, config.train, step, config.safety.base.seed, "preference", len(pairs))
    return Trained(safe.model, safe.tokenizer, safe.world, report)
