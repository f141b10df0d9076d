"""Consistency checks for the book's environment, bibliography and table of contents.

These tests read files only (no training), so they run in well under a second.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent

# A requirement line "name==version" (names compared case- and separator-insensitively).
PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(==|>=|<=|~=|!=|>|<|===)\s*(\S+)\s*$")
# {cite}`a,b`, {cite:p}`a`, {cite:t}`a`, and the other sphinxcontrib-bibtex roles.
CITE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")
BIB_KEY = re.compile(r"^\s*@\s*(\w+)\s*\{\s*([^,\s]+)\s*,", re.MULTILINE)


def normalise(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_pins(lines: list[str]) -> dict[str, tuple[str, str]]:
    """{normalised name: (operator, version)} for requirement lines, skipping comments."""
    pins: dict[str, tuple[str, str]] = {}
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = PIN.match(line)
        assert match, f"cannot parse requirement line: {raw!r}"
        name, op, version = match.groups()
        key = normalise(name)
        assert key not in pins, f"{name} is listed twice"
        pins[key] = (op, version)
    return pins


def release(version: str) -> tuple[int, ...]:
    """Numeric release part of a version: '2.13.0+cpu' -> (2, 13, 0); '1.0.4.post1' -> (1, 0, 4)."""
    parts = []
    for piece in version.split("+", 1)[0].split("."):
        if not piece.isdigit():
            break
        parts.append(int(piece))
    return tuple(parts)


@pytest.fixture(scope="module")
def requirements() -> dict[str, tuple[str, str]]:
    return parse_pins((ROOT / "requirements.txt").read_text().splitlines())


@pytest.fixture(scope="module")
def constraints() -> dict[str, tuple[str, str]]:
    return parse_pins((ROOT / "constraints.txt").read_text().splitlines())


@pytest.fixture(scope="module")
def bib_keys() -> set[str]:
    text = (ROOT / "references.bib").read_text(encoding="utf-8")
    keys = [key for kind, key in BIB_KEY.findall(text) if kind.lower() not in {"comment", "string", "preamble"}]
    assert len(keys) == len(set(keys)), "duplicate keys in references.bib"
    return set(keys)


def test_environment_yml_matches_requirements(requirements):
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    pip_sections = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml needs exactly one pip: section"
    assert "pip" in deps, "environment.yml must install pip itself"
    assert any(str(d).replace(" ", "") in {"python=3.11", "python==3.11"} for d in deps)
    assert parse_pins(pip_sections[0]) == requirements


def test_requirements_are_exact_and_locked(requirements, constraints):
    assert requirements, "requirements.txt is empty"
    for name, (op, version) in requirements.items():
        assert op == "==", f"{name} is not pinned exactly ({op}{version})"
        assert name in constraints, f"{name} is missing from constraints.txt"
        c_op, c_version = constraints[name]
        assert c_op == "==", f"constraints.txt does not pin {name} exactly"
        assert c_version == version, (
            f"{name}: requirements.txt pins {version}, constraints.txt {c_version}"
        )
    for name, (op, version) in constraints.items():
        assert op == "==", f"constraints.txt: {name} is not pinned exactly"
        assert "+" not in version, f"constraints.txt: drop the local tag of {name}=={version}"


def test_torch_pin(requirements):
    assert requirements["torch"] == ("==", "2.13.0")


def test_jupyter_book_is_1x(requirements):
    op, version = requirements["jupyter-book"]
    assert op == "=="
    assert (1, 0, 4) <= release(version) < (2,), f"jupyter-book {version} is not >=1.0.4,<2"


def test_chapter_citations_exist(bib_keys):
    missing = {}
    for page in sorted((ROOT / "chapters").glob("*.md")):
        for group in CITE.findall(page.read_text(encoding="utf-8")):
            for key in (k.strip() for k in group.split(",")):
                if key and key not in bib_keys:
                    missing.setdefault(page.name, []).append(key)
    assert not missing, f"citation keys not in references.bib: {missing}"


def toc_files(node) -> list[str]:
    """Every `file:` (and the root) of a jb-book _toc.yml, in order."""
    found = []
    if isinstance(node, dict):
        for key in ("root", "file"):
            if key in node:
                found.append(node[key])
        for value in node.values():
            found.extend(toc_files(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(toc_files(item))
    return found


def test_toc_files_exist():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    assert toc["format"] == "jb-book"
    files = toc_files(toc)
    assert files, "_toc.yml lists no files"
    missing = [
        f for f in files
        if not any((ROOT / f).with_suffix(ext).exists() for ext in (".md", ".ipynb"))
        and not (ROOT / f).exists()
    ]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"
