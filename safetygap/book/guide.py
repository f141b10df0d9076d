"""What a reader or a teacher plans a chapter around: how long it takes to read and to run.

Reading time is counted from the chapter's own text (its prose, not its code), so it follows the
text as it changes. Running time is measured, never typed in: a page's time from an empty artifact
store (``cold``) is its execution time in the last cold build of ``make benchmark``
(``data/benchmarks/build.json``: pages run in the book's order, so a chapter trains what it needs
and loads what an earlier page already built, as chapters 2 and 6 load chapter 1's base models);
its time with the store filled (``warm``: every model loaded) is :data:`WARM_MINUTES`, measured in
a whole strict build over a filled store. Both are rounded up to whole minutes, at book scale on two
CPU cores; the reproducibility appendix reports the whole benchmark.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from safetygap.book.paths import data_dir

CHAPTERS = Path(__file__).resolve().parents[2] / "chapters"
BENCHMARK = data_dir() / "benchmarks" / "build.json"
WORDS_PER_MINUTE = 200  # careful reading of technical prose
BUDGET_MINUTES = 30  # the most a cold build of the whole book may take on two CPU cores (the book's budget)


@dataclass(frozen=True)
class RunTime:
    """Minutes to execute a page at book scale on two CPU cores: from an empty artifact store, and warm."""

    cold: int
    warm: int

    def __post_init__(self):
        if not 0 < self.warm <= self.cold:
            raise ValueError(f"need 0 < warm <= cold minutes, got warm={self.warm}, cold={self.cold}")


# Each page's execution with the artifact store filled, in minutes: a strict `make book` of a fresh clone of 6831c55
# over the store the benchmark of f79b92c left (every page re-executed, every model loaded), read from the clone's
# Jupyter cache. Every page took under a minute (chapters 2 and 6 the longest, 52 s each).
WARM_MINUTES = {
    "intro": 1,
    "01_safety_gap": 1,
    "02_anatomy": 1,
    "03_scale": 1,
    "04_living_with": 1,
    "05_seriously": 1,
    "06_narrowing": 1,
    "07_policy": 1,
    "08_living": 1,
    "appendix_world": 1,
    "appendix_reproducibility": 1,
}


def cold_seconds(benchmark: Path = BENCHMARK) -> dict[str, float]:
    """Each page's execution seconds in the cold build of ``benchmark`` (``make benchmark``'s output), by page name."""
    notebooks = json.loads(benchmark.read_text(encoding="utf-8"))["notebooks"]
    return {Path(n["notebook"]).stem: float(n["execution_seconds"]) for n in notebooks}


_CODE_CELL = re.compile(r"^```\{code-cell\}.*?^```$", re.S | re.M)
_FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.S)
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")


def source(chapter: str) -> Path:
    """The MyST source of ``chapter`` (a file name in chapters/ without ``.md``)."""
    path = CHAPTERS / f"{chapter}.md"
    if not path.exists():
        known = sorted(p.stem for p in CHAPTERS.glob("*.md"))
        raise ValueError(f"no chapter {chapter!r}; chapters: {known}")
    return path


def reading_minutes(chapter: str) -> int:
    """Minutes to read the chapter's prose (code cells and front matter left out), to the next 5."""
    text = _CODE_CELL.sub("", _FRONT_MATTER.sub("", source(chapter).read_text(encoding="utf-8")))
    words = len(_WORD.findall(text))
    return max(5, 5 * math.ceil(words / WORDS_PER_MINUTE / 5))


def title(chapter: str) -> str:
    """The chapter's heading as the sidebar numbers it: "2. The anatomy of safety removal"."""
    heading = next(line[2:].strip() for line in source(chapter).read_text(encoding="utf-8").splitlines() if line.startswith("# "))
    number = chapter.split("_")[0]
    return f"{int(number)}. {heading}" if number.isdigit() else heading


def run_time(chapter: str, benchmark: Path = BENCHMARK) -> RunTime:
    """The measured running time of ``chapter`` at book scale: cold from ``benchmark``, warm from :data:`WARM_MINUTES`."""
    cold = cold_seconds(benchmark)
    if chapter not in cold or chapter not in WARM_MINUTES:
        raise ValueError(f"no measured running time for {chapter!r}; benchmarked: {sorted(cold)}; "
                         f"measured warm: {sorted(WARM_MINUTES)}")  # fmt: skip
    return RunTime(cold=max(1, math.ceil(cold[chapter] / 60)), warm=WARM_MINUTES[chapter])


def glue_times(glue, chapter: str, prefix: str) -> None:
    """Glue ``{prefix}_read_minutes``, ``{prefix}_cold_minutes`` and ``{prefix}_warm_minutes`` for the chapter header."""
    times = run_time(chapter)
    glue(f"{prefix}_read_minutes", str(reading_minutes(chapter)), display=False)
    glue(f"{prefix}_cold_minutes", str(times.cold), display=False)
    glue(f"{prefix}_warm_minutes", str(times.warm), display=False)
