"""Where the build's time goes: named counters of wall seconds, per process.

Code that does one kind of work wraps it in :func:`timed` (evaluation wraps
every generation and scoring pass), and the artifact store reads the counters
around each build, so every artifact records how long it took and how much of
that was evaluation (``build.json``). ``scripts/benchmark_build.py`` adds these
records up into a breakdown of the cold build by kind of work.
"""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Iterator

spent: defaultdict[str, float] = defaultdict(float)  # kind of work -> seconds spent in this process
_open: defaultdict[str, bool] = defaultdict(bool)  # kinds whose timer is running (nested blocks count once)


@contextmanager
def timed(kind: str) -> Iterator[None]:
    """Add the wall time of the block to ``spent[kind]`` (an outer block of the same kind counts once)."""
    if _open[kind]:
        yield
        return
    _open[kind] = True
    start = time.perf_counter()
    try:
        yield
    finally:
        spent[kind] += time.perf_counter() - start
        _open[kind] = False



def snapshot() -> dict[str, float]:
    """The counters now, to subtract from later."""
    return dict(spent)


def since(before: dict[str, float]) -> dict[str, float]:
    """Seconds spent per kind since ``before`` (a :func:`snapshot`)."""
    return {kind: seconds - before.get(kind, 0.0) for kind, seconds in spent.items() if seconds > before.get(kind, 0.0)}
