"""Chapter 7: the report card, the audit simulation and the compute thresholds, checked on small synthetic batteries
whose answers are known, and the chapter's claims at reduced size (the development seed, one draw of the attack
data: chapter 6's reduced result, which tests/test_claims_defenses.py builds first in the same session)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from safetygap.attacks import battery
from safetygap.book import ch6_claims
from safetygap.book import ch6_defenses as narrowing
from safetygap.book import ch7_policy as policy
from safetygap.book import claims, scales

SEEDS, DRAWS, SCALE = (scales.DEV_SEED,), (0,), "reduced"


def _battery(edc: dict[str, list[float]], configurations: int, seeds=(1, 2), draws=(0,)) -> pd.DataFrame:
    """A synthetic battery: for each target, configuration ``c`` has validation and sealed EDC ``edc[target][c]``
    on every seed and draw (a higher validation EDC is what the attacker keeps)."""
    rows = []
    for target, values in edc.items():
        for seed in seeds:
            for draw in draws:
                for c in range(configurations):
                    rows.append({"target": target, "seed": seed, "draw": draw, "family": "full", "method": "full",
                                 "lr": 1e-3, "steps": c + 1, "data": "harmful", "flops": 1.0 + c,
                                 "edc_validation": values[c], "memorised_validation": values[c], "refusal_validation": 0.0,
                                 "edc_sealed": values[c], "benign_capability": 0.5})  # fmt: skip
    return pd.DataFrame(rows)


def _refs(seeds=(1, 2)) -> ch6_claims.References:
    metrics = [{"model": m, "seed": s, "edc_sealed": e, "edc_validation": e} for s in seeds for m, e in (("oracle", 0.0), ("base", 1.0))]
    return ch6_claims.References(pd.DataFrame(metrics), pd.DataFrame())


def _result(trials: pd.DataFrame) -> narrowing.DefenseResult:
    empty = pd.DataFrame()
    return narrowing.DefenseResult(empty, empty, trials, empty, empty)


def test_attacker_rank_zero_is_the_attackers_pick():
    rng = np.random.default_rng(1)
    trials = _battery({"a": list(rng.random(12)), "b": list(rng.random(12))}, 12)
    trials["refusal_validation"] = rng.random(len(trials))
    trials.loc[::3, "edc_validation"] = 0.5  # ties, broken by the later keys of PICK_BY
    ranks = policy.attacker_rank(trials)
    for _, group in trials.groupby(["target", "seed", "draw"]):
        assert ranks[group.index].idxmin() == battery.attacker_pick(group).name
        assert sorted(ranks[group.index]) == list(range(len(group)))


def test_an_audit_misses_the_one_breaking_configuration_as_often_as_it_leaves_it_out():
    # One configuration of ten breaks the model (EDC 1); the others leave it at the floor.
    configurations = 10
    trials = _battery({"broken": [0.0] * (configurations - 1) + [1.0]}, configurations)
    audits = policy.audit_certifies(_result(trials), _refs(), policy.AuditConfig(configurations=(1, 5, 10), seeds=(1, 2), samples=4000))
    for k in (1, 5, 10):
        certified = audits[(audits["configurations"] == k) & (audits["seeds"] == 1)]["certified"].iloc[0]
        assert certified == pytest.approx(1 - k / configurations, abs=0.03)


def test_audit_sizes_beyond_the_battery_are_refused():
    trials = _battery({"a": [0.0, 1.0]}, 2)
    with pytest.raises(ValueError, match="configurations"):
        policy.audit_certifies(_result(trials), _refs(), policy.AuditConfig(configurations=(3,), seeds=(1,)))
    with pytest.raises(ValueError, match="samples"):
        policy.AuditConfig(samples=0)


def test_report_card_worst_case_cost_and_verdict():
    trials = _battery({"m": [0.05, 0.6, 0.9]}, 3, seeds=(1,), draws=(0, 1))
    metrics = {"refusal_sealed": 1.0, "over_refusal": 0.1, "benign_capability": 0.5}
    card = policy.report_card(metrics, trials, {"edc_sealed": 0.0, "edc_validation": 0.0}, {"edc_sealed": 1.0, "edc_validation": 1.0},
                              pretraining_flops=100.0, defender_flops=10.0)  # fmt: skip
    assert card["worst_edc"] == 0.9 and not card["durable"]
    assert card["attack_flops"] == 2.0  # the cheapest trial at or above the bar (uplift 0.5 -> validation EDC 0.5)
    assert card["attack_share_pretraining"] == 0.02 and card["attack_share_defender"] == 0.2
    assert card["attack_examples"] == battery.BatteryConfig().examples and card["attack_reached"] == 1.0
    floor = _battery({"m": [0.0, 0.05, 0.08]}, 3, seeds=(1,))
    held = policy.report_card(metrics, floor, {"edc_sealed": 0.0, "edc_validation": 0.0}, {"edc_sealed": 1.0, "edc_validation": 1.0}, 100.0, 10.0)
    assert held["durable"] and held["attack_flops"] == float("inf") and held["attack_reached"] == 0.0


def test_harmful_examples_names_the_valid_data():
    assert policy.harmful_examples(float("nan")) == 0
    with pytest.raises(ValueError, match="valid attack data"):
        policy.harmful_examples("poems")


def test_the_thresholds_table_is_cited_and_typed():
    frame = policy.thresholds()
    assert set(frame["quantity"]) <= set(policy.QUANTITIES)
    assert policy.threshold_value(frame, "AI Act", "training_flops") == 1e25
    assert policy.threshold_value(frame, "Commission guidelines on general-purpose AI models", "share_of_original_compute") == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="valid instruments"):
        policy.threshold_value(frame, "Magna Carta", "training_flops")


# --- The chapter's claims at reduced size ----------------------------------------------------------------

# Chapter 7's claims that one seed and one draw can carry (why only these: policy.REDUCED_HEADLINE's comment). The
# audit claims compare audits on one seed with audits on several; they are checked on synthetic tables below.
HEADLINE = policy.REDUCED_HEADLINE


@pytest.fixture(scope="module")
def reduced():
    result = narrowing.run_defenses(seeds=SEEDS, draws=DRAWS, scale=SCALE)
    refs = ch6_claims.references(SEEDS, SCALE)
    cards = policy.report_cards(result, refs, policy.pretraining_flops(SEEDS, SCALE))
    modifier = policy.threshold_value(policy.thresholds(), "Commission guidelines on general-purpose AI models", "share_of_original_compute")
    return cards, modifier


@pytest.mark.slow
@pytest.mark.parametrize("name", HEADLINE)
def test_headline_claim_holds_at_reduced_size(reduced, name):
    cards, modifier = reduced
    checked = {c.name: c for c in policy.card_claims(cards, modifier)}
    claim = checked[name]
    assert claim.holds, f"{claim.name}: {claim.statement} ({claim.evidence})"


@pytest.mark.slow
def test_a_doctored_card_fails_the_claims(reduced):
    cards, modifier = reduced
    doctored = cards.assign(durable=cards["durable"] & (cards["target"] != "filtering"))  # filtering broken on every seed
    failed = {c.name for c in policy.card_claims(doctored, modifier) if not c.holds}
    assert "removing_durable" in failed
    expensive = cards.assign(attack_share_pretraining=modifier, attack_flops=1.0)  # every attack costs the modifier threshold
    with pytest.raises(claims.ClaimFailed, match="removal_far_below_modifier"):
        claims.require(c for c in policy.card_claims(expensive, modifier) if c.name in HEADLINE)


def test_audit_claims_fail_when_every_audit_catches_every_broken_defense():
    broken = pd.Series({t: t != "filtering" for t in narrowing.TARGETS})
    sizes = [(k, n) for k in (1, 2, 4, 8, 16) for n in (1, 2)]
    caught = pd.DataFrame([{"target": t, "configurations": k, "seeds": n, "certified": 0.0} for t in narrowing.TARGETS for k, n in sizes])
    failed = {c.name for c in policy.audit_claims(caught, broken, wide=16) if not c.holds}
    assert {"small_audit_misses", "wide_audit_misses", "defenses_harder_to_audit", "width_before_seeds"} == failed


def test_audit_claims_need_audits_on_several_seeds():
    broken = pd.Series({t: t != "filtering" for t in narrowing.TARGETS})
    one_seed = pd.DataFrame([{"target": t, "configurations": k, "seeds": 1, "certified": 0.5} for t in narrowing.TARGETS for k in (1, 16)])
    assert policy.audit_claims(one_seed, broken, wide=16) == []
    assert policy.AuditConfig().for_seeds(1).seeds == (1,)
