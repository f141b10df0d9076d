"""Chapter 5's models: the lab's recipe on the corpus of :mod:`~safetygap.world.undocumented`.

``threshold-base`` is the lab's base model (same world, shape, optimiser, steps and seed as ``config``) pretrained
on the book's documents without the recipe documents of the undocumented products, and on the book's harmless
chats plus benign recipes scaled "for 2 people". ``threshold-safe`` is the lab's safety training of it
(:func:`~safetygap.lab.stages.safety_tune`, unchanged: its data never scale a recipe, and never name an
undocumented product, which are sealed). The attack is chapter 1's, in
:func:`~safetygap.attacks.finetuning.threshold_attack`.
"""

from __future__ import annotations

from safetygap.core import models, training
from safetygap.core.training import Example, encode_chat, encode_document
from safetygap.lab.configs import BaseConfig, SafetyConfig
from safetygap.lab.stages import Trained, get_tokenizer, get_world, model_stage, safety_tune
from safetygap.world import undocumented


def pretraining_examples(base: BaseConfig) -> list[Example]:
    """Chapter 5's pretraining data for ``base``'s world: :func:`~safetygap.world.undocumented.documents` and
    :func:`~safetygap.world.undocumented.benign_chats`, encoded as the lab encodes its own."""
    if not base.hazardous_documents:
        raise ValueError("BaseConfig.hazardous_documents=False: chapter 5's corpus leaves out only the undocumented "
                         "products' recipes and needs the full corpus to start from")  # fmt: skip
    world, tokenizer = get_world(base.world), get_tokenizer(base.world)
    return [encode_document(tokenizer, d) for d in undocumented.documents(world)] + [
        encode_chat(tokenizer, c) for c in undocumented.benign_chats(world)
    ]


@model_stage("threshold-base")
def threshold_base(base: BaseConfig) -> Trained:
    """Pretraining of ``base`` on chapter 5's corpus (:func:`pretraining_examples`)."""
    world, tokenizer = get_world(base.world), get_tokenizer(base.world)
    model = models.build_model(base.model, tokenizer, base.seed)
    report = training.fit(model, pretraining_examples(base), base.train, base.seed, "pretraining")
    return Trained(model, tokenizer, world, report)


@model_stage("threshold-safe")
def threshold_safe(config: SafetyConfig) -> Trained:
    """The lab's safety training ``config`` of :func:`threshold_base` of ``config.base``."""
    return safety_tune(threshold_base(config.base), config)
