#!/usr/bin/env python3
"""Measure what building the book costs a new user, and write data/benchmarks/build.json.

The benchmark reproduces a first-time build as closely as one script can:

1. ``git clone`` the current HEAD (or ``--commit REV``) of the repository this
   script lives in into a temporary directory (uncommitted changes are *not*
   included; the JSON says whether there were any);
2. unless ``--reuse-venv`` is given, time ``make venv`` there (a full install
   from the pinned requirements; pip's own download cache still applies);
3. time ``make book`` with an empty artifact cache (``SAFETYGAP_CACHE`` points
   into the temporary directory) and no ``_build/``: the *cold build*;
4. time ``make book`` again with nothing changed: the *warm rebuild*;
5. add up the build records of every artifact of the cold build (each records
   its own wall seconds, and how many of them were evaluation) into a
   *breakdown by kind of work*: pretraining, safety training, defenses,
   attacks, evaluation, and rendering (the build's wall time outside notebook
   execution);
6. run ``scripts/benchmark_training.py`` in the clone on the same cores: the
   training throughput of every zoo model, its FLOP utilisation against the
   machine's matmul rate, and the ratio to a plain-PyTorch reference loop,
   written next to the output as ``training.json``.

Builds run on at most ``--cores`` CPU cores (2 by default, the book's budget
machine): the process tree's CPU affinity is restricted to that many of the
cores this process may use, and ``OMP_NUM_THREADS`` (and the MKL/OpenBLAS
equivalents) are set to match.

Memory is measured two ways during the cold build:

* ``peak_rss_tree_mb``: the peak of the summed resident set size of the whole
  ``make book`` process tree (make, jupyter-book, every notebook kernel),
  sampled with psutil every ``--poll-interval`` seconds. Pages shared between
  processes are counted once per process, so this is an upper bound, and a
  peak shorter than the interval can be missed.
* ``max_child_rss_mb``: ``ru_maxrss`` of the ``make book`` process as returned
  by ``os.wait4``: the largest resident set of any single process in that tree
  that was waited for. This is what ``resource.getrusage(RUSAGE_CHILDREN)``
  accumulates, restricted to the one child, so the install and the warm build
  do not mix in.

Per-notebook execution times come from Jupyter Book's execution cache
(``_build/.jupyter_cache`` in the clone), read with jupyter-cache's API by the
build environment's own Python.

With ``--reuse-venv PATH`` the existing environment is used as it is: the
clone's Makefile is run with ``VENV=PATH`` and told not to (re)install
(``make -o PATH/.installed``), and ``PYTHONPATH`` puts the clone first so the
clone's ``safetygap`` package shadows the environment's editable install.

Run it with the book's environment, which has psutil: ``make benchmark`` (which
reuses ``.venv`` by default) or ``.venv/bin/python scripts/benchmark_build.py --help``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

try:
    import psutil
except ImportError:  # pragma: no cover - depends on the interpreter used
    sys.exit(
        "benchmark_build.py needs psutil: run it with the book's environment, "
        "e.g. `make benchmark` or `.venv/bin/python scripts/benchmark_build.py`."
    )

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO / "data" / "benchmarks" / "build.json"
MIB = 1024 * 1024

# Variables a parent `make` (as in `make benchmark`) exports to its children. They
# would carry its command-line variables (VENV=..., -j...) into the clone's make.
MAKE_ENV_VARS = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")

# Run by the build environment's Python: list jupyter-cache's records as JSON.
READ_JUPYTER_CACHE = """
import json, sys
from jupyter_cache import get_cache
records = get_cache(sys.argv[1]).list_cache_records()
print(json.dumps([{"pk": r.pk, "uri": r.uri, "data": r.data or {}} for r in records]))
"""

# Run by the build environment's Python: its Python and torch versions.
READ_VERSIONS = """
import json, platform, torch
print(json.dumps({"python": platform.python_version(), "torch": torch.__version__}))
"""


# The kind of work each artifact stage is (see safetygap's stages); evaluation inside any stage counts as evaluation.
KIND_OF_STAGE = {
    "world": "world and tokenizer", "tokenizer": "world and tokenizer", "base": "pretraining",
    "routed-base": "pretraining", "safe": "safety training", "deep-alignment": "defenses", "repnoise": "defenses",
    "circuit-breakers": "defenses", "rmu": "defenses", "tar": "defenses", "gradient-routing": "defenses",
    "attack": "attacks", "attack-curve": "attacks", "battery": "attacks", "abliteration": "attacks",
    "metrics": "evaluation",
}  # fmt: skip


def breakdown(cache: Path, cold_seconds: float, notebooks: list[dict[str, Any]]) -> dict[str, Any]:
    """Seconds of the cold build by kind of work, from the artifacts' build records.

    Artifact seconds are each process's own (a stage built inside another is
    counted once, in its own kind); processes that ran side by side add up, so
    their sum can exceed the wall time. ``rendering`` is wall time: the build
    minus notebook execution.
    """
    kinds: dict[str, float] = {}
    for record_path in sorted(cache.glob("*/build.json")):
        record = json.loads(record_path.read_text())
        evaluation = record["own"].get("evaluation", 0.0)
        kind = KIND_OF_STAGE.get(record["stage"], "other")
        kinds[kind] = kinds.get(kind, 0.0) + record["own_seconds"] - evaluation
        kinds["evaluation"] = kinds.get("evaluation", 0.0) + evaluation
    executing = sum(n["execution_seconds"] or 0.0 for n in notebooks)
    return {
        "process_seconds": {k: round(v, 1) for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])},
        "notebook_execution_seconds": round(executing, 1),
        "rendering_seconds": round(cold_seconds - executing, 1),
    }


class TreeRssPoller(threading.Thread):
    """Track the peak summed RSS (bytes) of a process and all its descendants."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak_bytes = 0
        self._stopped = threading.Event()

    def sample(self) -> int:
        """Summed RSS of the tree right now; 0 once the root has gone."""
        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:  # NoSuchProcess, ZombieProcess, AccessDenied
            return 0
        total = 0
        for proc in procs:
            try:
                total += proc.memory_info().rss
            except psutil.Error:  # exited between listing and reading
                pass
        return total

    def run(self) -> None:
        while not self._stopped.is_set():
            self.peak_bytes = max(self.peak_bytes, self.sample())
            self._stopped.wait(self.interval)

    def stop(self) -> None:
        self._stopped.set()
        self.join()


