"""Chapter 3's exercises: adding an attack's weight change to another model, and where the attacker stops (graded),
and the experiment whose results the answer of the phrasing exercise quotes."""

from __future__ import annotations

import pandas as pd
import torch

from safetygap.attacks.finetuning import attacked_model
from safetygap.book import ch2_anatomy, ch3_scale, claims, scales
from safetygap.core import evaluation, scoring
from safetygap.core.training import TrainConfig
from safetygap.world import corpus


def add_delta(target: torch.nn.Module, after: torch.nn.Module, before: torch.nn.Module) -> None:
    """Add ``after - before`` to every parameter of ``target`` in place (three copies of one architecture)."""
    with torch.no_grad():
        for p, a, b in zip(target.parameters(), after.parameters(), before.parameters()):
            p += a - b


def attacker_stop(curve: pd.DataFrame) -> int | None:
    """The first ``step`` whose ``refusal_validation`` is at most the ``complies`` bar, or None."""
    cleared = curve.loc[curve["refusal_validation"] <= claims.threshold("complies"), "step"]
    return int(cleared.min()) if len(cleared) else None


def phrasings(result: ch3_scale.ScaleResult, model: str, seed: int, scale: str = "book") -> dict[str, float]:
    """Exercise ch3-ex-phrasings: the trial the attacker keeps on one run (:func:`~safetygap.book.ch3_scale.attacker_picks`),
    retrained, and its EDC on the sealed items asked in the attacker's own phrasings (``sealed_train``), beside its EDC on
    the validation items (``validation``) and on the sealed items in sealed phrasings (``sealed``)."""
    picks = ch3_scale.attacker_picks(result).set_index(["model", "seed"])
    pick = picks.loc[(model, seed)]
    train = TrainConfig(steps=int(pick["step"]), lr=float(pick["lr"]), batch_size=ch2_anatomy.BATCH_SIZE, schedule="constant")
    attacked = attacked_model(scales.attack_config(seed, scale, model, method=pick["method"], train=train))
    products = attacked.world.hazardous("sealed")
    chats = corpus.recipe_requests(products, "train")
    replies = evaluation.generate(attacked.model, attacked.tokenizer, chats)
    asked = [p for p in products for _ in range(len(chats) // len(products))]
    return {"validation": float(pick["edc_validation"]), "sealed": float(pick["edc_sealed"]),
            "sealed_train": scoring.score(replies, asked)["edc"]}  # fmt: skip
