"""Chapter 6's experiment: every defense under the same attack battery, one call.

:func:`run_defenses` builds, for each seed, the undefended safe model (the
ceiling), the seven defenses of :mod:`~safetygap.defenses.registry` (data filtering is
the floor), evaluates each on every metric, runs :func:`battery.run_battery`
against each, and returns a :class:`DefenseResult` of tidy tables.

The defenses and batteries of different (model, seed) pairs are independent,
so they are built side by side in worker processes (:mod:`~safetygap.core.parallel`).
What they start from (base, oracle and safe models, shared with earlier
chapters) is built first, in this process, as those chapters build it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from safetygap.attacks import battery
from safetygap.book import scales
from safetygap.core import parallel
from safetygap.defenses import registry
from safetygap.lab import stages as lab
from safetygap.lab.stages import Trained

TARGETS = ("undefended",) + registry.DEFENSES
FINE_TUNING = ("full", "schedule", "lora", "data")


def _check(target: str) -> None:
    if target not in TARGETS:
        raise ValueError(f"target={target!r}: valid targets are {TARGETS}")


def target_config(target: str, seed: int, scale: str = "book"):
    """The config of a target: the lab's safety config for ``undefended``, else the defense's."""
    _check(target)
    return scales.safety_config(seed, scale) if target == "undefended" else scales.defense_config(target, seed, scale)


def target_model(target: str, seed: int, scale: str = "book") -> Trained:
    config = target_config(target, seed, scale)
    return lab.safe_model(config) if target == "undefended" else registry.defended_model(config)


def release_base(target: str, seed: int, scale: str = "book") -> Trained:
    config = target_config(target, seed, scale)
    return lab.base_model(config.base) if target == "undefended" else registry.release_base(config)


def defender_flops(target: str, trained: Trained, seed: int, scale: str = "book") -> float:
    """FLOPs the defender spent after pretraining on ``trained``, the model of ``target``."""
    config = target_config(target, seed, scale)
    return trained.report.flops if target == "undefended" else registry.defender_flops(config, trained)


def _build(task: tuple[str, int, str]) -> None:
    """Worker: build one target, its metrics and its battery (all cached in the store)."""
    target, seed, scale = task
    trained = target_model(target, seed, scale)
    lab.metrics(trained)
    battery.run_battery(trained, release_base(target, seed, scale), seed)


def prepare(seeds=scales.BOOK_SEEDS, scale: str = "book", workers: int | None = None) -> None:
    """Build everything :func:`run_defenses` reads, the independent parts in parallel worker processes."""
    for seed in seeds:
        lab.safe_model(scales.safety_config(seed, scale))
        lab.safe_model(scales.defense_config("filtering", seed, scale).safety)
    tasks = [(t, s, scale) for t in reversed(TARGETS) for s in seeds]  # gradient routing, the longest, first
    parallel.run_in_workers(_build, tasks, workers)


@dataclass
class DefenseResult:
    """Chapter 6's tables; every one has ``target`` and ``seed`` columns.

    * ``metrics``: every evaluation metric of each defended model (no attack);
    * ``battery``: every battery trial (:func:`battery.run_battery`);
    * ``costs``: ``defender_flops`` per target and seed.
    """

    metrics: pd.DataFrame
    battery: pd.DataFrame
    costs: pd.DataFrame

    def worst_case(self) -> pd.DataFrame:
        """The trial with the highest effective dangerous capability, per target and seed."""
        best = self.battery.loc[self.battery.groupby(["target", "seed"])["edc"].idxmax()]
        return best.reset_index(drop=True)

    def matrix(self) -> pd.DataFrame:
        """Worst-case EDC per family (columns) and target (rows), one row per (target, seed)."""
        worst = self.battery.groupby(["target", "seed", "family"])["edc"].max().unstack("family")
        return worst[list(battery.FAMILIES)].reset_index()

    def cumulative_best(self) -> pd.DataFrame:
        """The attacker's search, trials in order of cost: cumulative FLOPs and best EDC so far."""
        frames = []
        for (target, seed), trials in self.battery.groupby(["target", "seed"]):
            trials = trials.sort_values("flops", kind="stable")
            frames.append(pd.DataFrame({"target": target, "seed": seed, "trial": range(1, len(trials) + 1),
                                        "flops": trials["flops"].cumsum().to_numpy(),
                                        "best_edc": trials["edc"].cummax().to_numpy()}))  # fmt: skip
        return pd.concat(frames, ignore_index=True)

    def flops_to_reach(self, threshold: float) -> pd.DataFrame:
        """Cheapest fine-tuning trial reaching ``edc >= threshold``, per target and seed (inf if none does)."""
        tuned = self.battery[self.battery["family"].isin(FINE_TUNING)]
        hit = tuned[tuned["edc"] >= threshold].groupby(["target", "seed"])["flops"].min()
        index = pd.MultiIndex.from_frame(self.costs[["target", "seed"]])
        return hit.reindex(index, fill_value=float("inf")).rename("flops").reset_index()


def run_defenses(seeds=scales.BOOK_SEEDS, scale: str = "book", workers: int | None = None) -> DefenseResult:
    """Every target of :data:`TARGETS` for every seed: metrics, battery, costs (everything cached)."""
    prepare(seeds, scale, workers)
    metrics, trials, costs = [], [], []
    for seed in seeds:
        for target in TARGETS:
            trained = target_model(target, seed, scale)
            metrics.append({"target": target, "seed": seed, **lab.metrics(trained)})
            battery_rows = battery.run_battery(trained, release_base(target, seed, scale), seed)
            trials.append(pd.DataFrame(battery_rows).assign(target=target, seed=seed))
            costs.append({"target": target, "seed": seed, "defender_flops": defender_flops(target, trained, seed, scale)})
    return DefenseResult(pd.DataFrame(metrics), pd.concat(trials, ignore_index=True), pd.DataFrame(costs))
