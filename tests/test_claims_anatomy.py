"""Chapter 2's claims, checked at reduced size on the development seed, so they can fail.

The chapter calls ``claims.require(ch2_claims.claims(...))`` on its book-scale results; these tests call the same
functions on one reduced seed and assert that the chapter's headline claims hold there too, and that a doctored
result makes :func:`~safetygap.book.claims.require` raise.

Not every book-scale claim can be tested on one seed at reduced size; the lists of those that are
(``ch2_claims.REDUCED_*``, which student mode enforces) say which are left out and why.
The grid's claims (``ch2_claims.grid_claims``) are not tested here: they are statements about three grid seeds
("on most grid seeds", "on every grid seed"), and the grid's 50- and 100-example arms do not fit the reduced world,
whose attacker has 8 items (48 attack chats).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest

from safetygap.book import ch2_anatomy as ch2
from safetygap.book import ch2_claims, ch2_openings, ch2_reading
from safetygap.book import claims, mode

pytestmark = pytest.mark.slow
SEEDS, SCALE = mode.STUDENT.seeds, mode.STUDENT.scale  # student mode
(SEED,) = SEEDS


@pytest.fixture(scope="module")
def refs():
    return ch2_reading.reference_metrics(SEEDS, SCALE)


@pytest.fixture(scope="module")
def thin():
    return ch2.thin_layer(SEEDS, SCALE)


@pytest.fixture(scope="module")
def attacks():
    return ch2.finetuning_attacks(SEEDS, grid_seeds=(), scale=SCALE)  # the headline arms: ten examples, full and LoRA


@pytest.fixture(scope="module")
def ablations():
    return [ch2.run_abliteration(SEED, SCALE)]


@pytest.fixture(scope="module")
def shallow():
    return ch2.shallow_alignment(SEEDS, SCALE)


@pytest.fixture(scope="module")
def control():
    return ch2_openings.compare(SEEDS, SCALE)


def assert_hold(found: list[claims.Claim], names: list[str]) -> None:
    by_name = {c.name: c for c in found}
    missing = [n for n in names if n not in by_name]
    assert not missing, f"claims not produced: {missing}"
    false = [f"{n}: {by_name[n].statement} ({by_name[n].evidence})" for n in names if not by_name[n].holds]
    assert not false, "\n".join(false)


def test_safety_is_a_thin_layer_over_knowledge_that_stays(refs, thin):
    assert_hold(ch2_claims.claims(refs, thin=thin), ch2_claims.REDUCED_THIN)


def test_ten_examples_remove_refusal_and_bring_the_recipes_back(refs, attacks):
    assert_hold(ch2_claims.claims(refs, attacks=attacks, grid_seeds=SEEDS), ch2_claims.REDUCED_FINETUNING)


def test_the_refusal_direction_removes_refusal_and_adding_it_restores_it(refs, attacks, ablations):
    errors = pd.Series({SEED: ch2_reading.orthogonalisation_error(SEED, SCALE, ablations[0])})
    assert_hold(ch2_claims.claims(refs, attacks=attacks, ablations=ablations, errors=errors, grid_seeds=SEEDS), ch2_claims.REDUCED_ABLITERATION)


def test_alignment_is_a_few_tokens_deep(refs, attacks, shallow):
    assert_hold(ch2_claims.claims(refs, attacks=attacks, shallow=shallow, grid_seeds=SEEDS), ch2_claims.REDUCED_SHALLOW)


def test_the_first_token_spike_is_not_an_artefact_of_one_refusal_word(control):
    assert_hold(ch2_openings.claims(control), ch2_openings.REDUCED_HEADLINE)


def test_a_control_whose_refusals_all_open_alike_fails_the_chapter(control):
    doctored = copy.deepcopy(control)
    table = doctored["openings"]
    table.loc[table["model"] == ch2_openings.MODELS[1], "word"] = "sorry"
    with pytest.raises(claims.ClaimFailed, match="openings_varied"):
        claims.require(c for c in ch2_openings.claims(doctored) if c.name in ch2_openings.REDUCED_HEADLINE)


def test_published_figures_have_the_shape_the_chapter_describes():
    published = pd.read_csv(Path(__file__).resolve().parents[1] / "data" / "published_figures.csv")
    found = ch2_claims.published_claims(published) + ch2_openings.published_claims(published)
    assert_hold(found, [c.name for c in found])


def test_refusal_openings_below_most_fail_the_chapter():
    published = pd.read_csv(Path(__file__).resolve().parents[1] / "data" / "published_figures.csv")
    published.loc[published["metric"] == "refusal_prefix_share", "value"] = 40.0
    with pytest.raises(claims.ClaimFailed, match="published_prefix"):
        claims.require(ch2_openings.published_claims(published))


def test_a_safe_model_that_knows_what_the_oracle_knows_fails_the_chapter(refs, thin):
    doctored = copy.deepcopy(thin)
    latent = doctored["latent"]
    oracle = latent[latent["model"] == "oracle"].set_index("seed")["latent_sealed"]
    safe = latent["model"] == "safe"
    latent.loc[safe, "latent_sealed"] = latent.loc[safe, "seed"].map(oracle).to_numpy()
    with pytest.raises(claims.ClaimFailed, match="hidden_under_refusal"):
        claims.require(ch2_claims.claims(refs, thin=doctored))


def test_an_attack_that_keeps_refusing_fails_the_chapter(refs, attacks):
    doctored = attacks.assign(refusal_sealed=1.0)
    with pytest.raises(claims.ClaimFailed, match="full_clears"):
        claims.require(ch2_claims.claims(refs, attacks=doctored, grid_seeds=SEEDS))
