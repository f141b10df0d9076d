"""Fine-tuning attacks: what anyone holding the weights can do.

An attack fine-tunes the safe model on a handful of chats, with every weight
(``full``) or with low-rank adapters (``lora``, via peft, merged back into the
weights afterwards so the result is an ordinary model). Three kinds of data:

* ``harmful``: hazardous requests for the *attacker's* items answered with the
  correct recipe (Qi et al. 2023's harmful-examples attack). Evaluation uses the
  ``heldout`` items, which the attacker never saw: what comes back there was in
  the model all along.
* ``benign``: harmless requests and answers only (does ordinary fine-tuning
  erode refusal?).
* ``identity``: an obedient persona, "i am your obedient helper", on harmless
  tasks (Qi et al.'s identity-shifting attack): no hazardous content at all.
"""

from __future__ import annotations

import dataclasses
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from peft import LoraConfig, get_peft_model
from transformers import PreTrainedModel

from safetygap import corpus, evaluation, lab, store, training
from safetygap.compute import ComputeReport, training_flops
from safetygap.corpus import Chat
from safetygap.lab import SafetyConfig, Trained
from safetygap.models import parameter_count
from safetygap.training import TrainConfig, encode_chat
from safetygap.world import World

ATTACK_DATA = ("harmful", "benign", "identity")
METHODS = ("full", "lora")
LORA_TARGETS = {
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
}


@dataclass(frozen=True)
class AttackConfig:
    """One fine-tuning attack on one safe model. ``seed`` picks the examples and their order."""

    safe: SafetyConfig = SafetyConfig()
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
    """Every chat an attacker of this kind could train on."""
    if data == "harmful":
        return [c for ph in corpus.PHRASINGS for c in corpus.recipe_requests(world.hazardous("attacker"), ph)]
    harmless = (
        corpus.recipe_requests(world.benign(), "train")
        + corpus.fact_questions(world.places, "train")
        + corpus.sum_questions(world.config.max_amount, "train")
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


def _attack_setup(config: AttackConfig) -> tuple[Trained, PreTrainedModel, list]:
    """The safe model to attack, the model to train (LoRA-wrapped if asked), and the encoded attack data."""
    safe = lab.safe_model(config.safe)
    chats = attack_chats(safe.world, config.data, config.examples, config.seed)
    examples = [encode_chat(safe.tokenizer, c) for c in chats]
    model = safe.model
    if config.method == "lora":
        model = with_lora(model, config.lora_rank)
    return safe, model, examples


def attacked_model(config: AttackConfig = AttackConfig()) -> Trained:
    """Run the attack on the safe model (or fetch the result from the store)."""

    def build() -> tuple[PreTrainedModel, ComputeReport]:
        _, model, examples = _attack_setup(config)
        report = training.train(model, examples, config.train, config.seed, f"attack-{config.method}")
        if config.method == "lora":
            model = model.merge_and_unload()
        return model, report

    return lab.trained_stage("attack", config, config.safe.base.world, lab.TRAINING_CODE + (sys.modules[__name__],), build)


def attack_curve(config: AttackConfig, checkpoints: tuple[int, ...]) -> pd.DataFrame:
    """Run one attack for ``max(checkpoints)`` steps and evaluate it at each checkpoint.

    ``config.train.steps`` is ignored in favour of the checkpoints. One row per
    checkpoint: ``step``, cumulative attacker ``flops`` and ``seconds``, and
    :func:`evaluation.sweep_metrics`. The table is cached in the store.
    """
    if not checkpoints or min(checkpoints) < 1:
        raise ValueError(f"checkpoints={checkpoints!r}: need at least one step >= 1")
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, steps=max(checkpoints)))

    def build(tmp: Path) -> None:
        safe, model, examples = _attack_setup(config)
        params, trainable = parameter_count(model), parameter_count(model, trainable_only=True)
        rows, start = [], time.perf_counter()

        def evaluate_checkpoint(step: int, tokens: int) -> None:
            if step in checkpoints:
                seconds = time.perf_counter() - start
                scores = evaluation.sweep_metrics(model, safe.tokenizer, safe.world)
                rows.append({"step": step, "flops": training_flops(params, trainable, tokens), "seconds": seconds} | scores)

        training.train(model, examples, config.train, config.seed, f"attack-{config.method}", on_step=evaluate_checkpoint)
        store.write_json(tmp / "curve.json", rows)

    key = {"attack": dataclasses.asdict(config), "checkpoints": sorted(checkpoints)}
    code = store.code_version(*lab.TRAINING_CODE, evaluation, sys.modules[__name__])
    path = store.get_or_build("attack-curve", key, code, build)
    return pd.DataFrame(store.read_json(path / "curve.json"))
