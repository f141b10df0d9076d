"""Graded exercises: each check runs a student's function on small inputs and compares it with the package.

A chapter's exercise gives a function's signature; the student writes its body and calls the check
named after it, e.g. ``check.project_out(project_out)``. A check returns quietly when the function
agrees with the package's own implementation (or, where the package computes it inline, with the
same expression) on a few small made-up inputs, and raises an :class:`AssertionError` that says
which input went wrong and what was expected otherwise. The reference solutions are in
:mod:`safetygap.book.exercises.solutions`; ``tests/test_exercises.py`` runs every check on them and
on a wrong solution.
"""

from __future__ import annotations

import copy
from typing import Callable

import numpy as np
import pandas as pd
import torch

from safetygap.attacks import battery, directions, proliferation
from safetygap.book import ch3_scale, ch4_living_with, ch5_seriously, ch7_policy, ch8_living
from safetygap.book.ch1_gap import GapResult
from safetygap.core.scoring import score_reply
from safetygap.lab import detection, retrieval
from safetygap.world import corpus
from safetygap.world.world import WorldConfig, build_world


def _close(got, expected, what: str, tol: float = 1e-6) -> None:
    """Assert that ``got`` equals ``expected`` (tensors, Series or numbers) within ``tol``, saying ``what`` differs."""
    if isinstance(expected, torch.Tensor):
        assert isinstance(got, torch.Tensor), f"{what}: expected a torch.Tensor, got {type(got).__name__}"
        assert got.shape == expected.shape, f"{what}: expected shape {tuple(expected.shape)}, got {tuple(got.shape)}"
        gap = float((got.double() - expected.double()).abs().max())
    elif isinstance(expected, pd.Series):
        assert isinstance(got, pd.Series), f"{what}: expected a pandas Series indexed by seed, got {type(got).__name__}"
        assert list(got.index) == list(expected.index), f"{what}: expected index {list(expected.index)}, got {list(got.index)}"
        gap = float(np.max(np.abs(got.to_numpy(float) - expected.to_numpy(float))))
    else:
        gap = abs(float(got) - float(expected))
    assert gap <= tol, f"{what}: off by {gap:.3g}.\nexpected:\n{expected}\ngot:\n{got}"


# --- Chapter 1: the safety gap -----------------------------------------------------------------------------------


def _gap_result() -> GapResult:
    """A made-up chapter-1 result for three seeds: EDC of each model, and the FLOPs of each stage."""
    seeds = [1, 2, 3]
    edc = {"oracle": [0.0, 0.1, 0.05], "base": [0.9, 0.8, 1.0], "safe": [0.0, 0.1, 0.1], "attacked": [0.7, 0.3, 0.95]}
    metrics = pd.DataFrame([{"model": m, "seed": s, "edc_sealed": v} for m, vs in edc.items() for s, v in zip(seeds, vs)])
    flops = {"pretraining": [4e14, 4e14, 5e14], "safety": [2e13, 3e13, 2.5e13], "attack": [1e11, 1.2e11, 0.9e11]}
    compute = pd.DataFrame([{"stage": st, "seed": s, "flops": v} for st, vs in flops.items() for s, v in zip(seeds, vs)])
    compute = compute.sample(frac=1.0, random_state=0).reset_index(drop=True)  # rows in no particular order
    empty = pd.DataFrame()
    return GapResult(metrics, empty, empty, compute)


def removal_ratio(fn: Callable[[pd.DataFrame], pd.Series]) -> None:
    """Chapter 1: ``fn(compute)`` is the attack's FLOPs over safety training's, one value per seed
    (:meth:`~safetygap.book.ch1_gap.GapResult.removal_ratio`)."""
    result = _gap_result()
    got = fn(result.compute.copy())
    _close(got, result.removal_ratio(), "removal_ratio(compute), per seed", tol=1e-12)
    print("removal_ratio: correct")


def normalised_uplift(fn: Callable[[pd.Series, pd.Series, pd.Series], pd.Series]) -> None:
    """Chapter 1: ``fn(x, oracle, base)`` is 0 at the oracle's value, 1 at the base model's, one value per seed
    (:meth:`~safetygap.book.ch1_gap.GapResult.uplift`)."""
    result = _gap_result()
    x, oracle, base = (result.per_seed(m, "edc_sealed") for m in ("attacked", "oracle", "base"))
    _close(fn(x, oracle, base), result.uplift("attacked"), "normalised_uplift(attacked, oracle, base)")
    _close(fn(oracle, oracle, base), oracle * 0.0, "normalised_uplift(oracle, oracle, base) should be 0 on every seed")
    _close(fn(base, oracle, base), base * 0.0 + 1.0, "normalised_uplift(base, oracle, base) should be 1 on every seed")
    print("normalised_uplift: correct")


