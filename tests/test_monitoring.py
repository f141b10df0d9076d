"""Chapter 8's monitor after release: the threshold it sets, that it is set on the other releases only, and that its
claims fail on flags that contradict them."""

from __future__ import annotations

import pandas as pd
import pytest

from safetygap.book import ch8_living as living
from safetygap.book import claims
from safetygap.lab import detection


def test_the_threshold_separates_what_can_be_separated_and_prefers_the_lowest_on_ties():
    scores, labels = pd.Series([0.1, 0.2, 0.8, 0.9]), pd.Series([False, False, True, True])
    assert 0.2 < detection.best_threshold(scores, labels) < 0.8
    assert detection.best_threshold(pd.Series([0.5, 0.5]), pd.Series([True, True])) < 0.5  # one class: flag everything


def _detection() -> pd.DataFrame:
    rows = []
    for seed, shift in ((1, 0.0), (2, 0.0), (3, 1.0)):  # seed 3's scores sit higher: a threshold from 1 and 2 flags all
        rows += [{"seed": seed, "derivative": "harmful, full", "refusal_shift": 0.6 + shift, "uncensored": True},
                 {"seed": seed, "derivative": "benign, full", "refusal_shift": 0.1 + shift, "uncensored": False}]  # fmt: skip
    return pd.DataFrame(rows)


def test_each_release_is_judged_with_a_threshold_set_on_the_others():
    flags = living.monitoring(_detection())
    assert len(flags) == 6 and set(flags["seed"]) == {1, 2, 3}
    assert flags[flags["seed"] != 3]["flagged"].tolist() == [True, False, True, False]
    assert flags[flags["seed"] == 3]["flagged"].tolist() == [True, True]  # its safe derivative is a false alarm


def test_the_monitoring_claims_refuse_flags_that_contradict_them():
    flags = living.monitoring(_detection())
    checked = {c.name: c for c in living.monitoring_claims(flags)}
    assert checked["monitor_catches_harmful"].holds and checked["monitor_false_alarm"].holds
    assert not checked["monitor_misses_some"].holds  # nothing uncensored is missed here
    missed_harmful = flags.assign(flagged=~flags["uncensored"])
    with pytest.raises(claims.ClaimFailed, match="monitor_catches_harmful"):
        claims.require(living.monitoring_claims(missed_harmful))


def test_one_release_alone_is_an_error_that_says_why():
    one = _detection()[lambda f: f["seed"] == 1]
    with pytest.raises(ValueError, match="at least two seeds"):
        living.monitoring(one)
