"""What a reader or a teacher plans a chapter around: how long it takes to read and to run.

Reading time is counted from the chapter's own text (its prose, not its code), so it follows the
text as it changes. Running time is measured: :data:`RUN_MINUTES` holds the wall time of each
page's execution in a whole build at book scale on two CPU cores, once from an empty artifact
store (``cold``: pages run in the book's order, so a chapter trains what it needs and loads what
an earlier page already built, as chapters 2 and 6 load chapter 1's base models) and once with
the store filled (``warm``: every model loaded), rounded up to whole minutes. They were measured
on the sealed-protocol book (five seeds, chapter 6 with three draws of the attack data); the
reproducibility appendix reports the benchmark of a whole build.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

CHAPTERS = Path(__file__).resolve().parents[2] / "chapters"
WORDS_PER_MINUTE = 200  # careful reading of technical prose


@dataclass(frozen=True)
class RunTime:
    """Minutes to execute a page at book scale on two CPU cores: from an empty artifact store, and warm."""

    cold: int
    warm: int

    def __post_init__(self):
        if not 0 < self.warm <= self.cold:
            raise ValueError(f"need 0 < warm <= cold minutes, got warm={self.warm}, cold={self.cold}")


RUN_MINUTES = {
    "intro": RunTime(cold=20, warm=1),  # its one cell builds chapter 1's models when run first
    "01_safety_gap": RunTime(cold=20, warm=1),
    "02_anatomy": RunTime(cold=7, warm=1),
    # from a store holding chapters 1 and 2 (a whole build): the zoo's other models, measured under load (an upper bound)
    "03_scale": RunTime(cold=33, warm=1),
    "04_living_with": RunTime(cold=6, warm=1),
    # alone from an empty store (it pretrains its own nine models: three sizes x three seeds): 491 s, measured with
    # other jobs running for part of it, so an upper bound
    "05_seriously": RunTime(cold=9, warm=1),  # after chapter 1 (it trains a sweep of safety trainings and eight fine-tunes per seed)
    "06_narrowing": RunTime(cold=23, warm=2),
    # 7 and 8 train nothing: "cold" is their run after chapter 6 in a whole build (reading its store), measured
    # with the runner on the shared machine under load, so an upper bound; "warm" rounds that down for an idle machine
    "07_policy": RunTime(cold=4, warm=2),
    "08_living": RunTime(cold=5, warm=2),
    "appendix_world": RunTime(cold=1, warm=1),
    "appendix_reproducibility": RunTime(cold=1, warm=1),
}

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


def run_time(chapter: str) -> RunTime:
    """The measured running time of ``chapter`` at book scale."""
    if chapter not in RUN_MINUTES:
        raise ValueError(f"no measured running time for {chapter!r}; measured: {sorted(RUN_MINUTES)}")
    return RUN_MINUTES[chapter]


def glue_times(glue, chapter: str, prefix: str) -> None:
    """Glue ``{prefix}_read_minutes``, ``{prefix}_cold_minutes`` and ``{prefix}_warm_minutes`` for the chapter header."""
    times = run_time(chapter)
    glue(f"{prefix}_read_minutes", str(reading_minutes(chapter)), display=False)
    glue(f"{prefix}_cold_minutes", str(times.cold), display=False)
    glue(f"{prefix}_warm_minutes", str(times.warm), display=False)
