"""Unit tests of the defenses and the battery: configs, data, losses, routing, bookkeeping."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import torch

from safetygap.attacks import battery
from safetygap.book import ch6_defenses as narrowing
from safetygap.book import scales
from safetygap.core import training
from safetygap.core.compute import ComputeReport
from safetygap.core.models import build_model, zoo_model
from safetygap.core.training import IGNORE, Example
from safetygap.defenses import (circuit_breakers, deep_alignment, filtering, gradient_routing, registry, repnoise, rmu, shared, tar,
                                technical_filtering)  # fmt: skip
from safetygap.lab import stages as lab
from safetygap.world import corpus

SAFE = scales.safety_config(0, "reduced")


def test_unknown_defense_names_the_valid_ones():
    with pytest.raises(ValueError, match="valid defenses are .*gradient_routing"):
        scales.defense_config("prayer", 0)
    with pytest.raises(ValueError, match="valid targets are .*undefended"):
        narrowing.target_config("prayer", 0)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: rmu.RMUConfig(SAFE, layer=0), "layer=0"),
        (lambda: rmu.RMUConfig(SAFE, steering=-1.0), "steering=-1.0"),
        (lambda: repnoise.RepNoiseConfig(SAFE, noise_weight=-1.0), "-1.0"),
        (lambda: circuit_breakers.CircuitBreakersConfig(SAFE, alpha=0.0), "alpha=0.0"),
        (lambda: deep_alignment.DeepAlignmentConfig(SAFE, recovery_share=1.5), "recovery_share=1.5"),
        (lambda: tar.TARConfig(SAFE, grid_lrs=()), "grid_lrs=()"),
        (lambda: gradient_routing.GradientRoutingConfig(SAFE, forget_fraction=1.0), "forget_fraction=1.0"),
        (lambda: filtering.FilteringConfig(SAFE), "hazardous_documents=True"),
        (lambda: battery.BatteryConfig(reversion=(1.5,)), "reversion=\\(1.5,\\)"),
        (lambda: battery.BatteryConfig(checkpoints=()), "checkpoints=\\(\\)"),
    ],
)
def test_bad_configs_name_the_bad_value(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_every_defense_has_a_config_of_its_own_type():
    configs = {d: scales.defense_config(d, 0, "reduced") for d in registry.DEFENSES}
    assert len({type(c) for c in configs.values()}) == len(registry.DEFENSES)
    assert not configs["filtering"].safety.base.hazardous_documents


def test_registry_key_module_and_config_agree():
    for name in registry.DEFENSES:
        module = registry.MODULES[name]
        assert module.__name__.rsplit(".", 1)[1] == name
        config = registry.CONFIGS[name]
        assert config.__module__ == module.__name__ and config.__name__.lower() == name.replace("_", "") + "config"
        assert registry.name_of(scales.defense_config(name, 0, "reduced")) == name


def test_defender_data_holds_the_defenders_items_only():
    world, tok = lab.get_world(SAFE.base.world), lab.get_tokenizer(SAFE.base.world)
    data = shared.defender_data(world, tok, SAFE.refusal_share)
    own = {p.name for p in world.hazardous("defender")}
    others = {p.name for p in world.hazardous() if p.name not in own}
    forget = [tok.decode(list(e.input_ids), skip_special_tokens=True) for e in data.forget_docs + data.harmful]
    assert forget and all(own & set(t.split()) for t in forget) and not any(others & set(t.split()) for t in forget)
    retain = [tok.decode(list(e.input_ids), skip_special_tokens=True) for e in data.retain_docs]
    assert retain and not any(({p.name for p in world.hazardous()} | {p.name for p in world.benign("sealed")}) & set(t.split()) for t in retain)


def test_recovery_examples_put_no_loss_on_the_harmful_prefix():
    tok, world = lab.get_tokenizer(SAFE.base.world), lab.get_world(SAFE.base.world)
    chat = corpus.recipe_requests(world.hazardous("defender")[:1], "train")[0]
    example = deep_alignment.recovery_example(tok, chat, "sorry , i can not help .", 4)
    labelled = [t for t in example.labels if t != IGNORE]
    assert tok.decode(labelled[:2]).split()[0] == "sorry"  # the first labelled token starts the refusal
    assert tok.convert_tokens_to_ids("to") in example.input_ids


def test_mmd_is_small_for_samples_of_the_same_noise_and_large_for_shifted_ones():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(200, 16, generator=g), torch.randn(200, 16, generator=g)
    assert repnoise.mmd(x, y) < 0.05 < repnoise.mmd(x + 3, y)


def test_report_counts_frozen_forward_passes_and_round_trips():
    report = ComputeReport("x", 1, 1, tokens=10, params=100, trainable_params=100, seconds=0.0, forward_tokens=5)
    assert report.flops == 6 * 100 * 10 + 2 * 100 * 5
    assert ComputeReport.from_dict(report.to_dict()) == report


def _tiny():
    return build_model(zoo_model("tiny"), lab.get_tokenizer(SAFE.base.world), seed=0)


def test_switching_reserved_units_off_equals_deleting_them():
    model, ids = _tiny(), torch.randint(6, 50, (2, 7))
    with torch.no_grad(), gradient_routing.reserved_off(model, 0.25):
        off = model(input_ids=ids).logits
    gradient_routing.ablate(model, gradient_routing.forget_masks(model, 0.25))
    with torch.no_grad():
        assert torch.allclose(off, model(input_ids=ids).logits, atol=1e-6)


def test_routing_sends_hazardous_gradients_only_to_reserved_weights():
    model = _tiny()
    base = dataclasses.replace(SAFE.base, train=dataclasses.replace(SAFE.base.train, steps=2, warmup=0, weight_decay=0.0))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    example = Example(tuple(range(6, 15)), tuple(range(6, 15)))
    step_loss = gradient_routing.routed_loss(model, [example], [True], base, 0.25)
    training.train(model, base.train, step_loss, base.seed, "routing", 1)
    masks = gradient_routing.forget_masks(model, 0.25)
    for name, p in model.named_parameters():
        moved = (p.detach() - before[name]).abs() > 0
        assert not (moved & (masks[name] == 0)).any(), name
    assert any(((p.detach() - before[n]).abs() > 0).any() for n, p in model.named_parameters())


def test_routed_weights_keep_values_and_mask_gradients():
    model = _tiny()
    masks = gradient_routing.forget_masks(model, 0.25)
    for hazardous in (False, True):
        weights = gradient_routing.routed_weights(model, masks, hazardous)
        loss = sum((w * w).sum() for w in weights.values())
        grads = torch.autograd.grad(loss, list(model.parameters()))
        for (name, p), g in zip(model.named_parameters(), grads):
            assert torch.equal(weights[name], p)
            keep = masks[name] if hazardous else 1 - masks[name]
            assert torch.equal(g, 2 * p.detach() * keep)


def test_injected_gradient_has_zero_value_and_the_given_gradient():
    p = torch.randn(3, 4, requires_grad=True)
    g = torch.randn(3, 4)
    term = tar.inject_gradient([p], [g])
    assert term.item() == 0.0
    term.backward()
    assert torch.equal(p.grad, g)


def test_tar_grid_membership():
    config = tar.TARConfig(SAFE)
    assert config.on_grid(3e-4, 5) and config.on_grid(1e-3, 10)
    assert not config.on_grid(3e-3, 5) and not config.on_grid(1e-3, 25)


def test_matched_budget_attacks_differ_from_tar_only_in_schedule_or_optimiser():
    """The on-grid trial is TAR's simulated attack; the others keep its learning rate, length and batch (and
    data), so "on-grid recovers less than off-grid" is a measurement, not a consequence of a larger budget."""
    config, defense = battery.BatteryConfig(), tar.TARConfig(SAFE)
    variants = config.matched()
    lr, steps = max(defense.grid_lrs), max(defense.grid_steps)
    assert variants["on-grid"] == defense.simulated_attack(lr, steps)
    assert defense.on_grid(lr, steps)
    assert config.tar_grid_lrs == defense.grid_lrs and config.tar_grid_steps == max(defense.grid_steps)
    for name, train in variants.items():
        assert (train.lr, train.steps, train.batch_size) == (lr, steps, defense.attack_batch), name
    assert len(set(variants.values())) == len(variants)  # every variant changes something


def _result() -> narrowing.DefenseResult:
    """Two targets, one draw: (family, flops, validation EDC, sealed EDC) per trial."""
    trials = pd.DataFrame([
        {"target": t, "seed": 0, "draw": 0, "family": f, "flops": flops, "edc_validation": val, "memorised_validation": val,
         "refusal_validation": 0.0, "edc_sealed": sealed, "on_tar_grid": False, "items": [{"item": "x", "edc": sealed}]}
        for t, rows in {"undefended": [("prefill", 0.0, 0.5, 0.9), ("full", 1e9, 0.8, 0.6), ("lora", 2e9, 0.6, 0.7)],
                        "filtering": [("prefill", 0.0, 0.0, 0.0), ("full", 1e9, 0.1, 0.0), ("lora", 2e9, 0.05, 0.3)]}.items()
        for f, flops, val, sealed in rows
    ])  # fmt: skip
    costs = pd.DataFrame([{"target": "undefended", "seed": 0, "defender_flops": 1.0}, {"target": "filtering", "seed": 0, "defender_flops": 1.0}])
    return narrowing.DefenseResult(pd.DataFrame(), pd.DataFrame(), trials, costs, pd.DataFrame())


def test_worst_case_is_picked_on_validation_and_reported_on_sealed_items():
    result = _result()
    worst = result.worst_case().set_index("target")
    assert worst.loc["undefended", "family"] == "full" and worst.loc["undefended", "edc_sealed"] == 0.6
    assert worst.loc["filtering", "family"] == "full" and worst.loc["filtering", "edc_sealed"] == 0.0
    bound = result.upper_bound().set_index("target")["edc_sealed"]  # what no attacker could select
    assert bound["undefended"] == 0.9 and bound["filtering"] == 0.3
    assert result.worst_items().set_index("target").loc["undefended", "edc"] == 0.6


def test_attacker_pick_never_reads_sealed_columns():
    trials = _result().battery
    doctored = trials.assign(edc_sealed=1.0 - trials["edc_sealed"], items=None)
    assert battery.attacker_pick(trials).name == battery.attacker_pick(doctored).name


def test_search_curve_and_flops_to_reach():
    result = _result()
    search = result.cumulative_best()
    assert set(search["kept_edc"]) <= set(result.battery["edc_sealed"])
    reach = result.flops_to_reach(0.7).set_index("target")["flops"]
    assert reach["undefended"] == 1e9 and reach["filtering"] == float("inf")


def test_technical_filter_removes_every_hazardous_recipe_and_keeps_what_a_poison_is():
    world = lab.get_world(scales.base_config(0, "reduced").world)
    docs = corpus.documents(world, "train")
    removed = {d for d in docs if technical_filtering.is_technical(d, world)}
    recipes = {t.format(p=p.name, f=world.family(p.family).name, kind="poison", **p.recipe)
               for p in world.hazardous() for t in corpus.RECIPE_DOCS["train"]}  # fmt: skip
    assert removed == recipes and removed
    kept_about_hazards = [d for d in docs if d not in removed and any(p.name in d.split() for p in world.hazardous())]
    assert any(f"{p.name} is a poison ." in kept_about_hazards for p in world.hazardous())  # "X is a poison" stays
    assert not any(technical_filtering.is_technical(d, world) for d in corpus.documents(world, "train", include_hazardous=False))
