"""The artifact store: keys, atomic writes, corruption recovery, concurrent builders."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from pathlib import Path

import pytest

from safetygap.core import store
from safetygap.lab.configs import BaseConfig
from safetygap.core.training import TrainConfig


def _write(value):
    def build(tmp: Path) -> None:
        store.write_json(tmp / "value.json", {"value": value})

    return build


def test_key_changes_with_any_config_field_and_with_code():
    a = BaseConfig()
    b = BaseConfig(train=TrainConfig(steps=999, lr=3e-3))
    assert store.artifact_key("base", a, "code") == store.artifact_key("base", BaseConfig(), "code")
    assert store.artifact_key("base", a, "code") != store.artifact_key("base", b, "code")
    assert store.artifact_key("base", a, "code") != store.artifact_key("base", a, "other code")
    assert store.artifact_key("base", a, "code") != store.artifact_key("oracle", a, "code")


def test_arguments_key_by_fields_artifact_names_and_values():
    assert store.key_value(BaseConfig())["train"]["steps"] == BaseConfig().train.steps
    assert store.key_value((1, "a", None)) == [1, "a", None]

    class Stored:
        cache_key = "safe-0123"

    assert store.key_value({"model": Stored()}) == {"model": "safe-0123"}
    with pytest.raises(TypeError, match="cannot key an artifact on"):
        store.key_value(object())


def test_cached_stage_builds_once_per_argument(tmp_path, monkeypatch):
    monkeypatch.setenv("SAFETYGAP_CACHE", str(tmp_path))
    monkeypatch.setattr(store, "code_digest", lambda *objects: "code")  # a test function is not package code
    calls = []

    @store.cached_json("square")
    def square(x: int) -> dict:
        calls.append(x)
        return {"square": x * x}

    assert square(3) == square(x=3) == {"square": 9}
    assert square(4) == {"square": 16} and calls == [3, 4]


def test_built_once_then_loaded(tmp_path):
    calls = []

    def build(tmp: Path) -> None:
        calls.append(1)
        _write(1)(tmp)

    first = store.get_or_build("x", {"a": 1}, "c", build, root=tmp_path)
    second = store.get_or_build("x", {"a": 1}, "c", build, root=tmp_path)
    assert first == second and len(calls) == 1
    manifest = json.loads((first / store.MANIFEST).read_text())
    assert set(manifest["files"]) == {"value.json", store.BUILD_RECORD}


def test_truncated_file_is_detected_and_rebuilt(tmp_path):
    path = store.get_or_build("x", {"a": 1}, "c", _write(7), root=tmp_path)
    target = path / "value.json"
    target.write_bytes(target.read_bytes()[:3])
    with pytest.raises(store.CorruptArtifact):
        store.verify(path)
    again = store.get_or_build("x", {"a": 1}, "c", _write(7), root=tmp_path)
    assert store.read_json(again / "value.json") == {"value": 7}


def test_missing_manifest_means_rebuild(tmp_path):
    path = store.get_or_build("x", {"a": 2}, "c", _write(2), root=tmp_path)
    (path / store.MANIFEST).unlink()
    assert store.read_json(store.get_or_build("x", {"a": 2}, "c", _write(2), root=tmp_path) / "value.json") == {"value": 2}


def test_failed_build_leaves_nothing_behind(tmp_path):
    def broken(tmp: Path) -> None:
        (tmp / "half.json").write_text("{")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        store.get_or_build("x", {"a": 3}, "c", broken, root=tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]


def test_pickle_files_are_refused(tmp_path):
    def pickles(tmp: Path) -> None:
        (tmp / "model.pkl").write_bytes(b"\x80\x04")

    with pytest.raises(ValueError, match=r"model\.pkl"):
        store.get_or_build("x", {"a": 4}, "c", pickles, root=tmp_path)


def _slow_builder(root: str, log: str, lock: bool = True, start=None) -> None:
    """Build one slow artifact; ``start`` (a barrier shared with the other process) lines both up after their imports,
    which take seconds and differ under load, so that both reach the store while the other is still building."""
    os.environ["SAFETYGAP_STORE_LOCK"] = "1" if lock else "0"
    if start is not None:
        start.wait(60)

    def build(tmp: Path) -> None:
        with open(log, "a") as f:
            f.write("built\n")
        time.sleep(1.0)
        (tmp / "big.json").write_text(json.dumps(list(range(50_000))))

    path = store.get_or_build("race", {"a": 5}, "c", build, root=Path(root))
    store.verify(path)


def test_two_processes_building_the_same_artifact_do_not_corrupt_it(tmp_path):
    log = tmp_path / "log.txt"
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(2)
    procs = [ctx.Process(target=_slow_builder, args=(str(tmp_path / "root"), str(log), True, start)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert log.read_text().count("built") == 1
    (artifact,) = [p for p in (tmp_path / "root").iterdir() if p.is_dir()]
    assert json.loads((artifact / "big.json").read_text())[-1] == 49_999


def test_two_writers_without_a_lock_both_succeed_and_the_first_copy_stands(tmp_path):
    """As on a shared filesystem whose locks do not work: both build, one publishes, neither fails."""
    log = tmp_path / "log.txt"
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(2)
    procs = [ctx.Process(target=_slow_builder, args=(str(tmp_path / "root"), str(log), False, start)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert log.read_text().count("built") == 2  # no lock: both did the work
    (artifact,) = [p for p in (tmp_path / "root").iterdir() if p.is_dir()]
    store.verify(artifact)
    assert json.loads((artifact / "big.json").read_text())[-1] == 49_999


def test_every_build_records_its_time(tmp_path):
    path = store.get_or_build("x", {"a": 9}, "c", _write(9), root=tmp_path)
    record = store.read_json(path / store.BUILD_RECORD)
    assert record["stage"] == "x" and 0 <= record["own_seconds"] <= record["seconds"]
