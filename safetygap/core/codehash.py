"""Code digests: a cached stage is keyed by the code that computes it.

A cached stage must be recomputed when, and only when, the code that produces it changes. `code_digest` hashes the
source of a stage function together with everything it reaches inside the package (the functions and classes it
uses, the module-level constants it reads), following references transitively. Source is compared as a parsed
syntax tree with docstrings removed, so comments, docstrings and formatting never invalidate a cache, and code the
stage does not reach (plot labels, chapter runners, unused helpers in the same module) is not part of its key.

References are found statically, by walking the syntax tree:

- a bare name is looked up in the closure and globals of a function, or in the defining module of a class;
- `module.attr`, where `module` is a package module, resolves `attr` in that module: only the attributes a stage
  touches count, never the whole module;
- module-level constants count by value, and a constant is a name in capitals (PEP 8): a lower-case module-level
  name is state (a counter, a stack of builds in progress) whose value changes as the program runs, and left out;
- type annotations are names too, so an argument annotated `world: World` pulls in the class `World` (its source
  holds all its methods). This is intended: it is how method calls on arguments, `world.sample(...)`, are covered.

The analysis over-approximates (a local variable that shadows a global name pulls in the global) and misses code
reached only dynamically: through `getattr`, string annotations, or methods of unannotated arguments. Keep stages
explicit and annotated.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import inspect
import json
import sys
import textwrap
from types import FunctionType, ModuleType
from typing import Any

PACKAGE = "safetygap"
CONSTANT_TYPES = (str, int, float, bool, type(None), bytes, tuple, list, dict, frozenset, set)
DOCSTRING_OWNERS = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
MISSING = object()  # a name that does not resolve (a local variable, a builtin, a typo)

Entries = dict[str, str]  # qualified name -> normalised source (functions, classes, modules) or repr (constants)


def code_digest(*objects: Any, package: str = PACKAGE) -> str:
    """SHA-256 hex of the normalised source of `objects` (functions, classes or modules of the package) and of
    everything they reference inside the package, transitively.

    `package` is the top-level package whose code counts (tests pass a throwaway one); references outside it
    (torch, the standard library) are ignored: their versions are pinned by the environment, not by this key.
    """
    entries = _collect(objects, package)
    payload = json.dumps(sorted(entries.items()))  # sorted: independent of the order of traversal
    return hashlib.sha256(payload.encode()).hexdigest()


def dependencies(*objects: Any, package: str = PACKAGE) -> list[str]:
    """Qualified names (module:qualname, or module:NAME for constants) of everything code_digest covers, sorted: for
    tests, and for readers who want to see what a stage's key depends on."""
    return sorted(_collect(objects, package))


def _collect(objects: tuple[Any, ...], package: str) -> Entries:
    """Check that each object is package code, then gather it and everything it reaches."""
    entries: Entries = {}
    for obj in objects:
        obj = _unwrap(obj)
        if not (isinstance(obj, (FunctionType, type, ModuleType)) and _in_package(obj, package)):
            raise TypeError(
                f"cannot digest {obj!r}: code_digest accepts only functions, classes or modules "
                f"of the package {package!r}"
            )
        _visit(obj, package, entries)
    return entries


def _visit(obj: FunctionType | type | ModuleType, package: str, entries: Entries) -> None:
    """Add a package function, class or module, then everything its syntax tree references."""
    name = _qualified(obj)
    if name in entries:
        return
    tree = _parse(obj, name)
    entries[name] = ast.dump(tree, annotate_fields=True, include_attributes=False)  # set first: cycles stop here
    if isinstance(obj, type):  # base classes supply inherited methods
        for base in obj.__mro__[1:]:
            if _in_package(base, package):
                _visit(base, package, entries)
    scope, closure = _namespaces(obj)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)) or isinstance(node, ast.Attribute):
            value, where = _resolve(node, scope, closure, package)
            _include(value, where, package, entries)


def _include(value: Any, where: str | None, package: str, entries: Entries) -> None:
    """Follow a resolved reference: package code is visited, package constants are recorded by repr."""
    value = _unwrap(value)
    if isinstance(value, (FunctionType, type)) and _in_package(value, package):
        _visit(value, package, entries)
    elif where is not None and where not in entries and _is_constant_name(where) and _is_constant(value):
        entries[where] = _render(value, package, entries)


