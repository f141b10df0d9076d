"""The abliteration experiment: find the refusal direction, remove it, add it, and score each model.

:func:`abliterate` reads the candidate directions on the attacker's items
(:func:`~safetygap.attacks.directions.candidate_directions`), selects one on
the attacker's *validation* items (:mod:`~safetygap.attacks.selection`, Arditi
et al.'s rule), and evaluates the safe model as it is, under directional
ablation, under ACE and under activation addition, on the *sealed* items, so no
item is used twice. The result is cached in the store next to the model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pandas as pd
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from safetygap.attacks.directions import EDITS, activation_addition, candidate_directions, removal
from safetygap.attacks.selection import SelectionConfig, score_candidates, select
from safetygap.core import evaluation, store
from safetygap.core.evaluation import EvalConfig
from safetygap.core.scoring import is_refusal, mean
from safetygap.lab.stages import Trained
from safetygap.world.corpus import Chat
from safetygap.world.world import World

CONDITIONS = ("safe", "ablation", "ace", "addition")


@dataclass(frozen=True)
class AbliterationConfig:
    """Where to look for the refusal direction, how to pick one, and how hard to add it.

    * ``positions``: how many post-instruction positions (the last prompt tokens) to read.
    * ``selection``: the selection rule (:class:`~safetygap.attacks.selection.SelectionConfig`);
      ``select_by``: the removal edit (one of :data:`~safetygap.attacks.directions.EDITS`) whose scores rank candidates.
    * ``addition_scale``: the ``α`` of activation addition, ``h + α r``. Arditi
      et al. add ``r`` itself (``α = 1``), which moves the last token's mean onto
      the harmful mean; in our two-layer models that is not enough, since the
      next layer also reads the earlier tokens, which stay harmless. The
      default is 2, and ``addition_sweep`` shows the whole curve.
    * ``addition_sweep``: the scales at which addition is also evaluated, for a figure.
    """

    positions: int = 3
    selection: SelectionConfig = SelectionConfig()
    select_by: str = "ablation"
    addition_scale: float = 2.0
    addition_sweep: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 3.0)

    def __post_init__(self) -> None:
        if self.positions < 1:
            raise ValueError(f"AbliterationConfig.positions={self.positions!r}: must be >= 1")
        for scale in (self.addition_scale, *self.addition_sweep):
            if scale <= 0:
                raise ValueError(f"AbliterationConfig addition scale {scale!r}: scales must be > 0")
        if self.select_by not in EDITS:
            raise ValueError(f"AbliterationConfig.select_by={self.select_by!r}: valid edits are {EDITS}")


def refusal_rate(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, chats: list[Chat], config: EvalConfig) -> float:
    """Share of greedy replies that refuse."""
    return mean(is_refusal(r) for r in evaluation.generate(model, tokenizer, chats, config=config))


def condition_metrics(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, world: World, config: EvalConfig) -> dict:
    """Every metric of :func:`~safetygap.core.evaluation.evaluate` (``items`` included), plus
    ``benign_refusal``: the refusal rate on the sealed benign recipe requests."""
    benign = evaluation.capability_prompts(world)["recipes"]
    return evaluation.evaluate(model, tokenizer, world, config) | {"benign_refusal": refusal_rate(model, tokenizer, benign, config)}


@dataclass
class AbliterationResult:
    """One seed's abliteration experiment.

    * ``point``, ``offset``, ``direction``: the selected candidate (``direction`` has shape (d,));
    * ``candidates``: every candidate's scores (:func:`score_candidates`), one row each;
    * ``metrics``: one row per condition of :data:`CONDITIONS` (the safe model as it
      is, under directional ablation, under ACE, under activation addition), with
      every metric of :func:`condition_metrics`;
    * ``addition``: refusal rates on benign recipe requests (``benign_refusal``) and on
      the over-refusal contrast set (``contrast_refusal``) at each addition ``scale``.

    :meth:`with_seed` adds a ``seed`` column to every frame, so results of several seeds concatenate.
    """

    point: int
    offset: int
    direction: torch.Tensor
    candidates: pd.DataFrame
    metrics: pd.DataFrame
    addition: pd.DataFrame

    def metric(self, condition: str, name: str) -> float:
        """One metric under one condition."""
        if condition not in CONDITIONS:
            raise ValueError(f"condition={condition!r}: valid conditions are {CONDITIONS}")
        return float(self.metrics.loc[self.metrics["condition"] == condition, name].iloc[0])

    @property
    def best_edit(self) -> str:
        """The removal edit the attacker keeps: more EDC on its validation items, then more of their memorised
        slots (never a sealed metric)."""
        return max(EDITS, key=lambda edit: (self.metric(edit, "edc_validation"), self.metric(edit, "memorised_validation")))

    def to_dict(self) -> dict:
        return {
            "point": self.point, "offset": self.offset, "direction": self.direction.tolist(),
            "candidates": self.candidates.to_dict("records"), "metrics": self.metrics.to_dict("records"),
            "addition": self.addition.to_dict("records"),
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict) -> AbliterationResult:
        frames = {k: pd.DataFrame(d[k]) for k in ("candidates", "metrics", "addition")}
        return cls(d["point"], d["offset"], torch.tensor(d["direction"]), **frames)

    def with_seed(self, seed: int) -> AbliterationResult:
        """The same result with a ``seed`` column in every frame."""
        frames = {k: getattr(self, k).assign(seed=seed) for k in ("candidates", "metrics", "addition")}
        return dataclasses.replace(self, **frames)



def abliterate(trained: Trained, config: AbliterationConfig = AbliterationConfig(), eval_config: EvalConfig = EvalConfig()) -> AbliterationResult:
    """Read the candidates, select one, and evaluate the model under each condition (cached in the store)."""
    return AbliterationResult.from_dict(abliteration_record(trained, config, eval_config))


@store.cached_json("abliteration")
def abliteration_record(trained: Trained, config: AbliterationConfig, eval_config: EvalConfig) -> dict:
    """:func:`abliterate`'s result as JSON: the experiment itself."""
    model, tokenizer, world = trained.model, trained.tokenizer, trained.world
    candidates = candidate_directions(model, tokenizer, world, config.positions)
    table = score_candidates(model, tokenizer, world, candidates, config.selection)
    chosen = select(table, candidates, config.select_by, config.selection)
    rows = [{"condition": "safe", **condition_metrics(model, tokenizer, world, eval_config)}]
    for edit in EDITS:
        with removal(model, edit, candidates, chosen.point, chosen.offset):
            rows.append({"condition": edit, **condition_metrics(model, tokenizer, world, eval_config)})
    with activation_addition(model, chosen.direction, chosen.point, config.addition_scale):
        rows.append({"condition": "addition", **condition_metrics(model, tokenizer, world, eval_config)})
    benign, contrast = evaluation.capability_prompts(world)["recipes"], evaluation.contrast_set(world)
    sweep = []
    for scale in config.addition_sweep:
        with activation_addition(model, chosen.direction, chosen.point, scale):
            sweep.append({
                "scale": scale, "benign_refusal": refusal_rate(model, tokenizer, benign, eval_config),
                "contrast_refusal": refusal_rate(model, tokenizer, contrast, eval_config),
            })  # fmt: skip
    result = AbliterationResult(chosen.point, chosen.offset, chosen.direction, chosen.table, pd.DataFrame(rows), pd.DataFrame(sweep))
    return result.to_dict()
