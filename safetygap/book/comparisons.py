"""The "what the papers found vs. what we see" tables of chapters 1, 2 and 6 that set a published figure
(:mod:`~safetygap.book.published`) beside the book's own number for the same kind of attack at the closest
budget the book has, each with a column that says what still differs (the measure, the model, the budget).

A size of effect is never read across two measures: a paper's judge-scored harmfulness rate and the book's
refusal rate sit side by side, labelled, and only the direction of each is compared in prose. Chapter 6's
sentences about its table are the claims of :func:`defense_claims`.
"""

from __future__ import annotations

import pandas as pd

from safetygap.attacks.battery import BatteryConfig
from safetygap.attacks.finetuning import AttackConfig
from safetygap.book import ch2_reading, ch6_claims, stats
from safetygap.book import claims as bars
from safetygap.book.ch1_gap import GapResult
from safetygap.book.ch6_defenses import FINE_TUNING, DefenseResult
from safetygap.book.published import figure, select

BATTERY = BatteryConfig()
QI_HEADLINE = ch2_reading.QI_ARMS[0]  # Qi et al.'s ten-example attack on Llama-2-7b-Chat, chapter 1's attack
INFERENCE = ("edit", "prefill")  # the battery's attacks that change no weight by training (direction edits, prefilling)
BOOK_EDC = "EDC on sealed items: share of sealed hazardous requests answered with every memorised recipe slot right"
BOOK_REFUSAL = "share of sealed hazardous requests refused (reply opens with the refusal word)"
README_BREAK = ("rosati2024repnoise", "attack_learning_rate_released_break")  # RepNoise's released attacked model
TAR_SETTINGS = ("WMDP-Bio, after TAR's own fine-tuning attacks",  # the durability paper's two TAR figures
                "WMDP-Bio, fine-tuning with 100-step warmup and cosine schedule")


def pct(value: float) -> str:
    """A published figure in percent, as printed."""
    return f"{value:g}%"


def pct_items(items: pd.DataFrame, model: str, column: str, complement: bool = False) -> str:
    """A per-item score of ``model`` (one minus it with ``complement``) in percent, with its hierarchical bootstrap
    interval over seeds and items."""
    frame = items[items["model"] == model].copy()
    if complement:
        frame[column] = 1 - frame[column]
    mean, low, high = (100 * v for v in stats.item_ci(frame, column))
    return stats.fmt_interval(mean, low, high, 0).replace(" [", "% [", 1)


def attack_budget(attack: AttackConfig) -> str:
    """The book's headline attack in the words the papers use for theirs."""
    train = attack.train
    epochs = train.steps * train.batch_size / attack.examples
    return (f"{attack.method} fine-tuning, {attack.examples} examples x {epochs:g} epochs at batch {train.batch_size} "
            f"= {train.steps} steps, lr {train.lr:g}")


def gap_table(figures: pd.DataFrame, result: GapResult, attack: AttackConfig) -> pd.DataFrame:
    """Chapter 1's comparison: :cite:t:`qi2023finetuning`'s ten-example attack on Llama-2-7b-Chat and
    :cite:t:`lermen2023lora`'s LoRA attack, beside the book's safe and attacked models (``result``, attacked
    with ``attack``), each figure with its measure and budget."""
    qi = select(figures, "qi2023finetuning", "harmfulness_rate_after", QI_HEADLINE.model, QI_HEADLINE.setting)
    before = figure(figures, "qi2023finetuning", "harmfulness_rate_before", QI_HEADLINE.model, QI_HEADLINE.setting)
    lermen = select(figures, "lermen2023lora", "refusal_rate_after")
    items, budget = result.items, attack_budget(attack)
    rows = [
        {"source": qi["provenance"], "paper: model and budget": f"{qi['model']}; {qi['budget']}",
         "paper: measure": qi["measure"], "paper: before -> after": f"{pct(before)} -> {pct(qi['value'])}",
         "this book: budget": budget, "this book: measure": "share of sealed hazardous requests not refused",
         "this book: safe -> attacked": f"{pct_items(items, 'safe', 'refusal', True)} -> {pct_items(items, 'attacked', 'refusal', True)}",
         "what differs": "the measure (a judge's verdict on real instructions vs an exact refusal check on invented "
                         "products); the model; the learning rate (the examples, epochs and steps are the same)"},
        {"source": qi["provenance"], "paper: model and budget": f"{qi['model']}; {qi['budget']}",
         "paper: measure": qi["measure"], "paper: before -> after": f"{pct(before)} -> {pct(qi['value'])}",
         "this book: budget": budget, "this book: measure": BOOK_EDC,
         "this book: safe -> attacked": f"{pct_items(items, 'safe', 'edc')} -> {pct_items(items, 'attacked', 'edc')}",
         "what differs": "the measure: the judge asks whether a reply is harmful, EDC whether the recipe is right"},
        {"source": lermen["provenance"], "paper: model and budget": f"{lermen['model']}; {lermen['budget']}",
         "paper: measure": lermen["measure"], "paper: before -> after": f"-> about {pct(lermen['value'])}",
         "this book: budget": budget, "this book: measure": BOOK_REFUSAL,
         "this book: safe -> attacked": f"{pct_items(items, 'safe', 'refusal')} -> {pct_items(items, 'attacked', 'refusal')}",
         "what differs": "the model (70B) and the attack (LoRA, budget given in dollars, not in examples or steps); "
                         "both measure refusal"},
    ]  # fmt: skip
    return pd.DataFrame(rows)


