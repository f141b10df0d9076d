"""Parallel builds: workers run every task, and a worker's single thread gives the same weights."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from safetygap.book import scales
from safetygap.core import parallel, training
from safetygap.lab import data
from safetygap.lab import stages as lab
from safetygap.core.models import build_model


def test_workers_run_every_task(tmp_path):
    paths = [tmp_path / f"task{i}" for i in range(3)]
    parallel.run_in_workers(Path.touch, paths, workers=2)
    assert all(p.exists() for p in paths)


def test_one_or_two_threads_train_the_same_weights():
    config = scales.base_config(0, "reduced")
    world, tok = lab.get_world(config.world), lab.get_tokenizer(config.world)
    examples = data.pretraining_examples(world, tok, hazardous_documents=True)
    train = dataclasses.replace(config.train, steps=20, warmup=5)
    weights, before = [], torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            model = build_model(config.model, tok, seed=0)
            training.fit(model, examples, train, seed=0, stage="threads")
            weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    finally:
        torch.set_num_threads(before)
    assert torch.equal(weights[0], weights[1])