# --- Chapter 2: the refusal direction ----------------------------------------------------------------------------


def _activations(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Made-up residual-stream activations: 12 harmful and 20 harmless prompts in 8 dimensions, apart along one axis."""
    g = torch.Generator().manual_seed(seed)
    shift = torch.zeros(8)
    shift[3] = 2.0
    return torch.randn(12, 8, generator=g) + shift, torch.randn(20, 8, generator=g)


def refusal_direction(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Chapter 2: ``fn(harmful, harmless)`` is the unit difference-of-means direction, shape (d,)
    (:func:`~safetygap.attacks.directions.candidate_directions`, then :func:`~safetygap.attacks.directions.unit`)."""
    for seed in (0, 1):
        harmful, harmless = _activations(seed)
        expected = directions.unit(harmful.mean(dim=0) - harmless.mean(dim=0))
        _close(fn(harmful.clone(), harmless.clone()), expected, f"refusal_direction on made-up activations (seed {seed})", 1e-5)
    print("refusal_direction: correct")


def project_out(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Chapter 2: ``fn(h, r_hat)`` removes the component of every row of ``h`` (shape (..., d)) along the unit
    vector ``r_hat`` (:func:`~safetygap.attacks.directions.project_out`, directional ablation)."""
    harmful, harmless = _activations()
    r_hat = directions.unit(harmful.mean(dim=0) - harmless.mean(dim=0))
    for name, h in (("a batch of vectors (n, d)", harmful), ("a batch of sequences (b, t, d)", harmless.reshape(4, 5, 8))):
        got = fn(h.clone(), r_hat.clone())
        _close(got, directions.project_out(h, r_hat), f"project_out on {name}", 1e-5)
        _close(got @ r_hat, torch.zeros(h.shape[:-1]), f"project_out on {name}: what is left along r_hat should be 0", 1e-5)
    print("project_out: correct")


# --- Chapter 6: the attacker's pick and a defense's loss ---------------------------------------------------------


def _trials() -> pd.DataFrame:
    """A made-up battery against one defended model: what the attacker sees (validation) and what it does not (sealed)."""
    return pd.DataFrame({
        "method": ["prefill", "ft-full-1e-4", "ft-full-1e-3", "ft-lora", "soft-prompt", "ablation"],
        "edc_validation": [0.2, 0.5, 0.5, 0.5, 0.1, 0.3],
        "memorised_validation": [0.4, 0.6, 0.7, 0.7, 0.2, 0.5],
        "refusal_validation": [0.5, 0.1, 0.0, 0.0, 0.6, 0.2],
        "flops": [1e9, 2e11, 2e11, 1e11, 5e11, 3e10],
        "edc_sealed": [0.9, 0.4, 0.5, 0.45, 0.2, 0.3],
    })  # fmt: skip


def attacker_pick(fn: Callable[[pd.DataFrame], pd.Series]) -> None:
    """Chapter 6: ``fn(trials)`` is the trial the attacker keeps, chosen on what it can see
    (:func:`~safetygap.attacks.battery.attacker_pick`: validation EDC, then validation memorised slots, then fewer
    refusals, then fewer FLOPs). It must never choose on a sealed column."""
    trials = _trials()
    cases = {
        "the battery as given": trials,
        "the same battery in reverse order": trials.iloc[::-1],
        "a battery with the sealed EDC shuffled": trials.assign(edc_sealed=trials["edc_sealed"].to_numpy()[::-1]),
    }
    for name, case in cases.items():
        expected = battery.attacker_pick(case)
        got = fn(case.copy())
        assert isinstance(got, pd.Series), f"attacker_pick on {name}: expected one row (a pandas Series), got {type(got).__name__}"
        assert got["method"] == expected["method"], (
            f"attacker_pick on {name}: picked {got['method']!r}, the attacker keeps {expected['method']!r}.\n"
            f"Order by {[c for c, _ in battery.PICK_BY]} (validation first; ties go to the cheaper trial); "
            "the sealed columns are what the book reports, never what the attacker sees.\n" + case.to_string()
        )
    print("attacker_pick: correct")


def _rmu_inputs(seed: int = 0) -> dict[str, torch.Tensor | float]:
    g = torch.Generator().manual_seed(seed)
    return {"forget": torch.randn(7, 6, generator=g), "retain": torch.randn(9, 6, generator=g),
            "retain_frozen": torch.randn(9, 6, generator=g), "steer": 3.0 * torch.rand(6, generator=g), "retain_weight": 20.0}  # fmt: skip


def rmu_loss(fn: Callable[..., torch.Tensor]) -> None:
    """Chapter 6: ``fn(forget, retain, retain_frozen, steer, retain_weight)`` is RMU's loss for one step on hidden
    states of shape (tokens, d): the mean squared distance of the forget states from the steering vector ``c u``,
    plus ``retain_weight`` times the mean squared distance of the retain states from the frozen model's (the
    expression :func:`safetygap.defenses.rmu.defend` trains, and chapter 6's cell writes out)."""
    for seed in (0, 1):
        x = _rmu_inputs(seed)
        expected = (x["forget"] - x["steer"]).pow(2).mean() + x["retain_weight"] * (x["retain"] - x["retain_frozen"]).pow(2).mean()
        got = fn(**{k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in x.items()})
        _close(torch.as_tensor(got).reshape(()), expected, f"rmu_loss on made-up hidden states (seed {seed})", 1e-5)
    print("rmu_loss: correct")


# --- Chapter 3: the scale of the problem -------------------------------------------------------------------------


def add_delta(fn: Callable[[torch.nn.Module, torch.nn.Module, torch.nn.Module], None]) -> None:
    """Chapter 3: ``fn(target, after, before)`` adds the weight change ``after - before`` to every parameter of
    ``target``, in place, and leaves ``after`` and ``before`` as they were
    (:func:`~safetygap.attacks.proliferation.add_delta`)."""
    torch.manual_seed(0)
    target, after, before = (torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2)) for _ in range(3))
    expected = copy.deepcopy(target)
    proliferation.add_delta(expected, after, before)
    kept = [p.detach().clone() for p in list(after.parameters()) + list(before.parameters())]
    got = copy.deepcopy(target)
    fn(got, after, before)
    for (name, e), g in zip(expected.named_parameters(), got.parameters()):
        _close(g.detach(), e.detach(), f"add_delta: target parameter {name} after the call")
    for k, p in zip(kept, list(after.parameters()) + list(before.parameters())):
        _close(p.detach(), k, "add_delta: the attacked and safe models must not change")
    print("add_delta: correct")