@dataclass
class Measurement:
    """Cost of one command."""

    seconds: float
    peak_rss_tree_mb: float
    max_child_rss_mb: float
    returncode: int


def maxrss_to_mb(ru_maxrss: int) -> float:
    """ru_maxrss is in KiB on Linux and in bytes on macOS."""
    return ru_maxrss / MIB if sys.platform == "darwin" else ru_maxrss / 1024


def run_measured(
    cmd: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log_path: Path,
    cores: set[int] | None,
    poll_interval: float,
) -> Measurement:
    """Run ``cmd`` to completion, logging its output; return time and memory."""
    print(f"$ {' '.join(cmd)}    (log: {log_path})", flush=True)
    with open(log_path, "wb") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group, so Ctrl-C can stop it all
            preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None,
        )
        poller = TreeRssPoller(proc.pid, poll_interval)
        poller.start()
        try:
            # wait4 (not proc.wait) returns the child's resource usage too.
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        finally:
            seconds = time.perf_counter() - start
            poller.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Measurement(
        seconds=round(seconds, 1),
        peak_rss_tree_mb=round(poller.peak_bytes / MIB, 1),
        max_child_rss_mb=round(maxrss_to_mb(usage.ru_maxrss), 1),
        returncode=proc.returncode,
    )


def check(measurement: Measurement, what: str, log_path: Path, workdir: Path) -> None:
    """Stop with the log's tail if a step failed."""
    if measurement.returncode == 0:
        print(f"  {what}: {measurement.seconds:.1f} s, "
              f"peak tree RSS {measurement.peak_rss_tree_mb:.0f} MB", flush=True)
        return
    tail = log_path.read_text(errors="replace").splitlines()[-60:]
    print("\n".join(tail), file=sys.stderr)
    sys.exit(f"{what} failed (exit {measurement.returncode}); "
             f"full log in {log_path}; work directory kept: {workdir}")


def git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def venv_json(python: Path, code: str, *args: str) -> Any:
    """Run ``code`` with the build environment's Python and parse its JSON output."""
    out = subprocess.run(
        [str(python), "-c", code, *args], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out)


def cache_records(python: Path, clone: Path) -> list[dict[str, Any]]:
    """Jupyter Book's execution-cache records of the clone (empty if none)."""
    cache_dir = clone / "_build" / ".jupyter_cache"
    if not cache_dir.is_dir():  # get_cache() would create it
        return []
    return venv_json(python, READ_JUPYTER_CACHE, str(cache_dir))