def _resolve(node: ast.expr, scope: dict[str, Any], closure: dict[str, Any], package: str) -> tuple[Any, str | None]:
    """The value a name or `module.attr` chain refers to, and `module:NAME` when found in a package module's
    namespace (only such values can count as constants)."""
    if isinstance(node, ast.Name):
        if node.id in closure:
            return closure[node.id], None
        return scope.get(node.id, MISSING), f"{scope['__name__']}:{node.id}"
    if isinstance(node, ast.Attribute):
        base, _ = _resolve(node.value, scope, closure, package)
        if isinstance(base, ModuleType) and _in_package(base, package):
            return getattr(base, node.attr, MISSING), f"{base.__name__}:{node.attr}"
    return MISSING, None


def _namespaces(obj: FunctionType | type | ModuleType) -> tuple[dict[str, Any], dict[str, Any]]:
    """Where the names in `obj`'s source live: (module namespace, closure variables)."""
    if isinstance(obj, ModuleType):
        return vars(obj), {}
    if isinstance(obj, type):
        return vars(sys.modules[obj.__module__]), {}
    return obj.__globals__, dict(inspect.getclosurevars(obj).nonlocals)


def _parse(obj: FunctionType | type | ModuleType, name: str) -> ast.AST:
    """Syntax tree of `obj`'s source with every docstring removed."""
    try:
        source = inspect.getsource(obj)
    except (OSError, TypeError) as err:  # package code must be hashable, or its cache key would be a lie
        raise ValueError(f"cannot read the source of {name}: {err}") from err
    tree = ast.parse(textwrap.dedent(source))
    for node in list(ast.walk(tree)):
        if isinstance(node, DOCSTRING_OWNERS) and node.body and _is_docstring(node.body[0]):
            node.body = node.body[1:] or [ast.Pass()]
    return tree


def _is_docstring(statement: ast.stmt) -> bool:
    """A string constant standing alone as the first statement of a body."""
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def _is_constant_name(where: str) -> bool:
    """Whether ``module:NAME`` names a constant: PEP 8 spells constants in capitals. Other module-level names
    (a counter, a stack of builds in progress) are state whose value changes as the program runs, not code."""
    name = where.rsplit(":", 1)[1]
    return name.isupper()


def _is_constant(value: Any) -> bool:
    """Plain data (or a frozen dataclass of it) whose repr says what the code will see."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return type(value).__dataclass_params__.frozen
    return isinstance(value, CONSTANT_TYPES)


def _render(value: Any, package: str, entries: Entries) -> str:
    """A repr of a constant that is stable across runs (no memory addresses). Package functions and classes met
    inside it, such as the entries of a registry dict, are rendered by name and visited."""
    value = _unwrap(value)
    if isinstance(value, (FunctionType, type, ModuleType)):
        if not isinstance(value, ModuleType) and _in_package(value, package):
            _visit(value, package, entries)
        return _qualified(value)
    if isinstance(value, dict):
        items = ", ".join(f"{_render(k, package, entries)}: {_render(v, package, entries)}" for k, v in value.items())
        return f"{{{items}}}"
    if isinstance(value, (list, tuple, set, frozenset)):
        rendered = [_render(item, package, entries) for item in value]
        if isinstance(value, (set, frozenset)):  # set iteration order varies between runs
            rendered.sort()
        return f"{type(value).__name__}({', '.join(rendered)})"
    if dataclasses.is_dataclass(value):
        fields = ", ".join(
            f"{field.name}={_render(getattr(value, field.name), package, entries)}"
            for field in dataclasses.fields(value)
        )
        return f"{_render(type(value), package, entries)}({fields})"
    if type(value).__repr__ is object.__repr__:  # the default repr is a memory address
        return f"<{_qualified(type(value))} instance>"
    return repr(value)


def _unwrap(value: Any) -> Any:
    """The original function behind `functools.wraps` decorators; anything else unchanged."""
    if callable(value) and not isinstance(value, type):
        return inspect.unwrap(value)
    return value


def _qualified(obj: FunctionType | type | ModuleType) -> str:
    """`module:qualname`, the name an object goes by in the digest."""
    if isinstance(obj, ModuleType):
        return f"{obj.__name__}:<module>"
    return f"{obj.__module__}:{obj.__qualname__}"


def _in_package(obj: FunctionType | type | ModuleType, package: str) -> bool:
    """Whether `obj` is defined in `package` or one of its submodules."""
    module = obj.__name__ if isinstance(obj, ModuleType) else getattr(obj, "__module__", None)
    return isinstance(module, str) and (module == package or module.startswith(package + "."))
