"""Keep the book's executed outputs in step with everything that can change them.

Jupyter Book's execution cache re-runs a chapter only when that chapter's own
cells change. But a chapter's outputs also depend on the ``safetygap`` package,
on ``data/`` and on the pinned environment. ``make book`` runs this module
first: it hashes those inputs and, when the hash differs from the one stored
with the last build, clears the execution cache and Sphinx's environment (which
would otherwise skip every page whose own text is unchanged), so every chapter
re-executes.
(Trained models stay cached in the artifact store, keyed by their own code.)

Usage: ``python -m safetygap.book.bookstate [--root DIR]``.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
from pathlib import Path

from safetygap.book.paths import ROOT

INPUTS = ("safetygap", "data", "requirements.txt", "constraints.txt", "_config.yml")
STAMP = Path("_build") / ".inputs-sha256"
JUPYTER_CACHE = Path("_build") / ".jupyter_cache"
# Sphinx's record of which pages are up to date: without it every page is read (and so executed) again.
SPHINX_ENVIRONMENT = Path("_build") / ".doctrees"


def inputs_digest(root: Path = ROOT) -> str:
    """SHA-256 over the paths and bytes of every input file (``__pycache__`` excluded)."""
    h = hashlib.sha256()
    for name in INPUTS:
        path = root / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            if "__pycache__" in f.parts or not f.exists():
                continue
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def refresh(root: Path = ROOT) -> bool:
    """Clear the execution cache if the inputs changed since the last build; return whether it did."""
    digest = inputs_digest(root)
    stamp = root / STAMP
    if stamp.exists() and stamp.read_text().strip() == digest:
        return False
    shutil.rmtree(root / JUPYTER_CACHE, ignore_errors=True)
    shutil.rmtree(root / SPHINX_ENVIRONMENT, ignore_errors=True)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest + "\n")
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root (default: this checkout)")
    root = parser.parse_args().root
    changed = refresh(root)
    print("bookstate: inputs changed, chapters will re-execute" if changed else "bookstate: inputs unchanged")


if __name__ == "__main__":
    main()