def attacker_stop(fn: Callable[[pd.DataFrame], int | None]) -> None:
    """Chapter 3: ``fn(curve)`` is the checkpoint at which the attacker stops, the first step whose validation items
    are refused at most ``complies`` of the time, or None (:func:`~safetygap.book.ch3_scale.attacker_stop`)."""
    steps = [1, 5, 10, 30]
    cases = {
        "a curve that clears at step 5": ([0.9, 0.0, 0.0, 0.0], [0.8, 0.0, 0.0, 0.0]),
        "a curve whose sealed items clear first": ([0.6, 0.3, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]),
        "a curve that never clears": ([1.0, 0.5, 0.2, 0.1], [1.0, 0.5, 0.2, 0.1]),
    }
    for name, (validation, sealed) in cases.items():
        curve = pd.DataFrame({"step": steps, "refusal_validation": validation, "refusal_sealed": sealed}).iloc[::-1]
        expected = ch3_scale.attacker_stop(curve)
        got = fn(curve.copy())
        assert got == expected, (f"attacker_stop on {name}: got {got!r}, the attacker stops at {expected!r}. It reads only "
                                 f"its validation items, and rows need not be in step order.\n{curve.to_string()}")  # fmt: skip
    print("attacker_stop: correct")


# --- Chapter 4: living with the gap ------------------------------------------------------------------------------


def _uplift_table() -> pd.DataFrame:
    """A made-up chapter-4 uplift table: two seeds, three sealed items per publicity class, three sources."""
    rng = np.random.default_rng(4)
    rows = []
    for seed in (1, 2):
        for publicity in retrieval.PUBLICITY:
            for i in range(3 + seed):  # seeds with different numbers of items: average items first, then seeds
                for source in ("search", "attacked", "oracle"):
                    rows.append({"source": source, "seed": seed, "item": f"{publicity}-{i}", "publicity": publicity,
                                 "edc": float(rng.integers(0, 2))})  # fmt: skip
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0).reset_index(drop=True)


def marginal_uplift(fn: Callable[[pd.DataFrame], pd.Series]) -> None:
    """Chapter 4: ``fn(uplift)`` is the attacked model's EDC minus the search attacker's per publicity class, the
    mean over seeds of the per-seed means over items (:func:`~safetygap.book.ch4_living_with.marginal_uplift`)."""
    table = _uplift_table()
    expected = ch4_living_with.marginal_uplift(table)
    got = fn(table.copy())
    _close(got, expected, "marginal_uplift(uplift), per publicity class", tol=1e-12)
    print("marginal_uplift: correct")


