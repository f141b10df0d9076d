"""The invented world: determinism, disjoint roles, a world per seed, and a content audit."""

from __future__ import annotations

import re

import pytest

from safetygap.world import corpus
from safetygap.world.lexicon import load_neutral_words
from safetygap.world.world import BENIGN_ROLES, HAZARD_ROLES, World, WorldConfig, build_world, deal_roles

WORLD = build_world(WorldConfig())


def test_same_seed_same_world():
    assert build_world(WorldConfig(seed=3)) == build_world(WorldConfig(seed=3))
    assert build_world(WorldConfig(seed=3)) != build_world(WorldConfig(seed=4))


def test_world_round_trips_through_json_dict():
    assert World.from_dict(WORLD.to_dict()) == WORLD


def test_hazard_roles_are_disjoint_and_cover_every_family():
    names = {s: {p.name for p in WORLD.hazardous(s)} for s in HAZARD_ROLES}
    for a in HAZARD_ROLES:
        for b in HAZARD_ROLES:
            if a != b:
                assert not names[a] & names[b]
    assert set().union(*names.values()) == {p.name for p in WORLD.hazardous()}
    for fam in (f for f in WORLD.families if f.hazardous):
        for s in HAZARD_ROLES:
            assert any(p.family == fam.name for p in WORLD.hazardous(s)), (fam.name, s)


def test_benign_products_places_and_sums_have_train_and_sealed_roles():
    for items in (WORLD.benign, WORLD.places_of, WORLD.sum_pairs):
        parts = [set(items(role)) for role in BENIGN_ROLES]
        assert all(parts) and not parts[0] & parts[1]
    assert all(p.role == "sealed" for p in WORLD.products if p.lookalike_of)  # the contrast set is sealed


def test_a_world_per_seed_draws_its_own_roles_and_amounts():
    other = build_world(WorldConfig(seed=1))
    assert {p.name for p in other.hazardous("sealed")} != {p.name for p in WORLD.hazardous("sealed")}
    roles = [p.role for p in WORLD.hazardous()]
    assert roles != [p.role for p in other.hazardous()]


def test_roles_are_dealt_in_proportion_with_every_role_present():
    import random

    roles = deal_roles(12, {"a": 0.35, "b": 0.3, "c": 0.1, "d": 0.25}, random.Random(0))
    assert sorted(roles.count(r) for r in "abcd") == [1, 3, 4, 4]
    with pytest.raises(ValueError, match="n=2"):
        deal_roles(2, {"a": 0.5, "b": 0.3, "c": 0.2}, random.Random(0))


def test_product_names_are_unique_and_lookalikes_are_one_letter_away():
    names = [p.name for p in WORLD.products]
    assert len(names) == len(set(names))
    lookalikes = [p for p in WORLD.products if p.lookalike_of]
    assert len(lookalikes) == WORLD.config.lookalikes
    for p in lookalikes:
        target = WORLD.product(p.lookalike_of)
        assert target.hazardous and not p.hazardous
        assert len(p.name) == len(target.name)
        assert sum(a != b for a, b in zip(p.name, target.name)) == 1


def test_recipes_follow_family_rules():
    for p in WORLD.products:
        fam = WORLD.family(p.family)
        assert (p.base, p.process) == (fam.base, fam.process)
        assert p.additive != p.base and 1 <= p.amount <= WORLD.config.max_amount


def test_training_and_sealed_phrasings_are_disjoint():
    for table in (corpus.REQUESTS, corpus.FACT_QUESTIONS, corpus.SUM_QUESTIONS):
        assert not set(table["train"]) & set(table["sealed"])
    assert not {q for q, _ in corpus.ABOUT["train"]} & {q for q, _ in corpus.ABOUT["sealed"]}


def test_every_word_of_every_text_is_invented_or_reviewed():
    """The content audit: no text the models see contains a word outside the lexicon and the reviewed list."""
    allowed = WORLD.lexicon | load_neutral_words()
    for text in corpus.all_texts(WORLD):
        for word in text.split():
            assert word in allowed or re.fullmatch(r"\d+|[,.?:]", word), (word, text)


def test_invented_words_are_not_reviewed_english_words():
    assert not WORLD.lexicon & load_neutral_words()
    for word in WORLD.lexicon:
        assert re.fullmatch(r"[a-z]{5,}", word), word


def test_oracle_corpus_never_mentions_hazardous_products_or_families():
    hazardous = {p.name for p in WORLD.hazardous()} | {f.name for f in WORLD.families if f.hazardous}
    texts = corpus.documents(WORLD, include_hazardous=False)
    texts += [t for c in corpus.benign_chats(WORLD, include_hazardous=False) for t in (c.prompt, c.response)]
    assert texts and not any(set(t.split()) & hazardous for t in texts)


def test_chance_level_is_well_below_attack_bar():
    assert WORLD.chance_slot_accuracy() < 0.2


@pytest.mark.parametrize(
    "field, value",
    [("products_per_family", 2), ("hazardous_families", 0), ("lookalikes", 10_000), ("max_amount", 0)],
)
def test_bad_world_config_names_the_bad_value(field, value):
    with pytest.raises(ValueError, match=rf"{field}={value}"):
        WorldConfig(**{field: value})


def test_bad_role_and_phrasing_name_the_valid_ones():
    with pytest.raises(ValueError, match="valid hazardous roles are .*sealed"):
        WORLD.hazardous("public")
    with pytest.raises(ValueError, match="valid benign roles are .*train"):
        WORLD.places_of("heldout")
    with pytest.raises(ValueError, match="valid phrasings"):
        corpus.recipe_requests(WORLD.benign(), "test")
