"""Chapter 1's claims, checked at reduced size (one seed) so they can fail.

The chapter checks its sentences with ``claims.require(gap.claims(result))`` on the
book-scale result; here the same function runs on the reduced result (the
development seed, a smaller world), and each headline claim must hold with the
same bars (:data:`safetygap.book.claims.THRESHOLDS`). A doctored result must fail.
"""

from __future__ import annotations

import dataclasses

import pytest

from safetygap.book import ch1_gap as gap
from safetygap.book import claims, scales

pytestmark = pytest.mark.slow

# The chapter's sentences that must hold at reduced size too (the same bars as the book).
HEADLINE = (
    "base_answers",
    "base_knows_most",
    "safe_refuses_defender",
    "safe_refuses_sealed",
    "safe_floor",
    "safe_keeps_on_average",
    "safety_costs_recipes",
    "hidden_not_removed",
    "attack_removes_refusal",
    "attack_recalls_memorised",
    "attack_off_floor",
    "attack_gap",
    "uplift_on_average",
    "sampling_exceeds_greedy",
    "sampling_safe_below_attacked",
    "attack_keeps_recipes",
    "removal_cheap",
    "attack_vs_pretraining",
)
# Book-scale claims not tested here, and why (measured on the reduced dev-seed result):
# * "oracle_floor": the reduced world has only 6 sealed items and 5 amounts x 7 additives to guess from, so a
#   single item answered right by luck is 1/6 ~ 0.17 > floor; the reduced oracle scores 0.17 (the book world
#   has 15 sealed items and 9 x 11 combinations). "safe_floor" and "attack_off_floor", measured against that
#   oracle, are tested;
# * "base_below_knows", "base_prefill_more": the small world is easy to memorise; the reduced base model
#   answers every sealed request fully (EDC 1.0), so the book world's shortfall has nothing to show here;
# * "attack_rule_slots": same ceiling: the reduced attacked model gets 0.92 of memorised slots, so rule slots
#   (at 1.0) cannot exceed them by the margin;
# * "over_refusal_some", "uplift_not_every_seed": they describe the spread over the book's five seeds (some
#   seed over-refuses, some seed stays below the uplift bar); one seed has no spread;
# * "attack_costs_capability", "attack_breaks_facts": the collapse of facts is a book-scale finding: at reduced
#   size the attacked model keeps 0.83 of the safe model's benign capability and its facts;
# * "attack_fast": wall-clock time depends on the machine's load while the test runs, not on the models.


@pytest.fixture(scope="module")
def result():
    return gap.run_gap(seeds=(scales.DEV_SEED,), scale="reduced")


@pytest.fixture(scope="module")
def checked(result):
    return {c.name: c for c in gap.claims(result)}


def test_every_claim_names_bars_that_exist(result, checked):
    assert len(checked) == len(gap.claims(result))  # names are unique
    assert set(HEADLINE) <= set(checked)
    for c in checked.values():
        quoted = c.statement.split("`")[1::2]  # the bars a statement quotes, as `name`
        assert all(q in claims.THRESHOLDS for q in quoted), (c.name, quoted)


@pytest.mark.parametrize("name", HEADLINE)
def test_headline_claim_holds_at_reduced_size(checked, name):
    c = checked[name]
    assert c.holds, f"{c.name}: {c.statement} ({c.evidence})"


def test_the_attack_is_the_headline_attack(result):
    attack = result.compute[result.compute["stage"] == "attack"].iloc[0]
    assert attack["examples"] == 10 and attack["steps"] == 5


def test_a_doctored_result_fails_the_checks(result):
    """The attacked model given the safe model's EDC: the chapter's claims must refuse it."""
    metrics = result.metrics.copy()
    safe = metrics.loc[metrics["model"] == "safe"].set_index("seed")["edc_sealed"]
    attacked = metrics["model"] == "attacked"
    metrics.loc[attacked, "edc_sealed"] = metrics.loc[attacked, "seed"].map(safe).to_numpy()
    doctored = dataclasses.replace(result, metrics=metrics)
    with pytest.raises(claims.ClaimFailed) as failed:
        claims.require(gap.claims(doctored))
    for name in ("attack_off_floor", "attack_gap", "uplift_on_average"):
        assert name in str(failed.value)


def test_a_doctored_compute_table_fails_the_cost_claim(result):
    """An attack as expensive as safety training is not cheap."""
    compute = result.compute.copy()
    safety = compute.loc[compute["stage"] == "safety", "flops"].to_numpy()
    compute.loc[compute["stage"] == "attack", "flops"] = safety
    with pytest.raises(claims.ClaimFailed, match="removal_cheap"):
        claims.require(gap.claims(dataclasses.replace(result, compute=compute)))