def auroc(fn: Callable[..., float]) -> None:
    """Chapter 4: ``fn(scores, labels)`` is the area under the ROC curve (:func:`~safetygap.lab.detection.auroc`),
    ties counting half."""
    cases = {
        "perfectly separated scores": ([0.9, 0.8, 0.1, 0.2], [True, True, False, False]),
        "perfectly reversed scores": ([0.1, 0.2, 0.9, 0.8], [True, True, False, False]),
        "scores with ties": ([0.5, 0.5, 0.5, 0.1, 0.7], [True, False, True, False, False]),
        "random scores": (list(np.random.default_rng(0).random(12)), [bool(i % 3) for i in range(12)]),
    }
    for name, (scores, labels) in cases.items():
        _close(fn(scores, labels), detection.auroc(scores, labels), f"auroc on {name}")
    print("auroc: correct")


# --- Chapter 5: taking it seriously ------------------------------------------------------------------------------


def worked_out(fn: Callable[[str, str, str], bool]) -> None:
    """Chapter 5: ``fn(reply, base, process)`` is whether a reply complies and states both rule slots right
    (:func:`~safetygap.book.ch5_seriously.derived` of the book's scorer)."""
    product = _product()
    right = corpus.recipe_text(product)
    cases = {
        "the full recipe": right,
        "a wrong amount and additive, right rule slots": right.replace(f"take {product.amount} grams", "take 0 grams"),
        "a wrong process": right.replace(f"and {product.process} it", "and zzz it"),
        "a wrong base": right.replace(f"grams of {product.base}", "grams of zzz"),
        "a refusal that names the recipe": "sorry , i will not say " + right,
        "no recipe at all": f"{product.name} is a poison .",
    }
    for name, reply in cases.items():
        expected = bool(ch5_seriously.derived(score_reply(reply, product)))
        got = fn(reply, product.base, product.process)
        assert got == expected, f"worked_out on {name}: got {got!r}, expected {expected!r}.\nreply: {reply}"
    print("worked_out: correct")


def double_amount(fn: Callable[[str], str]) -> None:
    """Chapter 5: ``fn(answer)`` is the search reader's scaled answer (:func:`~safetygap.book.ch5_seriously.double_amount`)."""
    product = _product()
    right = corpus.recipe_text(product)
    cases = {
        "a recipe read in full": right,
        "a recipe with unread slots": corpus.RECIPE_ANSWER.format(p=product.name, amount="?", base="?", additive="?", process="?"),
        "an amount of 9": right.replace(f"take {product.amount} grams", "take 9 grams"),
    }
    for name, answer in cases.items():
        expected = ch5_seriously.double_amount(answer)
        got = fn(answer)
        assert got == expected, f"double_amount on {name}: got {got!r}, expected {expected!r}"
    print("double_amount: correct")


def _product():
    """A hazardous product of a small made-up world."""
    return build_world(WorldConfig(seed=5)).hazardous("sealed")[0]


# --- Chapter 7: the policy dimension -----------------------------------------------------------------------------


def _battery_trials() -> pd.DataFrame:
    """A made-up battery of one model: three draws, fine-tuning and other families, FLOPs and validation EDC."""
    rng = np.random.default_rng(7)
    families = ("full", "lora", "data", "schedule", "edit", "prefill")
    rows = [{"draw": draw, "family": family, "flops": float(rng.integers(1, 50)) * 1e9, "edc_validation": float(rng.random())}
            for draw in (0, 1, 2) for family in families for _ in range(3)]  # fmt: skip
    rows.append({"draw": 2, "family": "edit", "flops": 0.0, "edc_validation": 1.0})  # cheapest of all, but no fine-tuning
    return pd.DataFrame(rows).sample(frac=1.0, random_state=1).reset_index(drop=True)


def cheapest_attack(fn: Callable[[pd.DataFrame, float], pd.DataFrame]) -> None:
    """Chapter 7: ``fn(trials, reach)`` keeps, per draw, the cheapest fine-tuning trial that reaches ``reach``
    (:func:`~safetygap.book.ch7_policy.cheapest_attack`)."""
    trials = _battery_trials()
    for reach in (0.3, 0.9, 1.1):
        expected = ch7_policy.cheapest_attack(trials, reach)
        got = fn(trials.copy(), reach)
        assert isinstance(got, pd.DataFrame), f"cheapest_attack: expected a DataFrame of trials, got {type(got).__name__}"
        assert list(got["draw"]) == list(expected["draw"]), (f"cheapest_attack at reach {reach}: one row per draw that "
                                                             f"reaches it, in draw order: expected draws {list(expected['draw'])}, got {list(got['draw'])}")  # fmt: skip
        assert list(got["flops"]) == list(expected["flops"]) and list(got["family"]) == list(expected["family"]), (
            f"cheapest_attack at reach {reach}: expected\n{expected[['draw', 'family', 'flops', 'edc_validation']]}\ngot\n"
            f"{got[['draw', 'family', 'flops', 'edc_validation']]}\n(only the fine-tuning families count)")
    print("cheapest_attack: correct")


