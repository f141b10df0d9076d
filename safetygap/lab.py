"""The lab: the stages every chapter builds on, each cached in the artifact store.

``world -> tokenizer -> base -> safe -> (attacked | defended)``

* **base**: pretrained from scratch on the world's documents plus harmless chat
  (benign recipes, facts, sums, harmless questions). It has never seen a
  hazardous request, yet it knows the hazardous recipes from documents and, asked
  for one, it answers: a helpful-only model.
* **oracle**: the same, pretrained without any document about hazardous
  products (``hazardous_documents=False``): the data-filtering baseline.
* **safe**: the base model after safety SFT: hazardous requests for the
  ``safety`` items (train phrasings) are answered with a refusal, mixed with
  harmless chats so it keeps its capabilities and learns where the line is.

Each stage function takes one typed config (configs nest, so a stage's key
covers its whole history) and returns a :class:`Trained` model loaded from the
store: the same bytes whether it was just built or cached.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerFast

from safetygap import compute, corpus, evaluation, lexicon, models, store, training
from safetygap import tokenizer as tokenizing
from safetygap import world as worlds
from safetygap.compute import ComputeReport
from safetygap.evaluation import EvalConfig
from safetygap.models import ModelConfig
from safetygap.training import Example, TrainConfig, encode_chat, encode_document
from safetygap.world import World, WorldConfig

WORLD_CODE = (lexicon, worlds)
TOKENIZER_CODE = WORLD_CODE + (corpus, tokenizing)
TRAINING_CODE = TOKENIZER_CODE + (models, training, compute, sys.modules[__name__])


@dataclass(frozen=True)
class BaseConfig:
    """Pretraining: the world, the model shape, the optimiser, and whether hazardous documents are in."""

    world: WorldConfig = WorldConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig(steps=1000, lr=3e-3, batch_size=64, warmup=50, weight_decay=0.1)
    hazardous_documents: bool = True
    seed: int = 0


@dataclass(frozen=True)
class SafetyConfig:
    """Safety SFT on top of a base model; ``refusal_share`` of the data are refusals.

    With ``freeze_embeddings`` (the default) the token embeddings, tied to the
    output layer, are left as pretraining made them. Safety training then has to
    act on what the network computes about a product (it knows which products
    are poisons) rather than on each name's embedding, and its refusals carry
    over to hazardous products it never saw refused.
    """

    base: BaseConfig = BaseConfig()
    train: TrainConfig = TrainConfig(steps=300, lr=7e-4, batch_size=32, warmup=10)
    refusal_share: float = 0.35
    freeze_embeddings: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.refusal_share < 1:
            raise ValueError(f"SafetyConfig.refusal_share={self.refusal_share!r}: must be in (0, 1)")


@dataclass
class Trained:
    """A trained model with what it needs around it: tokenizer, world, cost, and where it is stored."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerFast
    world: World
    report: ComputeReport
    path: Path = field(repr=False)

    @property
    def name(self) -> str:
        """The artifact's directory name, ``<stage>-<key>``: unique per config and code."""
        return self.path.name


def get_world(config: WorldConfig) -> World:
    def build(tmp: Path) -> None:
        store.write_json(tmp / "world.json", worlds.build_world(config).to_dict())

    path = store.get_or_build("world", config, store.code_version(*WORLD_CODE), build)
    return World.from_dict(store.read_json(path / "world.json"))


def get_tokenizer(config: WorldConfig) -> PreTrainedTokenizerFast:
    def build(tmp: Path) -> None:
        tokenizing.build_tokenizer(get_world(config)).save_pretrained(tmp)

    path = store.get_or_build("tokenizer", config, store.code_version(*TOKENIZER_CODE), build)
    return tokenizing.load_tokenizer(path)


def load_trained(path: Path, world_config: WorldConfig, report_type: type[ComputeReport] = ComputeReport) -> Trained:
    """Load a stored model (safetensors only) with its tokenizer, world and cost report (of ``report_type``)."""
    model = AutoModelForCausalLM.from_pretrained(path, use_safetensors=True).to(models.pick_device()).eval()
    report = report_type.from_dict(store.read_json(path / "report.json"))
    return Trained(model, get_tokenizer(world_config), get_world(world_config), report, path)


