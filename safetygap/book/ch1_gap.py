"""Chapter 1's experiment: the safety gap, and what it costs to open it.

For each seed: build the base and the safe model, run the headline attack (10
harmful examples on attacker items, full fine-tuning), and evaluate all three
on every metric. The compute table puts the defender's bill (safety training,
with pretraining shown for scale) next to the attacker's.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from safetygap.attacks.finetuning import attacked_model
from safetygap.book import scales
from safetygap.core import parallel
from safetygap.lab import stages as lab

MODELS = ("base", "safe", "attacked")


@dataclass
class GapResult:
    """``metrics``: one row per (model, seed), one column per metric.
    ``compute``: one row per (stage, seed) with steps, examples, tokens, flops, seconds."""

    metrics: pd.DataFrame
    compute: pd.DataFrame

    def removal_ratio(self) -> pd.Series:
        """Attack FLOPs over safety-training FLOPs, one value per seed."""
        flops = self.compute.pivot(index="seed", columns="stage", values="flops")
        return flops["attack"] / flops["safety"]


def _build_seed(task: tuple[int, str, str]) -> None:
    """Worker: one seed's base, safe and attacked models and their metrics, into the store."""
    seed, scale, model = task
    for trained in (
        lab.base_model(scales.base_config(seed, scale, model)),
        lab.safe_model(scales.safety_config(seed, scale, model)),
        attacked_model(scales.attack_config(seed, scale, model)),
    ):
        lab.metrics(trained)


def run_gap(seeds=scales.BOOK_SEEDS, scale: str = "book", model: str = "tiny") -> GapResult:
    """Base, safe and attacked models for each seed, evaluated (everything cached; seeds built in parallel)."""
    parallel.run_in_workers(_build_seed, [(seed, scale, model) for seed in seeds])
    metric_rows, compute_rows = [], []
    for seed in seeds:
        base = lab.base_model(scales.base_config(seed, scale, model))
        safe = lab.safe_model(scales.safety_config(seed, scale, model))
        attacked = attacked_model(scales.attack_config(seed, scale, model))
        for name, trained in zip(MODELS, (base, safe, attacked)):
            metric_rows.append({"model": name, "seed": seed, **lab.metrics(trained)})
        for stage, trained in (("pretraining", base), ("safety", safe), ("attack", attacked)):
            r = trained.report
            compute_rows.append(
                {"stage": stage, "seed": seed, "steps": r.steps, "examples": r.examples, "tokens": r.tokens,
                 "flops": r.flops, "seconds": r.seconds}
            )  # fmt: skip
    return GapResult(pd.DataFrame(metric_rows), pd.DataFrame(compute_rows))
