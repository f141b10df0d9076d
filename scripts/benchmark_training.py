#!/usr/bin/env python3
"""Training throughput of the model zoo, against the machine's matmul rate and a plain-PyTorch reference.

For each zoo model and each kind of training the book does (pretraining on
documents, chat fine-tuning on the safety mixture), this runs the book's own
training loop (:func:`safetygap.core.training.train`) for a few steps and
reports:

* ``tokens_per_second``: real (non-padding) tokens trained per second;
* ``utilisation``: the FLOP rate those tokens stand for (``6 N`` per token, the
  book's count, :func:`~safetygap.core.compute.training_flops`) over the
  machine's dense float32 matmul rate measured in the same run with the same
  number of threads;
* ``reference_tokens_per_second`` and ``ratio``: the same model, weights,
  batches and optimiser, but the forward pass written in plain PyTorch
  (:class:`ReferenceLlama`, the same math as transformers' Llama), so the
  framework's overhead is a number (Llama-style models only);
* ``padding``: the share of each batch that is padding.

Usage: ``.venv/bin/python scripts/benchmark_training.py [--threads 1] [--output FILE]``;
``scripts/benchmark_build.py`` runs it as part of ``make benchmark``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel

from safetygap.book import scales
from safetygap.core import training
from safetygap.core.compute import training_flops
from safetygap.core.models import ZOO, build_model, parameter_count
from safetygap.core.training import IGNORE, Step, TrainConfig
from safetygap.lab import data
from safetygap.lab.configs import BaseConfig, SafetyConfig
from safetygap.lab.stages import get_tokenizer, get_world

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO / "data" / "benchmarks" / "training.json"
MATMUL_SIZE = 512  # square float32 matmuls of this size measure the machine's dense rate
MATMUL_REPEATS = 30
WARMUP_STEPS = 5  # not timed: first calls allocate and warm caches
TIMED_STEPS = 40
KINDS = {  # kind of training -> (its batch size and learning rate in the book, its data)
    "pretraining": (BaseConfig().train, lambda world, tok: data.pretraining_examples(world, tok, hazardous_documents=True)),
    "chat fine-tuning": (SafetyConfig().train, lambda world, tok: data.safety_examples(world, tok, SafetyConfig().refusal_share)),
}


def matmul_rate() -> float:
    """Dense float32 matmul FLOP/s with the current torch thread count (best of ``MATMUL_REPEATS``)."""
    a, b = torch.randn(MATMUL_SIZE, MATMUL_SIZE), torch.randn(MATMUL_SIZE, MATMUL_SIZE)
    best = float("inf")
    for _ in range(MATMUL_REPEATS):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * MATMUL_SIZE**3 / best


class ReferenceLlama(nn.Module):
    """transformers' Llama forward pass in plain PyTorch, with the weights of ``model`` (copied).

    RMSNorm, rotary embeddings (rotate-half form), causal scaled-dot-product
    attention, a SwiGLU MLP and a tied unembedding: the same math, without the
    framework. Right-padded batches need no padding mask: padding comes after
    every real token, so the causal mask already hides it from them, and no
    loss is taken on padding positions.
    """

    def __init__(self, model: PreTrainedModel):
        super().__init__()
        config = model.config
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.heads, self.eps = config.num_attention_heads, config.rms_norm_eps
        self.head_dim = config.hidden_size // self.heads
        self.weights = nn.ParameterDict({k.replace(".", "_"): nn.Parameter(v) for k, v in state.items() if k != "lm_head.weight"})
        self.layers = config.num_hidden_layers
        theta = config.rope_parameters["rope_theta"]
        self.register_buffer("inv_freq", 1.0 / theta ** (torch.arange(0, self.head_dim, 2).float() / self.head_dim))

    def w(self, name: str) -> torch.Tensor:
        return self.weights[name.replace(".", "_")]

    def norm(self, x: torch.Tensor, name: str) -> torch.Tensor:
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.w(name) * x

    def rotate(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rotated * sin

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor, **_) -> torch.Tensor:
        """The mean next-token loss over labelled positions; ``input_ids``, ``labels`` of shape (B, T)."""
        batch, length = input_ids.shape
        freqs = torch.outer(torch.arange(length, dtype=torch.float32), self.inv_freq)
        angles = torch.cat([freqs, freqs], dim=-1)
        cos, sin = angles.cos(), angles.sin()
        embedding = self.w("model.embed_tokens.weight")
        x = F.embedding(input_ids, embedding)
        for i in range(self.layers):
            p = f"model.layers.{i}."
            h = self.norm(x, p + "input_layernorm.weight")
            q, k, v = (F.linear(h, self.w(p + f"self_attn.{n}_proj.weight")) for n in "qkv")
            q, k, v = (t.view(batch, length, self.heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
            q, k = self.rotate(q, cos, sin), self.rotate(k, cos, sin)
            attended = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(batch, length, -1)
            x = x + F.linear(attended, self.w(p + "self_attn.o_proj.weight"))
            h = self.norm(x, p + "post_attention_layernorm.weight")
            gate, up = F.linear(h, self.w(p + "mlp.gate_proj.weight")), F.linear(h, self.w(p + "mlp.up_proj.weight"))
            x = x + F.linear(F.silu(gate) * up, self.w(p + "mlp.down_proj.weight"))
        logits = F.linear(self.norm(x, "model.norm.weight"), embedding)
        return F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=IGNORE)


@dataclass
class Timed:
    """Tokens and seconds of the timed steps of one run, and its padding share."""

    tokens: int = 0
    slots: int = 0
    start: float = 0.0
    seconds: float = 0.0


def timed_run(model: nn.Module, loss_of, examples: list, config: TrainConfig, pad_model: PreTrainedModel) -> Timed:
    """Run the book's loop for ``WARMUP_STEPS + TIMED_STEPS`` steps; time the last ``TIMED_STEPS``."""
    stream = training.batches(examples, config.batch_size, WARMUP_STEPS + TIMED_STEPS, seed=0, model=pad_model)
    timed = Timed()

    def step_loss(step: int) -> Step:
        batch = next(stream)
        if step == WARMUP_STEPS:
            timed.start = time.perf_counter()
        if step >= WARMUP_STEPS:
            timed.tokens += training.n_tokens(batch)
            timed.slots += batch["input_ids"].numel()
        return Step(loss_of(batch), training.n_tokens(batch))

    run = TrainConfig(steps=WARMUP_STEPS + TIMED_STEPS, lr=config.lr, batch_size=config.batch_size)
    training.train(model, run, step_loss, seed=0, stage="benchmark", examples=len(examples))
    timed.seconds = time.perf_counter() - timed.start
    return timed


