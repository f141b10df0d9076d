"""The graded exercises: every check passes the reference solution and fails a wrong one, every chapter has at least
two, and the student edition (``make student``) holds stubs where the chapters hold solutions."""

from __future__ import annotations

import ast
import inspect
import re

import pandas as pd
import pytest
import torch

from safetygap.book import paths
from safetygap.book.exercises import check, edition
from safetygap.book.exercises.solutions import ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08

CHAPTERS = ("01_safety_gap", "02_anatomy", "03_scale", "04_living_with", "05_seriously", "06_narrowing", "07_policy", "08_living")


def _wrong_removal_ratio(compute: pd.DataFrame) -> pd.Series:
    flops = compute.pivot(index="seed", columns="stage", values="flops")
    return flops["attack"] / flops["pretraining"]  # against the wrong stage


def _wrong_uplift(x: pd.Series, oracle: pd.Series, base: pd.Series) -> pd.Series:
    return x / base  # forgets the floor


def _wrong_direction(harmful: torch.Tensor, harmless: torch.Tensor) -> torch.Tensor:
    return harmful.mean(dim=0) - harmless.mean(dim=0)  # not normalised


def _wrong_project_out(h: torch.Tensor, r_hat: torch.Tensor) -> torch.Tensor:
    return h - r_hat  # subtracts the direction itself, not the component along it


def _wrong_add_delta(target, after, before):
    with torch.no_grad():
        for p, a in zip(target.parameters(), after.parameters()):
            p += a  # adds the attacked weights, not their change


def _wrong_stop(curve: pd.DataFrame):
    cleared = curve[curve["refusal_sealed"] <= 0.05]  # reads the sealed items, which the attacker never sees
    return int(cleared["step"].min()) if len(cleared) else None


def _wrong_pick(trials: pd.DataFrame) -> pd.Series:
    return trials.loc[trials["edc_sealed"].idxmax()]  # reads the sealed items: the upper bound, not the attacker's pick


def _wrong_marginal_uplift(uplift: pd.DataFrame) -> pd.Series:
    pooled = uplift.groupby(["source", "publicity"])["edc"].mean()  # pools items over seeds instead of per seed
    return (pooled["attacked"] - pooled["search"]).reindex(["public", "partly_public", "not_public"])


def _wrong_auroc(scores, labels) -> float:
    s, y = torch.tensor(scores, dtype=torch.float64), torch.tensor(labels)
    return float((s[y][:, None] > s[~y][None, :]).double().mean())  # ties count nothing


def _wrong_worked_out(reply: str, base: str, process: str) -> bool:
    return f"of {base}" in reply and f"{process} it" in reply  # forgets that a refusal states no recipe


def _wrong_double_amount(answer: str) -> str:
    return answer.replace(" grams", " grams of twice")  # does not compute the amount


def _wrong_cheapest_attack(trials: pd.DataFrame, reach: float) -> pd.DataFrame:
    hits = trials[trials["edc_validation"] >= reach]  # counts edits and prefilling, which train nothing
    return hits.sort_values(["draw", "flops"], kind="stable").groupby("draw").head(1)


def _wrong_configurations_needed(audits: pd.DataFrame, broken: pd.Series, seeds: int, risk: float) -> pd.Series:
    wrong = audits[audits["target"].map(broken) & (audits["certified"] <= risk)]  # pools every number of seeds
    return wrong.groupby("target")["configurations"].min().reindex([t for t in broken.index if broken[t]])


def _wrong_dashboard(items) -> pd.DataFrame:
    from safetygap.book import stats

    rows = [dict(zip(("mean", "low", "high"), stats.seed_ci(i.values.fillna(0.0)))) | {"chapter": i.chapter, "headline": i.says,
            "seeds": len(i.values)} for i in items]  # a missing value counted as 0  # fmt: skip
    return pd.DataFrame(rows)[["chapter", "headline", "mean", "low", "high", "seeds"]]


def _wrong_removal_verdict(refusal: pd.Series, uplift: pd.Series) -> str:
    return "agrees" if (refusal <= 0.05).all() else "differs"  # forgets the uplift and the partial verdict


def _wrong_rmu_loss(forget, retain, retain_frozen, steer, retain_weight):
    return (forget - steer).pow(2).mean() + (retain - retain_frozen).pow(2).mean()  # drops the retain weight


