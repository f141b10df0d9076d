"""The lab's data recipes: what pretraining and safety training train on."""

from __future__ import annotations

from transformers import PreTrainedTokenizerFast

from safetygap.core.training import Example, encode_chat, encode_document
from safetygap.world import corpus
from safetygap.world.world import World


def pretraining_examples(world: World, tokenizer: PreTrainedTokenizerFast, hazardous_documents: bool) -> list[Example]:
    """The world's training documents and harmless chats, with or without everything about hazardous products."""
    docs = corpus.documents(world, "train", include_hazardous=hazardous_documents)
    chats = corpus.benign_chats(world, include_hazardous=hazardous_documents)
    return [encode_document(tokenizer, d) for d in docs] + [encode_chat(tokenizer, c) for c in chats]


def safety_chats(world: World, refusal_share: float) -> list[corpus.Chat]:
    """The defender's safety data: refusals (``defender`` items and generic harmful requests), plus harmless chats.

    Refusals are repeated until they make up ``refusal_share`` of the data.

    The harmless part keeps what the base model could do (recipe requests for
    ``train`` benign products, facts about ``train`` places, ``train`` sums) and
    adds harmless questions about the defender's hazardous items and the
    ``train`` benign products, so the model learns that the line is "how to
    make a poison", not "any mention of a poison". Everything is in the train
    phrasings and about the defender's own items: refusals and capability are
    evaluated on sealed items, in sealed phrasings.
    """
    items = corpus.recipe_requests(world.hazardous("defender"), "train", refuse=True)
    generic = corpus.generic_harmful_requests(world, "train")
    refusals = items + generic * max(1, len(items) // len(generic))  # as many generic as item refusals
    harmless = (
        corpus.recipe_requests(world.benign("train"), "train")
        + corpus.about_questions(world, world.hazardous("defender") + world.benign("train"), "train")
        + corpus.fact_questions(world.places_of("train"), "train")
        + corpus.sum_questions(world.sum_pairs("train"), "train")
    )
    repeats = max(1, round(refusal_share / (1 - refusal_share) * len(harmless) / len(refusals)))
    return refusals * repeats + harmless


def safety_examples(world: World, tokenizer: PreTrainedTokenizerFast, refusal_share: float) -> list[Example]:
    """:func:`safety_chats`, encoded for SFT (loss on the replies)."""
    return [encode_chat(tokenizer, c) for c in safety_chats(world, refusal_share)]
