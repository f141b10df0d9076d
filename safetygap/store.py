"""The artifact store: every trained stage cached on disk, keyed by what made it.

An artifact is a directory named ``<stage>-<key>``, where the key hashes the
stage's full config (upstream stages included, since their configs nest) and
the source code of the modules that produce it. Change a hyperparameter or the
training code and the key changes, so a stale model is never reused.

Writes are atomic: the artifact is built in a temporary directory next to its
final place, a ``manifest.json`` with the SHA-256 of every file is written
last, and the directory is renamed into place. A file lock makes concurrent
builders of one artifact wait for each other instead of racing. On every load
the manifest is checked; a missing or corrupt artifact is deleted and rebuilt.
Only safetensors and JSON are ever written or read (never pickle).
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
import shutil
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from filelock import FileLock

MANIFEST = "manifest.json"
ALLOWED_SUFFIXES = (".safetensors", ".json", ".jinja", ".txt")
DEFAULT_ROOT = Path(__file__).resolve().parent.parent / ".cache"


class CorruptArtifact(Exception):
    """An artifact on disk does not match its manifest."""


def cache_root() -> Path:
    """``$SAFETYGAP_CACHE`` if set, else ``.cache/`` at the repository root."""
    return Path(os.environ.get("SAFETYGAP_CACHE", DEFAULT_ROOT))


def config_json(config: Any) -> str:
    """Canonical JSON of a (nested) dataclass config, the input of the key."""
    value = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def code_version(*modules: ModuleType) -> str:
    """SHA-256 of the source of ``modules``: the code that produces an artifact."""
    h = hashlib.sha256()
    for module in sorted(modules, key=lambda m: m.__name__):
        h.update(module.__name__.encode())
        h.update(inspect.getsource(module).encode())
    return h.hexdigest()


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


def get_or_build(stage: str, config: Any, code: str, build: Callable[[Path], None], root: Path | None = None) -> Path:
    """The directory of the artifact for ``(stage, config, code)``, built by ``build(tmpdir)`` if needed.

    ``build`` writes the artifact's files into the directory it is given. The
    returned directory has been verified against its manifest.
    """
    root = cache_root() if root is None else root
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{stage}-{artifact_key(stage, config, code)}"
    with FileLock(str(final) + ".lock"):
        if final.exists():
            try:
                verify(final)
                return final
            except CorruptArtifact:
                shutil.rmtree(final)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=root))
        try:
            build(tmp)
            write_manifest(tmp, stage, config)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=1, sort_keys=True))


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())
