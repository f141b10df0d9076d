"""Building independent artifacts side by side, one torch thread each.

On a small CPU, a tiny model's training is dominated by per-operation overhead,
so two single-threaded trainings in two processes finish sooner than the same
two run one after the other with two threads each. The thread count does not
change the result (``tests/test_parallel.py`` checks that training with one
or two threads gives the same weights), so an artifact has the same bytes
whether a worker or the notebook itself built it.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Callable, Iterable

import torch
from transformers.utils import logging as hf_logging

from safetygap.training import show_progress

MAX_WORKERS = 4  # each worker holds a copy of the libraries and a model (~0.5 GB): DESIGN caps memory at 4 GB


def _start_worker() -> None:
    """Each worker: one torch thread; no progress bars when the caller asked for none."""
    torch.set_num_threads(1)
    if not show_progress():
        hf_logging.disable_progress_bar()


def run_in_workers(function: Callable, tasks: Iterable, workers: int | None = None) -> None:
    """Call ``function(task)`` for every task in worker processes (one per core, at most ``workers`` or :data:`MAX_WORKERS`).

    ``function`` must be importable (a module-level function of the package) and
    should store what it builds: return values are discarded. Workers are
    spawned, not forked, so they start clean of the caller's threads and
    state, and each uses one torch thread. With one core or one task, the
    calls run here instead.
    """
    tasks = list(tasks)
    workers = max(1, min(workers or len(os.sched_getaffinity(0)), MAX_WORKERS, len(tasks)))
    if workers == 1:
        for task in tasks:
            function(task)
        return
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_start_worker) as pool:
        list(pool.map(function, tasks))
