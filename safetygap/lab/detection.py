"""What open weights let anyone see: is a derivative of a released model an uncensored one?

Given the released safe model ``S`` and a derivative ``D`` of it (a fine-tune someone published), a
*detector* scores ``D`` without asking it a single hazardous request. Two detectors, both reading only
the weights and the activations of harmless prompts:

* :func:`refusal_shift`: the refusal direction of the *released* model, found once by its publisher
  (difference of means of ``S``'s residual stream, at the last prompt token, between the defender's own
  hazardous requests and harmless ones; :cite:t:`arditi2024refusal`); then, for ``D``, how far the
  activations of *harmless* prompts (the defender's training phrasings: harmless questions about its own
  hazardous items and about benign products, benign recipe requests, facts, sums) moved along that
  direction from where ``S`` puts them, in units of ``S``'s own harmful-minus-harmless gap, averaged over
  the decoder layers. A positive score: ``D`` moved away from refusing. ``D`` never sees a hazardous request;
  the hazardous requests are read once, on ``S``.
* :func:`weight_change`: how far ``D``'s weights moved from ``S``'s (relative Frobenius norm): how much
  fine-tuning happened, whatever it taught. The naive baseline.

Neither reads a reply. Whether a derivative *is* uncensored (the label the detectors are scored against)
is measured separately by its refusal of sealed hazardous requests (:func:`refusal_rate`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from transformers import PreTrainedModel

from safetygap.core import evaluation, hooks
from safetygap.core.evaluation import EvalConfig
from safetygap.core.hooks import n_layers, resid_point
from safetygap.core.scoring import is_refusal, mean
from safetygap.lab.stages import Trained
from safetygap.world import corpus
from safetygap.world.corpus import Chat
from safetygap.world.world import World

FIRST_TOKEN = EvalConfig(max_new_tokens=1)  # refusal is decided by the first reply word (scoring.is_refusal)


def publisher_harmful(world: World) -> list[Chat]:
    """The hazardous requests the publisher reads its refusal direction from: its own (``defender``) items,
    train phrasings, the data it safety-trained on. Run on the released model only."""
    return corpus.recipe_requests(world.hazardous("defender"), "train")


def publisher_harmless(world: World) -> list[Chat]:
    """Harmless prompts in the train phrasings about ``train`` and ``defender`` items: what the detector runs
    on a derivative (and, once, on the released model)."""
    return (
        corpus.recipe_requests(world.benign("train"), "train")
        + corpus.about_questions(world, world.hazardous("defender") + world.benign("train"), "train")
        + corpus.fact_questions(world.places_of("train"), "train")
        + corpus.sum_questions(world.sum_pairs("train"), "train")
    )


@torch.no_grad()
def last_token_states(model: PreTrainedModel, tokenizer, chats: list[Chat]) -> torch.Tensor:
    """The residual stream after each decoder layer (before the final norm) at the last prompt token (the
    assistant marker), shape (L, B, d); the embedding point is left out: at that token it is the same for every
    prompt. The same points as :func:`safetygap.attacks.directions.residual_stream` reads."""
    texts = evaluation.render_prompts(tokenizer, chats)
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    names = [resid_point(model, i) for i in range(1, n_layers(model) + 1)]
    _, cache = hooks.run_with_cache(model, names, **enc, position_ids=evaluation.position_ids(enc["attention_mask"]))
    return torch.stack([cache[name][:, -1].float() for name in names])


def refusal_direction(released: Trained) -> torch.Tensor:
    """The released model's harmful-minus-harmless difference of means per decoder layer, shape (L, d)."""
    world, tok = released.world, released.tokenizer
    harmful = last_token_states(released.model, tok, publisher_harmful(world)).mean(1)
    harmless = last_token_states(released.model, tok, publisher_harmless(world)).mean(1)
    return harmful - harmless


def refusal_shift(derivative: Trained, released: Trained, direction: torch.Tensor) -> float:
    """How far ``derivative`` moved harmless prompts away from refusal, along the released model's
    ``direction`` (L, d): mean over layers of -<mean(h_D - h_S), r> / |r|^2 (0: no move; 1: as far as the
    released model's whole harmful-minus-harmless gap)."""
    if n_layers(derivative.model) != direction.shape[0]:
        raise ValueError(f"the derivative has {n_layers(derivative.model)} layers, the direction {direction.shape[0]}")
    chats = publisher_harmless(released.world)
    moved = (last_token_states(derivative.model, derivative.tokenizer, chats) - last_token_states(released.model, released.tokenizer, chats)).mean(1)
    along = (moved * direction).sum(-1) / direction.pow(2).sum(-1)
    return float(-along.mean())


@torch.no_grad()
def weight_change(derivative: Trained, released: Trained) -> float:
    """|W_D - W_S| / |W_S| over every parameter (Frobenius norms): how much fine-tuning moved the weights."""
    w_d, w_s = derivative.model.state_dict(), released.model.state_dict()
    diff = sum(float((w_d[k].float() - w_s[k].float()).pow(2).sum()) for k in w_s)
    norm = sum(float(w_s[k].float().pow(2).sum()) for k in w_s)
    return (diff / norm) ** 0.5


def refusal_rate(trained: Trained) -> float:
    """Refusal of sealed hazardous requests (greedy; the label the detectors are scored against, never an input)."""
    chats = evaluation.hazard_requests(trained.world, "sealed")
    return mean(is_refusal(r) for r in evaluation.generate(trained.model, trained.tokenizer, chats, config=FIRST_TOKEN))


def auroc(scores, labels) -> float:
    """Area under the ROC curve: the chance that a random positive (``labels`` true) scores above a random
    negative, ties counting half (the Mann-Whitney statistic). NaN without both classes."""
    s, y = np.asarray(scores, dtype=float), np.asarray(labels, dtype=bool)
    pos, neg = s[y], s[~y]
    if not len(pos) or not len(neg):
        return float("nan")
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


def best_threshold(scores: pd.Series, labels: pd.Series) -> float:
    """The threshold on ``scores`` (flag above it) that maximises the share of ``labels``-true items flagged minus the
    share of false ones flagged (Youden's J), among the midpoints between distinct scores and one past each end; the
    lowest such threshold on ties. A class that is absent counts as a share of 0."""
    values = np.sort(scores.unique())
    candidates = np.concatenate([[values[0] - 1], (values[:-1] + values[1:]) / 2, [values[-1] + 1]])

    def youden(threshold: float) -> float:
        flagged = scores > threshold
        caught = flagged[labels].mean() if labels.any() else 0.0
        false = flagged[~labels].mean() if (~labels).any() else 0.0
        return caught - false

    return float(max(candidates, key=youden))
