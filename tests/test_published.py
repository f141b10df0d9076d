"""The published figures the book quotes (``data/published_figures.csv``) follow the rule of ``data/README.md``.

Every row says where its number is (a paper's table or figure, a repository file at a commit, or a second-hand
report marked as such), what it measures and at what budget; every key resolves in ``references.bib``; every value
lies in its unit's range. The checker is shown to catch a doctored row, so a passing run means something.
These tests read files only (no training).
"""

from __future__ import annotations

import pandas as pd
import pytest

from safetygap.book import published
from safetygap.book.ch2_reading import QI_ARMS, matched_step


@pytest.fixture(scope="module")
def figures() -> pd.DataFrame:
    return published.load()


@pytest.fixture(scope="module")
def keys() -> set[str]:
    return published.bib_keys()


def doctored(figures: pd.DataFrame, column: str, value) -> pd.DataFrame:
    """A copy of ``figures`` with ``column`` of the first row set to ``value``."""
    copy = figures.copy()
    copy.loc[copy.index[0], column] = value
    return copy


def test_every_published_figure_follows_the_rule(figures, keys):
    assert len(figures) > 0, "data/published_figures.csv is empty"
    assert published.problems(figures, keys) == []


def test_a_row_without_provenance_fails_the_check(figures, keys):
    found = published.problems(doctored(figures, "provenance", ""), keys)
    assert len(found) == 1 and found[0].endswith("empty provenance")


@pytest.mark.parametrize("column, value, complaint", [
    ("paper_key", "nobody2099", "is not in references.bib"),
    ("source", "blog", "is not one of"),
    ("value", 250.0, "outside [0, 100] for unit percent"),
    ("value", float("nan"), "value is not a number"),
    ("unit", "furlongs", "is not one of"),
    ("note", " ", "empty note"),
])  # fmt: skip
def test_a_doctored_row_fails_the_check(figures, keys, column, value, complaint):
    assert figures.iloc[0]["unit"] == "percent", "the first row is expected to be a percentage"
    found = published.problems(doctored(figures, column, value), keys)
    assert any(complaint in line for line in found), found


def test_a_figure_from_outside_a_paper_says_what_it_is(figures, keys):
    repository = figures.index[figures["source"] == "repository"][0]
    copy = figures.copy()
    copy.loc[repository, "provenance"] = "README.md of the project"
    assert any("must start with 'repository:'" in line for line in published.problems(copy, keys))


def test_a_repeated_row_fails_the_check(figures, keys):
    found = published.problems(pd.concat([figures, figures.iloc[[0]]], ignore_index=True), keys)
    assert any("more than one row" in line for line in found)


def test_the_columns_are_checked(figures, keys):
    assert published.problems(figures.drop(columns=["budget"]), keys)[0].startswith("columns are")


def test_chapter_two_finds_each_setting_it_compares(figures):
    for arm in QI_ARMS:
        assert published.select(figures, "qi2023finetuning", "harmfulness_rate_after", arm.model, arm.setting)["unit"] == "percent"


def test_a_lookup_that_matches_several_rows_is_refused(figures):
    with pytest.raises(KeyError, match="rows match"):
        published.figure(figures, "qi2023finetuning", "harmfulness_rate_after")


def test_the_book_reads_its_curves_at_the_papers_number_of_epochs():
    steps = (1, 5, 10, 30)
    assert [matched_step(steps, arm.examples, arm.epochs) for arm in QI_ARMS] == [5, 30, 30, 10, 10]
    assert matched_step((10, 30), 100, 2) == 10  # a tie (1 and 3 epochs around 2) goes to the earlier checkpoint