def notebook_times(records: list[dict[str, Any]], clone: Path) -> list[dict[str, Any]]:
    """Execution seconds per notebook, newest record per notebook, sorted by path."""
    latest: dict[str, dict[str, Any]] = {}
    for record in records:
        if record["pk"] > latest.get(record["uri"], {"pk": -1})["pk"]:
            latest[record["uri"]] = record
    rows = []
    for uri, record in latest.items():
        try:
            path = Path(uri).resolve().relative_to(clone.resolve()).as_posix()
        except ValueError:
            path = uri
        seconds = record["data"].get("execution_seconds")
        rows.append({
            "notebook": path,
            "execution_seconds": None if seconds is None else round(seconds, 1),
        })
    return sorted(rows, key=lambda row: row["notebook"])


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="See the module docstring (top of this file) for what is measured and how.",
    )
    parser.add_argument(
        "--reuse-venv", type=Path, metavar="PATH",
        help="use this existing environment (e.g. .venv) instead of installing a "
             "fresh one; the install step is then not timed",
    )
    parser.add_argument(
        "--commit", default="HEAD",
        help="the commit to build (default: HEAD); compare two commits back to back on one machine",
    )
    parser.add_argument(
        "--cores", type=int, default=2,
        help="build on at most this many CPU cores (default: 2)",
    )
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT,
        help=f"where to write the results (default: {DEFAULT_OUTPUT.relative_to(REPO)})",
    )
    parser.add_argument(
        "--workdir", type=Path, default=None,
        help="parent directory for the temporary clone (default: the system temp dir)",
    )
    parser.add_argument(
        "--keep", action="store_true",
        help="keep the temporary clone, logs and artifact cache afterwards",
    )
    parser.add_argument(
        "--poll-interval", type=float, default=0.5,
        help="seconds between memory samples (default: 0.5)",
    )
    parser.add_argument(
        "--python", default="python3.11",
        help="interpreter `make venv` creates the environment with (default: python3.11)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)

    commit = git("rev-parse", args.commit)
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    if dirty:
        print("warning: uncommitted changes are not part of the benchmark "
              "(it builds a clone of HEAD)", file=sys.stderr)

    available = sorted(os.sched_getaffinity(0))
    cores = set(available[: max(1, args.cores)])
    n_cores = len(cores)

    venv: Path | None = args.reuse_venv.resolve() if args.reuse_venv else None
    if venv is not None and not (venv / "bin" / "jupyter-book").exists():
        sys.exit(f"--reuse-venv {venv}: no bin/jupyter-book there; run `make venv` first")

    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="safetygap-bench-", dir=args.workdir))
    clone = workdir / "book"
    logs = workdir / "logs"
    logs.mkdir()
    print(f"work directory: {workdir}")
    print(f"cloning {REPO} at {commit[:12]}", flush=True)
    git("clone", "--quiet", str(REPO), str(clone))
    git("checkout", "--quiet", "--detach", commit, cwd=clone)

    env = {k: v for k, v in os.environ.items() if k not in MAKE_ENV_VARS}
    env["SAFETYGAP_CACHE"] = str(workdir / "artifact-cache")  # empty: nothing trained yet
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(n_cores)

    make = ["make", f"PYTHON={args.python}"]
    install: Measurement | None = None
    if venv is None:
        python = clone / ".venv" / "bin" / "python"
        log = logs / "install.log"
        install = run_measured([*make, "venv"], cwd=clone, env=env, log_path=log,
                               cores=cores, poll_interval=args.poll_interval)
        check(install, "install (make venv)", log, workdir)
    else:
        python = venv / "bin" / "python"
        # Use the environment as is: never reinstall into it (and never point its
        # editable install at the temporary clone) ...
        make += [f"VENV={venv}", "-o", f"{venv}/.installed"]
        # ... and import the clone's package, not the one the venv was made for.
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(clone), env.get("PYTHONPATH", "")) if p
        )

    log = logs / "cold-build.log"
    cold = run_measured([*make, "book"], cwd=clone, env=env, log_path=log,
                        cores=cores, poll_interval=args.poll_interval)
    check(cold, "cold build (make book)", log, workdir)
    cold_records = cache_records(python, clone)

    log = logs / "warm-rebuild.log"
    warm = run_measured([*make, "book"], cwd=clone, env=env, log_path=log,
                        cores=cores, poll_interval=args.poll_interval)
    check(warm, "warm rebuild (make book)", log, workdir)
    cold_pks = {r["pk"] for r in cold_records}
    reexecuted = notebook_times(
        [r for r in cache_records(python, clone) if r["pk"] not in cold_pks], clone
    )

    training_json = args.output.parent / "training.json"
    log = logs / "training.log"
    training = run_measured([str(python), "scripts/benchmark_training.py", "--output", str(training_json)],
                            cwd=clone, env=env, log_path=log, cores=cores, poll_interval=args.poll_interval)  # fmt: skip
    check(training, "training benchmark", log, workdir)

    versions = venv_json(python, READ_VERSIONS)
    result = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": commit,
        "git_dirty": dirty,
        "cpu_model": cpu_model(),
        "cores_used": n_cores,
        "cores_available": len(available),
        "ram_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "python_version": versions["python"],
        "torch_version": versions["torch"],
        "venv_reused": venv is not None,
        "install_seconds": None if install is None else install.seconds,
        "cold_build_seconds": cold.seconds,
        "warm_rebuild_seconds": warm.seconds,
        "peak_rss_tree_mb": cold.peak_rss_tree_mb,
        "max_child_rss_mb": cold.max_child_rss_mb,
        "warm_reexecuted_notebooks": [row["notebook"] for row in reexecuted],
        "notebooks": notebook_times(cold_records, clone),
        "breakdown": breakdown(Path(env["SAFETYGAP_CACHE"]), cold.seconds, notebook_times(cold_records, clone)),
        "training_benchmark": training_json.name,
    }

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"wrote {args.output}")

    if args.keep:
        print(f"kept {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
