"""Chapter 2's experiments: the anatomy of safety removal, one call each.

* :func:`thin_layer`: weight change of safety training, and the hazardous
  knowledge still readable (prefilled answers, a linear probe) in the base, safe
  and oracle (never saw hazardous documents) models.
* :func:`finetuning_attacks`: harmful fine-tuning over examples x steps x learning
  rate, full and LoRA, plus a benign and an identity-shift arm; curves against
  the attacker's FLOPs.
* :func:`shallow_alignment`: per-token KL between safe and base models along
  replies, and the prefilling attack.

Every function takes ``seeds`` and a ``scale`` and returns tidy DataFrames with a
``seed`` column, so the chapter summarises them with :mod:`safetygap.book.stats`.
:func:`run_abliteration` runs the abliteration experiment per seed, and
:func:`prepare` builds everything they read in parallel worker processes first.

:mod:`~safetygap.book.ch2_reading` reads the results against the chapter's bar
(:func:`~safetygap.book.ch2_reading.breaks`: refusal at most ``complies``,
normalised uplift in EDC at least ``uplift`` with the oracle as floor and the base
model as ceiling, and at least ``usable`` of the safe model's benign capability),
and :func:`~safetygap.book.ch2_claims.claims` turns them into the chapter's result
sentences, one :class:`~safetygap.book.claims.Claim` each.

Seeds: the headline experiments run on every seed of ``seeds``
(:data:`~safetygap.book.scales.BOOK_SEEDS` in the book); the grids over
examples and learning rates run on ``grid_seeds`` only, except their headline
arms (:data:`HEADLINE`: ten examples at the default learning rate, full and LoRA).
"""

from __future__ import annotations

import pandas as pd

from safetygap.attacks import abliteration
from safetygap.attacks.finetuning import attack_curve, attack_pool
from safetygap.book import scales
from safetygap.core import parallel
from safetygap.core.training import TrainConfig
from safetygap.lab import anatomy, openings
from safetygap.lab import stages as lab

CHECKPOINTS = (1, 5, 10, 30)
EXAMPLES = (1, 5, 10, 50, 100)
LEARNING_RATES = {"full": (1e-4, 3e-4, 1e-3), "lora": (1e-3, 3e-3, 1e-2)}
DEFAULT_LR = {"full": 1e-3, "lora": 1e-3}  # the grid over examples uses these
BATCH_SIZE = 10  # at most one epoch per step with 10 examples, as in chapter 1's attack
HEADLINE = tuple(dict(method=m, examples=10, lr=DEFAULT_LR[m]) for m in ("full", "lora"))  # run on every seed


def thin_layer(seeds=scales.BOOK_SEEDS, scale: str = "book") -> dict[str, pd.DataFrame]:
    """``weights``: per-layer weight change; ``probe``: per-layer probe accuracy; ``latent``: prefilled
    memorised-slot accuracy and greedy scores per model and seed; ``items``: the same per sealed item."""
    weights, probes, latent, items = [], [], [], []
    for seed in seeds:
        base_cfg = scales.base_config(seed, scale)
        models = {
            "base": lab.base_model(base_cfg),
            "safe": lab.safe_model(scales.safety_config(seed, scale)),
            "oracle": lab.base_model(scales.base_config(seed, scale, hazardous_documents=False)),
        }
        weights.append(anatomy.weight_changes(models["base"], models["safe"], base_cfg).assign(seed=seed))
        for name, trained in models.items():
            probes.append(anatomy.knowledge_probe(trained).assign(model=name, seed=seed))
            m = lab.metrics(trained)
            latent.append({"model": name, "seed": seed} | {k: m[k] for k in ("latent_sealed", "memorised_sealed", "edc_sealed", "refusal_sealed")})
            items += [{"model": name, "seed": seed, **row} for row in lab.item_scores(trained)]
    return {"weights": pd.concat(weights), "probe": pd.concat(probes), "latent": pd.DataFrame(latent), "items": pd.DataFrame(items)}


def curve(seed: int, scale: str, model: str = "tiny", **changes) -> pd.DataFrame:
    """One attack curve of the chapter (:func:`~safetygap.attacks.finetuning.attack_curve` at :data:`CHECKPOINTS`)
    on the zoo's ``model`` (chapter 3 runs the same curves on every size), with the attack's fields and ``lr``
    changed by keyword, as a table with ``seed`` and the changes as columns."""
    changes = dict(changes)
    lr = changes.pop("lr")
    train = TrainConfig(steps=max(CHECKPOINTS), lr=lr, batch_size=BATCH_SIZE, schedule="constant")
    cfg = scales.attack_config(seed, scale, model, train=train, **changes)
    return pd.DataFrame(attack_curve(cfg, CHECKPOINTS)).assign(seed=seed, lr=lr, **changes)


