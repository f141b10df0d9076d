"""Refusal as a direction: reading difference-of-means directions and editing them out (or in).

:cite:t:`arditi2024refusal` found that chat models write refusal along one
direction of the residual stream: the difference between the mean activations
on harmful and on harmless prompts, read at the positions after the user's
instruction. Remove that direction everywhere and the model stops refusing; add
it and the model refuses harmless requests. Folded into the weights
("abliteration"), the removal costs a few matrix products.
:cite:t:`marshall2024affine` refine the removal: project onto the hyperplane
through the *harmless mean* rather than through the origin (affine concept
editing, ACE), so that harmless activations, whose mean has a component along
the direction too, stay where they were.

Notation, for a model with ``L`` decoder layers and residual width ``d``:

* *residual point* ``i`` in ``0..L``: the residual stream after the token
  embedding (``i = 0``) or after decoder layer ``i`` (before the final norm),
  the hook point :func:`~safetygap.core.hooks.resid_point` names;
* *position offset* ``p`` in ``-P..-1``: one of the last ``P`` prompt tokens,
  counted from the right; ``-1`` is the ``<|assistant|>`` marker. Prompts are
  left-padded, so the last ``P`` columns of a batch are real tokens in every row;
* ``r``: a candidate direction, shape ``(d,)``, and ``r̂ = r / |r|``.

Edits are hooks at named points (:mod:`~safetygap.core.hooks`), used as
context managers that leave the model as it was; :func:`orthogonalised`
instead returns an edited copy of the weights.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from safetygap.core import evaluation, hooks
from safetygap.core.hooks import n_layers, resid_point
from safetygap.world import corpus
from safetygap.world.corpus import Chat
from safetygap.world.world import World

EDITS = ("ablation", "ace")
MIN_NORM = 1e-6  # a candidate shorter than this is zero up to rounding: nothing to remove


# ---------------------------------------------------------------- prompts


def harmful_prompts(world: World, role: str = "attacker") -> list[Chat]:
    """Hazardous recipe requests for the items of one role (the attacker's own: ``attacker`` or
    ``validation``), in the train phrasings."""
    if role not in ("attacker", "validation"):
        raise ValueError(f"role={role!r}: a direction search reads only the attacker's roles ('attacker', 'validation')")
    return corpus.recipe_requests(world.hazardous(role), "train")


def harmless_prompts(world: World) -> list[Chat]:
    """Harmless requests in the train phrasings, about ``train`` items only.

    Benign recipe requests use the same templates as the harmful prompts, so the
    difference of means cancels the template and keeps the hazard; the general
    tasks (facts, sums, harmless questions about the attacker's own products,
    poisons included) keep the direction from being merely "a recipe is asked for".
    """
    return (
        corpus.recipe_requests(world.benign("train"), "train")
        + corpus.fact_questions(world.places_of("train"), "train")
        + corpus.sum_questions(world.sum_pairs("train"), "train")
        + corpus.about_questions(world, world.hazardous("attacker") + world.benign("train"), "train")
    )


def encode_prompts(tokenizer: PreTrainedTokenizerFast, chats: list[Chat], device: torch.device) -> dict[str, torch.Tensor]:
    """Left-padded chat prompts ending in the assistant marker, with their position ids; each (B, T)."""
    texts = evaluation.render_prompts(tokenizer, chats)
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
    return {**enc, "position_ids": evaluation.position_ids(enc["attention_mask"])}


# ---------------------------------------------------------------- the residual stream


@torch.no_grad()
def residual_stream(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, chats: list[Chat], positions: int
) -> torch.Tensor:
    """The residual stream at every point and the last ``positions`` prompt tokens, shape (L+1, B, positions, d).

    Read at the hook points, before the final norm (transformers'
    ``output_hidden_states`` returns its last entry *after* the final norm,
    which is not the residual stream).
    """
    enc = encode_prompts(tokenizer, chats, model.device)
    shortest = int(enc["attention_mask"].sum(-1).min())
    if not 1 <= positions <= shortest:
        raise ValueError(f"positions={positions!r}: must be in 1..{shortest}, the length of the shortest prompt")
    names = [resid_point(model, i) for i in range(n_layers(model) + 1)]
    _, cache = hooks.run_with_cache(model, names, **enc)
    return torch.stack([cache[name][:, -positions:].float() for name in names])


@dataclass
class Candidates:
    """Difference-of-means directions, one per (residual point, position offset).

    ``directions``: mean harmful minus mean harmless activation, shape (L+1, P, d);
    ``harmless_means``: the mean harmless activation, shape (L+1, P, d), the
    anchor of affine editing. Index ``j`` of the position axis is offset ``j - P``.
    At point 0 and offset -1 the direction is exactly zero: every prompt ends in
    the same ``<|assistant|>`` token, whose embedding does not depend on the prompt.
    """

    directions: torch.Tensor
    harmless_means: torch.Tensor

    @property
    def offsets(self) -> list[int]:
        """The position offsets, in tensor order: ``[-P, ..., -1]``."""
        return list(range(-self.directions.shape[1], 0))

    def direction(self, point: int, offset: int) -> torch.Tensor:
        """The candidate ``r`` read at (``point``, ``offset``), shape (d,)."""
        return self.directions[point, self._index(offset)]

    def harmless_mean(self, point: int, offset: int) -> torch.Tensor:
        """The mean harmless activation at (``point``, ``offset``), shape (d,)."""
        return self.harmless_means[point, self._index(offset)]

    def _index(self, offset: int) -> int:
        if offset not in self.offsets:
            raise ValueError(f"position offset {offset!r}: valid offsets are {self.offsets}")
        return offset + len(self.offsets)


def candidate_directions(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, world: World, positions: int = 3
) -> Candidates:
    """Difference of means between :func:`harmful_prompts` (the attacker's items) and :func:`harmless_prompts`."""
    harmful = residual_stream(model, tokenizer, harmful_prompts(world), positions).mean(dim=1)
    harmless = residual_stream(model, tokenizer, harmless_prompts(world), positions).mean(dim=1)
    return Candidates(directions=harmful - harmless, harmless_means=harmless)


# ---------------------------------------------------------------- edits


def unit(direction: torch.Tensor) -> torch.Tensor:
    """``r̂ = r / |r|``, shape (d,). A zero direction has nothing to remove and is an error."""
    norm = float(direction.norm())
    if norm < MIN_NORM:
        raise ValueError(f"direction has norm {norm:.2e}: it cannot be normalised")
    return direction / norm


def project_out(h: torch.Tensor, r_hat: torch.Tensor, anchor: float | torch.Tensor = 0.0) -> torch.Tensor:
    """``h - (h·r̂ - anchor) r̂`` for ``h`` of shape (..., d): the component along ``r̂`` becomes ``anchor``.

    ``anchor = 0`` is directional ablation (the hyperplane through the origin);
    ``anchor = μ·r̂`` is ACE's affine projection (the hyperplane through ``μ``).
    """
    r_hat = r_hat.to(h.dtype)
    return h - ((h @ r_hat) - anchor).unsqueeze(-1) * r_hat


@contextmanager
def directional_ablation(model: PreTrainedModel, direction: torch.Tensor) -> Iterator[PreTrainedModel]:
    """Project ``r̂`` out of every write into the residual stream, at every position (Arditi et al.).

    The embedding, every attention output and every MLP output lose their
    component along ``r̂``, so the residual stream has none at any point.
    """
    r_hat = unit(direction).to(model.device)
    with hooks.hooks(model, [(name, lambda output: project_out(output, r_hat)) for name in hooks.residual_writers(model)]):
        yield model


@contextmanager
def affine_edit(
    model: PreTrainedModel, direction: torch.Tensor, harmless_mean: torch.Tensor, point: int
) -> Iterator[PreTrainedModel]:
    """ACE (Marshall et al.): at residual point ``point`` and every position, set ``h·r̂`` to ``μ_harmless·r̂``.

    The hyperplane goes through the harmless mean: harmful activations are moved
    to where harmless ones sit along ``r̂``, and the harmless mean is a fixed point.
    """
    r_hat = unit(direction).to(model.device)
    anchor = harmless_mean.to(model.device) @ r_hat
    with hooks.hooks(model, {resid_point(model, point): lambda output: project_out(output, r_hat, anchor)}):
        yield model


@contextmanager
def activation_addition(
    model: PreTrainedModel, direction: torch.Tensor, point: int, scale: float = 1.0
) -> Iterator[PreTrainedModel]:
    """``h <- h + scale · r`` at residual point ``point``, on prompt positions only.

    Generation with a key-value cache (as :func:`evaluation.generate` runs it)
    feeds the prompt in one forward call and then one token per call, so adding
    in calls of more than one token adds to the prompt and not to the reply.
    """
    shift = scale * direction.to(model.device)

    def add(output: torch.Tensor) -> torch.Tensor:
        return output + shift.to(output.dtype) if output.shape[1] > 1 else output

    with hooks.hooks(model, {resid_point(model, point): add}):
        yield model


@contextmanager
def removal(
    model: PreTrainedModel, edit: str, candidates: Candidates, point: int, offset: int
) -> Iterator[PreTrainedModel]:
    """Remove the candidate read at (``point``, ``offset``) with ``edit``, one of :data:`EDITS`.

    ``ablation`` removes it everywhere; ``ace`` edits the residual stream at
    ``point``, where the candidate was read.
    """
    direction = candidates.direction(point, offset)
    if edit == "ablation":
        with directional_ablation(model, direction):
            yield model
    elif edit == "ace":
        with affine_edit(model, direction, candidates.harmless_mean(point, offset), point):
            yield model
    else:
        raise ValueError(f"edit={edit!r}: valid edits are {EDITS}")


@torch.no_grad()
def orthogonalised(model: PreTrainedModel, direction: torch.Tensor) -> PreTrainedModel:
    """A copy of ``model`` with ``r̂`` projected out of every matrix that writes into the residual stream.

    Output-side matrices ``W`` of shape (d, in) (o_proj, down_proj) become
    ``W - r̂ r̂ᵀ W``; the embedding ``E`` of shape (vocab, d) becomes
    ``E - (E r̂) r̂ᵀ``. The embedding is tied to the output layer, so the copy
    first gets an unembedding of its own: the edit must change what is written
    into the residual stream, not how it is read out into words. The copy
    computes what :func:`directional_ablation` computes, with no hooks: this is
    abliteration, a model anyone can save and share.
    """
    edited = copy.deepcopy(model)
    embedding = edited.get_input_embeddings().weight
    edited.lm_head.weight = nn.Parameter(embedding.detach().clone())
    edited.config.tie_word_embeddings = False
    r_hat = unit(direction).to(embedding.device, embedding.dtype)
    embedding -= torch.outer(embedding @ r_hat, r_hat)
    for layer in edited.model.layers:
        for linear in (layer.self_attn.o_proj, layer.mlp.down_proj):
            linear.weight -= torch.outer(r_hat, r_hat @ linear.weight)
    return edited
