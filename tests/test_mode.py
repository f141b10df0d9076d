"""The mode switch (SAFETYGAP_MODE): its two modes, its error, and how each requires a chapter's claims."""

from __future__ import annotations

import pytest

from safetygap.book import ch1_gap, ch2_claims, ch3_claims, ch6_claims, claims, mode, scales


def test_book_is_the_default_and_student_is_the_test_configuration(monkeypatch):
    monkeypatch.delenv(mode.VARIABLE, raising=False)
    assert mode.current() == mode.BOOK
    assert (mode.BOOK.seeds, mode.BOOK.grid_seeds, mode.BOOK.draws) == (scales.BOOK_SEEDS, scales.GRID_SEEDS, scales.DRAWS)
    monkeypatch.setenv(mode.VARIABLE, "student")
    student = mode.current()
    assert student == mode.STUDENT
    assert (student.scale, student.seeds, student.draws) == ("reduced", (scales.DEV_SEED,), (0,))


def test_an_unknown_mode_is_an_error_naming_the_valid_ones(monkeypatch):
    monkeypatch.setenv(mode.VARIABLE, "fast")
    with pytest.raises(ValueError, match=r"SAFETYGAP_MODE='fast': valid modes are \('book', 'student'\)"):
        mode.current()


def test_a_mode_must_be_consistent():
    with pytest.raises(ValueError, match="valid scales"):
        mode.Mode("student", "tiny", (0,), (0,), (0,))
    with pytest.raises(ValueError, match="grid_seeds"):
        mode.Mode("student", "reduced", (0,), (1,), (0,))


def _claims() -> list[claims.Claim]:
    return [claims.Claim("headline", "holds at every size", True, ""), claims.Claim("book_only", "a book-scale statement", False, "")]


def test_book_mode_requires_every_claim():
    with pytest.raises(claims.ClaimFailed, match="book_only"):
        mode.BOOK.require(_claims(), headline=["headline"])


def test_student_mode_requires_the_headline_claims_and_shows_the_others(capsys):
    table = mode.STUDENT.require(_claims(), headline=["headline"])
    assert list(table["claim"]) == ["headline"]
    assert "book_only" in capsys.readouterr().out
    with pytest.raises(claims.ClaimFailed, match="headline"):
        mode.STUDENT.require([claims.Claim("headline", "fails", False, "")], headline=["headline"])


def test_the_banner_names_the_mode_scale_and_seeds():
    assert "book mode: the book scale, seeds 1, 2, 3, 4, 5." in mode.BOOK.banner()
    ch6 = mode.BOOK.banner(seeds=mode.BOOK.grid_seeds, draws=mode.BOOK.draws)
    assert "seeds 1, 2, 3, 3 draws of the attack data" in ch6
    assert "(its grids on seeds 1, 2, 3)" in mode.BOOK.banner(grid_seeds=mode.BOOK.grid_seeds)
    assert "student mode: the reduced scale, seed 0." in mode.STUDENT.banner()
    assert "Student mode" in mode.STUDENT.admonition().data


@pytest.mark.parametrize("headline", [ch1_gap.REDUCED_HEADLINE, ch2_claims.REDUCED_HEADLINE, ch3_claims.REDUCED_HEADLINE,
                                      ch6_claims.REDUCED_HEADLINE])
def test_headline_lists_have_no_duplicates(headline):
    assert len(headline) == len(set(headline))
