"""Unit tests of the defenses and the battery: configs, data, losses, routing, bookkeeping."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import torch

from safetygap import (
    battery,
    circuit_breakers,
    deep_alignment,
    defense_training,
    defenses,
    gradient_routing,
    lab,
    narrowing,
    repnoise,
    scales,
    tamper_resistance,
    unlearning,
)
from safetygap.models import build_model, zoo_model
from safetygap.training import IGNORE

SAFE = scales.safety_config(0, "reduced")


def test_unknown_defense_names_the_valid_ones():
    with pytest.raises(ValueError, match="valid defenses are .*gradient_routing"):
        defenses.defense_config("prayer", 0)
    with pytest.raises(ValueError, match="valid targets are .*undefended"):
        narrowing.target_config("prayer", 0)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: unlearning.RMUConfig(SAFE, layer=0), "layer=0"),
        (lambda: unlearning.RMUConfig(SAFE, steering=-1.0), "steering=-1.0"),
        (lambda: repnoise.RepNoiseConfig(SAFE, noise_weight=-1.0), "-1.0"),
        (lambda: circuit_breakers.CircuitBreakerConfig(SAFE, alpha=0.0), "alpha=0.0"),
        (lambda: deep_alignment.AugmentationConfig(SAFE, recovery_share=1.5), "recovery_share=1.5"),
        (lambda: tamper_resistance.TARConfig(SAFE, grid_lrs=()), "grid_lrs=()"),
        (lambda: gradient_routing.RoutingConfig(SAFE, forget_fraction=1.0), "forget_fraction=1.0"),
        (lambda: defenses.FilteringConfig(SAFE), "hazardous_documents=True"),
        (lambda: battery.BatteryConfig(reversion=(1.5,)), "reversion=\\(1.5,\\)"),
        (lambda: battery.BatteryConfig(checkpoints=()), "checkpoints=\\(\\)"),
    ],
)
def test_bad_configs_name_the_bad_value(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_every_defense_has_a_config_of_its_own_type():
    configs = {d: defenses.defense_config(d, 0, "reduced") for d in defenses.DEFENSES}
    assert len({type(c) for c in configs.values()}) == len(defenses.DEFENSES)
    assert not configs["filtering"].safety.base.hazardous_documents


def test_defender_data_splits_hazardous_from_harmless_documents():
    world = lab.get_world(SAFE.base.world)
    hazardous = defense_training.hazardous_documents(world)
    names = {p.name for p in world.hazardous()} | {f.name for f in world.families if f.hazardous}
    assert hazardous and all(names & set(d.split()) for d in hazardous)
    assert not set(hazardous) & set(defense_training.corpus.documents(world, "train", include_hazardous=False))


def test_recovery_examples_put_no_loss_on_the_harmful_prefix():
    tok, world = lab.get_tokenizer(SAFE.base.world), lab.get_world(SAFE.base.world)
    chat = defense_training.corpus.recipe_requests(world.hazardous()[:1], "train")[0]
    example = deep_alignment.recovery_example(tok, chat, "sorry , i can not help .", 4)
    labelled = [t for t in example.labels if t != IGNORE]
    assert tok.decode(labelled[:2]).split()[0] == "sorry"  # the first labelled token starts the refusal
    assert tok.convert_tokens_to_ids("to") in example.input_ids


def test_mmd_is_small_for_samples_of_the_same_noise_and_large_for_shifted_ones():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(200, 16, generator=g), torch.randn(200, 16, generator=g)
    assert repnoise.mmd(x, y) < 0.05 < repnoise.mmd(x + 3, y)


def test_defense_report_counts_frozen_forward_passes_and_round_trips():
    report = defense_training.DefenseReport("x", 1, 1, tokens=10, params=100, trainable_params=100, seconds=0.0, forward_tokens=5)
    assert report.flops == 6 * 100 * 10 + 2 * 100 * 5
    assert defense_training.DefenseReport.from_dict(report.to_dict()) == report


def _tiny():
    return build_model(zoo_model("tiny"), 50, {"bos": 1, "eos": 2, "pad": 0}, seed=0)


def test_switching_reserved_units_off_equals_deleting_them():
    model, ids = _tiny(), torch.randint(3, 50, (2, 7))
    with torch.no_grad(), gradient_routing.reserved_off(model, 0.25):
        off = model(input_ids=ids).logits
    gradient_routing.ablate(model, gradient_routing.forget_masks(model, 0.25))
    with torch.no_grad():
        assert torch.allclose(off, model(input_ids=ids).logits, atol=1e-6)


def test_routing_sends_hazardous_gradients_only_to_reserved_weights():
    model = _tiny()
    base = dataclasses.replace(SAFE.base, train=dataclasses.replace(SAFE.base.train, steps=2, warmup=0, weight_decay=0.0))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    example = defense_training.Example(tuple(range(3, 12)), tuple(range(3, 12)))
    gradient_routing.routed_pretraining(model, [example], [True], base, 0.25)
    masks = gradient_routing.forget_masks(model, 0.25)
    for name, p in model.named_parameters():
        moved = (p.detach() - before[name]).abs() > 0
        assert not (moved & (masks[name] == 0)).any(), name
    assert any(((p.detach() - before[n]).abs() > 0).any() for n, p in model.named_parameters())


def test_tar_grid_membership():
    config = tamper_resistance.TARConfig(SAFE)
    assert config.on_grid(3e-4, 5) and config.on_grid(1e-3, 10)
    assert not config.on_grid(3e-3, 5) and not config.on_grid(1e-3, 25)


def _result() -> narrowing.DefenseResult:
    trials = pd.DataFrame([
        {"target": t, "seed": 0, "family": f, "flops": flops, "edc": edc, "on_tar_grid": False}
        for t, rows in {"undefended": [("prefill", 0.0, 0.5), ("full", 1e9, 0.8), ("lora", 2e9, 0.6)],
                        "filtering": [("prefill", 0.0, 0.0), ("full", 1e9, 0.1), ("lora", 2e9, 0.05)]}.items()
        for f, flops, edc in rows
    ])  # fmt: skip
    costs = pd.DataFrame([{"target": "undefended", "seed": 0, "defender_flops": 1.0}, {"target": "filtering", "seed": 0, "defender_flops": 1.0}])
    return narrowing.DefenseResult(pd.DataFrame(), trials, costs)


def test_worst_case_search_curve_and_flops_to_reach():
    result = _result()
    worst = result.worst_case().set_index("target")
    assert worst.loc["undefended", "edc"] == 0.8 and worst.loc["filtering", "family"] == "full"
    search = result.cumulative_best()
    assert search.groupby("target")["best_edc"].apply(lambda s: s.is_monotonic_increasing).all()
    reach = result.flops_to_reach(0.7).set_index("target")["flops"]
    assert reach["undefended"] == 1e9 and reach["filtering"] == float("inf")
