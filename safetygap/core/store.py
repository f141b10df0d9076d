"""The artifact store: every trained stage cached on disk, keyed by what made it.

A stage is a function decorated with :func:`cached`. Its artifact is a
directory named ``<stage>-<key>``, where the key hashes the function's
arguments (configs nest, so a stage's config covers its whole history; a stored
model stands for itself by its own artifact name) and the code that computes
it: the function and everything in the package it uses, transitively, without
docstrings or comments (:mod:`~safetygap.core.codehash`). Change a
hyperparameter or the training step and the key changes, so a stale model is
never reused; edit a plot label, a docstring or a chapter runner and nothing is
rebuilt.

Writes are atomic: the artifact is built in a temporary directory next to its
final place, a ``manifest.json`` with the SHA-256 of every file is written
last, and the directory is renamed into place; if another writer got there
first, its copy stands. So concurrent builders of one artifact, on one machine
or on a cluster sharing the store, never corrupt it; a file lock makes those on
one machine wait for each other instead of building it twice. On every load
the manifest is checked; a missing or corrupt artifact is deleted and rebuilt.
Only safetensors and JSON are ever written or read (never pickle).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import inspect
import json
import os
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

from filelock import FileLock

from safetygap.core import timing
from safetygap.core.codehash import code_digest

MANIFEST = "manifest.json"
BUILD_RECORD = "build.json"  # how long the build took, and of that how much was its own work, by kind
ALLOWED_SUFFIXES = (".safetensors", ".json", ".jinja", ".txt")
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / ".cache"


class CorruptArtifact(Exception):
    """An artifact on disk does not match its manifest."""


def cache_root() -> Path:
    """``$SAFETYGAP_CACHE`` if set, else ``.cache/`` at the repository root."""
    return Path(os.environ.get("SAFETYGAP_CACHE", DEFAULT_ROOT))


def key_value(value: Any) -> Any:
    """What an argument contributes to a key: a dataclass its fields, a stored artifact its ``cache_key``
    (the name of its directory), a tuple or list its elements, JSON values themselves."""
    if hasattr(value, "cache_key"):
        return value.cache_key
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (tuple, list)):
        return [key_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): key_value(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot key an artifact on {value!r} ({type(value).__name__}): use configs, artifacts or JSON values")


def config_json(config: Any) -> str:
    """Canonical JSON of a (nested) config, the input of the key."""
    return json.dumps(key_value(config), sort_keys=True, separators=(",", ":"))


def artifact_key(stage: str, config: Any, code: str) -> str:
    payload = json.dumps({"stage": stage, "config": config_json(config), "code": code}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(directory: Path, stage: str, config: Any) -> None:
    """Record the checksum of every file; refuse file types we do not load safely."""
    files = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        if path.suffix not in ALLOWED_SUFFIXES:
            raise ValueError(f"artifact file {path.name!r}: only {ALLOWED_SUFFIXES} may be stored")
        files[str(path.relative_to(directory))] = _sha256(path)
    manifest = {"stage": stage, "config": json.loads(config_json(config)), "files": files}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1))


def verify(directory: Path) -> None:
    """Raise :class:`CorruptArtifact` unless every file listed in the manifest is intact."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CorruptArtifact(f"{directory}: unreadable manifest ({err})") from err
    for name, digest in manifest["files"].items():
        path = directory / name
        if not path.is_file() or _sha256(path) != digest:
            raise CorruptArtifact(f"{directory}: {name} is missing or does not match its checksum")


def locking() -> bool:
    """Whether builders take a file lock (``$SAFETYGAP_STORE_LOCK``, default on). The lock only saves duplicate
    work; correctness never depends on it, so it can be turned off where a shared filesystem's locks hang."""
    return os.environ.get("SAFETYGAP_STORE_LOCK", "1") != "0"


