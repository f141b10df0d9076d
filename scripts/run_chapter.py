#!/usr/bin/env python
"""Execute one chapter as the book build does, and say how long it took and what went wrong.

    python scripts/run_chapter.py 02                       # chapters/02_*.md, in the mode SAFETYGAP_MODE names
    python scripts/run_chapter.py chapters/06_narrowing.md --mode student

The chapter (a MyST markdown notebook) runs in a fresh kernel whose working directory is
``chapters/``, as in ``jupyter-book build``; it works from any working directory. The script
prints the wall time, the first error if a cell failed, and every glue name the prose uses
that no cell glued, writes the executed notebook (``_build/run/<chapter>.<mode>.ipynb`` unless
``--output`` says otherwise) and exits non-zero on an error or a missing glue name.
``make chapter CHAPTER=02 MODE=student`` runs it.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
sys.path.insert(0, str(ROOT))  # the package of this checkout, whatever the working directory

from safetygap.book import mode as modes  # noqa: E402


def chapter_path(name: str) -> Path:
    """The chapter ``name`` names: a path to a .md file, or the start of a file name in chapters/ (``02``)."""
    path = Path(name)
    if path.suffix == ".md" and path.exists():
        return path.resolve()
    found = sorted(CHAPTERS.glob(f"{name}*.md"))
    if len(found) != 1:
        valid = ", ".join(p.stem for p in sorted(CHAPTERS.glob("*.md")))
        raise SystemExit(f"chapter {name!r} names {len(found)} chapters; valid chapters are: {valid}")
    return found[0]


def glue_names(nb: nbformat.NotebookNode) -> set[str]:
    """The names the executed notebook glued."""
    return {out["metadata"]["scrapbook"]["name"] for cell in nb.cells for out in cell.get("outputs", [])
            if "scrapbook" in out.get("metadata", {})}  # fmt: skip


def used_names(text: str) -> set[str]:
    """The glue names the chapter's prose uses (``{glue:text}`` roles and ``{glue:figure}`` directives)."""
    return set(re.findall(r"\{glue:text\}`([^`]+)`", text)) | set(re.findall(r"\{glue:figure\} (\S+)", text))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapter", help="a chapter's .md file, or the start of its name in chapters/ (e.g. 02)")
    parser.add_argument("--mode", choices=modes.MODES, help=f"sets {modes.VARIABLE} (default: as the environment has it)")
    parser.add_argument("--output", type=Path, help="where to write the executed notebook")
    args = parser.parse_args()
    if args.mode:
        os.environ[modes.VARIABLE] = args.mode
    mode = modes.current()  # fails here, naming the valid modes, on a bad SAFETYGAP_MODE
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    path = chapter_path(args.chapter)
    output = args.output or ROOT / "_build" / "run" / f"{path.stem}.{mode.name}.ipynb"

    nb = jupytext.read(path)
    client = NotebookClient(nb, timeout=3600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    start, error = time.time(), None
    try:
        client.execute()
    except CellExecutionError as e:
        error = str(e)
    seconds = time.time() - start
    missing = sorted(used_names(path.read_text()) - glue_names(nb))
    output.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, output)

    print(f"{path.name} in {mode.name} mode: {'failed after' if error else 'executed in'} {seconds:.0f} s")
    if error:
        print(error[-3000:])
    print(f"glue names used but not glued: {missing or 'none'}")
    print(f"executed notebook: {output}")
    return 1 if error or missing else 0


if __name__ == "__main__":
    sys.exit(main())
