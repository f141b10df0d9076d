"""Chapter 2's claims, checked at reduced size on the development seed, so they can fail.

The chapter calls ``claims.require(ch2_claims.claims(...))`` on its book-scale results; these tests call the same
functions on one reduced seed and assert that the chapter's headline claims hold there too, and that a doctored
result makes :func:`~safetygap.book.claims.require` raise.

Not every book-scale claim can be tested on one seed at reduced size; each list below says which are left out and why.
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
from safetygap.book import ch2_claims, ch2_reading
from safetygap.book import claims, scales

pytestmark = pytest.mark.slow
SEED, SCALE = scales.DEV_SEED, "reduced"
SEEDS = (SEED,)

# Claims that are statements about several seeds ("on at least one seed", "fewer than half of the seeds", "a seed
# where no candidate passes") are true or false of a set of seeds, not of one: full_uplift_not_every,
# breaks_some_seeds, fallback, ace_leaves_refusal and kept_edit_bar are left out.
THIN = [
    "thin_blocks", "embeddings_frozen", "hidden_under_refusal", "latent_kept", "oracle_removed", "probe_reads_safe",
]  # fmt: skip
# latent_blurred and probe_below_base (the safe model knows *less* than the base model, on average) are left out:
# they are about the size of a loss that one seed of a smaller model need not show.
FINETUNING = [
    "full_clears", "lora_slower", "full_uplift_mean", "full_perplexity", "lora_uplift_mean", "lora_usable_mean", "overtraining",
]  # fmt: skip
# full_costs_usefulness, full_costs_facts and lora_keeps_more are read at the first checkpoint where refusal is gone:
# step 5 at book size, where the full attack has cost facts, but step 1 in the reduced world, before one step has
# changed much (the reduced attack keeps all of its benign capability there). What the attack costs at its book-size
# checkpoint cannot be read off a model that gets there in one step. full_rule_above_memorised compares two kinds of
# slot after that one step, and is not a headline claim.
ABLITERATION = [
    "same_place", "ablation_clears", "kept_edit_usable", "final_layer_sorry", "edit_below_finetuning", "addition_refuses",
    "addition_above_safe", "addition_scale_one", "orthogonalisation_same",
]  # fmt: skip
# ablation_low_uplift ("the recipes come back only in part") is a finding about the book-size models: on the reduced
# development seed the ablated model does bring most recipes back (six sealed items, two small hazardous families),
# and whether the finding depends on size is the chapter's exercise on deeper models, not something one reduced seed
# can test either way.
SHALLOW = [
    "kl_first_token", "kl_first_max", "kl_benign_smaller", "prefill0_refuses", "prefill1_no_refusal", "prefill_more_words",
    "prefill_uplift", "refusal_margin", "benign_sorry_raised",
]  # fmt: skip
# kl_additive (where along the reply the later KL peaks), prefill_helps_base and prefill_beats_finetuning (how the
# prefill compares with the base model and with fine-tuning) are details of the book-size models, not headlines; in the
# reduced world the base model's greedy answers are already as good as its prefilled ones, and fine-tuning reaches the
# ceiling in one step.


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


def assert_hold(found: list[claims.Claim], names: list[str]) -> None:
    by_name = {c.name: c for c in found}
    missing = [n for n in names if n not in by_name]
    assert not missing, f"claims not produced: {missing}"
    false = [f"{n}: {by_name[n].statement} ({by_name[n].evidence})" for n in names if not by_name[n].holds]
    assert not false, "\n".join(false)


def test_safety_is_a_thin_layer_over_knowledge_that_stays(refs, thin):
    assert_hold(ch2_claims.claims(refs, thin=thin), THIN)


def test_ten_examples_remove_refusal_and_bring_the_recipes_back(refs, attacks):
    assert_hold(ch2_claims.claims(refs, attacks=attacks, grid_seeds=SEEDS), FINETUNING)


def test_the_refusal_direction_removes_refusal_and_adding_it_restores_it(refs, attacks, ablations):
    errors = pd.Series({SEED: ch2_reading.orthogonalisation_error(SEED, SCALE, ablations[0])})
    assert_hold(ch2_claims.claims(refs, attacks=attacks, ablations=ablations, errors=errors, grid_seeds=SEEDS), ABLITERATION)


def test_alignment_is_a_few_tokens_deep(refs, attacks, shallow):
    assert_hold(ch2_claims.claims(refs, attacks=attacks, shallow=shallow, grid_seeds=SEEDS), SHALLOW)


def test_published_figures_have_the_shape_the_chapter_describes():
    published = pd.read_csv(Path(__file__).resolve().parents[1] / "data" / "published_figures.csv")
    found = ch2_claims.published_claims(published)
    assert_hold(found, [c.name for c in found])


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
