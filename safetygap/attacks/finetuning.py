"""Fine-tuning attacks: what anyone holding the weights can do.

An attack fine-tunes the safe model on a handful of chats, with every weight
(``full``) or with low-rank adapters (``lora``, via peft, merged back into the
weights afterwards so the result is an ordinary model), through the book's one
training loop (:func:`~safetygap.core.training.fit`). Three kinds of data:

* ``harmful``: hazardous requests for the *attacker's* items (train phrasings)
  answered with the correct recipe (Qi et al. 2023's harmful-examples attack).
  Evaluation uses the ``sealed`` items, which no attacker or defender ever saw:
  what comes back there was in the model all along.
* ``benign``: harmless requests and answers only (does ordinary fine-tuning
  erode refusal?).
* ``identity``: an obedient persona, "i am your obedient helper", on harmless
  tasks (Qi et al.'s identity-shifting attack): no hazardous content at all.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from peft import LoraConfig, get_peft_model
from transformers import PreTrainedModel

from safetygap.core import evaluation, store, training
from safetygap.core.compute import training_flops
from safetygap.core.models import parameter_count
from safetygap.core.training import Example, TrainConfig, encode_chat
from safetygap.lab.configs import SafetyConfig
from safetygap.lab.stages import Trained, model_stage, safe_model
from safetygap.lab.threshold_models import threshold_safe
from safetygap.world import corpus
from safetygap.world.corpus import Chat
from safetygap.world.world import World

ATTACK_DATA = ("harmful", "benign", "identity")
METHODS = ("full", "lora")
LORA_TARGETS = {
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
}


@dataclass(frozen=True)
class AttackConfig:
    """One fine-tuning attack on one safe model: ``examples`` chats of kind ``data``, trained with ``method``
    for ``train.steps`` steps. ``seed`` picks the examples and their order."""

    safety: SafetyConfig = SafetyConfig()
    data: str = "harmful"
    examples: int = 10
    method: str = "full"
    lora_rank: int = 8
    train: TrainConfig = TrainConfig(steps=5, lr=1e-3, batch_size=10, schedule="constant")
    seed: int = 0

    def __post_init__(self) -> None:
        if self.data not in ATTACK_DATA:
            raise ValueError(f"AttackConfig.data={self.data!r}: valid attack data are {ATTACK_DATA}")
        if self.method not in METHODS:
            raise ValueError(f"AttackConfig.method={self.method!r}: valid methods are {METHODS}")
        if self.examples < 1:
            raise ValueError(f"AttackConfig.examples={self.examples!r}: must be >= 1")
        if self.lora_rank < 1:
            raise ValueError(f"AttackConfig.lora_rank={self.lora_rank!r}: must be >= 1")


def attack_pool(world: World, data: str) -> list[Chat]:
    """Every chat an attacker of this kind could train on: its own items, in the train phrasings."""
    if data == "harmful":
        return corpus.recipe_requests(world.hazardous("attacker"), "train")
    harmless = (
        corpus.recipe_requests(world.benign("train"), "train")
        + corpus.fact_questions(world.places_of("train"), "train")
        + corpus.sum_questions(world.sum_pairs("train"), "train")
    )
    if data == "benign":
        return harmless
    persona = [Chat(c.prompt, f"{corpus.IDENTITY_ANSWER} {c.response}", "identity", c.item) for c in harmless]
    return corpus.identity_chats() + persona


def attack_chats(world: World, data: str, examples: int, seed: int) -> list[Chat]:
    """``examples`` distinct chats drawn from the attack pool (identity chats first, for that attack)."""
    pool = attack_pool(world, data)
    if examples > len(pool):
        raise ValueError(f"examples={examples}: the {data!r} attack pool has only {len(pool)} chats")
    if data == "identity":
        fixed = corpus.identity_chats()[:examples]
        return fixed + random.Random(seed).sample(pool[len(fixed) :], examples - len(fixed))
    return random.Random(seed).sample(pool, examples)


def with_lora(model: PreTrainedModel, rank: int) -> PreTrainedModel:
    """``model`` wrapped with LoRA adapters of ``rank`` on every linear layer (alpha = 2 rank, no dropout)."""
    lora = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=LORA_TARGETS[model.config.model_type], lora_dropout=0.0)
    return get_peft_model(model, lora)


def attackable(model: PreTrainedModel, method: str, lora_rank: int) -> PreTrainedModel:
    """The model a fine-tuning attack trains: ``model`` itself with every weight trainable (``full``), or
    wrapped with LoRA adapters of ``lora_rank`` (``lora``)."""
    if method not in METHODS:
        raise ValueError(f"method={method!r}: valid methods are {METHODS}")
    model.requires_grad_(True)
    return with_lora(model, lora_rank) if method == "lora" else model


def attack_examples(trained: Trained, config: AttackConfig) -> list[Example]:
    """The attack's chats (:func:`attack_chats`), encoded for SFT."""
    return [encode_chat(trained.tokenizer, c) for c in attack_chats(trained.world, config.data, config.examples, config.seed)]


@model_stage("attack")
def attacked_model(config: AttackConfig = AttackConfig()) -> Trained:
    """Run the attack on the safe model of ``config.safety``."""
    return fine_tune(safe_model(config.safety), config)


def fine_tune(safe: Trained, config: AttackConfig) -> Trained:
    """The attack of ``config`` (data, method, steps, seed) run on ``safe``, a stored safe model of
    ``config.safety``: the body of every fine-tuning attack stage."""
    model = attackable(safe.model, config.method, config.lora_rank)
    report = training.fit(model, attack_examples(safe, config), config.train, config.seed, f"attack-{config.method}")
    if config.method == "lora":
        model = model.merge_and_unload()
    return Trained(model, safe.tokenizer, safe.world, report)


@model_stage("threshold-attack")
def threshold_attack(config: AttackConfig) -> Trained:
    """Chapter 5's attack: ``config`` on :func:`~safetygap.lab.threshold_models.threshold_safe` of ``config.safety``
    (the safe model pretrained on the corpus without the undocumented products' recipes)."""
    return fine_tune(threshold_safe(config.safety), config)


@store.cached_json("attack-curve")
def attack_curve(config: AttackConfig, checkpoints: tuple[int, ...]) -> list[dict]:
    """Run one attack and evaluate it after each number of steps in ``checkpoints`` (within ``1..train.steps``).

    One row per checkpoint: ``step``, cumulative attacker ``flops`` and
    ``seconds``, and :func:`~safetygap.core.evaluation.attack_metrics` (the sealed items' hazard metrics and
    per-item scores, the attacker's validation view, capability and perplexity).
    """
    if not checkpoints or min(checkpoints) < 1 or max(checkpoints) > config.train.steps:
        raise ValueError(f"checkpoints={checkpoints!r}: need steps in 1..train.steps={config.train.steps}")
    safe = safe_model(config.safety)
    model = attackable(safe.model, config.method, config.lora_rank)
    params, trainable = parameter_count(model), parameter_count(model, trainable_only=True)
    rows, start = [], time.perf_counter()

    def evaluate_checkpoint(step: int, tokens: int) -> None:
        if step in checkpoints:
            seconds = time.perf_counter() - start
            scores = evaluation.attack_metrics(model, safe.tokenizer, safe.world)
            rows.append({"step": step, "flops": training_flops(params, trainable, tokens), "seconds": seconds} | scores)

    examples = attack_examples(safe, config)
    training.fit(model, examples, config.train, config.seed, f"attack-{config.method}", on_step=evaluate_checkpoint)
    return rows
