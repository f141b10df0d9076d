"""The two modes a chapter runs in: ``book`` (what the book reports) and ``student`` (a class's minute).

One switch, the environment variable ``SAFETYGAP_MODE`` (``book``, the default, or ``student``),
decides the size every chapter runs at. :func:`current` reads it and returns a :class:`Mode`
that holds everything a chapter runner needs, so a chapter never branches on the mode itself:

* ``scale``: the size of world and training (:data:`~safetygap.book.scales.SCALES`);
* ``seeds``: the seeds of experiments that run on every seed (chapters 1 and 2);
* ``grid_seeds``: the seeds of grids and of chapter 6's defenses (a subset of ``seeds``);
* ``draws``: the draws of the attack data per defended model (chapter 6).

Student mode shrinks sizes, seeds and draws, never content: every defense, attack and
figure of a chapter is still there. It runs the configuration the test suite checks
(the reduced world, the development seed :data:`~safetygap.book.scales.DEV_SEED`, one
draw), so the claims the tests require at that size hold whenever the tests pass.

Claims. In book mode a chapter requires every claim of its result sentences (the build
fails on a false one). In student mode it requires only the chapter's reduced-size
headline claims (``REDUCED_HEADLINE`` of :mod:`~safetygap.book.ch1_gap`,
:mod:`~safetygap.book.ch2_claims`, :mod:`~safetygap.book.ch3_claims` and :mod:`~safetygap.book.ch6_claims`, the lists the
tests check), with the same bars (:data:`~safetygap.book.claims.THRESHOLDS`); the other
sentences are statements about the book's sizes and seeds, shown but not enforced
(:meth:`Mode.require` prints which, and whether they hold at this size).

A later chapter reading an earlier one's results passes the mode's fields through::

    from safetygap.book import ch6_defenses, mode
    MODE = mode.current()
    result = ch6_defenses.run_defenses(seeds=MODE.grid_seeds, draws=MODE.draws, scale=MODE.scale)
    checked = MODE.require(my_claims(result), MY_REDUCED_HEADLINE)
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from typing import Iterable

import pandas as pd
from IPython.display import HTML

from safetygap.book import claims as bars
from safetygap.book import scales

MODES = ("book", "student")
VARIABLE = "SAFETYGAP_MODE"


@dataclass(frozen=True)
class Mode:
    """What a chapter runs: its ``scale``, ``seeds``, ``grid_seeds`` and ``draws`` (see the module docstring)."""

    name: str
    scale: str
    seeds: tuple[int, ...]
    grid_seeds: tuple[int, ...]
    draws: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.name not in MODES:
            raise ValueError(f"mode {self.name!r}: valid modes are {MODES}")
        if self.scale not in scales.SCALES:
            raise ValueError(f"Mode.scale={self.scale!r}: valid scales are {scales.SCALES}")
        if not self.seeds or not self.draws:
            raise ValueError(f"Mode {self.name!r} needs at least one seed and one draw")
        if not set(self.grid_seeds) <= set(self.seeds):
            raise ValueError(f"Mode.grid_seeds={self.grid_seeds} must be among seeds={self.seeds}")

    @property
    def enforces_all(self) -> bool:
        """Whether every claim is required (book mode) or only the reduced-size headline claims (student mode)."""
        return self.name == "book"

    def require(self, claims: Iterable[bars.Claim], headline: Iterable[str] = ()) -> pd.DataFrame:
        """Require ``claims`` as this mode does: all of them in book mode; in student mode those named in
        ``headline`` (the chapter's reduced-size headline claims), printing the others and whether they hold.
        Returns the required claims as a table (:func:`~safetygap.book.claims.require`)."""
        claims = list(claims)
        if self.enforces_all:
            return bars.require(claims)
        headline = set(headline)
        shown = [c for c in claims if c.name not in headline]
        if shown:
            false = [c.name for c in shown if not c.holds]
            print(f"{self.name} mode: {len(shown)} of {len(claims)} claims are book-scale statements, not enforced here"
                  f" ({len(false)} false at this size: {', '.join(false) or 'none'})")  # fmt: skip
        return bars.require([c for c in claims if c.name in headline])

    def banner(self, seeds: tuple[int, ...] | None = None, grid_seeds: tuple[int, ...] | None = None,
               draws: tuple[int, ...] | None = None) -> str:  # fmt: skip
        """One paragraph for the top of a chapter: which mode built the page, at what size, and the ``seeds``,
        ``grid_seeds`` and ``draws`` the chapter reads (each left out when not given; ``seeds`` defaults to the mode's)."""
        def listed(values: tuple[int, ...]) -> str:
            return f"{'s' if len(values) > 1 else ''} {', '.join(map(str, values))}"

        size = f"the {self.scale} scale, seed{listed(seeds or self.seeds)}"
        if grid_seeds is not None:
            size += f" (its grids on seed{listed(grid_seeds)})"
        if draws is not None:
            size += f", {len(draws)} draw{'s' if len(draws) > 1 else ''} of the attack data per defended model"
        if self.enforces_all:
            return f"This page was built in {self.name} mode: {size}. Every result sentence is checked."
        return (f"This page was built in {self.name} mode: {size}. It is the test suite's configuration (the "
                f"development seed, a smaller world, shorter pretraining), not the book's. Only the reduced-size "
                f"headline claims are enforced; the other result sentences describe the book's sizes and seeds, "
                f"so the numbers glued into them here need not bear them out. Set {VARIABLE}=book for the book.")  # fmt: skip

    def admonition(self, **parts: tuple[int, ...]) -> HTML:
        """:meth:`banner` (given the same ``parts``) as a note box, for the chapter's first output (HTML, so it renders
        in the book and in Jupyter)."""
        return HTML(f'<div class="admonition note"><p class="admonition-title">{self.name.capitalize()} mode</p>'
                    f"<p>{html.escape(self.banner(**parts))}</p></div>")  # fmt: skip


BOOK = Mode("book", "book", scales.BOOK_SEEDS, scales.GRID_SEEDS, scales.DRAWS)
STUDENT = Mode("student", "reduced", (scales.DEV_SEED,), (scales.DEV_SEED,), scales.DRAWS[:1])
_BY_NAME = {m.name: m for m in (BOOK, STUDENT)}


def current() -> Mode:
    """The mode named by ``SAFETYGAP_MODE`` (``book`` when unset); any other value is an error naming the valid ones."""
    name = os.environ.get(VARIABLE, "book")
    if name not in _BY_NAME:
        raise ValueError(f"{VARIABLE}={name!r}: valid modes are {MODES}")
    return _BY_NAME[name]
