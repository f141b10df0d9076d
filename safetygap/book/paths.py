"""Where the book's files are, found from the package's own location, so that chapters, scripts and tests work
from any working directory (a chapter never reads ``../data``)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository: safetygap/book/paths.py is two levels down


def data_dir() -> Path:
    """``data/``: the published figures, the neutral words, the benchmarks."""
    return ROOT / "data"


def chapters_dir() -> Path:
    """``chapters/``: the book's pages."""
    return ROOT / "chapters"
