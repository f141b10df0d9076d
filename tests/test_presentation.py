"""Figures and tables as a book has them, checked on the chapter sources (no execution, so it is cheap).

What is checked, in every ``chapters/*.md``:

* **No bare figure.** No code cell calls ``plt.show()``. A code cell that makes a matplotlib figure
  (``plt.subplots(`` or ``plt.figure(``) glues it, ``glue("name", fig, display=False)``, and closes it
  (``plt.close(``), and the chapter pastes every glued figure with a ``{glue:figure} name`` directive.
* **Every pasted figure is numbered, described and referenced.** Each ``{glue:figure}`` directive has a
  ``:name:`` (its label, which numbers it), an ``:alt:`` text and a caption paragraph, and the chapter
  refers to its label with ``{numref}``.
* **Every displayed table has a caption.** In a code cell whose output is shown (not tagged
  ``remove-output`` or ``remove-cell``), the value the cell displays (its last statement, when that is an
  expression) and everything passed to ``display(...)`` is a captioned table: a call to
  ``presentation.table(...)`` (caption and human column names) or a chain ending in ``.set_caption(...)``.
  Calls to ``print``, ``glue`` and the like display nothing and pass, and so do the graded exercises'
  checks (``check.*``, which return None) and the mode's note box (``MODE.admonition``). A cell that wants to
  show anything else prints it.
* **Every markdown table has a caption.** Each pipe-table line (``| ... |``) outside code sits inside a
  ``{table}`` directive with a caption and a ``:name:``.
* **Chapters are numbered as the text numbers them.** In ``_toc.yml`` the files of the numbered parts, in
  order, are ``01_...``, ``02_...``, ... (Jupyter Book 1 numbers numbered parts continuously, so the n-th
  numbered file is chapter n).

Not checked here: tables made by directives that take no caption (the reproducibility appendix's
``{nb-exec-table}``), and what the figures show. The last test shows each check failing on a doctored
chapter.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "chapters").glob("*.md"))
FENCE = re.compile(r"^(`{3,}|~{3,})(.*)$")
SILENT = {"print", "glue", "display", "plt.show", "plt.close", "plt.tight_layout"}  # calls whose value shows nothing
NOT_TABLES = ("check.", "MODE.admonition")  # exercise checks (they return None) and the mode's note box: no table
HIDDEN = {"remove-output", "remove-cell"}


@dataclass
class Cell:
    line: int
    tags: set[str]
    source: str


@dataclass
class Block:
    """A fenced block of the markdown: a directive (``name`` like ``{table}``) or plain code."""

    line: int
    name: str
    argument: str
    options: dict[str, str]
    content: list[str]


def blocks(text: str) -> list[Block]:
    """Every top-level fenced block of a MyST page, with its options and content (nested fences kept as content)."""
    lines, found, i = text.splitlines(), [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, info = match.group(1), match.group(2).strip()
        name, _, argument = info.partition(" ")
        end = i + 1
        while end < len(lines) and not re.fullmatch(re.escape(fence[0]) + "{%d,}\\s*" % len(fence), lines[end]):
            end += 1
        body, options = lines[i + 1 : end], {}
        while body and body[0].startswith(":"):
            key, _, value = body[0][1:].partition(":")
            options[key.strip()] = value.strip()
            body = body[1:]
        found.append(Block(i + 1, name, argument.strip(), options, body))
        i = end + 1
    return found


def code_cells(text: str) -> list[Cell]:
    cells = []
    for block in blocks(text):
        if block.name == "{code-cell}":
            tags = set(re.findall(r"[\w-]+", block.options.get("tags", "")))
            cells.append(Cell(block.line, tags, "\n".join(block.content)))
    return cells


def outside_fences(text: str) -> list[tuple[int, str]]:
    """The lines of the page that are in no fenced block, numbered from 1."""
    inside, lines = set(), text.splitlines()
    for block in blocks(text):
        inside.update(range(block.line, block.line + len(block.content) + len(block.options) + 2))
    return [(n, line) for n, line in enumerate(lines, 1) if n not in inside]


def dotted(node: ast.AST) -> str:
    """``presentation.table`` for the function of a call, '' when it is not a plain (dotted) name."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = dotted(node.value)
        return f"{inner}.{node.attr}" if inner else node.attr
    return ""


def captioned(node: ast.AST) -> bool:
    """Whether an expression is a captioned table: ``presentation.table(...)`` or a chain with ``.set_caption(...)``."""
    while isinstance(node, ast.Call):
        name = dotted(node.func)
        if name in ("presentation.table", "table") or name.endswith(".set_caption"):
            return True
        if isinstance(node.func, ast.Attribute) and node.func.attr == "set_caption":
            return True
        node = node.func.value if isinstance(node.func, ast.Attribute) else None
    return False


def figure_problems(text: str) -> list[str]:
    problems = []
    pasted = {b.argument: b for b in blocks(text) if b.name == "{glue:figure}"}
    for cell in code_cells(text):
        if "plt.show(" in cell.source:
            problems.append(f"line {cell.line}: plt.show() shows a bare figure; glue it and paste it with {{glue:figure}}")
        if re.search(r"plt\.(subplots|figure)\(", cell.source):
            glued = re.findall(r"""glue\(\s*["']([^"']+)["']\s*,\s*fig\s*,\s*display=False\s*\)""", cell.source)
            if not glued:
                problems.append(f"line {cell.line}: a figure is made but not glued with glue(name, fig, display=False)")
            if "plt.close(" not in cell.source:
                problems.append(f"line {cell.line}: a glued figure is not closed (plt.close), so it also shows bare")
            problems += [f"line {cell.line}: figure {name!r} is glued but no {{glue:figure}} pastes it"
                         for name in glued if name not in pasted]  # fmt: skip
    for name, block in pasted.items():
        for option in ("name", "alt"):
            if not block.options.get(option):
                problems.append(f"line {block.line}: {{glue:figure}} {name} has no :{option}:")
        if not any(line.strip() for line in block.content):
            problems.append(f"line {block.line}: {{glue:figure}} {name} has no caption")
        label = block.options.get("name")
        if label and f"{{numref}}`{label}`" not in text:
            problems.append(f"line {block.line}: figure {label} is never referred to with {{numref}}")
    return problems