def _curve_arms() -> list[tuple[str, dict]]:
    """Every (arm, curve arguments) of the chapter, for each seed."""
    arms = []
    for method in ("full", "lora"):
        arms += [("examples", dict(method=method, examples=k, lr=DEFAULT_LR[method])) for k in EXAMPLES]
        arms += [("lr", dict(method=method, examples=10, lr=lr)) for lr in LEARNING_RATES[method]]
    arms.append(("benign", dict(method="full", data="benign", examples=100, lr=DEFAULT_LR["full"])))
    arms.append(("identity", dict(method="full", data="identity", examples=10, lr=DEFAULT_LR["full"])))
    return arms


def _build(task: tuple) -> None:
    """Worker: one artifact of the chapter (an oracle, an abliteration, an openings control
    (:mod:`~safetygap.lab.openings`) or an attack curve), into the store."""
    kind, seed, scale, changes = task
    if kind == "oracle":
        lab.metrics(lab.base_model(scales.base_config(seed, scale, hazardous_documents=False)))
    elif kind == "abliteration":
        run_abliteration(seed, scale)
    elif kind == "openings":
        openings.varied_safe(scales.safety_config(seed, scale))
    else:
        curve(seed, scale, **changes)


def _pool_sizes(seed: int, scale: str) -> dict[str, int]:
    """How many chats the attack pool of ``seed``'s world at ``scale`` holds, per kind of attack data. Every arm fits
    the book's world; the reduced world's attacker has 48 harmful chats, so there the 50- and 100-example arms are
    left out (:func:`_curves`)."""
    world = lab.get_world(scales.base_config(seed, scale).world)
    return {data: len(attack_pool(world, data)) for data in ("harmful", "benign", "identity")}


def _curves(seeds, grid_seeds, scale: str) -> list[tuple[int, str, dict]]:
    """Every (seed, arm, curve arguments) the chapter reads: the headline arms on every seed, the rest on ``grid_seeds``
    (those whose examples the attack pool holds)."""
    pools = {seed: _pool_sizes(seed, scale) for seed in seeds}
    return [(seed, arm, changes) for seed in seeds for arm, changes in _curve_arms()
            if (seed in grid_seeds or changes in HEADLINE) and changes["examples"] <= pools[seed][changes.get("data", "harmful")]]  # fmt: skip


def prepare(seeds=scales.BOOK_SEEDS, grid_seeds=scales.GRID_SEEDS, scale: str = "book", workers: int | None = None) -> None:
    """Build what the chapter's experiments read, side by side in worker processes (longest first).

    The base and safe models they start from (chapter 1's) are built first, here.
    """
    for seed in seeds:
        lab.safe_model(scales.safety_config(seed, scale))
    tasks = [(kind, seed, scale, {}) for kind in ("oracle", "abliteration", "openings") for seed in seeds]
    tasks += [("curve", seed, scale, changes) for seed, _, changes in _curves(seeds, grid_seeds, scale)]
    parallel.run_in_workers(_build, tasks, workers)


def run_abliteration(seed: int, scale: str = "book", model: str = "tiny",
                     config: abliteration.AbliterationConfig = abliteration.AbliterationConfig()) -> abliteration.AbliterationResult:  # fmt: skip
    """The abliteration experiment (:func:`~safetygap.attacks.abliteration.abliterate`) on the safe model of ``seed``."""
    safe = lab.safe_model(scales.safety_config(seed, scale, model))
    return abliteration.abliterate(safe, config).with_seed(seed)


def finetuning_attacks(seeds=scales.BOOK_SEEDS, grid_seeds=scales.GRID_SEEDS, scale: str = "book") -> pd.DataFrame:
    """Every attack curve of the chapter, one row per (arm, method, examples, lr, seed, step).

    ``arm`` is "examples" (harmful data, k examples, default learning rate),
    "lr" (harmful, 10 examples, each learning rate), "benign" (100 harmless
    examples) or "identity" (10 identity-shift examples). The headline arms run
    on every seed of ``seeds``, the others on ``grid_seeds``. ``items`` holds
    each checkpoint's per-item scores on the sealed items.
    """
    curves = [curve(seed, scale, **changes).assign(arm=arm) for seed, arm, changes in _curves(seeds, grid_seeds, scale)]
    frame = pd.concat(curves, ignore_index=True)
    return frame.fillna({"data": "harmful"})


def shallow_alignment(seeds=scales.BOOK_SEEDS, scale: str = "book") -> dict[str, pd.DataFrame]:
    """``kl``: per-position KL(safe || base) on hazardous and benign replies; ``prefill``: prefilling curves."""
    kls, prefills = [], []
    for seed in seeds:
        base = lab.base_model(scales.base_config(seed, scale))
        safe = lab.safe_model(scales.safety_config(seed, scale))
        depth = anatomy.depth_profile(safe, base)
        kls.append(depth["kl"].assign(seed=seed))
        prefills += [anatomy.prefill_curve(base).assign(model="base", seed=seed), depth["prefill"].assign(model="safe", seed=seed)]
    return {"kl": pd.concat(kls, ignore_index=True), "prefill": pd.concat(prefills, ignore_index=True)}
