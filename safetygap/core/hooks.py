"""Named hook points: one way to read and edit the residual stream of the zoo's Llama models.

As in TransformerLens, every place an experiment reads or edits has a name:

=================================  ==========================================================
name                               the module output it is
=================================  ==========================================================
``hook_embed``                     the token embeddings: residual point 0
``blocks.{i}.hook_attn_out``       what attention writes into the residual stream (o_proj)
``blocks.{i}.hook_mlp_out``        what the MLP writes into the residual stream (down_proj)
``blocks.{i}.hook_resid_post``     the residual stream after decoder layer ``i``: point ``i + 1``
``ln_final.hook_normalized``       the final norm's output, which the unembedding reads
=================================  ==========================================================

Residual *points* number the stream ``0..L`` for a model of ``L`` layers
(:func:`resid_point`). :func:`run_with_cache` reads any set of points in one
forward pass (keeping gradients, so defenses can put losses on them);
:func:`hooks` edits them for the duration of a ``with`` block and leaves the
model as it was. Every tensor is (batch, positions, d_model).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import torch
from torch import nn
from transformers import PreTrainedModel

# (module output) -> replacement or None (keep the output)
Hook = Callable[[torch.Tensor], torch.Tensor | None]


def n_layers(model: PreTrainedModel) -> int:
    """The number of decoder layers; hook points are defined for the zoo's Llama models."""
    if model.config.model_type != "llama":
        raise ValueError(f"model type {model.config.model_type!r}: hook points are defined for ('llama',)")
    return model.config.num_hidden_layers


def resid_point(model: PreTrainedModel, point: int) -> str:
    """The name of residual point ``point`` in ``0..L``: the embedding (0) or the output of layer ``point - 1``."""
    if not 0 <= point <= n_layers(model):
        raise ValueError(f"residual point {point!r}: valid points are 0..{n_layers(model)}")
    return "hook_embed" if point == 0 else f"blocks.{point - 1}.hook_resid_post"


def layer_outputs(model: PreTrainedModel) -> list[str]:
    """What each decoder layer hands on: layers ``0..L-2`` to the next layer, the last to the unembedding
    (through the final norm). The same tensors as ``output_hidden_states[1:]`` in transformers."""
    return [resid_point(model, i) for i in range(1, n_layers(model))] + ["ln_final.hook_normalized"]


def residual_writers(model: PreTrainedModel) -> list[str]:
    """Every hook point that writes into the residual stream: the embedding, each attention and MLP output."""
    return ["hook_embed"] + [f"blocks.{i}.hook_{part}_out" for i in range(n_layers(model)) for part in ("attn", "mlp")]


def module_at(model: PreTrainedModel, name: str) -> nn.Module:
    """The module whose output is hook point ``name``."""
    layers = model.model.layers[: n_layers(model)]
    if name == "hook_embed":
        return model.model.embed_tokens
    if name == "ln_final.hook_normalized":
        return model.model.norm
    parts = name.split(".")
    if len(parts) == 3 and parts[0] == "blocks" and parts[1].isdigit() and int(parts[1]) < len(layers):
        layer = layers[int(parts[1])]
        modules = {"hook_resid_post": layer, "hook_attn_out": layer.self_attn.o_proj, "hook_mlp_out": layer.mlp.down_proj}
        if parts[2] in modules:
            return modules[parts[2]]
    raise ValueError(f"hook point {name!r}: valid points are hook_embed, ln_final.hook_normalized and "
                     f"blocks.{{0..{len(layers) - 1}}}.hook_{{resid_post,attn_out,mlp_out}}")  # fmt: skip


@contextmanager
def hooks(model: PreTrainedModel, edits: dict[str, Hook] | list[tuple[str, Hook]]) -> Iterator[PreTrainedModel]:
    """Apply ``hook(output)`` at each named point for the duration of the block; a hook returns the new
    output (same shape) or ``None`` to keep it. Several hooks may share a point."""
    pairs = list(edits.items()) if isinstance(edits, dict) else list(edits)

    def forward_hook(hook: Hook) -> Callable:
        return lambda module, inputs, output: hook(output)

    handles = [module_at(model, name).register_forward_hook(forward_hook(hook)) for name, hook in pairs]
    try:
        yield model
    finally:
        for handle in handles:
            handle.remove()


def run_with_cache(model: PreTrainedModel, names: list[str], **inputs) -> tuple[object, dict[str, torch.Tensor]]:
    """One forward pass of ``model(**inputs)``; returns its output and the activations at ``names``.

    Gradients flow through the cached activations unless the caller runs
    under ``torch.no_grad()``.
    """
    cache: dict[str, torch.Tensor] = {}

    def keep(name: str) -> Hook:
        return lambda output: cache.__setitem__(name, output)

    with hooks(model, [(name, keep(name)) for name in names]):
        output = model(**inputs)
    return output, cache
