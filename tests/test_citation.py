"""The book is citable and its pages point only at what readers have.

``CITATION.cff`` carries the package's version (``pyproject.toml`` and ``safetygap.__version__``) and the
book's authors; the essay the book follows is
an entry of ``references.bib`` that the introduction cites; no page mentions the authors' private
design notes, their issue tracker or their machines' paths.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
ESSAY_KEY = "safetygapessay"
PRIVATE = re.compile(r"DESIGN\.md|REFERENCES\.md|/work/|\bthe issue\b|\bissue's\b", re.IGNORECASE)


def test_citation_file_names_the_version_and_the_authors():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    assert citation["cff-version"] == "1.2.0"
    assert citation["title"] and citation["message"]
    assert str(citation["version"]) == version, f"CITATION.cff says {citation['version']}, pyproject.toml {version}"
    assert f'__version__ = "{version}"' in (ROOT / "safetygap" / "__init__.py").read_text(encoding="utf-8")
    assert [a.get("name") for a in citation["authors"]] == [config["author"]]


def test_the_essay_is_in_the_bibliography_and_cited_by_the_introduction():
    bib = (ROOT / "references.bib").read_text(encoding="utf-8")
    entry = re.search(r"@\w+\{" + ESSAY_KEY + r",(.*?)\n\}", bib, re.S)
    assert entry and "When Anyone Can Remove the Guardrails" in entry.group(1)
    assert re.search(r"\{cite:[pt]\}`[^`]*\b" + ESSAY_KEY + r"\b", (ROOT / "chapters" / "intro.md").read_text())


def test_no_page_points_at_files_readers_do_not_have():
    found = {page.name: PRIVATE.findall(page.read_text(encoding="utf-8")) for page in (ROOT / "chapters").glob("*.md")}
    assert not {k: v for k, v in found.items() if v}, found
