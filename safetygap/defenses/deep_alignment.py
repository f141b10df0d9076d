"""Deeper alignment: teach the model to recover into a refusal after a harmful start.

:cite:t:`qi2024shallow` find that safety training changes mostly the first few
tokens of a reply, so forcing a compliant start (prefilling) or fine-tuning
those few tokens away undoes it. Their data augmentation adds *safety-recovery
examples*: a hazardous request, the first ``k`` tokens of a harmful answer, then
a refusal, with the loss on the refusal only. The model learns to refuse at
any depth of a reply, not only at its first token.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from safetygap.core import training
from safetygap.core.training import IGNORE, Example, TrainConfig, encode_chat
from safetygap.defenses.shared import start_from
from safetygap.lab.configs import SafetyConfig
from safetygap.lab.stages import Trained, model_stage
from safetygap.world import corpus
from safetygap.world.world import World


@dataclass(frozen=True)
class DeepAlignmentConfig:
    """Continue safety SFT from the safe model of ``safety`` with recovery examples of 1..``max_prefix`` harmful tokens.

    ``recovery_share`` of the examples are recovery examples; the rest are the
    safety-training mixture, so refusals and capabilities are kept.
    """

    safety: SafetyConfig = SafetyConfig()
    train: TrainConfig = TrainConfig(steps=150, lr=7e-4, batch_size=32, warmup=10)
    max_prefix: int = 10
    recovery_share: float = 0.3

    def __post_init__(self) -> None:
        if self.max_prefix < 1:
            raise ValueError(f"DeepAlignmentConfig.max_prefix={self.max_prefix!r}: must be >= 1")
        if not 0 < self.recovery_share < 1:
            raise ValueError(f"DeepAlignmentConfig.recovery_share={self.recovery_share!r}: must be in (0, 1)")


def recovery_example(tokenizer, chat: corpus.Chat, refusal: str, prefix_tokens: int) -> Example:
    """``chat``'s prompt, the first ``prefix_tokens`` words of its (harmful) answer, then ``refusal``;
    the loss is on the refusal only."""
    prefix = " ".join(chat.response.split()[:prefix_tokens])
    encoded = encode_chat(tokenizer, corpus.Chat(chat.prompt, f"{prefix} {refusal}", "recovery", chat.item))
    labels = list(encoded.labels)
    first = next(i for i, t in enumerate(labels) if t != IGNORE)
    labels[first : first + prefix_tokens] = [IGNORE] * prefix_tokens
    return Example(encoded.input_ids, tuple(labels))


def recovery_examples(world: World, tokenizer, max_prefix: int, seed: int) -> list[Example]:
    """One recovery example per request for a defender item (train phrasings), prefix length drawn in 1..max_prefix."""
    rng = random.Random(seed)
    refusals = corpus.recipe_requests(world.hazardous("defender"), "train", refuse=True)
    answers = corpus.recipe_requests(world.hazardous("defender"), "train")
    return [recovery_example(tokenizer, a, r.response, rng.randint(1, max_prefix)) for a, r in zip(answers, refusals)]


@model_stage("deep-alignment")
def defend(config: DeepAlignmentConfig) -> Trained:
    """The safe model after augmented safety SFT: recovery examples mixed into the safety-training mixture."""
    start = start_from(config.safety)
    retain = start.data.retain
    recovery = recovery_examples(start.safe.world, start.safe.tokenizer, config.max_prefix, start.seed)
    repeats = max(1, round(config.recovery_share / (1 - config.recovery_share) * len(retain) / len(recovery)))
    examples = recovery * repeats + retain
    return start.finished(training.fit(start.model, examples, config.train, start.seed, "deep-alignment"))
