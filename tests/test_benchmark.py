"""The training benchmark's plain-PyTorch reference computes exactly what the transformers model computes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from benchmark_training import KINDS, ReferenceLlama, matmul_rate  # noqa: E402

from safetygap.book import scales  # noqa: E402
from safetygap.core import training  # noqa: E402
from safetygap.core.models import ZOO, build_model  # noqa: E402
from safetygap.lab.stages import get_tokenizer, get_world  # noqa: E402


@pytest.mark.parametrize("name", [n for n, c in ZOO.items() if c.arch == "llama"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_reference_loss_and_gradients_equal_the_transformers_model(name, kind):
    world_config = scales.base_config(0, "reduced").world
    world, tok = get_world(world_config), get_tokenizer(world_config)
    model = build_model(ZOO[name], tok, seed=0)
    reference = ReferenceLlama(model)
    batch = next(training.batches(KINDS[kind][1](world, tok), 16, 1, seed=0, model=model))
    ours, theirs = reference(**batch), model(**batch).loss
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
    ours.backward()
    theirs.backward()
    grad = reference.w("model.layers.0.mlp.down_proj.weight").grad
    torch.testing.assert_close(grad, model.model.layers[0].mlp.down_proj.weight.grad, atol=1e-6, rtol=1e-4)


def test_matmul_rate_is_a_positive_flop_rate():
    assert 1e8 < matmul_rate() < 1e14
