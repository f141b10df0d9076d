"""code_digest keys a stage by the code it reaches: edits to that code change the key, everything else does not.

Each test writes a small throwaway package, `fakepkg`, to its own directory, imports it, digests its stage, and
compares against a copy with one edit. Every version lives at its own path, so no stale module or source line is
ever reused between versions.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

from safetygap.core.codehash import code_digest, dependencies

PACKAGE = "fakepkg"

FILES = {
    "__init__.py": "",
    "cache.py": '''
import functools


def cached(fn):
    """A stand-in for the artifact cache decorator."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)
    return wrapper
''',
    "helpers.py": '''
"""Reached through `helpers.middle`, an attribute of a module."""

SCALE = 3
UNUSED = 7


def inner(x):
    return x * SCALE


def middle(x):
    return inner(x) + 1


def unused(x):
    return x
''',
    "text.py": '''
def split(words):
    return words.split()


def tokens(words):
    return len(split(words))
''',
    "world.py": '''
from dataclasses import dataclass


class Shape:
    def area(self):
        return 1


@dataclass(frozen=True)
class World(Shape):
    """Referenced by the stage only as an annotation."""
    size: int = 4

    def grow(self):
        return self.size + 1
''',
    "registry.py": '''
def rmu(x):
    return x - 1


def npo(x):
    return x + 2


METHODS = {"rmu": rmu, "npo": npo}
''',
    "stages.py": '''
from fakepkg import cache, helpers
from fakepkg.registry import METHODS
from fakepkg.text import tokens
from fakepkg.world import World

LABEL = "plot label"


@cache.cached
def stage(world: World, method: str) -> int:
    """Train the stage."""
    # Two levels down, once via `module.attr` and once via `from x import y`.
    return helpers.middle(world.size) + tokens("a b") + METHODS[method](1)


def chapter_runner():
    return stage(World(), "rmu"), LABEL
''',
}

EXPECTED_DEPENDENCIES = [
    "fakepkg.cache:cached",
    "fakepkg.helpers:SCALE",
    "fakepkg.helpers:inner",
    "fakepkg.helpers:middle",
    "fakepkg.registry:npo",
    "fakepkg.registry:rmu",
    "fakepkg.stages:METHODS",
    "fakepkg.stages:stage",
    "fakepkg.text:split",
    "fakepkg.text:tokens",
    "fakepkg.world:Shape",
    "fakepkg.world:World",
]

# (file, old text, new text, does the stage's digest change?)
EDITS = {
    "docstring": ("stages.py", '"""Train the stage."""', '"""Train the stage, reworded."""', False),
    "comment": ("stages.py", "# Two levels down", "# Still two levels down", False),
    "whitespace": ("stages.py", "middle(world.size) + tokens", "middle( world.size )  +  tokens", False),
    "module docstring": ("helpers.py", "an attribute of a module", "a module attribute", False),
    "unused constant": ("helpers.py", "UNUSED = 7", "UNUSED = 8", False),
    "unused function": ("helpers.py", "return x\n", "return -x\n", False),
    "unreached caller and label": ("stages.py", '"plot label"', '"new label"', False),
    "class docstring": ("world.py", "only as an annotation", "as an annotation only", False),
    "body": ("stages.py", "METHODS[method](1)", "METHODS[method](2)", True),
    "callee via module.attr, two levels down": ("helpers.py", "x * SCALE", "x * SCALE * 2", True),
    "callee via from-import, two levels down": ("text.py", "words.split()", "words.split(',')", True),
    "used constant": ("helpers.py", "SCALE = 3", "SCALE = 4", True),
    "annotation-only class": ("world.py", "self.size + 1", "self.size + 2", True),
    "base class": ("world.py", "return 1", "return 2", True),
    "registry entry": ("registry.py", "x + 2", "x + 3", True),
    "decorator": ("cache.py", "return fn(*args, **kwargs)", "return fn(*args)", True),
}


def load(root: Path, files: dict[str, str]):
    """Write `files` as the package `fakepkg` under `root`, import it, and return its `stages` module.

    The package is removed from `sys.modules` by `forget`, so the next version can be imported fresh.
    """
    for name, text in files.items():
        path = root / PACKAGE / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    try:
        return importlib.import_module(f"{PACKAGE}.stages")
    finally:
        sys.path.remove(str(root))


def forget() -> None:
    for name in [name for name in sys.modules if name == PACKAGE or name.startswith(PACKAGE + ".")]:
        del sys.modules[name]


@pytest.fixture
def version(tmp_path):
    """`version(tag, files)`: the `stages` module of `fakepkg` written from `files` in its own directory."""
    def make(tag: str, files: dict[str, str]):
        forget()
        return load(tmp_path / tag, files)

    yield make
    forget()


def stage_digest(version, tag: str, files: dict[str, str]) -> str:
    return code_digest(version(tag, files).stage, package=PACKAGE)


def test_dependencies_are_what_the_stage_reaches(version):
    stages = version("base", FILES)
    assert dependencies(stages.stage, package=PACKAGE) == EXPECTED_DEPENDENCIES


@pytest.mark.parametrize("edit", EDITS, ids=list(EDITS))
def test_digest_changes_only_with_reached_code(version, edit):
    file, old, new, changes = EDITS[edit]
    assert old in FILES[file], "the edit must apply, or the test proves nothing"
    edited = {**FILES, file: FILES[file].replace(old, new)}
    before = stage_digest(version, "before", FILES)
    after = stage_digest(version, "after", edited)
    assert (before != after) == changes


def test_digest_is_stable_across_imports(version):
    assert stage_digest(version, "one", FILES) == stage_digest(version, "two", FILES)


def test_registry_functions_are_named_not_addressed(version):
    """A registry dict is recorded by the names of its functions, never their memory addresses."""
    stages = version("base", FILES)
    assert "0x" not in json.dumps(dependencies(stages.stage, package=PACKAGE))
    assert code_digest(stages.stage, package=PACKAGE) == code_digest(stages.stage, package=PACKAGE)


def test_modules_and_classes_can_be_digested(version):
    stages = version("base", FILES)
    assert f"{PACKAGE}.stages:<module>" in dependencies(stages, package=PACKAGE)
    assert dependencies(stages.World, package=PACKAGE) == ["fakepkg.world:Shape", "fakepkg.world:World"]


@pytest.mark.parametrize("value", [json.dumps, len, 3, "stage"], ids=["foreign function", "builtin", "int", "str"])
def test_non_package_objects_are_rejected(version, value):
    version("base", FILES)
    with pytest.raises(TypeError, match="accepts only functions, classes or modules of the package 'fakepkg'"):
        code_digest(value, package=PACKAGE)


def test_default_package_is_safetygap():
    from safetygap.core import codehash

    assert codehash.PACKAGE == "safetygap"
    assert "safetygap.core.codehash:code_digest" in dependencies(code_digest)
    with pytest.raises(TypeError, match="'safetygap'"):
        code_digest(json.dumps)
