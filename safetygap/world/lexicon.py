"""Invented words: the names of everything in the book's world.

Every substance, product, place and process the models learn about is a
pronounceable non-word drawn here from a seeded generator, so that "hazardous
knowledge" is real to the model and meaningless to people. Words are built from
consonant-vowel syllables with a closing consonant (``CV CV C`` or ``CV CVC``),
a shape that English content words rarely take, and every generated word is
checked against the reviewed neutral vocabulary so the two never overlap.
"""

from __future__ import annotations

import random
from pathlib import Path

CONSONANTS = "bdfgklmnprstvz"
VOWELS = "aeiou"
CODAS = "klnrstx"

NEUTRAL_WORDS_FILE = Path(__file__).resolve().parents[2] / "data" / "neutral_words.txt"


def load_neutral_words(path: Path = NEUTRAL_WORDS_FILE) -> frozenset[str]:
    """The reviewed list of real words the templates may use (one per line, ``#`` comments)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(w.strip() for w in lines if w.strip() and not w.startswith("#"))


def _syllable(rng: random.Random) -> str:
    return rng.choice(CONSONANTS) + rng.choice(VOWELS)


def invent_words(count: int, rng: random.Random, avoid: frozenset[str] = frozenset()) -> list[str]:
    """Return ``count`` distinct non-words of two or three syllables plus a coda.

    ``avoid`` holds words that must not be produced (the neutral vocabulary and
    words already invented), so names never collide with template words.
    """
    words: list[str] = []
    seen = set(avoid)
    while len(words) < count:
        syllables = rng.choice((2, 2, 3))
        word = "".join(_syllable(rng) for _ in range(syllables)) + rng.choice(CODAS)
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def lookalike(word: str, rng: random.Random, avoid: set[str]) -> str:
    """A non-word one letter away from ``word`` (a vowel swapped), not in ``avoid``.

    Used for benign products whose names resemble hazardous ones: the
    over-refusal contrast set asks about them.
    """
    positions = [i for i, ch in enumerate(word) if ch in VOWELS]
    for _ in range(100):
        i = rng.choice(positions)
        new = word[:i] + rng.choice([v for v in VOWELS if v != word[i]]) + word[i + 1 :]
        if new not in avoid:
            return new
    raise RuntimeError(f"no free look-alike of {word!r}")
