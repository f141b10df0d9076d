"""Chapter 1's claims, checked at reduced size (one seed) so they can fail.

The chapter checks its sentences with ``claims.require(gap.claims(result))`` on the
book-scale result; here the same function runs on the reduced result (the
development seed, a smaller world), and each headline claim must hold with the
same bars (:data:`safetygap.book.claims.THRESHOLDS`); the list, and why the others are
left out, is :data:`safetygap.book.ch1_gap.REDUCED_HEADLINE`. A doctored result must fail.
"""

from __future__ import annotations

import dataclasses

import pytest

from safetygap.book import ch1_gap as gap
from safetygap.book import claims, mode

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def result():
    return gap.run_gap(seeds=mode.STUDENT.seeds, scale=mode.STUDENT.scale)  # student mode


@pytest.fixture(scope="module")
def checked(result):
    return {c.name: c for c in gap.claims(result)}


def test_every_claim_names_bars_that_exist(result, checked):
    assert len(checked) == len(gap.claims(result))  # names are unique
    assert set(gap.REDUCED_HEADLINE) <= set(checked)
    assert not claims.unknown_bars(checked.values())


@pytest.mark.parametrize("name", gap.REDUCED_HEADLINE)
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