def measure(name: str, kind: str, rate: float) -> dict:
    """Throughput of zoo model ``name`` on ``kind`` of training, with the reference loop for Llama models."""
    world_config = scales.base_config(0).world
    world, tok = get_world(world_config), get_tokenizer(world_config)
    train_config, make_examples = KINDS[kind]
    examples = make_examples(world, tok)
    model = build_model(ZOO[name], tok, seed=0)
    params = parameter_count(model)
    row = {"model": name, "kind": kind, "params": params, "batch_size": train_config.batch_size}
    if ZOO[name].arch == "llama":
        reference = ReferenceLlama(model)
        ref = timed_run(reference, lambda batch: reference(**batch), examples, train_config, model)
        row["reference_tokens_per_second"] = ref.tokens / ref.seconds
    book = timed_run(model, lambda batch: model(**batch).loss, examples, train_config, model)
    row["tokens_per_second"] = book.tokens / book.seconds
    row["padding"] = 1 - book.tokens / book.slots
    row["flops_per_second"] = training_flops(params, params, book.tokens) / book.seconds
    row["utilisation"] = row["flops_per_second"] / rate
    if "reference_tokens_per_second" in row:
        row["ratio"] = row["tokens_per_second"] / row["reference_tokens_per_second"]
    return row


def run(threads: int) -> dict:
    """Every zoo model and kind of training at ``threads`` torch threads, with the matmul rate."""
    torch.set_num_threads(threads)
    rate = matmul_rate()
    rows = [measure(name, kind, rate) for name in ZOO for kind in KINDS]
    return {"threads": threads, "matmul_flops_per_second": rate, "matmul_size": MATMUL_SIZE,
            "timed_steps": TIMED_STEPS, "models": rows}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the book's workers use 1)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"JSON to write (default {DEFAULT_OUTPUT})")
    args = parser.parse_args()
    result = run(args.threads)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    for row in result["models"]:
        ratio = f", {row['ratio']:.2f}x the reference" if "ratio" in row else ""
        print(f"{row['model']:10s} {row['kind']:17s} {row['tokens_per_second']:9.0f} tokens/s, "
              f"{100 * row['utilisation']:4.1f}% of the matmul rate{ratio}")  # fmt: skip


if __name__ == "__main__":
    main()
