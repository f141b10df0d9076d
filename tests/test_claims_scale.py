"""Chapter 3: the zoo's runs, the proliferation transplant, and the chapter's claims at reduced size.

The chapter checks its sentences with ``ch3_claims.claims(result)`` on the book-scale zoo; here the same function runs on
the reduced zoo's two smallest Llama members (the development seed, a smaller world) and each headline claim of
:data:`safetygap.book.ch3_ch3_claims.REDUCED_HEADLINE` must hold with the same bars. A doctored result must fail.
"""

from __future__ import annotations

import copy
import dataclasses

import pandas as pd
import pytest
import torch

from safetygap.attacks import proliferation
from safetygap.book import ch3_claims, ch3_scale as scale
from safetygap.book import claims, mode

pytestmark = pytest.mark.slow
TESTED = ("micro", "tiny")  # the reduced zoo's two smallest Llama members: the per-run headline claims need no more


@pytest.fixture(scope="module")
def result():
    return scale.run_scale(scale.members(TESTED), mode.STUDENT.seeds, mode.STUDENT.scale)


@pytest.fixture(scope="module")
def checked(result):
    return {c.name: c for c in ch3_claims.claims(result)}


def test_every_claim_names_bars_that_exist(result, checked):
    assert len(checked) == len(ch3_claims.claims(result))
    assert set(ch3_claims.REDUCED_HEADLINE) <= set(checked)
    assert not claims.unknown_bars(checked.values())


@pytest.mark.parametrize("name", ch3_claims.REDUCED_HEADLINE)
def test_headline_claim_holds_at_reduced_size(checked, name):
    c = checked[name]
    assert c.holds, f"{c.name}: {c.statement} ({c.evidence})"


def test_the_zoo_table_counts_each_member_once(result):
    assert list(result.zoo["model"]) == list(TESTED)
    assert (result.zoo["params"] > 0).all() and result.zoo["params"].is_monotonic_increasing


def test_a_transplant_that_keeps_refusing_fails_the_claim(result):
    """The transplant given the release's own refusal: the proliferation claim must refuse it."""
    metrics = result.metrics.copy()
    release = metrics[metrics["role"] == "release"].set_index(["model", "seed"])["refusal_sealed"]
    rows = metrics["role"] == "transplant"
    metrics.loc[rows, "refusal_sealed"] = [release[(m, s)] for m, s in zip(metrics.loc[rows, "model"], metrics.loc[rows, "seed"])]
    with pytest.raises(claims.ClaimFailed, match="transplant_removes_refusal"):
        claims.require(c for c in ch3_claims.claims(dataclasses.replace(result, metrics=metrics)) if c.name in ch3_claims.REDUCED_HEADLINE)


def test_an_attack_the_attacker_never_sees_succeed_fails_the_claims(result):
    """Curves whose validation items are never cleared: the attacker never stops, and the cost claims must fail."""
    curves = result.curves.assign(refusal_validation=1.0)
    with pytest.raises(claims.ClaimFailed, match="attack_clears_fast"):
        claims.require(c for c in ch3_claims.claims(dataclasses.replace(result, curves=curves)) if c.name in ch3_claims.REDUCED_HEADLINE)


def test_the_attacker_stops_on_validation_items_only():
    curve = pd.DataFrame({"step": [30, 10, 5, 1], "refusal_validation": [0.0, 0.0, 0.5, 1.0], "refusal_sealed": [0.0] * 4})
    assert scale.attacker_stop(curve) == 10
    assert scale.attacker_stop(curve.assign(refusal_validation=1.0)) is None


def test_add_delta_moves_exactly_the_change():
    torch.manual_seed(0)
    target, after, before = (torch.nn.Linear(3, 2) for _ in range(3))
    expected = {n: p.detach() + a.detach() - b.detach() for (n, p), a, b in zip(target.named_parameters(), after.parameters(), before.parameters())}
    moved = copy.deepcopy(target)
    proliferation.add_delta(moved, after, before)
    for name, p in moved.named_parameters():
        assert torch.allclose(p, expected[name])
    with pytest.raises(ValueError, match="different parameters"):
        proliferation.add_delta(moved, torch.nn.Linear(2, 2, bias=False), before)


def test_a_release_must_share_the_base_and_differ_from_the_first():
    from safetygap.book import scales

    attack = scales.attack_config(0, "reduced", "tiny")
    with pytest.raises(ValueError, match="own safe model"):
        proliferation.transplanted_model(attack, attack.safety)
    with pytest.raises(ValueError, match="from the attacked model's base"):
        proliferation.transplanted_model(attack, scale.release_config(1, "reduced", "tiny"))


def test_an_unknown_member_is_named_with_the_valid_ones():
    with pytest.raises(ValueError, match="valid members"):
        scale.members(("huge",))
