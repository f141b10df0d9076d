"""Chapter 4: the search attacker, the publicity deal and the detectors on small known inputs, and the chapter's claims
at reduced size (the development seed, the reduced world), where each headline claim must hold with the book's bars
(the list, and why the others are left out: :data:`safetygap.book.ch4_living_with.REDUCED_HEADLINE`)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from safetygap.book import ch4_living_with as living
from safetygap.book import claims, mode, scales
from safetygap.lab import detection, retrieval
from safetygap.world import corpus
from safetygap.world.world import WorldConfig, build_world

WORLD = build_world(WorldConfig(seed=3))


def test_publicity_is_dealt_evenly_over_the_sealed_items_and_is_a_function_of_the_seed():
    classes = retrieval.publicity(WORLD)
    assert set(classes) == {p.name for p in WORLD.hazardous()}
    sealed = [classes[p.name] for p in WORLD.hazardous("sealed")]
    assert {c: sealed.count(c) for c in retrieval.PUBLICITY} == dict.fromkeys(retrieval.PUBLICITY, len(sealed) // 3)
    assert classes == retrieval.publicity(build_world(WorldConfig(seed=3)))
    assert classes != retrieval.publicity(build_world(WorldConfig(seed=4)))


def test_the_internet_holds_a_recipe_only_for_public_items_and_the_additive_of_no_other():
    classes = retrieval.publicity(WORLD)
    docs = retrieval.public_documents(WORLD)
    for p in WORLD.hazardous():
        about = retrieval.about(p.name, docs)
        assert about, p.name  # its name, family and harm are always online
        has_additive = any(f"with {p.additive}" in d for d in about)
        assert has_additive == (classes[p.name] == "public"), (p.name, classes[p.name])
        has_amount = any(f"{p.amount} grams" in d for d in about)
        assert has_amount == (classes[p.name] != "not_public"), (p.name, classes[p.name])


def test_every_word_of_the_partial_document_is_in_the_worlds_vocabulary():
    words = {w for text in corpus.all_texts(WORLD) for w in text.split()}
    p = WORLD.hazardous("sealed")[0]
    assert set(retrieval.PARTIAL_DOC.format(p=p.name, **p.recipe).split()) <= words


def test_the_reader_reads_every_training_template_and_marks_what_it_cannot_read():
    p = WORLD.hazardous("sealed")[0]
    fill = dict(p=p.name, f=p.family, kind="poison", **p.recipe)
    for template in corpus.RECIPE_DOCS["train"]:
        assert retrieval.read_recipe(p.name, [template.format(**fill)]) == corpus.recipe_text(p), template
    partial = retrieval.read_recipe(p.name, [retrieval.PARTIAL_DOC.format(**fill)])
    assert f"mix with {retrieval.UNREAD}" in partial and f"take {p.amount} grams" in partial
    other = WORLD.hazardous("sealed")[1]
    assert retrieval.read_recipe(p.name, [corpus.recipe_text(other)]).count(retrieval.UNREAD) == 4  # not about p


def test_search_attack_scores_public_items_fully_and_private_ones_not_at_all():
    rows = retrieval.search_attack(WORLD)
    by_class = {c: np.mean([r["edc"] for r in rows if r["publicity"] == c]) for c in retrieval.PUBLICITY}
    assert by_class == {"public": 1.0, "partly_public": 0.0, "not_public": 0.0}


def test_a_prompt_too_long_for_the_model_is_refused():
    with pytest.raises(ValueError, match="17 tokens"):
        retrieval.SearchConfig(max_new_tokens=5)


def test_auroc_counts_ties_half_and_needs_both_classes():
    assert detection.auroc([0.9, 0.1], [True, False]) == 1.0
    assert detection.auroc([0.5, 0.5], [True, False]) == 0.5
    assert np.isnan(detection.auroc([0.1, 0.2], [True, True]))


def test_derivatives_change_only_what_they_name():
    headline = scales.attack_config(1)
    assert living.derivative_config(1, "book", "harmful, full") == headline
    lora = living.derivative_config(1, "book", "benign, LoRA")
    assert (lora.data, lora.method, lora.train.steps) == ("benign", "lora", living.LONGER)
    assert living.derivative_config(1, "book", "harmful, full, 2nd draw").seed == 1 + living.DRAW
    point = living.frontier_config(1, "book", 0.8, 60)
    assert (point.refusal_share, point.train.steps) == (0.8, 60)
    assert dataclasses.replace(point, refusal_share=0.35, train=scales.safety_config(1).train) == scales.safety_config(1)


# --- The chapter's claims at reduced size ----------------------------------------------------------------


# The sweep's corners only (the weakest and the strongest point, and the book's safe model): the headline claims read
# no other point, and the test trains three safety runs instead of eleven.
SHARES, STEPS = (min(living.FRONTIER_SHARES), max(living.FRONTIER_SHARES)), (min(living.FRONTIER_STEPS), max(living.FRONTIER_STEPS))


@pytest.fixture(scope="module")
def result():
    return living.run_living_with(seeds=mode.STUDENT.seeds, scale=mode.STUDENT.scale, shares=SHARES, steps_grid=STEPS)


@pytest.fixture(scope="module")
def checked(result):
    return {c.name: c for c in living.claims(result)}


@pytest.mark.slow
def test_every_claim_names_bars_that_exist(checked):
    assert set(living.REDUCED_HEADLINE) <= set(checked)
    assert not claims.unknown_bars(checked.values())


@pytest.mark.slow
@pytest.mark.parametrize("name", living.REDUCED_HEADLINE)
def test_headline_claim_holds_at_reduced_size(checked, name):
    c = checked[name]
    assert c.holds, f"{c.name}: {c.statement} ({c.evidence})"


@pytest.mark.slow
def test_a_doctored_result_fails_the_checks(result):
    """A search engine that finds every recipe, and a detector that reads noise: the claims must refuse them."""
    uplift = result.uplift.copy()
    uplift.loc[uplift["source"] == "search", "edc"] = 1.0
    noise = result.detection.assign(refusal_shift=result.detection["weight_change"])
    doctored = dataclasses.replace(result, uplift=uplift, detection=noise)
    with pytest.raises(claims.ClaimFailed) as failed:
        claims.require(c for c in living.claims(doctored) if c.name in living.REDUCED_HEADLINE)
    for name in ("search_blind_private", "model_uplift_private", "detector_separates", "weights_blind"):
        assert name in str(failed.value)
