"""The two sizes every experiment runs at, and the seeds the book reports.

``book`` is what the chapters report. ``reduced`` is a smaller world and shorter
training, small enough that the test suite can rerun each headline experiment
in under a minute and check its claim.

Seeds (the sealed protocol): seed ``s`` draws its own world (names, amounts,
additives and item roles), the model's initialisation and the data order.
:data:`DEV_SEED` is the development seed on which the book's hyperparameters
were tuned: no chapter reports it. Chapters 1 and 2 report :data:`BOOK_SEEDS`;
chapter 2's grids and chapter 6 the first three of them (:data:`GRID_SEEDS`),
chapter 6 with :data:`DRAWS` draws of the attack data per defended model.
"""

from __future__ import annotations

import dataclasses

from safetygap.attacks.finetuning import AttackConfig
from safetygap.core.models import zoo_model
from safetygap.defenses import registry
from safetygap.lab.configs import BaseConfig, SafetyConfig
from safetygap.world.world import WorldConfig

SCALES = ("book", "reduced")
DEV_SEED = 0
BOOK_SEEDS = (1, 2, 3, 4, 5)
GRID_SEEDS = BOOK_SEEDS[:3]
DRAWS = (0, 1, 2)

_BOOK_BASE, _BOOK_SAFETY = BaseConfig(), SafetyConfig()
_WORLDS = {
    "book": _BOOK_BASE.world,
    "reduced": WorldConfig(
        hazardous_families=2, benign_families=2, products_per_family=12, lookalikes=4,
        ingredients=8, processes=4, places=12, regions=4, max_amount=5,
    ),
}  # fmt: skip
_PRETRAIN = {"book": _BOOK_BASE.train, "reduced": dataclasses.replace(_BOOK_BASE.train, steps=700, warmup=30)}
_SAFETY = {"book": _BOOK_SAFETY.train, "reduced": _BOOK_SAFETY.train}


def _check(scale: str) -> None:
    if scale not in SCALES:
        raise ValueError(f"scale={scale!r}: valid scales are {SCALES}")


def base_config(seed: int, scale: str = "book", model: str = "tiny", hazardous_documents: bool = True) -> BaseConfig:
    """Pretraining config of the lab's base model (or, without hazardous documents, the oracle)."""
    _check(scale)
    world = dataclasses.replace(_WORLDS[scale], seed=seed)  # a world per seed
    return BaseConfig(world, zoo_model(model), _PRETRAIN[scale], hazardous_documents, seed)


def safety_config(seed: int, scale: str = "book", model: str = "tiny") -> SafetyConfig:
    """Safety-training config on top of :func:`base_config`."""
    return dataclasses.replace(_BOOK_SAFETY, base=base_config(seed, scale, model), train=_SAFETY[scale])


def attack_config(seed: int, scale: str = "book", model: str = "tiny", **changes) -> AttackConfig:
    """The headline attack (10 harmful examples, full fine-tuning), with any field changed by keyword."""
    return AttackConfig(safety_config(seed, scale, model), seed=seed, **changes)


def defense_config(defense: str, seed: int, scale: str = "book", model: str = "tiny"):
    """The config of ``defense`` for the lab's model of ``seed`` at ``scale`` (:mod:`~safetygap.defenses.registry`)."""
    return registry.defense_config(defense, safety_config(seed, scale, model))
