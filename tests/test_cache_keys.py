"""The cache keys on what a stage computes: edit a copy of the package and see which stages would rebuild.

Each check copies ``safetygap/`` to a temporary directory, makes one edit,
and asks a fresh interpreter for the code digest of every stage
(:func:`safetygap.core.store.cached` gives each stage a ``code_digest()``).
A stage rebuilds exactly when its digest changes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "safetygap"

# Every cached stage of the package, by the expression that names it.
STAGES = {
    "world": "lab.stages.get_world",
    "tokenizer": "lab.stages.get_tokenizer",
    "base": "lab.stages.base_model",
    "safe": "lab.stages.safe_model",
    "evaluation": "lab.stages.evaluation_record",
    "attack": "attacks.finetuning.attacked_model",
    "attack-curve": "attacks.finetuning.attack_curve",
    "abliteration": "attacks.abliteration.abliteration_record",
    "battery-finetune": "attacks.battery.finetune_battery",
    "battery-fixed": "attacks.battery.fixed_battery",
    "routed-base": "defenses.gradient_routing.routed_base",
    **{name: f"defenses.{name}.defend" for name in
       ("deep_alignment", "repnoise", "circuit_breakers", "rmu", "tar", "gradient_routing")},
}  # fmt: skip
TRAINING = ("base", "safe", "attack", "attack-curve", "battery-finetune", "routed-base",
            "deep_alignment", "repnoise", "circuit_breakers", "rmu", "tar", "gradient_routing")  # fmt: skip
PRINT_DIGESTS = f"""
import importlib, json
import safetygap.attacks.abliteration, safetygap.attacks.battery, safetygap.defenses.registry, safetygap.lab.stages
stages = {STAGES!r}
def resolve(path):
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module("safetygap." + module), name)
print(json.dumps({{stage: resolve(path).code_digest() for stage, path in stages.items()}}))
"""


def digests(tmp_path: Path, *edits: tuple[str, str, str]) -> dict[str, str]:
    """Code digests of every stage, for the package as it is or with ``(file, old, new)`` text edits."""
    root = tmp_path / ("edited" if edits else "original")
    shutil.copytree(PACKAGE, root / "safetygap", ignore=shutil.ignore_patterns("__pycache__"))
    for file, old, new in edits:
        path = root / "safetygap" / file
        text = path.read_text()
        assert text.count(old) == 1, f"the edit's anchor {old!r} must occur once in {file}"
        path.write_text(text.replace(old, new))
    env = os.environ | {"PYTHONPATH": str(root)}  # run in root, so the edited copy is the one imported
    out = subprocess.run([sys.executable, "-c", PRINT_DIGESTS], cwd=root, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> dict[str, str]:
    return digests(tmp_path_factory.mktemp("original"))


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {stage for stage in before if before[stage] != after[stage]}


def test_every_stage_has_a_digest(original):
    assert set(original) == set(STAGES) and all(len(d) == 64 for d in original.values())


HARMLESS_EDITS = (
    ("book/plotting.py", '"rmu": "RMU unlearning"', '"rmu": "RMU (unlearning)"'),  # a plot label
    ("book/ch1_gap.py", 'MODELS = ("oracle", "base", "safe", "attacked")', 'MODELS = ("base", "oracle", "safe", "attacked")'),  # a runner
    ("book/ch6_defenses.py", "    prepare(seeds, draws, scale, workers)\n", "    prepare(seeds, draws, scale, workers)  # built first\n"),
    ("defenses/rmu.py", '"""The safe model after RMU."""', '"""The safe model after RMU unlearning."""'),  # a docstring
    ("core/training.py", "    bar.close()\n", "\n    bar.close()  # done\n"),  # a comment and a blank line
)


def test_editing_labels_runners_docstrings_or_comments_rebuilds_nothing(tmp_path, original):
    assert changed(original, digests(tmp_path, *HARMLESS_EDITS)) == set()


def test_editing_the_training_step_rebuilds_every_training_stage(tmp_path, original):
    edit = ("core/training.py", "        out.loss.backward()\n", "        (1.0 * out.loss).backward()\n")
    assert changed(original, digests(tmp_path, edit)) == set(TRAINING)


def test_editing_the_scorer_rebuilds_what_it_scores_and_not_the_models(tmp_path, original):
    edit = ("core/scoring.py", '    return words.split(" ", 1)[0] == REFUSAL_WORD', '    return words.split()[:1] == [REFUSAL_WORD]')
    rebuilt = changed(original, digests(tmp_path, edit))
    assert {"evaluation", "attack-curve", "abliteration", "battery-finetune", "battery-fixed"} <= rebuilt
    assert not rebuilt & {"world", "tokenizer", "base", "safe", "attack", "rmu", "tar"}


def test_a_digest_does_not_depend_on_the_state_of_the_process(tmp_path):
    """Module-level state (builds in progress, time counters) is not code: digests stay put while it changes."""
    import inspect

    from safetygap.core import codehash, store, timing
    from safetygap.lab import stages

    stage = inspect.unwrap(stages.base_model)
    outside = codehash.code_digest(stage)
    inside = []
    with timing.timed("evaluation"):
        store.record_build("probe", lambda tmp: inside.append(codehash.code_digest(stage)), tmp_path)
    assert inside == [outside]
