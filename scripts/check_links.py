"""Check the internal links of the built HTML book: every relative href or src resolves, and every #anchor exists.

Walks every page (``.html`` file) under the build directory (default ``_build/html``; the theme's Jinja
templates copied into ``_static/`` are not pages and are skipped, links into ``_static/`` are checked), reads each ``href`` and ``src``
attribute, and skips links that leave the book (a scheme such as ``https:`` or ``mailto:``, or ``//host``). A
relative link must name a file that exists (a directory stands for its ``index.html``); a link with a fragment
(``page.html#section`` or ``#section``) must point to an element of that page with that ``id`` (or an anchor
with that ``name``). Prints each broken link with the page it is on and exits with status 1 if there is any.
Only the standard library is used, so it runs wherever the book builds.

    python scripts/check_links.py [BUILD_DIR]
"""

from __future__ import annotations

import argparse
import sys
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit


class _Page(HTMLParser):
    """The links (``href`` and ``src`` values) and the anchors (``id`` and ``<a name>`` values) of one page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.anchors: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("href", "src"):
            if values.get(name) is not None:
                self.links.append(values[name])
        if values.get("id"):
            self.anchors.add(values["id"])
        if tag == "a" and values.get("name"):
            self.anchors.add(values["name"])


@cache
def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    return page


def _external(link: str) -> bool:
    parts = urlsplit(link)
    return bool(parts.scheme) or link.startswith("//")


def pages(root: Path) -> list[Path]:
    """The book's pages: every .html file under ``root`` outside ``_static/``."""
    return sorted(p for p in root.rglob("*.html") if "_static" not in p.relative_to(root).parts)


def broken_links(root: Path) -> list[str]:
    """Every broken internal link under ``root``, as 'page: link (why)'."""
    if not root.is_dir():
        raise FileNotFoundError(f"no built book at {root}: run `make book` first")
    problems = []
    for page in pages(root):
        for link in _parse(page).links:
            if not link or _external(link):
                continue
            parts = urlsplit(link)
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            where = f"{page.relative_to(root)}: {link}"
            if not target.exists():
                problems.append(f"{where} (no file {target})")
            elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in _parse(target).anchors:
                problems.append(f"{where} (no anchor #{unquote(parts.fragment)} in {target.name})")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build", nargs="?", default="_build/html", type=Path, help="the built HTML (default: _build/html)")
    root = parser.parse_args(argv).build.resolve()
    try:
        problems = broken_links(root)
    except FileNotFoundError as error:
        print(f"check_links: {error}", file=sys.stderr)
        return 2
    for problem in problems:
        print(problem)
    print(f"check_links: {len(pages(root))} pages, {len(problems)} broken internal links")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