def table_problems(text: str) -> list[str]:
    problems = []
    for cell in code_cells(text):
        if cell.tags & HIDDEN:
            continue
        tree = ast.parse(cell.source)
        shown = []
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = tree.body[-1].value
            quiet = isinstance(last, ast.Call) and (dotted(last.func) in SILENT - {"display"} or dotted(last.func).startswith(NOT_TABLES))
            if not quiet:
                shown.append(last)
        shown += [arg for node in ast.walk(tree) if isinstance(node, ast.Call) and dotted(node.func) == "display"
                  for arg in node.args]  # fmt: skip
        for node in shown:
            if not (isinstance(node, ast.Call) and dotted(node.func) == "display") and not captioned(node):
                problems.append(f"line {cell.line + node.lineno}: displays {ast.unparse(node)[:60]!r} without a caption; "
                                "show tables with presentation.table(frame, caption, ...) and print anything else")
    for block in blocks(text):
        if block.name == "{table}" and (not block.argument or not block.options.get("name")):
            problems.append(f"line {block.line}: a {{table}} needs a caption (its argument) and a :name:")
    for n, line in outside_fences(text):
        if line.lstrip().startswith("|"):
            problems.append(f"line {n}: a markdown table outside a captioned {{table}} directive")
    return problems


@pytest.mark.parametrize("page", CHAPTERS, ids=lambda p: p.name)
def test_every_figure_is_a_numbered_captioned_glued_figure(page):
    problems = figure_problems(page.read_text(encoding="utf-8"))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", CHAPTERS, ids=lambda p: p.name)
def test_every_displayed_table_is_captioned(page):
    problems = table_problems(page.read_text(encoding="utf-8"))
    assert not problems, "\n".join(problems)


def numbered_files(toc: dict) -> list[str]:
    return [entry["file"] for part in toc["parts"] if part.get("numbered") for entry in part["chapters"]]


def chapter_numbers(files: list[str]) -> list[int]:
    return [int(Path(f).name.split("_")[0]) for f in files]


def test_sidebar_numbers_match_the_chapter_numbers():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = numbered_files(toc)
    assert chapter_numbers(files) == list(range(1, len(files) + 1)), f"numbered parts hold {files}: the n-th must be chapter n"
    unnumbered = [entry["file"] for part in toc["parts"] if not part.get("numbered") for entry in part["chapters"]]
    assert not [f for f in unnumbered if Path(f).name[:2].isdigit()], "a numbered chapter sits in an unnumbered part"


GOOD = '''
```{code-cell} ipython3
fig, ax = plt.subplots()
glue("demo_fig", fig, display=False)
plt.close(fig)
```

```{glue:figure} demo_fig
:name: fig-demo
:alt: A line.

A caption.
```

As {numref}`fig-demo` shows.

```{code-cell} ipython3
presentation.table(frame, "A caption.", columns={"edc_sealed": "EDC"})
```

```{code-cell} ipython3
:tags: [remove-output]
frame
```

```{table} A caption.
:name: tbl-demo

| a | b |
|---|---|
```
'''


@pytest.mark.parametrize(("doctor", "message"), [
    (lambda s: s.replace('glue("demo_fig", fig, display=False)\nplt.close(fig)', "plt.show()"), "plt.show()"),
    (lambda s: s.replace(":alt: A line.\n", ""), "has no :alt:"),
    (lambda s: s.replace(":name: fig-demo\n", ""), "has no :name:"),
    (lambda s: s.replace("\nA caption.\n```\n\nAs", "\n```\n\nAs"), "has no caption"),
    (lambda s: s.replace("As {numref}`fig-demo` shows.", ""), "never referred to"),
])  # fmt: skip
def test_a_bare_or_undescribed_figure_fails(doctor, message):
    assert not figure_problems(GOOD)
    assert any(message in p for p in figure_problems(doctor(GOOD))), figure_problems(doctor(GOOD))


@pytest.mark.parametrize(("doctor", "message"), [
    (lambda s: s.replace('presentation.table(frame, "A caption.", columns={"edc_sealed": "EDC"})', "frame"), "without a caption"),
    (lambda s: s.replace('presentation.table(frame, "A caption.", columns={"edc_sealed": "EDC"})',
                         'display(frame.style.hide(axis="index"))'), "without a caption"),
    (lambda s: s.replace("```{table} A caption.\n:name: tbl-demo\n\n", "").replace("|---|---|\n```", "|---|---|"),
     "markdown table outside"),
    (lambda s: s.replace("```{table} A caption.", "```{table}"), "needs a caption"),
])  # fmt: skip
def test_an_uncaptioned_table_fails(doctor, message):
    assert not table_problems(GOOD)
    assert any(message in p for p in table_problems(doctor(GOOD))), table_problems(doctor(GOOD))


def test_a_chapter_numbered_out_of_order_fails():
    toc = {"parts": [{"numbered": True, "chapters": [{"file": "chapters/01_a"}, {"file": "chapters/03_c"}]}]}
    assert chapter_numbers(numbered_files(toc)) == [1, 3] != [1, 2]
