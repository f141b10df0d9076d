"""The figures the book quotes from the literature (``data/published_figures.csv``): reading and checking them.

Every row is one number with the paper it belongs to (``paper_key``, a key of ``references.bib``) and says where
it is (``source`` and ``provenance``), what it measures (``measure``) and under which attack budget (``budget``).
Figures are taken from the papers by default; a row from anywhere else (a repository, a second-hand report) says
so in ``source`` and starts its ``provenance`` with what it is (:data:`SOURCE_PREFIX`). :func:`problems` lists
everything wrong with a table of figures, so a test can run it on the file and on doctored copies;
:func:`figure` reads one number for a chapter. :mod:`~safetygap.book.comparisons` sets them beside the book's own.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from safetygap.book.paths import ROOT, data_dir

FIGURES = data_dir() / "published_figures.csv"
BIBLIOGRAPHY = ROOT / "references.bib"

COLUMNS = ("paper_key", "model", "setting", "metric", "value", "unit", "source", "provenance", "measure", "budget", "note")
KEY = ("paper_key", "model", "setting", "metric")  # a row is unique on these
SOURCES = ("paper", "repository", "secondary")
# How the provenance of a figure that is not from the paper itself must begin, so the reader sees what it is.
SOURCE_PREFIX = {"repository": "repository:", "secondary": "secondary:"}
# The values each unit allows (closed intervals): a figure outside its unit's range is a transcription error.
UNIT_RANGES: dict[str, tuple[float, float]] = {
    "percent": (0.0, 100.0),
    "fraction": (0.0, 1.0),
    "score": (0.0, 10.0),  # a benchmark's own scale: MT-Bench 0-10
    "loss": (0.0, 20.0),  # cross-entropy in nats per token
    "kl": (0.0, 20.0),
    "usd": (0.0, 1e7),
    "learning_rate": (1e-8, 1.0),
    "ratio": (0.0, 1e4),
    "parameters_billion": (1e-3, 1e4),
    **{count: (1.0, 1e13) for count in ("steps", "epochs", "batch_size", "examples", "prompts", "tokens", "models",
                                        "configs", "seeds")},
}


def load(path: Path = FIGURES) -> pd.DataFrame:
    """The table of published figures; text cells stay text (an empty cell is "", never NaN)."""
    figures = pd.read_csv(path, dtype=str, keep_default_na=False)
    figures["value"] = pd.to_numeric(figures["value"], errors="coerce")
    return figures


def bib_keys(path: Path = BIBLIOGRAPHY) -> set[str]:
    """The citation keys of a BibTeX file."""
    return set(re.findall(r"^@\w+\s*\{\s*([^,\s]+)\s*,", path.read_text(encoding="utf-8"), flags=re.MULTILINE))


def _row_problems(row: pd.Series, keys: set[str]) -> list[str]:
    """What is wrong with one row: an empty cell, an unknown source or key, a provenance that hides what it is,
    a value that is missing or out of its unit's range."""
    where = f"{row['paper_key']} / {row['metric']} / {row['setting']}"
    found = [f"{where}: empty {column}" for column in COLUMNS if column != "value" and not str(row[column]).strip()]
    if row["source"] not in SOURCES:
        found.append(f"{where}: source {row['source']!r} is not one of {SOURCES}")
    elif row["source"] in SOURCE_PREFIX and not str(row["provenance"]).startswith(SOURCE_PREFIX[row["source"]]):
        found.append(f"{where}: a {row['source']} figure's provenance must start with {SOURCE_PREFIX[row['source']]!r}")
    if row["paper_key"] not in keys:
        found.append(f"{where}: paper_key {row['paper_key']!r} is not in references.bib")
    if row["unit"] not in UNIT_RANGES:
        found.append(f"{where}: unit {row['unit']!r} is not one of {sorted(UNIT_RANGES)}")
    elif pd.isna(row["value"]):
        found.append(f"{where}: value is not a number")
    else:
        low, high = UNIT_RANGES[row["unit"]]
        if not low <= row["value"] <= high:
            found.append(f"{where}: value {row['value']:g} outside [{low:g}, {high:g}] for unit {row['unit']}")
    return found


def problems(figures: pd.DataFrame, keys: set[str]) -> list[str]:
    """Everything wrong with a table of published figures, as readable lines (none: the table is fit to quote).

    ``keys``: the citation keys every ``paper_key`` must resolve to (:func:`bib_keys`). Checked: the columns are
    :data:`COLUMNS` in order, every cell is filled, every row has a known ``source`` and a provenance that says
    what it is, every value lies in its unit's range (:data:`UNIT_RANGES`), and no two rows share :data:`KEY`.
    """
    if tuple(figures.columns) != COLUMNS:
        return [f"columns are {list(figures.columns)}, expected {list(COLUMNS)}"]
    found = [line for _, row in figures.iterrows() for line in _row_problems(row, keys)]
    repeated = figures[figures.duplicated(list(KEY), keep=False)]
    found += [f"{' / '.join(map(str, key))}: more than one row" for key in repeated[list(KEY)].drop_duplicates().itertuples(index=False)]
    return found


def select(figures: pd.DataFrame, key: str, metric: str, model: str | None = None, setting: str | None = None) -> pd.Series:
    """The one row of ``figures`` for paper ``key`` and ``metric`` (narrowed by ``model`` and ``setting`` where
    several rows share them); raises if there is not exactly one."""
    pick = (figures["paper_key"] == key) & (figures["metric"] == metric)
    if model is not None:
        pick &= figures["model"] == model
    if setting is not None:
        pick &= figures["setting"] == setting
    rows = figures[pick]
    if len(rows) != 1:
        raise KeyError(f"published figure {key} / {metric} / {model} / {setting}: {len(rows)} rows match, expected 1")
    return rows.iloc[0]


def figure(figures: pd.DataFrame, key: str, metric: str, model: str | None = None, setting: str | None = None) -> float:
    """The value of the one row :func:`select` finds."""
    return float(select(figures, key, metric, model, setting)["value"])
