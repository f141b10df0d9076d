"""Choosing a refusal direction among the candidates: one rule, used by chapter 2 and by the battery.

Every candidate (residual point x position offset, :class:`~safetygap.attacks.directions.Candidates`)
is scored on prompts the chooser may look at: the hazardous requests of the
attacker's *validation* items (the candidates were read on the attacker's
training items; sealed items are kept for the final evaluation) and harmless
prompts about ``train`` items. The rule (:func:`select`),
after :cite:t:`arditi2024refusal`:

1. only candidates at residual points ``i <= (1 - discard_last_fraction) L``;
   near the output a direction only says which token comes next (removing it
   there is little more than banning the word "sorry");
2. if ``min_induced_refusal > 0``, only candidates whose *addition* makes at
   least that share of harmless prompts start with the refusal word; if none
   does, keep all (the table's ``induces`` column shows it: on such a model no
   candidate is a refusal direction in Arditi et al.'s sense);
3. prefer candidates whose removal moves the first reply token on harmless
   prompts by at most ``kl_threshold`` (mean KL, nats); if none does, keep all;
4. of those, the one whose removal lowers the refusal log-odds most.

Chapter 2 asks for all four (Arditi et al.'s selection); the battery's attacker
drops step 2: all it wants is a model that answers.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from safetygap.core import evaluation
from safetygap.core.hooks import n_layers
from safetygap.core.scoring import mean
from safetygap.attacks.directions import (
    EDITS, MIN_NORM, Candidates, activation_addition, encode_prompts, harmful_prompts, harmless_prompts, removal, unit,
)  # fmt: skip
from safetygap.world import corpus
from safetygap.world.corpus import Chat
from safetygap.world.world import World


@dataclass(frozen=True)
class SelectionConfig:
    """The selection rule's settings (see the module docstring).

    * ``discard_last_fraction``: only points ``i <= (1 - fraction) * L`` are
      candidates. With ``L = 2`` and 0.2, points 0 and 1 stay and point 2, the
      input of the unembedding, goes; 0 keeps them all.
    * ``kl_threshold``: the KL bound of step 3; ``kl_prompts`` harmless prompts
      (evenly spaced; ``None``: all of them) measure it.
    * ``min_induced_refusal``: step 2's bar (0 turns step 2 off), tested by
      adding the candidate with scale ``induce_scale``.
    """

    discard_last_fraction: float = 0.2
    kl_threshold: float = 0.1
    kl_prompts: int | None = None
    min_induced_refusal: float = 0.5
    induce_scale: float = 2.0

    def __post_init__(self) -> None:
        if not 0 <= self.discard_last_fraction < 1:
            raise ValueError(f"SelectionConfig.discard_last_fraction={self.discard_last_fraction!r}: must be in [0, 1)")
        if self.kl_threshold <= 0:
            raise ValueError(f"SelectionConfig.kl_threshold={self.kl_threshold!r}: must be > 0")
        if self.kl_prompts is not None and self.kl_prompts < 1:
            raise ValueError(f"SelectionConfig.kl_prompts={self.kl_prompts!r}: must be >= 1, or None for all")
        if not 0 <= self.min_induced_refusal <= 1:
            raise ValueError(f"SelectionConfig.min_induced_refusal={self.min_induced_refusal!r}: must be in [0, 1]")
        if self.induce_scale <= 0:
            raise ValueError(f"SelectionConfig.induce_scale={self.induce_scale!r}: must be > 0")

    def early_points(self, model: PreTrainedModel) -> list[int]:
        """The residual points step 1 keeps."""
        deepest = (1 - self.discard_last_fraction) * n_layers(model)
        return [p for p in range(n_layers(model) + 1) if p <= deepest]


@torch.no_grad()
def first_token_logprobs(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, chats: list[Chat]) -> torch.Tensor:
    """Log-probabilities of the first reply token, shape (B, vocab)."""
    logits = model(**encode_prompts(tokenizer, chats, model.device)).logits[:, -1]
    return torch.log_softmax(logits.float(), dim=-1)


def mean_kl(reference: torch.Tensor, edited: torch.Tensor) -> float:
    """Mean over rows of KL(reference || edited); both are log-probabilities of shape (B, vocab)."""
    return float((reference.exp() * (reference - edited)).sum(-1).mean())


def refusal_word_direction(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast) -> torch.Tensor:
    """The unit direction of the final residual stream that most raises the refusal word's logit, shape (d,).

    The logit is ``u · (g ⊙ h / rms(h))`` for the word's unembedding row ``u`` and
    the final norm's gain ``g``, so the direction is ``g ⊙ u``, normalised.
    """
    refusal_id = tokenizer.convert_tokens_to_ids(corpus.REFUSAL_WORD)
    return unit(model.lm_head.weight[refusal_id].detach().float() * model.model.norm.weight.detach().float())


def kl_prompts(world: World, config: SelectionConfig) -> list[Chat]:
    """The harmless prompts step 3 measures KL on."""
    every = harmless_prompts(world)
    return every if config.kl_prompts is None else every[:: max(1, len(every) // config.kl_prompts)]


def score_candidates(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    world: World,
    candidates: Candidates,
    config: SelectionConfig = SelectionConfig(),
    points: list[int] | None = None,
) -> pd.DataFrame:
    """Every candidate's scores, one row per (point, offset), at ``points`` (default: every point).

    Columns: ``norm`` of ``r``; ``cos_refusal_word``, its cosine with the
    direction that most raises the refusal word's logit (near the output a
    candidate is mostly that word); for each removal edit ``e`` in
    :data:`~safetygap.attacks.directions.EDITS`, ``refusal_score_e`` (mean
    refusal log-odds on the validation items' requests, lower is better) and
    ``kl_e`` (step 3's KL); ``induced_refusal`` (step 2's share, when step 2
    is on); ``early`` (step 1). A zero direction gets NaN scores.
    """
    harmful, harmless = harmful_prompts(world, "validation"), kl_prompts(world, config)
    reference = first_token_logprobs(model, tokenizer, harmless)
    refusal_id = tokenizer.convert_tokens_to_ids(corpus.REFUSAL_WORD)
    says_refusal = refusal_word_direction(model, tokenizer)
    early = config.early_points(model)
    rows = []
    for point in range(n_layers(model) + 1) if points is None else points:
        for offset in candidates.offsets:
            r = candidates.direction(point, offset)
            row = {"point": point, "offset": offset, "norm": float(r.norm()), "early": point in early}
            if row["norm"] >= MIN_NORM:
                row["cos_refusal_word"] = float(unit(r) @ says_refusal)
                for edit in EDITS:
                    with removal(model, edit, candidates, point, offset):
                        row[f"refusal_score_{edit}"] = mean(evaluation.refusal_scores(model, tokenizer, harmful))
                        row[f"kl_{edit}"] = mean_kl(reference, first_token_logprobs(model, tokenizer, harmless))
                if config.min_induced_refusal > 0:
                    with activation_addition(model, r, point, config.induce_scale):
                        first = first_token_logprobs(model, tokenizer, harmless).argmax(-1)
                        row["induced_refusal"] = float((first == refusal_id).float().mean())
            rows.append(row)
    return pd.DataFrame(rows)


@dataclass
class Selection:
    """The chosen candidate: residual ``point``, position ``offset``, ``direction`` r of shape (d,),
    and ``table``, every candidate's scores with the rule's columns (``induces``, ``kl_ok``,
    ``eligible``, ``selected``)."""

    point: int
    offset: int
    direction: torch.Tensor
    table: pd.DataFrame


def select(table: pd.DataFrame, candidates: Candidates, edit: str, config: SelectionConfig = SelectionConfig()) -> Selection:
    """Apply the rule of the module docstring to a :func:`score_candidates` table, for removal by ``edit``."""
    if edit not in EDITS:
        raise ValueError(f"edit={edit!r}: valid edits are {EDITS}")
    table = table.copy()
    table["induces"] = table["induced_refusal"] >= config.min_induced_refusal if config.min_induced_refusal > 0 else True
    table["kl_ok"] = table[f"kl_{edit}"] <= config.kl_threshold
    early = table["early"] & (table["norm"] >= MIN_NORM)
    if not early.any():
        raise RuntimeError(f"no candidate direction passes step 1 of {config}:\n{table.to_string()}")
    pool = table[early & table["induces"]] if (early & table["induces"]).any() else table[early]
    table["eligible"] = table.index.isin(pool.index) & table["kl_ok"]
    preferred = table[table["eligible"]] if table["eligible"].any() else pool
    best = preferred[f"refusal_score_{edit}"].idxmin()
    table["selected"] = table.index == best
    point, offset = int(table.at[best, "point"]), int(table.at[best, "offset"])
    return Selection(point, offset, candidates.direction(point, offset), table)
