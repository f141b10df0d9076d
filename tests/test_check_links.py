"""The internal link check of the built book (scripts/check_links.py) on a tiny hand-made site."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "check_links.py"


@pytest.fixture(scope="module")
def check_links():
    spec = importlib.util.spec_from_file_location("check_links", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def site(root: Path, index: str) -> Path:
    (root / "chapters").mkdir(parents=True)
    (root / "_static").mkdir()
    (root / "_static" / "book.css").write_text("")
    (root / "_static" / "template.html").write_text('<a href="{{ pathto(x) }}">theme template, not a page</a>')
    (root / "chapters" / "one.html").write_text('<h1 id="first-section">One</h1><a name="old-anchor"></a>')
    (root / "index.html").write_text(index)
    return root


def test_a_sound_site_passes(check_links, tmp_path):
    root = site(tmp_path, '<link href="_static/book.css"><a href="chapters/one.html#first-section">1</a>'
                          '<a href="chapters/one.html#old-anchor">1</a><a href="#top">top</a><p id="top"></p>'
                          '<a href="https://example.org/missing.html">out</a><a href="chapters/">dir</a>')
    (root / "chapters" / "index.html").write_text("")
    assert check_links.broken_links(root) == []
    assert check_links.main([str(root)]) == 0


@pytest.mark.parametrize(("link", "why"), [
    ("chapters/two.html", "no file"),
    ("chapters/one.html#second-section", "no anchor #second-section"),
    ("#nowhere", "no anchor #nowhere"),
    ("_static/missing.js", "no file"),
])  # fmt: skip
def test_a_broken_link_fails(check_links, tmp_path, link, why):
    root = site(tmp_path, f'<a href="{link}">broken</a>')
    problems = check_links.broken_links(root)
    assert len(problems) == 1 and why in problems[0], problems
    assert check_links.main([str(root)]) == 1


def test_no_build_is_a_clear_error(check_links, tmp_path, capsys):
    assert check_links.main([str(tmp_path / "_build" / "html")]) == 2
    assert "run `make book` first" in capsys.readouterr().err
