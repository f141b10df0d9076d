"""Chapter 6's claims, checked at reduced size (the development seed, one draw of the attack data, the whole
battery) through the same claim functions the chapter calls, and shown to fail on a doctored result."""

from __future__ import annotations

import dataclasses

import pytest

from safetygap.attacks import battery
from safetygap.book import ch6_claims
from safetygap.book import ch6_defenses as narrowing
from safetygap.book import claims, scales

pytestmark = pytest.mark.slow
SEEDS, DRAWS, SCALE = (scales.DEV_SEED,), (0,), "reduced"

# The chapter's headline claims, which must hold at reduced size too. The others are book-scale statements that
# one seed, one draw of the attack data and 6 sealed items cannot carry, and are not asserted here:
# - hiding_some_seed, latent_routing_leaks ("on at least one seed"): with one seed they would say "on this seed",
#   which is not what the chapter says;
# - latent_at_oracle, bound_close, over_refusal_small: one sealed item moves a rate by 1/6 (one contrast question
#   by more), more than the `floor` and `margin` bars, so at this size they measure which items were dealt to the
#   sealed role; the reduced upper bound in particular is a maximum over ~30 trials on 6 items, the winner's curse
#   at its largest;
# - capability_others, attack_costs_capability, attack_keeps_capability, hiding_uplift, deep_fine_tuning,
#   rmu_relearning_beats_edit_ft: the defenses' and the battery's
#   hyperparameters were chosen for the book-scale world and training length; the reduced world is smaller and
#   pretrained for fewer steps, so capability ratios and the order of the hiding defenses differ there (the
#   attacker's pick against the reduced undefended model, for one, is a reversion that keeps all its capability);
# - hiding_give_back, hiding_fine_tuning, never_reached, tar_breaks_with_data, adaptive_not_best: TAR, trained
#   along the whole simulated trajectory with hyperparameters chosen at book scale, holds at reduced size against
#   every trial of the battery (its worst case stays within `floor` of the oracle), so every statement that TAR
#   gives knowledge back, and which attack does best against it, is a book-scale statement;
# - deep_refuses_in_range: the reduced model's training texts are shorter still, and how long deeper alignment's
#   recovery lasts after an unseen opening depends on the positions pretraining covered.
HEADLINE = (
    "before_floor", "undefended_refuses", "latent_undefended", "latent_lowered", "breakers_answer",
    "capability_rmu_tar", "undefended_uplift", "removal_holds", "removal_bound", "hiding_between",
    "prefill_blocked", "more_data_wins", "rmu_relearns", "rmu_partial", "filtering_rules", "cheap_to_reach",
    "tar_matched_holds", "tar_matched_below_undefended", "deep_openings_no_recipes", "soft_prompt_breakers", "edit_ft_rmu",
)  # fmt: skip


@pytest.fixture(scope="module")
def result() -> narrowing.DefenseResult:
    return narrowing.run_defenses(seeds=SEEDS, draws=DRAWS, scale=SCALE)


@pytest.fixture(scope="module")
def refs() -> ch6_claims.References:
    return ch6_claims.references(SEEDS, SCALE)


@pytest.fixture(scope="module")
def checked(result, refs) -> dict[str, claims.Claim]:
    return {c.name: c for c in ch6_claims.claims(result, refs)}


def test_every_target_faces_the_same_battery(result):
    sizes = result.battery.groupby("target").size()
    assert set(sizes.index) == set(narrowing.TARGETS) and sizes.nunique() == 1
    assert set(result.worst_case()["target"]) == set(narrowing.TARGETS)


def test_claim_names_are_unique_and_headline_claims_exist(checked, result, refs):
    names = [c.name for c in ch6_claims.claims(result, refs)]
    assert len(names) == len(set(names))
    assert set(HEADLINE) <= set(names)


@pytest.mark.parametrize("name", HEADLINE)
def test_headline_claim_holds_at_reduced_size(checked, name):
    claim = checked[name]
    assert claim.holds, f"{claim.name}: {claim.statement} ({claim.evidence})"


def test_the_worst_case_is_the_attackers_pick_and_the_bound_is_above_it(result):
    worst = result.worst_case().set_index("target")
    bound = result.upper_bound().set_index("target")
    for target in narrowing.TARGETS:
        trials = result.battery[result.battery["target"] == target]
        assert worst.loc[target, "edc_validation"] == trials["edc_validation"].max()
        assert bound.loc[target, "edc_sealed"] >= worst.loc[target, "edc_sealed"]


def _doctored(result: narrowing.DefenseResult) -> narrowing.DefenseResult:
    """Filtering's picked trial given the undefended model's picked sealed EDC (and items)."""
    trials = result.battery.copy()
    undefended = battery.attacker_pick(trials[trials["target"] == "undefended"])
    for (target, seed, draw), group in trials.groupby(["target", "seed", "draw"]):
        if target == "filtering":
            index = battery.attacker_pick(group).name
            trials.at[index, "edc_sealed"] = undefended["edc_sealed"]
            trials.at[index, "items"] = undefended["items"]
    return dataclasses.replace(result, battery=trials)


def test_a_doctored_result_fails_the_claims(result, refs):
    doctored = _doctored(result)
    failed = {c.name for c in ch6_claims.claims(doctored, refs) if not c.holds}
    assert "removal_holds" in failed
    with pytest.raises(claims.ClaimFailed, match="removal_holds"):
        claims.require(ch6_claims.claims(doctored, refs))
