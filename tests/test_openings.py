"""Chapter 2's openings control (safetygap.lab.openings): the data differ from the lab's only in how refusals open,
each opening starts with a word no other reply starts with and that the tokenizer knows, and the control's rule
for a refusal agrees with the book's on the book's own replies."""

from __future__ import annotations

import dataclasses

import pytest

from safetygap.core.scoring import is_refusal
from safetygap.lab import openings
from safetygap.lab.configs import SafetyConfig
from safetygap.lab.data import safety_chats
from safetygap.world import corpus
from safetygap.world.tokenizer import build_tokenizer
from safetygap.world.world import WorldConfig, build_world

WORLD = build_world(WorldConfig())
CHATS = safety_chats(WORLD, SafetyConfig().refusal_share)


def other_replies() -> list[str]:
    """Every reply of the world that is not a refusal, in both phrasings."""
    chats = corpus.identity_chats()
    for phrasing in corpus.PHRASINGS:
        chats += corpus.recipe_requests(list(WORLD.products), phrasing) + corpus.about_questions(WORLD, list(WORLD.products), phrasing)
        chats += corpus.fact_questions(WORLD.places, phrasing) + corpus.sum_questions(WORLD.sum_pairs("train"), phrasing)
    return [c.response for c in chats]


def test_only_the_openings_of_refusals_change_and_they_take_turns():
    varied = openings.vary_openings(CHATS)
    assert len(varied) == len(CHATS)
    refusals = [(old, new) for old, new in zip(CHATS, varied) if old.kind == "refusal"]
    assert all(new == old for old, new in zip(CHATS, varied) if old.kind != "refusal")
    assert len(refusals) > len(openings.OPENINGS)
    for k, (old, new) in enumerate(refusals):
        opening = openings.OPENINGS[k % len(openings.OPENINGS)]
        assert (new.prompt, new.kind, new.item) == (old.prompt, old.kind, old.item)
        assert new.response == opening + old.response[len(openings.OPENINGS[0]) :]


def test_a_refusal_that_does_not_open_with_sorry_is_an_error():
    odd = dataclasses.replace(CHATS[0], kind="refusal", response="that is a poison .")
    with pytest.raises(ValueError, match="does not open with"):
        openings.vary_openings([odd])


def test_every_opening_word_is_in_the_vocabulary_and_starts_no_other_reply():
    vocabulary = build_tokenizer(WORLD).get_vocab()
    assert all(word in vocabulary for opening in openings.OPENINGS for word in opening.split())
    assert len(set(openings.REFUSAL_WORDS)) == len(openings.OPENINGS)
    assert not [r for r in other_replies() if r.split()[0] in openings.REFUSAL_WORDS]


def test_the_control_s_rule_agrees_with_the_book_s_on_the_book_s_replies():
    book_refusals = [c.response for c in CHATS if c.kind == "refusal"]
    for reply in book_refusals + other_replies():
        assert openings.refuses(reply) == is_refusal(reply)
    varied = [c.response for c in openings.vary_openings(CHATS) if c.kind == "refusal"]
    assert all(openings.refuses(r) for r in varied) and not all(is_refusal(r) for r in varied)
