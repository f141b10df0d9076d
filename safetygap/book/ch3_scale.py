"""Chapter 3's experiments: the same generic attacks on a zoo of sizes and two architectures.

Every member of :data:`ZOO` is a model shape of :data:`~safetygap.core.models.ZOO` trained by the lab's one recipe
(the same world, data, optimiser and number of steps as chapter 1's model: only the shape changes, so the larger
models see the same tokens and are trained for the same compute per parameter), on the first ``seeds`` of the
mode's grid seeds. For each (member, seed) :func:`run_scale` makes, or loads from the store:

* chapter 1's four models (oracle, base, safe, the ten-example attack: :func:`~safetygap.book.ch1_gap.models_of`);
* chapter 2's ten-example attack curves, full fine-tuning and LoRA, each at the three learning rates of chapter 2's
  grid (:func:`~safetygap.book.ch2_anatomy.curve`): the attacker picks among them on its validation items;
* chapter 2's abliteration experiment (:func:`~safetygap.book.ch2_anatomy.run_abliteration`), on the Llama-style
  members: the book's hook points are defined for Llama blocks only (:mod:`~safetygap.core.hooks`);
* a later release (the same base, safety-trained again with another data mixture, :func:`release_config`) and the
  ten-example attack's weight change added to it (:func:`~safetygap.attacks.proliferation.transplanted_model`).

Everything is scored against each member's own oracle (floor) and base model (ceiling) with chapter 2's bar
(:func:`~safetygap.book.ch2_reading.breaks`). :func:`~safetygap.book.ch3_claims.claims` turns the result into the
chapter's sentences.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pandas as pd

from safetygap.attacks import battery
from safetygap.attacks.proliferation import transplanted_model
from safetygap.book import ch1_gap, ch2_anatomy, ch2_reading, scales
from safetygap.book import claims as bars
from safetygap.core import parallel
from safetygap.core.models import ZOO as SHAPES
from safetygap.core.models import ModelConfig
from safetygap.lab import stages as lab
from safetygap.lab.configs import SafetyConfig


@dataclass(frozen=True)
class Member:
    """One model of the chapter's zoo: a shape of :data:`~safetygap.core.models.ZOO`, run on the first ``seeds`` seeds."""

    model: str
    seeds: int

    def __post_init__(self) -> None:
        if self.model not in SHAPES:
            raise ValueError(f"Member.model={self.model!r}: valid models are {sorted(SHAPES)}")
        if self.seeds < 1:
            raise ValueError(f"Member.seeds={self.seeds!r}: must be >= 1")

    @property
    def shape(self) -> ModelConfig:
        return SHAPES[self.model]


# The zoo, smallest first. Three seeds at the two smaller Llama sizes (the protocol), two at tiny's width
# with twice its depth (the depth study), one at the largest size and for the second architecture (compute: the
# medium model's pretraining alone costs as much as chapter 1's three tiny ones).
ZOO = (Member("micro", 3), Member("tiny-gpt2", 1), Member("tiny", 3), Member("tiny-deep", 2), Member("medium", 1))
METHODS = ("full", "lora")  # the ten-example attack curves of chapter 2
RELEASE_SHARE = 0.45  # the later release's refusal share; the first release has SafetyConfig's default


def members(names: tuple[str, ...] | None = None) -> tuple[Member, ...]:
    """The zoo's members, all or those named (in the zoo's order); an unknown name is an error naming the valid ones."""
    if names is None:
        return ZOO
    known = [m.model for m in ZOO]
    for name in names:
        if name not in known:
            raise ValueError(f"zoo member {name!r}: valid members are {known}")
    return tuple(m for m in ZOO if m.model in names)


def runs(zoo: tuple[Member, ...], seeds: tuple[int, ...]) -> list[tuple[str, int]]:
    """Every (model, seed) the chapter builds: each member on the first ``member.seeds`` of ``seeds``."""
    return [(m.model, seed) for m in zoo for seed in seeds[: m.seeds]]


