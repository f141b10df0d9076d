"""Chapter 6's claims, checked at reduced size (the development seed, one draw of the attack data, the whole
battery: student mode, :data:`safetygap.book.mode.STUDENT`) through the same claim functions the chapter calls, and
shown to fail on a doctored result. The headline list, and why the others are left out, is
:data:`safetygap.book.ch6_claims.REDUCED_HEADLINE`."""

from __future__ import annotations

import dataclasses

import pytest

from safetygap.attacks import battery
from safetygap.book import ch6_claims
from safetygap.book import ch6_defenses as narrowing
from safetygap.book import claims, mode

pytestmark = pytest.mark.slow
SEEDS, DRAWS, SCALE = mode.STUDENT.grid_seeds, mode.STUDENT.draws, mode.STUDENT.scale


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
    assert set(ch6_claims.REDUCED_HEADLINE) <= set(names)


@pytest.mark.parametrize("name", ch6_claims.REDUCED_HEADLINE)
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
