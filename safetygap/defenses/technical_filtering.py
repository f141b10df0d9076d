"""Data filtering as it is done: remove the hazardous *technical* documents, keep everything else.

:mod:`~safetygap.defenses.filtering` drops every document and chat that
mentions a hazardous product, so its model also never learns that ``X`` is a
poison, and has nothing to tie a refusal to. Pretraining-data filtering as
:cite:t:`obrien2025deepignorance` do it removes documents with hazardous
technical content (a keyword blocklist, then a classifier) and keeps the rest.
Here the blocklist is the world's technical vocabulary: a document is removed
when it names a hazardous product *and* a recipe term (an amount in grams, an
additive, a process). "``X`` is a poison", its family and the harmless chats
about it stay in the corpus. In this world that rule finds every recipe
document (a test checks it), so the filter is perfect at what it removes; a
real filter also misses some documents, which gradient routing's label sweep
is about.
"""

from __future__ import annotations

from dataclasses import dataclass

from safetygap.core import models, training
from safetygap.core.training import Example, encode_document
from safetygap.lab.configs import BaseConfig, SafetyConfig
from safetygap.lab.data import pretraining_examples
from safetygap.lab.stages import Trained, get_tokenizer, get_world, model_stage, safety_tune
from safetygap.world import corpus
from safetygap.world.world import World

GRAMS = "grams"  # every amount is written "<n> grams": the one unit of the world


@dataclass(frozen=True)
class TechnicalFilteringConfig:
    """Pretraining of ``safety.base`` (same data, steps and seed) without the hazardous technical documents,
    then the lab's safety training ``safety``."""

    safety: SafetyConfig = SafetyConfig()

    def __post_init__(self) -> None:
        if not self.safety.base.hazardous_documents:
            raise ValueError("TechnicalFilteringConfig.safety.base.hazardous_documents=False: the filter needs the full corpus")


def technical_terms(world: World) -> set[str]:
    """The blocklist's recipe vocabulary: the unit, every additive and every process of the world."""
    return {GRAMS} | {p.additive for p in world.products} | {p.process for p in world.products}


def is_technical(document: str, world: World) -> bool:
    """Whether the filter removes ``document``: it names a hazardous product and a recipe term."""
    words = set(document.split())
    hazardous = {p.name for p in world.hazardous()}
    return bool(words & hazardous) and bool(words & technical_terms(world))


def filtered_examples(world: World, tokenizer) -> list[Example]:
    """The base model's pretraining examples without the documents :func:`is_technical` flags."""
    removed = {encode_document(tokenizer, d) for d in corpus.documents(world, "train") if is_technical(d, world)}
    return [e for e in pretraining_examples(world, tokenizer, hazardous_documents=True) if e not in removed]


@model_stage("technical-base")
def technical_base(base: BaseConfig) -> Trained:
    """Pretraining of ``base`` on the technically filtered corpus: the release base of this defense."""
    world, tokenizer = get_world(base.world), get_tokenizer(base.world)
    model = models.build_model(base.model, tokenizer, base.seed)
    report = training.fit(model, filtered_examples(world, tokenizer), base.train, base.seed, "pretraining")
    return Trained(model, tokenizer, world, report)


@model_stage("technical-filtering")
def defend(config: TechnicalFilteringConfig) -> Trained:
    """The technically filtered base after the lab's safety SFT (the report is that SFT's)."""
    return safety_tune(technical_base(config.safety.base), config.safety)
