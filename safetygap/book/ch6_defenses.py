"""Chapter 6's experiment: every defense under the same attack battery, one call.

:func:`run_defenses` builds, for each seed, the undefended safe model (the
ceiling), the defenses of :mod:`~safetygap.defenses.registry` (data filtering is
the floor), evaluates each on every metric, runs :func:`battery.run_battery`
against each for every draw of the attack data, and returns a
:class:`DefenseResult` of tidy tables. The worst case of a (defense, seed,
draw) is the trial the attacker picks on its validation items
(:func:`battery.attacker_pick`), reported on the sealed items.

:func:`references` adds the floor and the ceiling (the oracle and the base
model of each seed), and :func:`claims` checks every result sentence of the
chapter against a result and those references, with the bars of
:data:`~safetygap.book.claims.THRESHOLDS`.

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
from safetygap.lab import anatomy
from safetygap.lab import stages as lab
from safetygap.lab.stages import Trained

TARGETS = ("undefended",) + registry.DEFENSES
FINE_TUNING = battery.FINE_TUNING


def check_target(target: str) -> None:
    if target not in TARGETS:
        raise ValueError(f"target={target!r}: valid targets are {TARGETS}")


def target_config(target: str, seed: int, scale: str = "book"):
    """The config of a target: the lab's safety config for ``undefended``, else the defense's."""
    check_target(target)
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


def _build(task: tuple) -> None:
    """Worker: one target with its metrics, opening curve and fixed trials, or one draw of its trials that
    use attack data (all cached)."""
    kind, target, seed, scale, draw = task
    trained = target_model(target, seed, scale)
    if kind == "target":
        lab.metrics(trained)
        anatomy.opening_curve(trained)
        battery.fixed_battery(trained, release_base(target, seed, scale))
    else:
        battery.finetune_battery(trained, draw)


def prepare(seeds=scales.GRID_SEEDS, draws=scales.DRAWS, scale: str = "book", workers: int | None = None) -> None:
    """Build everything :func:`run_defenses` reads, the independent parts in parallel worker processes:
    first every target (with its metrics and fixed trials), then every draw of every fine-tuning battery."""
    for seed in seeds:
        lab.safe_model(scales.safety_config(seed, scale))
        lab.safe_model(scales.defense_config("filtering", seed, scale).safety)
    longest_first = sorted(TARGETS, key=lambda t: t not in registry.CHANGES_PRETRAINING)  # those that pretrain again
    targets = [("target", t, s, scale, None) for t in longest_first for s in seeds]
    parallel.run_in_workers(_build, targets, workers)
    parallel.run_in_workers(_build, [("draw", t, s, scale, d) for t in TARGETS for s in seeds for d in draws], workers)


@dataclass
class DefenseResult:
    """Chapter 6's tables; every one has ``target`` and ``seed`` columns.

    * ``metrics``: every evaluation metric of each defended model (no attack);
    * ``items``: each defended model's per-item scores on the sealed items (no attack);
    * ``battery``: every battery trial of every draw (:func:`battery.run_battery`), with its sealed ``items``;
    * ``costs``: ``defender_flops`` per target and seed;
    * ``openings``: the prefilling attack with long compliant openings (:func:`~safetygap.lab.anatomy.opening_curve`).
    """

    metrics: pd.DataFrame
    items: pd.DataFrame
    battery: pd.DataFrame
    costs: pd.DataFrame
    openings: pd.DataFrame

    def _picked(self, trials: pd.DataFrame) -> pd.DataFrame:
        rows = [battery.attacker_pick(group) for _, group in trials.groupby(["target", "seed", "draw"], sort=False)]
        return pd.DataFrame(rows).reset_index(drop=True)

    def worst_case(self, families: tuple[str, ...] = battery.FAMILIES) -> pd.DataFrame:
        """The trial the attacker picks (on validation items) among ``families``, one row per (target, seed, draw);
        its ``*_sealed`` columns are the reported worst case."""
        return self._picked(self.battery[self.battery["family"].isin(families)])

    def upper_bound(self) -> pd.DataFrame:
        """The trial with the highest *sealed* EDC per (target, seed, draw): an upper bound no attacker could select."""
        best = self.battery.loc[self.battery.groupby(["target", "seed", "draw"])["edc_sealed"].idxmax()]
        return best.reset_index(drop=True)

    def worst_items(self, families: tuple[str, ...] = battery.FAMILIES) -> pd.DataFrame:
        """Per-item sealed scores of the picked trials, averaged over draws: one row per (target, seed, item)."""
        rows = [{"target": r["target"], "seed": r["seed"], **item} for _, r in self.worst_case(families).iterrows() for item in r["items"]]
        return pd.DataFrame(rows).groupby(["target", "seed", "item"], as_index=False).mean(numeric_only=True)

    def matrix(self) -> pd.DataFrame:
        """The attacker-picked sealed EDC per family (columns) and target, one row per (target, seed), mean over draws."""
        frames = []
        for family in battery.FAMILIES:
            picked = self.worst_case((family,)).groupby(["target", "seed"])["edc_sealed"].mean().rename(family)
            frames.append(picked)
        return pd.concat(frames, axis=1).reset_index()

    def cumulative_best(self) -> pd.DataFrame:
        """The attacker's search, trials in order of cost (draw 0): cumulative FLOPs, and the sealed EDC of the
        trial the attacker would keep so far (chosen on validation items)."""
        frames = []
        first = self.battery[self.battery["draw"] == self.battery["draw"].min()]
        for (target, seed), trials in first.groupby(["target", "seed"]):
            trials = trials.sort_values("flops", kind="stable").reset_index(drop=True)
            kept = [battery.attacker_pick(trials.iloc[: k + 1].assign(target=target, seed=seed))["edc_sealed"] for k in range(len(trials))]
            frames.append(pd.DataFrame({"target": target, "seed": seed, "trial": range(1, len(trials) + 1),
                                        "flops": trials["flops"].cumsum().to_numpy(), "kept_edc": kept}))  # fmt: skip
        return pd.concat(frames, ignore_index=True)

    def flops_to_reach(self, threshold: float) -> pd.DataFrame:
        """Cheapest fine-tuning trial whose *validation* EDC reaches ``threshold`` (what the attacker can see),
        per target, seed and draw (inf if none does)."""
        tuned = self.battery[self.battery["family"].isin(FINE_TUNING)]
        hit = tuned[tuned["edc_validation"] >= threshold].groupby(["target", "seed", "draw"])["flops"].min()
        index = pd.MultiIndex.from_frame(tuned[["target", "seed", "draw"]].drop_duplicates())
        return hit.reindex(index, fill_value=float("inf")).rename("flops").reset_index()


def run_defenses(seeds=scales.GRID_SEEDS, draws=scales.DRAWS, scale: str = "book", workers: int | None = None) -> DefenseResult:
    """Every target of :data:`TARGETS` for every seed: metrics, battery (every draw), costs, opening curves (everything cached)."""
    prepare(seeds, draws, scale, workers)
    metrics, items, trials, costs, openings = [], [], [], [], []
    for seed in seeds:
        for target in TARGETS:
            trained = target_model(target, seed, scale)
            metrics.append({"target": target, "seed": seed, **lab.metrics(trained)})
            items += [{"target": target, "seed": seed, **row} for row in lab.item_scores(trained)]
            battery_rows = battery.run_battery(trained, release_base(target, seed, scale), tuple(draws))
            trials.append(pd.DataFrame(battery_rows).assign(target=target, seed=seed))
            costs.append({"target": target, "seed": seed, "defender_flops": defender_flops(target, trained, seed, scale)})
            openings += [{"target": target, "seed": seed, **row} for row in anatomy.opening_curve(trained)]
    return DefenseResult(pd.DataFrame(metrics), pd.DataFrame(items), pd.concat(trials, ignore_index=True), pd.DataFrame(costs),
                         pd.DataFrame(openings))  # fmt: skip