def get_or_build(stage: str, config: Any, code: str, build: Callable[[Path], None], root: Path | None = None) -> Path:
    """The directory of the artifact for ``(stage, config, code)``, built by ``build(tmpdir)`` if needed.

    ``build`` writes the artifact's files into the directory it is given. The
    returned directory has been verified against its manifest. Publishing is
    an atomic rename and the first writer wins: a builder that finds the
    artifact already published by another (on another machine of a cluster,
    say) discards its own copy.
    """
    root = cache_root() if root is None else root
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{stage}-{artifact_key(stage, config, code)}"
    with FileLock(str(final) + ".lock") if locking() else contextlib.nullcontext():
        if final.exists():
            try:
                verify(final)
                return final
            except CorruptArtifact:
                shutil.rmtree(final, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=root))
        try:
            record_build(stage, build, tmp)
            write_manifest(tmp, stage, config)
            publish(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    verify(final)
    return final


def publish(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` to ``final`` atomically; if another writer published ``final`` first, keep theirs."""
    try:
        os.rename(tmp, final)
    except OSError:
        if not (final / MANIFEST).exists():
            raise


def cached(stage: str, save: Callable[[Any, Path], None], load: Callable[[Path], Any]) -> Callable:
    """Decorator: make a function a cached stage of the store.

    ``stage(*args)`` is computed once per distinct arguments and code;
    ``save(value, directory)`` writes the function's result and ``load(directory)``
    reads it back, so callers always get what the store holds, whether it was
    just built or found. The code part of the key is :func:`code_digest` of the
    function, ``save`` and ``load``.
    """

    def decorate(function: Callable) -> Callable:
        signature = inspect.signature(function)

        @functools.cache
        def code() -> str:
            return code_digest(function, save, load)

        @functools.wraps(function)
        def stage_function(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            key = {name: key_value(value) for name, value in bound.arguments.items()}
            path = get_or_build(stage, key, code(), lambda tmp: save(function(*args, **kwargs), tmp))
            return load(path)

        stage_function.code_digest = code
        return stage_function

    return decorate


def save_json(value: Any, directory: Path) -> None:
    """``save`` of a stage whose result is JSON (tables as lists of records, metrics as dicts)."""
    write_json(directory / "result.json", value)


def load_json(directory: Path) -> Any:
    """``load`` of a stage whose result is JSON."""
    return read_json(directory / "result.json")


def cached_json(stage: str) -> Callable:
    """:func:`cached` for a stage whose result is JSON."""
    return cached(stage, save_json, load_json)


_building: list[defaultdict[str, float]] = []  # builds in progress in this process: what their children took


def record_build(stage: str, build: Callable[[Path], None], tmp: Path) -> None:
    """Run ``build(tmp)`` and write :data:`BUILD_RECORD`: its wall seconds, and its *own* seconds and
    seconds of each kind of work (:mod:`~safetygap.core.timing`), without those of stages it built inside."""
    before, start = timing.snapshot(), time.perf_counter()
    _building.append(defaultdict(float))
    try:
        build(tmp)
    finally:
        children = _building.pop()
    seconds, work = time.perf_counter() - start, timing.since(before)
    if _building:
        _building[-1]["seconds"] += seconds
        for kind, spent in work.items():
            _building[-1][kind] += spent
    own = {kind: spent - children[kind] for kind, spent in work.items()}
    write_json(tmp / BUILD_RECORD, {"stage": stage, "seconds": seconds, "own_seconds": seconds - children["seconds"], "own": own})


class NotStored(Exception):
    """Inside :func:`stored_only`, an artifact had to be built."""


class _RefusedBuilds(list):
    """The stack of builds in progress while :func:`stored_only` holds: starting a build raises :class:`NotStored`."""

    def append(self, item) -> None:
        raise NotStored("an artifact is not in the store and stored_only() forbids building it")


@contextlib.contextmanager
def stored_only():
    """Within this context the store only reads: a stage whose artifact is missing raises :class:`NotStored` instead
    of building it (:func:`record_build` pushes every build on the stack this swaps out). It lets
    :func:`~safetygap.core.parallel.run_in_workers` tell a job the store already holds from one that builds."""
    global _building
    saved, _building = _building, _RefusedBuilds()
    try:
        yield
    finally:
        _building = saved


def write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=1, sort_keys=True))


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())
