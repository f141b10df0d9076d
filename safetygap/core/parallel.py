"""Building independent artifacts side by side: Dask distributed, on this machine or on a cluster.

A chapter's runner hands a list of independent jobs (one seed's models, one
defense and its battery) to :func:`run_in_workers`. The jobs run on a Dask
cluster (`Dask distributed <https://distributed.dask.org>`_): by default a
local one, started for the call, with single-threaded worker processes on this
machine; when ``$SAFETYGAP_SCHEDULER`` names a running scheduler
(``tcp://host:8786``), on that cluster instead, whose workers must see the same
artifact store (``$SAFETYGAP_CACHE`` on a shared filesystem) and the same
``safetygap`` package. Dask rather than Ray: it is pure Python and small, it
starts a local cluster in a second, and the same code submits to a scheduler
anyone can start with ``dask scheduler`` / ``dask worker``.

Jobs communicate only through the artifact store: each builds what it needs
(the store's atomic, first-writer-wins publishing makes two workers building
the same artifact safe) and returns nothing.

On a small CPU, a tiny model's training is dominated by per-operation overhead,
so two single-threaded trainings in two processes finish sooner than the same
two run one after the other with two threads each (on 2 cores, about 1.5 times
sooner). Three single-threaded workers on 2 cores train as fast in total as
two, so a local cluster has a few more workers than cores: three seeds then run
side by side instead of two and then one alone. The thread count does not
change the result (``tests/test_parallel.py`` checks that training with one or
two threads gives the same weights), so an artifact has the same bytes whether
a worker or the notebook itself built it.
"""

from __future__ import annotations

import os
from typing import Callable, Iterable

import dask
import torch
from dask.distributed import Client, LocalCluster
from transformers.utils import logging as hf_logging

from safetygap.core import store
from safetygap.core.training import show_progress

SCHEDULER_ENV = "SAFETYGAP_SCHEDULER"  # address of a running Dask scheduler; unset: a local cluster
MIN_WORKERS = 3  # more workers than cores: the same throughput, and the last jobs do not wait for one core
MAX_WORKERS = 4  # each worker holds a copy of the libraries and a model (~0.5 GB): the book's memory budget is 4 GB
# The environment Dask's nanny gives a local worker: its defaults without MALLOC_TRIM_THRESHOLD_=65536, which
# makes glibc hand memory back to the system so often that training runs at half speed (measured: 7.8 s against
# 3.8 s for 60 pretraining steps of the tiny model).
WORKER_ENVIRON = {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1}


def local_workers(tasks: int, workers: int | None = None) -> int:
    """Workers of a local cluster: as many as cores, at least :data:`MIN_WORKERS`, at most :data:`MAX_WORKERS`
    (or ``workers`` if given), and never more than ``tasks``."""
    workers = workers or min(max(len(os.sched_getaffinity(0)), MIN_WORKERS), MAX_WORKERS)
    return max(1, min(workers, tasks))


def in_worker(function: Callable, task) -> None:
    """Run one job in a worker: one torch thread, progress bars as the caller asked."""
    torch.set_num_threads(1)
    if not show_progress():
        hf_logging.disable_progress_bar()
    function(task)


def from_store(function: Callable, task) -> bool:
    """Whether ``function(task)`` runs entirely from what the store holds: it is called here with the store read-only
    (:func:`~safetygap.core.store.stored_only`). A job that would build something stops at its first missing
    artifact and is left to the workers; a job that fails otherwise fails here, as it would in a worker."""
    try:
        with store.stored_only():
            function(task)
    except store.NotStored:
        return False
    return True


def run_in_workers(function: Callable, tasks: Iterable, workers: int | None = None) -> None:
    """Call ``function(task)`` for every task, side by side, and wait for all of them.

    ``function`` must be importable (a module-level function of the package) and should store what it builds:
    return values are discarded. An error in any job is raised here. The leading jobs that the store already
    holds (:func:`from_store`) are done here, without workers, up to the first that builds: a chapter whose
    models are all stored starts no cluster. Without ``$SAFETYGAP_SCHEDULER``, a local cluster of
    :func:`local_workers` processes runs the other jobs (with one worker or one job, they run here instead).
    """
    tasks = list(tasks)
    while tasks and from_store(function, tasks[0]):  # up to the first job that builds: in a cold build, one check
        tasks.pop(0)
    if not tasks:
        return
    address = os.environ.get(SCHEDULER_ENV)
    if address:
        with Client(address) as client:
            client.gather(client.map(in_worker, [function] * len(tasks), tasks, pure=False))
        return
    n = local_workers(len(tasks), workers)
    if n == 1:
        for task in tasks:
            function(task)
        return
    with dask.config.set({"distributed.nanny.pre-spawn-environ": WORKER_ENVIRON}), \
            LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:  # fmt: skip
        with Client(cluster) as client:
            client.gather(client.map(in_worker, [function] * len(tasks), tasks, pure=False))
