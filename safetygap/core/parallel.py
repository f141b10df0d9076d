"""Building independent artifacts side by side, one torch thread each.

On a small CPU, a tiny model's training is dominated by per-operation overhead,
so two single-threaded trainings in two processes finish sooner than the same
two run one after the other with two threads each (on 2 cores, about 1.5 times
sooner). Three single-threaded processes on 2 cores train as fast in total as
two, so we start a few more workers than there are cores: three seeds then run
side by side instead of two and then one alone. The thread count does not
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

from safetygap.core.training import show_progress

MIN_WORKERS = 3  # more workers than cores: the same throughput, and the last tasks do not wait for one core
MAX_WORKERS = 4  # each worker holds a copy of the libraries and a model (~0.5 GB): DESIGN caps memory at 4 GB


def _start_worker() -> None:
    """Each worker: one torch thread; no progress bars when the caller asked for none."""
    torch.set_num_threads(1)
    if not show_progress():
        hf_logging.disable_progress_bar()


def run_in_workers(function: Callable, tasks: Iterable, workers: int | None = None) -> None:
    """Call ``function(task)`` for every task in worker processes.

    There are as many workers as cores, at least :data:`MIN_WORKERS` and at most
    :data:`MAX_WORKERS` (or ``workers`` if given), and never more than tasks.

    ``function`` must be importable (a module-level function of the package) and
    should store what it builds: return values are discarded. Workers are
    spawned, not forked, so they start clean of the caller's threads and
    state, and each uses one torch thread. With one core or one task, the
    calls run here instead.
    """
    tasks = list(tasks)
    workers = workers or min(max(len(os.sched_getaffinity(0)), MIN_WORKERS), MAX_WORKERS)
    workers = max(1, min(workers, len(tasks)))
    if workers == 1:
        for task in tasks:
            function(task)
        return
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_start_worker) as pool:
        list(pool.map(function, tasks))
