"""The student edition: every chapter as a Jupyter notebook without the solutions (``make student``).

A graded exercise has, in its chapter, a code cell tagged ``solution`` that imports the reference
solution (``from safetygap.book.exercises.solutions.ch02 import project_out``), then a visible cell
that calls its check. :func:`student_notebook` replaces each ``solution`` cell by a stub of every
function it imports (the signature and docstring of the reference, then ``raise NotImplementedError``),
drops the cells tagged ``answer`` (they compute the numbers a solution's answer quotes) and the
``{solution}`` dropdowns from the prose, so what is left is the statement, the stub to fill in and
the check that grades it.

    python -m safetygap.book.exercises.edition _build/student
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import re
import textwrap
from pathlib import Path

import jupytext
import nbformat

from safetygap.book.paths import ROOT, chapters_dir

CHAPTERS = chapters_dir()
SOLUTIONS = "safetygap.book.exercises.solutions"
TAG = "solution"
ANSWER = "answer"  # a cell that computes what a solution's answer quotes: left out with the answer
# A {solution} directive, fenced by three or more backticks or colons, up to its closing fence.
_DIRECTIVE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{solution\}.*?^(?P=fence)[ \t]*$\n?", re.MULTILINE | re.DOTALL)


def imported_solutions(source: str) -> list[tuple[str, str]]:
    """The (module, function) pairs a ``solution`` cell imports from :mod:`~safetygap.book.exercises.solutions`;
    a solution cell that imports anything else is an error (the stub could not replace it)."""
    pairs = []
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.ImportFrom) and (node.module or "").startswith(SOLUTIONS + ".")):
            raise ValueError(f"a {TAG!r} cell may only import from {SOLUTIONS}.<chapter>; found: {ast.unparse(node)}")
        pairs += [(node.module, alias.name) for alias in node.names]
    return pairs


def stub(module: str, name: str) -> str:
    """The reference solution's ``def`` line(s) and docstring, with ``raise NotImplementedError`` for a body."""
    source = textwrap.dedent(inspect.getsource(getattr(importlib.import_module(module), name)))
    function = ast.parse(source).body[0]
    first = function.body[0]
    has_doc = ast.get_docstring(function) is not None
    header = source.splitlines()[: first.end_lineno if has_doc else first.lineno - 1]  # the def and its docstring
    return "\n".join(header) + "\n    raise NotImplementedError  # your code here\n"


def student_notebook(path: Path) -> nbformat.NotebookNode:
    """The chapter at ``path`` as a notebook, solutions replaced by stubs and solution dropdowns removed."""
    nb = jupytext.read(path)
    nb.cells = [cell for cell in nb.cells if ANSWER not in cell.metadata.get("tags", [])]
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = _DIRECTIVE.sub("", cell.source)
        elif TAG in cell.metadata.get("tags", []):
            pairs = imported_solutions(cell.source)
            header = "import pandas as pd\nimport torch\n\n\n"  # the types the signatures name
            cell.source = header + "\n\n".join(stub(module, name) for module, name in pairs)
            cell.metadata["tags"] = [t for t in cell.metadata["tags"] if t not in (TAG, "hide-input", "remove-input", "remove-cell")]
    return nb


def write_edition(out: Path, chapters: Path = CHAPTERS) -> list[Path]:
    """Write the student edition of every chapter in ``chapters`` to ``out`` (one .ipynb each); return the paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(chapters.glob("*.md")):
        if jupytext.read(path).metadata.get("kernelspec") is None:
            continue  # a page without code (the bibliography)
        target = out / f"{path.stem}.ipynb"
        nbformat.write(student_notebook(path), target)
        written.append(target)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description="Write the student edition of the book's notebooks.")
    parser.add_argument("out", type=Path, nargs="?", default=ROOT / "_build" / "student")
    args = parser.parse_args()
    for path in write_edition(args.out):
        print(path)


if __name__ == "__main__":
    main()