def trained_stage(
    stage: str,
    config,
    world_config: WorldConfig,
    code: tuple,
    build_model: Callable[[], tuple[PreTrainedModel, ComputeReport]],
) -> Trained:
    """Build (or fetch) a model artifact: ``build_model`` trains it; the store saves and verifies it."""

    def build(tmp: Path) -> None:
        model, report = build_model()
        model.save_pretrained(tmp, safe_serialization=True)
        store.write_json(tmp / "report.json", report.to_dict())

    return load_trained(store.get_or_build(stage, config, store.code_version(*code), build), world_config)


def pretraining_examples(world: World, tokenizer: PreTrainedTokenizerFast, hazardous_documents: bool) -> list[Example]:
    docs = corpus.documents(world, "train", include_hazardous=hazardous_documents)
    chats = corpus.benign_chats(world, include_hazardous=hazardous_documents)
    return [encode_document(tokenizer, d) for d in docs] + [encode_chat(tokenizer, c) for c in chats]


def base_model(config: BaseConfig = BaseConfig()) -> Trained:
    """Pretrain from random weights (or fetch from the store)."""
    stage = "base" if config.hazardous_documents else "oracle"

    def build() -> tuple[PreTrainedModel, ComputeReport]:
        world, tok = get_world(config.world), get_tokenizer(config.world)
        special = {"bos": tok.bos_token_id, "eos": tok.eos_token_id, "pad": tok.pad_token_id}
        model = models.build_model(config.model, len(tok), special, config.seed)
        examples = pretraining_examples(world, tok, config.hazardous_documents)
        return model, training.train(model, examples, config.train, config.seed, stage)

    return trained_stage(stage, config, config.world, TRAINING_CODE, build)


def safety_chats(world: World, refusal_share: float) -> list[corpus.Chat]:
    """Refusals (``safety`` items and generic harmful requests, train phrasings), plus harmless chats.

    Refusals are repeated until they make up ``refusal_share`` of the data.

    The harmless part keeps what the base model could do (benign recipe
    requests in the train phrasings; facts and sums in every phrasing) and
    adds harmless questions about every product (train phrasings), so the model
    learns that the line is "how to make a poison", not "any mention of a poison".
    Held-out phrasings of recipe requests are never shown, so refusals are
    evaluated on phrasings safety training did not use.
    """
    items = corpus.recipe_requests(world.hazardous("safety"), "train", refuse=True)
    generic = corpus.generic_harmful_requests(world, "train")
    refusals = items + generic * max(1, len(items) // len(generic))  # as many generic as item refusals
    harmless = corpus.recipe_requests(world.benign(), "train") + corpus.about_questions(world, list(world.products), "train")
    for phrasing in corpus.PHRASINGS:
        harmless += corpus.fact_questions(world.places, phrasing) + corpus.sum_questions(world.config.max_amount, phrasing)
    repeats = max(1, round(refusal_share / (1 - refusal_share) * len(harmless) / len(refusals)))
    return refusals * repeats + harmless


def safety_tune(base: Trained, config: SafetyConfig) -> tuple[PreTrainedModel, ComputeReport]:
    """Safety SFT of ``base`` (in place) with ``config``'s data mixture and optimiser; the base itself is not read
    from ``config``, so other pretrained models (gradient routing's) get the same safety training."""
    base.model.get_input_embeddings().weight.requires_grad_(not config.freeze_embeddings)
    examples = [encode_chat(base.tokenizer, c) for c in safety_chats(base.world, config.refusal_share)]
    return base.model, training.train(base.model, examples, config.train, config.base.seed, "safety")


def safe_model(config: SafetyConfig = SafetyConfig()) -> Trained:
    """Safety-tune a base model (or fetch from the store)."""
    return trained_stage("safe", config, config.base.world, TRAINING_CODE, lambda: safety_tune(base_model(config.base), config))


def metrics(trained: Trained, config: EvalConfig = EvalConfig()) -> dict[str, float]:
    """Every evaluation metric of a trained model, cached next to it in the store."""

    def build(tmp: Path) -> None:
        store.write_json(tmp / "metrics.json", evaluation.evaluate(trained.model, trained.tokenizer, trained.world, config))

    key = {"model": trained.name, "eval": dataclasses.asdict(config)}
    path = store.get_or_build("metrics", key, store.code_version(evaluation, corpus), build)
    return store.read_json(path / "metrics.json")