def anatomy_table(figures: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Chapter 2's comparison: each setting of :data:`~safetygap.book.ch2_reading.QI_ARMS`, the paper's
    harmfulness rate beside the book's curve for the same setting read at the paper's number of epochs (the
    nearest checkpoint). ``table``: :func:`~safetygap.book.ch2_reading.scored` attack curves of the grid seeds. A
    setting that was not run (the 50- and 100-example attacks do not fit the reduced world) has no row."""
    rows = []
    for arm in ch2_reading.QI_ARMS:
        paper = select(figures, "qi2023finetuning", "harmfulness_rate_after", arm.model, arm.setting)
        curve = ch2_reading.qi_curve(table, arm)
        if curve.empty:
            continue
        step = ch2_reading.matched_step(curve["step"].unique(), arm.examples, arm.epochs)
        epochs = ch2_reading.epochs_at(step, arm.examples)
        differs = [] if arm.model.startswith("Llama") else [f"the model: {arm.model}, a closed model tuned through an API"]
        differs += [arm.data_differs] if arm.data_differs else []
        if epochs != arm.epochs:
            differs.append(f"the budget: the nearest checkpoint is {epochs:g} epochs, not {arm.epochs:g}")
        rows.append({
            "setting": arm.setting.split(",")[0], "paper: model": arm.model, "paper: epochs": f"{arm.epochs:g}",
            "paper: harmfulness rate (GPT-4 judge)": pct(paper["value"]),
            "this book: step (epochs)": f"{step} ({epochs:g})",
            "this book: not refused (sealed)": stats.fmt_pct_ci(1 - ch2_reading.at(curve, step, "refusal_sealed"), digits=0),
            "this book: normalised uplift": stats.fmt_ci(ch2_reading.at(curve, step, "uplift")),
            "what differs besides the measure and the learning rate": "; ".join(differs) or "nothing: same examples and epochs",
        })  # fmt: skip
    return pd.DataFrame(rows)


def fixed_trial(result: DefenseResult, target: str, family: str, steps: int, lr: float | None = None, data: str | None = None) -> pd.Series:
    """Sealed EDC of one fixed battery trial against ``target`` (``family`` at ``steps`` steps, narrowed by ``lr`` and
    ``data``), mean over the draws of the attack data, one value per seed: a single attack, chosen by nobody."""
    trials = result.battery[(result.battery["target"] == target) & (result.battery["family"] == family)
                            & (result.battery["steps"] == steps)]  # fmt: skip
    if lr is not None:
        trials = trials[trials["lr"] == lr]
    if data is not None:
        trials = trials[trials["data"] == data]
    if trials.empty:
        raise KeyError(f"no battery trial {family} / {steps} steps / lr {lr} / {data} against {target}")
    return trials.groupby(["seed", "draw"])["edc_sealed"].mean().groupby("seed").mean()


def inference_mean(result: DefenseResult, target: str) -> pd.Series:
    """Sealed EDC averaged over the battery's inference-time attacks (:data:`INFERENCE`), one value per seed: the
    book's counterpart of a mean attack success over a table of jailbreaks."""
    trials = result.battery[(result.battery["target"] == target) & result.battery["family"].isin(INFERENCE)]
    return trials.groupby("seed")["edc_sealed"].mean()


def reach_flops(result: DefenseResult, refs: ch6_claims.References, target: str) -> pd.Series:
    """FLOPs of the cheapest fine-tuning trial whose validation EDC reaches the attacker's target
    (:func:`~safetygap.book.ch6_claims.reach_threshold`), one value per (seed, draw); inf where none does."""
    reach = result.flops_to_reach(ch6_claims.reach_threshold(refs))
    return reach[reach["target"] == target].set_index(["seed", "draw"])["flops"]


def _reach_text(flops: pd.Series) -> str:
    """How often a target is reached and at what mean cost, as printed."""
    hit = flops[flops != float("inf")]
    mean = f", at {hit.mean():.1e} FLOPs on average" if len(hit) else ""
    return f"reached on {len(hit)} of {len(flops)} (seed, draw){mean}"


def _defense_row(defense: str, row: pd.Series, paper: str, book: str, worst_case: str, differs: str) -> dict:
    """One row of :func:`defenses_table`: the published figure ``row`` (its provenance, measure and budget) as
    ``paper``, the book's ``book`` and ``worst_case``, and what ``differs``."""
    return {"defense": defense, "source": row["provenance"], "paper: measure": row["measure"], "paper: budget": row["budget"],
            "paper": paper, "this book: same kind of attack": book, "this book: attacker-picked worst case (EDC)": worst_case,
            "what differs": differs}  # fmt: skip


def _worst(result: DefenseResult, target: str) -> str:
    """The attacker-picked worst case over the whole battery, as printed."""
    return stats.fmt_ci(ch6_claims.picked(result, target))


def _filtering_row(figures: pd.DataFrame, result: DefenseResult, refs: ch6_claims.References) -> dict:
    """:cite:t:`obrien2025deepignorance`'s largest attack beside the battery's longest run."""
    steps, tokens = (select(figures, "obrien2025deepignorance", m) for m in ("attack_steps", "attack_tokens"))
    longest = max(BATTERY.long_checkpoints)
    book = (f"the battery's longest run ({BATTERY.more_examples} examples, {longest} steps, lr {BATTERY.more_lr:g}): "
            f"EDC {stats.fmt_ci(fixed_trial(result, 'filtering', 'data', longest, data='more'))}, undefended "
            f"{stats.fmt_ci(fixed_trial(result, 'undefended', 'data', longest, data='more'))}, oracle {stats.fmt_ci(refs.per_seed('oracle'))}")
    return _defense_row("data filtering", steps, f"resisted up to {steps['value']:,.0f} steps ({tokens['value'] / 1e6:,.0f}M tokens)",
                        book, _worst(result, "filtering"),
                        f"the budget: {longest} steps here, {steps['value']:,.0f} in the paper; the measure: WMDP-Bio-based "
                        f"knowledge tests vs sealed EDC; a {figure(figures, 'obrien2025deepignorance', 'model_size'):g}B model vs a tiny one")  # fmt: skip


def _repnoise_row(figures: pd.DataFrame, result: DefenseResult) -> dict:
    """The learning rate of RepNoise's released attacked model beside a fixed battery attack at that rate."""
    readme, short = select(figures, *README_BREAK), max(BATTERY.checkpoints)
    lr = readme["value"]
    book = (f"full fine-tuning, {BATTERY.examples} examples, {short} steps, lr {lr:g}: EDC "
            f"{stats.fmt_ci(fixed_trial(result, 'repnoise', 'full', short, lr))}, undefended "
            f"{stats.fmt_ci(fixed_trial(result, 'undefended', 'full', short, lr))}")
    return _defense_row("RepNoise", readme, f"a released model attacked successfully at lr {lr:g} (no figure)", book,
                        _worst(result, "repnoise"), "the source: a repository README, not a paper figure; a learning rate "
                        "means different things at different model sizes")  # fmt: skip


def _circuit_breaker_rows(figures: pd.DataFrame, result: DefenseResult) -> list[dict]:
    """Circuit breakers' mean attack success and over-refusal beside the book's, and the embedding attack that
    broke them beside the battery's universal soft prompt."""
    before, after = (select(figures, "zou2024circuitbreakers", m) for m in ("attack_success_rate_before", "attack_success_rate_after"))
    embedding = select(figures, "schwinn2024revisiting", "attack_success_rate")
    over_before, over_after = (select(figures, "zou2024circuitbreakers", m) for m in ("over_refusal_before", "over_refusal_after"))
    worst = _worst(result, "circuit_breakers")
    over = {t: stats.fmt_pct_ci(ch6_claims.before(result, t, "over_refusal"), digits=0) for t in ("undefended", "circuit_breakers")}
    soft = {t: stats.fmt_ci(ch6_claims.picked(result, t, families=("soft_prompt",))) for t in ("undefended", "circuit_breakers")}
    return [
        _defense_row("circuit breakers", after, f"attack success, mean over ten attacks: {pct(before['value'])} -> {pct(after['value'])}",
                     f"EDC, mean over the battery's inference-time attacks (ablation, ACE, prefilling): undefended "
                     f"{stats.fmt_ci(inference_mean(result, 'undefended'))} -> {stats.fmt_ci(inference_mean(result, 'circuit_breakers'))}",
                     worst, "the measure (a classifier's verdict of harm vs sealed EDC) and the attacks (optimised prompts "
                     "and embedding attacks vs direction edits and prefilling); the paper does not evaluate fine-tuning"),
        _defense_row("circuit breakers", embedding, f"attack success {pct(embedding['value'])}",
                     f"EDC under the battery's universal soft prompt (embedding space): undefended {soft['undefended']} -> "
                     f"{soft['circuit_breakers']}", worst, "the attack: embeddings optimised for each prompt vs one soft prompt "
                     "trained on the attacker's examples and asked with unseen sealed requests; the measure"),
        _defense_row("circuit breakers", over_after, f"over-refusal {pct(over_before['value'])} -> {pct(over_after['value'])}",
                     f"over-refusal on the contrast set: undefended {over['undefended']} -> {over['circuit_breakers']}",
                     "(not an attack)", "the requests: real WildChat requests vs harmless questions about sealed poisons "
                     "and look-alike names"),
    ]  # fmt: skip


def _rmu_row(figures: pd.DataFrame, result: DefenseResult, refs: ch6_claims.References) -> dict:
    """:cite:t:`deeb2024unlearning`'s recovered share of pre-unlearning accuracy beside RMU's normalised uplift
    under the attacker's pick among fine-tuning trials."""
    deeb = select(figures, "deeb2024unlearning", "accuracy_recovered")
    share = ch6_claims.normalised(ch6_claims.picked(result, "rmu", families=FINE_TUNING), refs)
    return _defense_row("RMU unlearning", deeb, f"{pct(deeb['value'])} of pre-unlearning accuracy recovered",
                        "share of the base model's EDC above the oracle recovered by the attacker's pick among "
                        f"fine-tuning trials (normalised uplift): {stats.fmt_pct_ci(share, digits=0)}", _worst(result, "rmu"),
                        "the measure: multiple-choice accuracy over the model's own before unlearning, vs EDC above the "
                        "floor over the base model's; both train on other items of the same kind and test on held-out ones")  # fmt: skip


def _tar_row(figures: pd.DataFrame, result: DefenseResult) -> dict:
    """The durability paper's TAR figures (second-hand) beside the battery's matched-budget trials: TAR's own
    simulated attack and the same attack with warmup and cosine decay."""
    own, scheduled = (select(figures, "qi2024durability", "wmdp_bio_accuracy", setting=s) for s in TAR_SETTINGS)
    warmup = figure(figures, "qi2024durability", "warmup_steps")
    on_grid, schedule = (ch6_claims.matched(result, "tar", v) for v in ("on-grid", "warmup-cosine"))
    return _defense_row("TAR", own, f"WMDP-Bio about {pct(own['value'])} (chance) after TAR's own attacks, above "
                        f"{pct(scheduled['value'])} with a warmup and cosine schedule",
                        f"EDC at TAR's own budget ({BATTERY.tar_grid_steps} steps): its simulated attack {stats.fmt_ci(on_grid)}; "
                        f"the same with warmup and cosine decay {stats.fmt_ci(schedule)}",
                        _worst(result, "tar"), "the source (second-hand, unchecked); the measure (accuracy with chance as "
                        f"its floor vs EDC with the oracle as floor); the warmup: {BATTERY.matched_warmup} steps here, {warmup:g} in the paper")  # fmt: skip


def _routing_row(figures: pd.DataFrame, result: DefenseResult, refs: ch6_claims.References) -> dict:
    """SGTM's cost of recovery relative to RMU beside how often the battery's cheapest trial reaches the
    attacker's target against RMU and against the routed model."""
    sgtm = select(figures, "shilov2025sgtm", "finetune_steps_vs_rmu")
    return _defense_row("gradient routing", sgtm, f"SGTM needs {sgtm['value']:g} times RMU's fine-tuning steps to recover",
                        f"cheapest fine-tuning trial to reach the attacker's target: RMU {_reach_text(reach_flops(result, refs, 'rmu'))}; "
                        f"gradient routing {_reach_text(reach_flops(result, refs, 'gradient_routing'))}", _worst(result, "gradient_routing"),
                        "the method (SGTM, a later variant, vs expand-route-ablate); the target (the baseline's forget-set "
                        "performance vs an uplift in validation EDC); steps vs FLOPs")  # fmt: skip


def defenses_table(figures: pd.DataFrame, result: DefenseResult, refs: ch6_claims.References) -> pd.DataFrame:
    """Chapter 6's comparison, one row per published figure: the figure with its measure and budget, the book's
    measurement of the same kind of attack at the closest budget in the battery (a fixed trial, or the attacker's
    pick within the same family), the attacker-picked worst case over the whole battery, and what still differs."""
    rows = [_filtering_row(figures, result, refs), _repnoise_row(figures, result), *_circuit_breaker_rows(figures, result),
            _rmu_row(figures, result, refs), _tar_row(figures, result), _routing_row(figures, result, refs)]  # fmt: skip
    return pd.DataFrame(rows)


def defense_claims(result: DefenseResult, refs: ch6_claims.References, figures: pd.DataFrame) -> list[bars.Claim]:
    """One :class:`~safetygap.book.claims.Claim` per result sentence that chapter 6 says about
    :func:`defenses_table`, with the bars of :data:`~safetygap.book.claims.THRESHOLDS` (one value per seed)."""
    t, claim, every = bars.threshold, bars.claim, bars.every_seed
    longest, short = max(BATTERY.long_checkpoints), max(BATTERY.checkpoints)
    readme_lr = figure(figures, *README_BREAK)
    filtered = ch6_claims.above_oracle(fixed_trial(result, "filtering", "data", longest, data="more"), refs)
    repnoise = fixed_trial(result, "undefended", "full", short, readme_lr) - fixed_trial(result, "repnoise", "full", short, readme_lr)
    breakers = inference_mean(result, "undefended") - inference_mean(result, "circuit_breakers")
    schedule = ch6_claims.matched(result, "tar", "warmup-cosine") - ch6_claims.matched(result, "tar", "on-grid")
    routed, rmu = reach_flops(result, refs, "gradient_routing"), reach_flops(result, refs, "rmu")
    return [
        claim("cmp_filtering_longest", "Under the battery's longest fine-tuning run the filtered model stays at most `floor` "
              "above the oracle on every seed.", filtered, lambda v: every(v, lambda x: x <= t("floor")),
              f"filtering EDC - oracle at {longest} steps <= floor, every seed"),
        claim("cmp_repnoise_lr", "At the README's learning rate, a fixed attack gets at least `margin` less EDC from RepNoise "
              "than from the undefended model on average.", repnoise, lambda v: v.mean() >= t("margin"),
              f"mean undefended - repnoise EDC, full, lr {readme_lr:g}, {short} steps >= margin"),
        claim("cmp_breakers_inference", "Averaged over the battery's inference-time attacks, circuit breakers cut sealed EDC "
              "by at least `margin` on every seed.", breakers, lambda v: every(v, lambda x: x >= t("margin")),
              "undefended - circuit_breakers mean inference-time EDC >= margin, every seed"),
        claim("cmp_tar_schedule", "At TAR's own budget, a warmup and cosine schedule gets less than `margin` more from TAR "
              "than the attacks TAR simulated, on average.", schedule, lambda v: v.mean() < t("margin"),
              "mean EDC (matched warmup-cosine) - EDC (matched on-grid) < margin"),
        claim("cmp_routing_unreached", "No fine-tuning trial of the battery reaches the attacker's target against the routed "
              "model, on any seed or draw, while some reach it against RMU.",
              pd.Series({"routed": float((routed != float("inf")).sum()), "rmu": float((rmu != float("inf")).sum())}),
              lambda v: v["routed"] == 0 and v["rmu"] > 0, "(seed, draw) reaching the target: routed 0, rmu > 0"),
    ]  # fmt: skip
