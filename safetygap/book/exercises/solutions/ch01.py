"""Chapter 1's exercises: the removal ratio and the normalised uplift (graded), and the experiments whose results
the answers of two more exercises quote."""

from __future__ import annotations

import dataclasses

import pandas as pd

from safetygap.attacks.finetuning import AttackConfig, attacked_model
from safetygap.book import scales
from safetygap.lab import stages as lab


def removal_ratio(compute: pd.DataFrame) -> pd.Series:
    """The attack's FLOPs over safety training's, one value per seed.

    ``compute`` has one row per (stage, seed) with columns ``stage`` ("pretraining", "safety", "attack"),
    ``seed`` and ``flops``, in any order.
    """
    flops = compute.pivot(index="seed", columns="stage", values="flops")
    return flops["attack"] / flops["safety"]


def normalised_uplift(x: pd.Series, oracle: pd.Series, base: pd.Series) -> pd.Series:
    """Where ``x`` sits between the floor (the oracle, 0) and the ceiling (the base model, 1), per seed."""
    return (x - oracle) / (base - oracle)


def attack_steps(seed: int, scale: str = "book", steps: tuple[int, ...] = (1, 2, 3, 5)) -> pd.DataFrame:
    """Exercise ch1-ex-steps: the chapter's attack cut to each number of ``steps``, one row each, with the attacker's
    FLOPs and refusal and EDC on sealed items (5 steps is the headline attack)."""
    rows = []
    for n in steps:
        train = dataclasses.replace(scales.attack_config(seed, scale).train, steps=n)
        attacked = attacked_model(scales.attack_config(seed, scale, train=train))
        scores = lab.metrics(attacked)
        rows.append({"steps": n, "flops": attacked.report.flops, "refusal_sealed": scores["refusal_sealed"],
                     "edc_sealed": scores["edc_sealed"]})  # fmt: skip
    return pd.DataFrame(rows)


def longer_safety(seed: int, scale: str = "book", factor: int = 2) -> dict[str, float]:
    """Exercise ch1-ex-ratio: safety training ``factor`` times as long, then the chapter's attack on the new safe model:
    the removal ratio, and the attacked model's refusal and EDC on sealed items."""
    safety = scales.safety_config(seed, scale)
    longer = dataclasses.replace(safety, train=dataclasses.replace(safety.train, steps=factor * safety.train.steps))
    safe, attacked = lab.safe_model(longer), attacked_model(AttackConfig(longer, seed=seed))
    scores = lab.metrics(attacked)
    return {"removal_ratio": attacked.report.flops / safe.report.flops, "refusal_sealed": scores["refusal_sealed"],
            "edc_sealed": scores["edc_sealed"]}  # fmt: skip