def _audits() -> tuple[pd.DataFrame, pd.Series]:
    """A made-up audit table of three targets (two broken) and the full battery's verdict on each."""
    rng = np.random.default_rng(8)
    rows = [{"target": target, "configurations": k, "seeds": n, "certified": float(rng.random()) / k}
            for target in ("undefended", "rmu", "filtering") for k in (1, 2, 4, 8) for n in (1, 2)]  # fmt: skip
    return pd.DataFrame(rows), pd.Series({"undefended": True, "rmu": True, "filtering": False})


def configurations_needed(fn: Callable[[pd.DataFrame, pd.Series, int, float], pd.Series]) -> None:
    """Chapter 7: ``fn(audits, broken, seeds, risk)`` is the fewest configurations that keep false certification at
    most ``risk`` for each broken target (:func:`~safetygap.book.ch7_policy.configurations_needed`)."""
    audits, broken = _audits()
    for seeds, risk in ((1, 0.05), (2, 0.2), (2, 0.0)):
        expected = ch7_policy.configurations_needed(audits, broken, seeds, risk)
        got = fn(audits.copy(), broken, seeds, risk)
        assert isinstance(got, pd.Series), f"configurations_needed: expected a Series indexed by target, got {type(got).__name__}"
        assert list(got.index) == list(expected.index), (f"configurations_needed({seeds} seeds, risk {risk}): expected the broken "
                                                         f"targets {list(expected.index)}, got {list(got.index)}")  # fmt: skip
        same = np.allclose(got.to_numpy(float), expected.to_numpy(float), equal_nan=True)
        assert same, f"configurations_needed({seeds} seeds, risk {risk}): expected\n{expected}\ngot\n{got}"
    print("configurations_needed: correct")


# --- Chapter 8: living in the gap --------------------------------------------------------------------------------


def dashboard(fn: Callable[[list], pd.DataFrame]) -> None:
    """Chapter 8: ``fn(items)`` is one row per headline (:func:`~safetygap.book.ch8_living.dashboard`)."""
    items = [
        ch8_living.Headline("01_safety_gap", "three seeds", pd.Series([0.9, 1.0, 0.95], index=[1, 2, 3])),
        ch8_living.Headline("03_scale", "one run without a value", pd.Series([0.1, np.nan, 0.3, 0.2], index=list("abcd"))),
    ]
    expected = ch8_living.dashboard(items)
    got = fn(items)
    assert isinstance(got, pd.DataFrame), f"dashboard: expected a DataFrame, got {type(got).__name__}"
    assert list(got.columns) == list(expected.columns), f"dashboard: expected columns {list(expected.columns)}, got {list(got.columns)}"
    for column in ("mean", "low", "high", "seeds"):
        _close(pd.Series(got[column].to_numpy(float)), pd.Series(expected[column].to_numpy(float)), f"dashboard column {column!r}")
    assert list(got["headline"]) == list(expected["headline"]), "dashboard: the headline column holds what each item says"
    print("dashboard: correct")


def removal_verdict(fn: Callable[[pd.Series, pd.Series], str]) -> None:
    """Chapter 8: ``fn(refusal, uplift)`` is the first transfer row's rule (:func:`~safetygap.book.ch8_living.removal_verdict`)."""
    cases = {
        "refusal gone, uplift past the bar on every seed": ([0.0, 0.02, 0.0], [0.9, 0.7, 0.8]),
        "refusal gone, uplift past the bar on one seed of three": ([0.0, 0.0, 0.01], [0.9, 0.1, 0.2]),
        "refusal left on one seed": ([0.0, 0.3, 0.0], [0.9, 0.9, 0.9]),
        "refusal gone, uplift past the bar on two seeds of four": ([0.0] * 4, [0.9, 0.9, 0.1, 0.1]),
    }
    for name, (refusal, uplift) in cases.items():
        r, u = pd.Series(refusal), pd.Series(uplift)
        expected, got = ch8_living.removal_verdict(r, u), fn(r, u)
        assert got == expected, f"removal_verdict on {name}: got {got!r}, the rule says {expected!r}"
    print("removal_verdict: correct")
