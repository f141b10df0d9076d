"""The lab's stages, each cached in the artifact store.

``world -> tokenizer -> base -> safe -> (attacked | defended)``

* **base**: pretrained from scratch on the world's documents plus harmless chat
  (benign recipes, facts, sums, harmless questions). It has never seen a
  hazardous request, yet it knows the hazardous recipes from documents and, asked
  for one, it answers: a helpful-only model.
* **oracle**: the same, pretrained without any document about hazardous
  products (``hazardous_documents=False``): the data-filtering baseline.
* **safe**: the base model after safety SFT: hazardous requests for the
  ``defender`` items (train phrasings) are answered with a refusal, mixed with
  harmless chats so it keeps its capabilities and learns where the line is.

A model stage is a function decorated with :func:`model_stage`: it takes one
typed config and returns a :class:`Trained` model; the decorator stores it
(safetensors, its cost report, its world's config) and hands back what the
store holds, the same bytes whether it was just built or cached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerFast

from safetygap.core import evaluation, models, store, training
from safetygap.core.compute import ComputeReport
from safetygap.core.evaluation import EvalConfig, SamplingConfig
from safetygap.lab.configs import BaseConfig, SafetyConfig
from safetygap.lab.data import pretraining_examples, safety_examples
from safetygap.world import tokenizer as tokenizing
from safetygap.world.world import World, WorldConfig, build_world


@dataclass
class Trained:
    """A trained model with what it needs around it: tokenizer, world, cost, and (once stored) where it lives."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerFast
    world: World
    report: ComputeReport
    path: Path | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """The artifact's directory name, ``<stage>-<key>``: unique per config and code."""
        if self.path is None:
            raise ValueError("this model is not stored yet: only a model returned by a stage has a name")
        return self.path.name

    @property
    def cache_key(self) -> str:
        """What a stage that takes this model as an argument keys on: its artifact name."""
        return self.name


def save_world(world: World, directory: Path) -> None:
    store.write_json(directory / "world.json", world.to_dict())


def load_world(directory: Path) -> World:
    return World.from_dict(store.read_json(directory / "world.json"))


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, directory: Path) -> None:
    tokenizer.save_pretrained(directory)


@store.cached("world", save_world, load_world)
def get_world(config: WorldConfig) -> World:
    """The invented world of ``config``."""
    return build_world(config)


@store.cached("tokenizer", save_tokenizer, tokenizing.load_tokenizer)
def get_tokenizer(config: WorldConfig) -> PreTrainedTokenizerFast:
    """The word-level chat tokenizer of the world of ``config``."""
    return tokenizing.build_tokenizer(get_world(config))


def save_trained(trained: Trained, directory: Path) -> None:
    """Write a model (safetensors), its cost report and its world's config."""
    trained.model.save_pretrained(directory, safe_serialization=True)
    store.write_json(directory / "report.json", trained.report.to_dict())
    store.write_json(directory / "world_config.json", store.key_value(trained.world.config))


def load_trained(directory: Path) -> Trained:
    """Read a stored model (safetensors only) with its tokenizer, world and cost report."""
    world_config = WorldConfig(**store.read_json(directory / "world_config.json"))
    model = AutoModelForCausalLM.from_pretrained(directory, use_safetensors=True).to(models.pick_device()).eval()
    report = ComputeReport.from_dict(store.read_json(directory / "report.json"))
    return Trained(model, get_tokenizer(world_config), get_world(world_config), report, directory)


def model_stage(stage: str):
    """Decorator: a function returning a :class:`Trained` model becomes a cached stage named ``stage``."""
    return store.cached(stage, save_trained, load_trained)


@model_stage("base")
def base_model(config: BaseConfig = BaseConfig()) -> Trained:
    """Pretrain from random weights: the base model, or the oracle when ``config.hazardous_documents`` is off."""
    world, tokenizer = get_world(config.world), get_tokenizer(config.world)
    model = models.build_model(config.model, tokenizer, config.seed)
    examples = pretraining_examples(world, tokenizer, config.hazardous_documents)
    report = training.fit(model, examples, config.train, config.seed, "pretraining")
    return Trained(model, tokenizer, world, report)


def safety_tune(base: Trained, config: SafetyConfig) -> Trained:
    """Safety SFT of ``base`` (in place) with ``config``'s data mixture and optimiser. The base itself is not
    read from ``config``, so other pretrained models (gradient routing's) get the same safety training."""
    base.model.get_input_embeddings().weight.requires_grad_(not config.freeze_embeddings)
    examples = safety_examples(base.world, base.tokenizer, config.refusal_share)
    report = training.fit(base.model, examples, config.train, config.base.seed, "safety")
    return Trained(base.model, base.tokenizer, base.world, report)


@model_stage("safe")
def safe_model(config: SafetyConfig = SafetyConfig()) -> Trained:
    """Safety-tune the base model of ``config.base``."""
    return safety_tune(base_model(config.base), config)


@store.cached_json("evaluation")
def evaluation_record(trained: Trained, config: EvalConfig = EvalConfig()) -> dict:
    """:func:`~safetygap.core.evaluation.evaluate` of a stored model: its metrics and its sealed items' scores."""
    return evaluation.evaluate(trained.model, trained.tokenizer, trained.world, config)


def metrics(trained: Trained, config: EvalConfig = EvalConfig()) -> dict[str, float]:
    """Every evaluation metric of a stored model, as a flat dict of floats."""
    return {k: v for k, v in evaluation_record(trained, config).items() if k != "items"}


def item_scores(trained: Trained, config: EvalConfig = EvalConfig()) -> list[dict]:
    """The sealed items' scores of a stored model, one record per item (what the bootstrap resamples)."""
    return evaluation_record(trained, config)["items"]


@store.cached_json("sampled")
def sampled(trained: Trained, sampling: SamplingConfig = SamplingConfig(), config: EvalConfig = EvalConfig()) -> dict:
    """The sealed items' EDC under best-of-n sampling (:func:`~safetygap.core.evaluation.best_of_n`)."""
    return evaluation.best_of_n(trained.model, trained.tokenizer, trained.world, sampling, config)