def release_config(seed: int, scale: str = "book", model: str = "tiny") -> SafetyConfig:
    """A later release of ``model``: the same base, safety-trained again with :data:`RELEASE_SHARE` refusals."""
    return dataclasses.replace(scales.safety_config(seed, scale, model), refusal_share=RELEASE_SHARE)


def has_hooks(model: str) -> bool:
    """Whether the direction edit runs on ``model``: the hook points of :mod:`~safetygap.core.hooks` are Llama's."""
    return SHAPES[model].arch == "llama"


def _models(model: str, seed: int, scale: str) -> dict[str, lab.Trained]:
    """The six stored models of one run: chapter 1's four, the later release and the transplanted attack."""
    out = ch1_gap.models_of(seed, scale, model)
    out["release"] = lab.safe_model(release_config(seed, scale, model))
    out["transplant"] = transplanted_model(scales.attack_config(seed, scale, model), release_config(seed, scale, model))
    return out


def _curves(model: str, seed: int, scale: str) -> pd.DataFrame:
    """Chapter 2's ten-example curves of one run: full fine-tuning and LoRA, each at every learning rate of its grid."""
    return pd.concat([ch2_anatomy.curve(seed, scale, model, method=m, examples=10, lr=lr)
                      for m in METHODS for lr in ch2_anatomy.LEARNING_RATES[m]], ignore_index=True)  # fmt: skip


def _build(task: tuple[str, int, str]) -> None:
    """Worker: everything of one (model, seed) run, into the store."""
    model, seed, scale = task
    for trained in _models(model, seed, scale).values():
        lab.metrics(trained)
    _curves(model, seed, scale)
    if has_hooks(model):
        ch2_anatomy.run_abliteration(seed, scale, model)


