"""Parallel builds on Dask: a local cluster and a named scheduler run every job, errors reach the caller,
and a worker's single thread gives the same weights."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from dask.distributed import LocalCluster

from safetygap.book import scales
from safetygap.core import parallel, training
from safetygap.lab import data
from safetygap.lab import stages as lab
from safetygap.core.models import build_model


def test_a_local_cluster_runs_every_job(tmp_path, monkeypatch):
    monkeypatch.delenv(parallel.SCHEDULER_ENV, raising=False)
    paths = [tmp_path / f"task{i}" for i in range(3)]
    parallel.run_in_workers(Path.touch, paths, workers=2)
    assert all(p.exists() for p in paths)


def test_jobs_go_to_the_scheduler_named_in_the_environment(tmp_path, monkeypatch):
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        monkeypatch.setenv(parallel.SCHEDULER_ENV, cluster.scheduler_address)
        paths = [tmp_path / f"job{i}" for i in range(4)]
        parallel.run_in_workers(Path.touch, paths)
        assert all(p.exists() for p in paths)
        with pytest.raises(FileNotFoundError):  # an error in a job is raised in the caller
            parallel.run_in_workers(Path.touch, [tmp_path / "missing" / "job"])


def test_local_cluster_size():
    assert parallel.local_workers(tasks=10, workers=2) == 2
    assert parallel.local_workers(tasks=1) == 1
    assert parallel.MIN_WORKERS <= parallel.local_workers(tasks=10) <= parallel.MAX_WORKERS


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
