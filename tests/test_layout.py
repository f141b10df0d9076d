"""The package's layout: stages import one way, attacks and defenses apart, small modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "safetygap"
ORDER = {"world": 0, "core": 1, "lab": 2, "attacks": 3, "defenses": 3, "book": 4}
MAX_LINES = 400


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def stage_of(dotted: str) -> str | None:
    """The stage of a module name like ``safetygap.core.training`` (None for the top-level package)."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ORDER else None


def imported(path: Path) -> set[str]:
    """Every safetygap module ``path`` imports (``from safetygap.x import y`` counts ``safetygap.x.y`` too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("safetygap")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("safetygap"):
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def test_every_module_belongs_to_a_stage():
    for path in modules():
        rel = path.relative_to(PACKAGE)
        assert len(rel.parts) == 1 and rel.name == "__init__.py" or rel.parts[0] in ORDER, rel


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_one_way(path):
    rel = path.relative_to(PACKAGE)
    if len(rel.parts) == 1:
        return
    own = rel.parts[0]
    for name in imported(path):
        other = stage_of(name)
        if other is None or other == own:
            continue
        assert ORDER[other] < ORDER[own], f"{rel} imports {name}: {other} comes after {own}"
        assert {own, other} != {"attacks", "defenses"}, f"{rel} imports {name}: attacks and defenses stay apart"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_a_hub(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES


def test_a_backwards_import_would_be_caught():
    assert stage_of("safetygap.book.plotting") == "book" and ORDER["book"] > ORDER["core"]