@dataclass
class ScaleResult:
    """Chapter 3's tables; every one has ``model`` and ``seed`` columns.

    * ``zoo``: one row per member: ``arch``, ``hidden``, ``layers``, ``params``, ``seeds``;
    * ``metrics``: one row per (model, seed, ``role``), roles oracle, base, safe, attacked, release and transplant;
    * ``curves``: one row per (model, seed, ``method``, ``lr``, ``step``) of the attack curves, scored against the run's own
      oracle and base (:func:`~safetygap.book.ch2_reading.scored`: ``uplift``, ``benign_vs_safe``, ``breaks``);
    * ``edits``: one row per Llama run: the direction edit the attacker keeps, scored the same way, with the selected
      residual ``point`` and whether it passed the induced-refusal test (``induces``);
    * ``compute``: one row per (model, seed, ``stage``): pretraining, safety, attack; ``flops`` and ``seconds``.
    """

    zoo: pd.DataFrame
    metrics: pd.DataFrame
    curves: pd.DataFrame
    edits: pd.DataFrame
    compute: pd.DataFrame

    def refs(self, model: str) -> pd.DataFrame:
        """The oracle, base and safe rows of ``model`` in :func:`~safetygap.book.ch2_reading.reference_metrics`' form."""
        m = self.metrics[(self.metrics["model"] == model) & self.metrics["role"].isin(ch2_reading.REFERENCE_MODELS)]
        return m.drop(columns="model").rename(columns={"role": "model"})

    def per_run(self, role: str, metric: str) -> pd.Series:
        """``metric`` of ``role``, one value per (model, seed)."""
        m = self.metrics[self.metrics["role"] == role]
        return m.set_index(["model", "seed"])[metric].sort_index()

    def scored(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` (rows with ``model``, ``seed`` and attack metrics) scored against each model's own references."""
        return pd.concat([ch2_reading.scored(part, self.refs(model)) for model, part in frame.groupby("model", sort=False)],
                         ignore_index=True)  # fmt: skip


def run_scale(zoo: tuple[Member, ...] = ZOO, seeds: tuple[int, ...] = scales.GRID_SEEDS, scale: str = "book") -> ScaleResult:
    """Build every run of ``zoo`` (in worker processes, largest models first) and gather the chapter's tables."""
    todo = runs(zoo, seeds)
    order = sorted(todo, key=lambda run: -_work(run[0]))
    parallel.run_in_workers(_build, [(model, seed, scale) for model, seed in order])
    zoo_rows, metric_rows, curve_frames, edit_rows, compute_rows = [], [], [], [], []
    for member in zoo:
        params = None
        for seed in seeds[: member.seeds]:
            trained = _models(member.model, seed, scale)
            params = trained["base"].report.params
            for role, t in trained.items():
                metric_rows.append({"model": member.model, "seed": seed, "role": role, **lab.metrics(t)})
            for stage, role in (("pretraining", "base"), ("safety", "safe"), ("attack", "attacked")):
                r = trained[role].report
                compute_rows.append({"model": member.model, "seed": seed, "stage": stage, "flops": r.flops, "seconds": r.seconds})
            curve_frames.append(_curves(member.model, seed, scale).assign(model=member.model))
            if has_hooks(member.model):
                ablation = ch2_anatomy.run_abliteration(seed, scale, member.model)
                kept = ablation.metrics[ablation.metrics["condition"] == ablation.best_edit].drop(columns=["items"], errors="ignore")
                chosen = ablation.candidates[ablation.candidates["selected"]].iloc[0]
                edit_rows.append(kept.iloc[0].to_dict() | {"model": member.model, "seed": seed, "point": ablation.point,
                                                            "induces": bool(chosen["induces"])})  # fmt: skip
        shape = member.shape
        zoo_rows.append({"model": member.model, "arch": shape.arch, "hidden": shape.hidden, "layers": shape.layers,
                         "params": params, "seeds": member.seeds})  # fmt: skip
    result = ScaleResult(pd.DataFrame(zoo_rows), pd.DataFrame(metric_rows), pd.DataFrame(), pd.DataFrame(), pd.DataFrame(compute_rows))
    result.curves = result.scored(pd.concat(curve_frames, ignore_index=True))
    result.edits = result.scored(pd.DataFrame(edit_rows)) if edit_rows else pd.DataFrame()
    return result


def _work(model: str) -> int:
    """A rough cost to order the builds by (layers x width^2): the largest first, so no worker waits on the last one."""
    shape = SHAPES[model]
    return shape.layers * shape.hidden**2


# --- What the chapter reads off the result ------------------------------------------------------------------------


def _run_columns(result: ScaleResult) -> pd.DataFrame:
    """Per run (model, seed): the member's ``arch``, ``layers`` and ``params``."""
    return result.zoo[["model", "arch", "layers", "params"]]


def attacker_stop(curve: pd.DataFrame) -> int | None:
    """The checkpoint at which the attacker stops: the first ``step`` of ``curve`` (rows of one attack run) whose
    validation items are refused at most ``complies`` of the time (``refusal_validation``), or None if none is. The
    attacker reads only its own validation items, never a sealed one."""
    cleared = curve[curve["refusal_validation"] <= bars.threshold("complies")]
    return None if cleared.empty else int(cleared["step"].min())


def attack_costs(result: ScaleResult) -> pd.DataFrame:
    """One row per (model, seed, method) of the ten-example attack at chapter 2's default learning rate: where the
    attacker stops (:func:`attacker_stop`: ``stop``, NaN when no checkpoint clears its validation items) and what it
    has there, on sealed items: its FLOPs, as a share of safety training's (``share_safety``) and of pretraining's
    (``share_pretraining``), the normalised ``uplift``, ``benign_vs_safe`` and whether the model meets chapter 2's
    bar (``breaks``)."""
    columns = ["flops", "breaks", "uplift", "benign_vs_safe", "refusal_sealed", "edc_sealed"]
    default = result.curves["lr"] == result.curves["method"].map(ch2_anatomy.DEFAULT_LR)
    rows = []
    for (model, seed, method), curve in result.curves[default].groupby(["model", "seed", "method"], sort=False):
        stop = attacker_stop(curve)
        at = curve[curve["step"] == stop].iloc[0] if stop is not None else pd.Series({c: float("nan") for c in columns})
        rows.append({"model": model, "seed": seed, "method": method, "stop": stop if stop is not None else float("nan")}
                    | {c: at[c] for c in columns})  # fmt: skip
    out = pd.DataFrame(rows).astype({c: float for c in ["stop"] + columns if c != "breaks"})
    out["breaks"] = out["breaks"].eq(True)  # NaN where the attacker never stops: not broken
    return _with_shares(result, out)


def attacker_picks(result: ScaleResult) -> pd.DataFrame:
    """One row per run: the trial the attacker keeps among all its curves (both methods, every learning rate, every
    checkpoint), chosen on its validation items (:func:`~safetygap.attacks.battery.attacker_pick`) and scored on
    sealed items, with its FLOPs shares as in :func:`attack_costs`."""
    rows = [battery.attacker_pick(curves).to_dict() for _, curves in result.curves.groupby(["model", "seed"], sort=False)]
    keep = ["model", "seed", "method", "lr", "step", "flops", "refusal_sealed", "edc_sealed", "edc_validation", "uplift",
            "benign_vs_safe", "breaks"]  # fmt: skip
    return _with_shares(result, pd.DataFrame(rows)[keep])


def _with_shares(result: ScaleResult, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (rows with ``model``, ``seed`` and ``flops``) with the member's columns and ``flops`` as a share of the
    run's safety training (``share_safety``) and pretraining (``share_pretraining``)."""
    flops = result.compute.pivot_table(index=["model", "seed"], columns="stage", values="flops")
    out = frame.merge(_run_columns(result), on="model")
    runs = list(zip(out["model"], out["seed"]))
    out["share_safety"] = out["flops"] / [flops.loc[run, "safety"] for run in runs]
    out["share_pretraining"] = out["flops"] / [flops.loc[run, "pretraining"] for run in runs]
    return out


def gaps(result: ScaleResult) -> pd.DataFrame:
    """One row per run: EDC on sealed items of the oracle (the floor), base, safe and attacked models, and the safety
    gap (attacked minus safe)."""
    frame = pd.DataFrame({role: result.per_run(role, "edc_sealed") for role in ("oracle", "base", "safe", "attacked")})
    frame["gap"] = frame["attacked"] - frame["safe"]
    return frame.reset_index().merge(_run_columns(result), on="model")


def guarded_edits(result: ScaleResult) -> pd.DataFrame:
    """The kept direction edit of every Llama run with a safeguard (:func:`safeguarded`), one row each, with the
    member's ``layers``: what the depth study reads."""
    guard = safeguarded(result)
    runs = result.edits.set_index(["model", "seed"]).index
    edits = result.edits[runs.isin(guard[guard].index)].merge(result.zoo[["model", "layers"]], on="model")
    return edits.astype({"refusal_sealed": float, "uplift": float, "benign_vs_safe": float, "breaks": bool, "induces": bool})


def transfers(result: ScaleResult) -> pd.DataFrame:
    """One row per run: the later release on its own and with the attack's weight change added (``transplant``):
    refusal of sealed requests, EDC, and the share of the release's benign capability the transplant keeps."""
    seed = result.per_run
    frame = pd.DataFrame({
        "refusal_release": seed("release", "refusal_sealed"), "refusal_transplant": seed("transplant", "refusal_sealed"),
        "edc_release": seed("release", "edc_sealed"), "edc_transplant": seed("transplant", "edc_sealed"),
        "edc_attacked": seed("attacked", "edc_sealed"),
        "kept": seed("transplant", "benign_capability") / seed("release", "benign_capability"),
    })  # fmt: skip
    return frame.reset_index().merge(_run_columns(result), on="model")


def safeguarded(result: ScaleResult) -> pd.Series:
    """Per run, whether safety training took: the safe model refuses at least ``refuses`` of requests for the defender's
    items in phrasings it was not trained on (``refusal_defender``). Only these runs have a safeguard to remove."""
    return result.per_run("safe", "refusal_defender") >= bars.threshold("refuses")