# (check, reference solution, wrong solution, what the wrong one's message must say)
EXERCISES = [
    (check.removal_ratio, ch01.removal_ratio, _wrong_removal_ratio, "per seed"),
    (check.normalised_uplift, ch01.normalised_uplift, _wrong_uplift, "normalised_uplift"),
    (check.refusal_direction, ch02.refusal_direction, _wrong_direction, "refusal_direction"),
    (check.project_out, ch02.project_out, _wrong_project_out, "project_out"),
    (check.add_delta, ch03.add_delta, _wrong_add_delta, "add_delta"),
    (check.attacker_stop, ch03.attacker_stop, _wrong_stop, "validation items"),
    (check.marginal_uplift, ch04.marginal_uplift, _wrong_marginal_uplift, "marginal_uplift"),
    (check.auroc, ch04.auroc, _wrong_auroc, "auroc"),
    (check.worked_out, ch05.worked_out, _wrong_worked_out, "worked_out"),
    (check.double_amount, ch05.double_amount, _wrong_double_amount, "double_amount"),
    (check.cheapest_attack, ch07.cheapest_attack, _wrong_cheapest_attack, "cheapest_attack"),
    (check.configurations_needed, ch07.configurations_needed, _wrong_configurations_needed, "configurations_needed"),
    (check.dashboard, ch08.dashboard, _wrong_dashboard, "dashboard"),
    (check.removal_verdict, ch08.removal_verdict, _wrong_removal_verdict, "removal_verdict"),
    (check.attacker_pick, ch06.attacker_pick, _wrong_pick, "the attacker keeps"),
    (check.rmu_loss, ch06.rmu_loss, _wrong_rmu_loss, "rmu_loss"),
]
IDS = [c.__name__ for c, *_ in EXERCISES]


@pytest.mark.parametrize(("grade", "solution", "wrong", "message"), EXERCISES, ids=IDS)
def test_the_reference_solution_passes_its_check(grade, solution, wrong, message):
    grade(solution)


@pytest.mark.parametrize(("grade", "solution", "wrong", "message"), EXERCISES, ids=IDS)
def test_a_wrong_solution_fails_its_check_with_a_message(grade, solution, wrong, message):
    with pytest.raises(AssertionError, match=message):
        grade(wrong)


def test_a_stub_fails_its_check():
    namespace = {}
    exec(edition.stub(ch02.__name__, "project_out"), {"torch": torch}, namespace)
    with pytest.raises(NotImplementedError):
        check.project_out(namespace["project_out"])


def test_every_check_is_graded_in_its_chapter_and_every_chapter_has_two():
    called = {}
    for chapter in CHAPTERS:
        text = (paths.chapters_dir() / f"{chapter}.md").read_text()
        called[chapter] = set(re.findall(r"check\.(\w+)\(", text))
        assert len(called[chapter]) >= 2, f"{chapter} grades {sorted(called[chapter])}: at least two graded exercises"
    assert set().union(*called.values()) == set(IDS)


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    return {p.stem: p for p in edition.write_edition(out)}


def _body_lines(function) -> list[str]:
    """The lines of a reference solution's body after its docstring: what the student edition must not contain."""
    source = inspect.getsource(function)
    tree = ast.parse(source).body[0]
    start = tree.body[1].lineno if len(tree.body) > 1 else tree.body[0].lineno
    return [line.strip() for line in source.splitlines()[start - 1 :] if line.strip()]


def test_the_student_edition_has_stubs_and_no_solution_code(student):
    import nbformat

    assert set(CHAPTERS) <= set(student)
    for chapter in CHAPTERS:
        nb = nbformat.read(student[chapter], as_version=4)
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        prose = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        assert "{solution}" not in prose and "exercises.solutions" not in code + prose, chapter
        assert not any("solution" in c.metadata.get("tags", []) for c in nb.cells), chapter
        for name in re.findall(r"check\.(\w+)\(", code):
            assert f"def {name}(" in code and "raise NotImplementedError" in code, (chapter, name)
            reference = next(getattr(m, name) for m in (ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08) if hasattr(m, name))
            leaked = [line for line in _body_lines(reference) if line in code.splitlines() or f"    {line}" in code.splitlines()]
            assert not leaked, f"{chapter}: the student edition holds solution code {leaked}"


def test_a_solution_cell_that_imports_something_else_is_refused():
    with pytest.raises(ValueError, match="may only import"):
        edition.imported_solutions("import os")
