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
from safetygap.world.world import WorldConfig


WORLDS = [WorldConfig(seed=s, products_per_family=4, places=6, ingredients=6, processes=3) for s in range(3)]  # cheap stages


def test_a_local_cluster_runs_every_job(tmp_path, monkeypatch):
    monkeypatch.delenv(parallel.SCHEDULER_ENV, raising=False)
    monkeypatch.setenv("SAFETYGAP_CACHE", str(tmp_path))
    parallel.run_in_workers(lab.get_world, WORLDS, workers=2)
    assert len(list(tmp_path.glob("world-*/world.json"))) == len(WORLDS)


def test_jobs_go_to_the_scheduler_named_in_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SAFETYGAP_CACHE", str(tmp_path))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        monkeypatch.setenv(parallel.SCHEDULER_ENV, cluster.scheduler_address)
        parallel.run_in_workers(lab.get_world, WORLDS)
        assert len(list(tmp_path.glob("world-*/world.json"))) == len(WORLDS)
        with pytest.raises(FileNotFoundError):  # an error in a job is raised in the caller
            parallel.run_in_workers(Path.touch, [tmp_path / "missing" / "job"])


def test_jobs_the_store_holds_start_no_worker(tmp_path, monkeypatch):
    monkeypatch.delenv(parallel.SCHEDULER_ENV, raising=False)
    monkeypatch.setenv("SAFETYGAP_CACHE", str(tmp_path))
    lab.get_world(WORLDS[0])  # stored now
    assert parallel.from_store(lab.get_world, WORLDS[0]) and not parallel.from_store(lab.get_world, WORLDS[1])
    assert len(list(tmp_path.glob("world-*/world.json"))) == 1  # the check built nothing

    def no_cluster(*args, **kwargs):
        raise AssertionError("a cluster was started for jobs the store holds")

    monkeypatch.setattr(parallel, "LocalCluster", no_cluster)
    parallel.run_in_workers(lab.get_world, [WORLDS[0], WORLDS[0]], workers=2)


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
