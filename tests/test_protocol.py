"""The sealed protocol, proven: no sealed item and no evaluation phrasing reaches any training or selection.

Every training pipeline after pretraining (safety SFT and chapter 2's openings control, the seven defenses, every
fine-tuning family of the battery, chapter 2's attack curves) is run for a
step or two at reduced size with a tripwire on :func:`safetygap.core.training.collate`,
through which every training batch passes; the direction search (chapter 2's
and the battery's) with a tripwire on the prompts it renders. Every text they
saw is then checked against the sealed items (hazardous, benign, places, sums)
and the sealed phrasings. Pretraining is the one exception, by design: every
model reads the world's documents, the sealed items' included (that is the
knowledge under test), and harmless chats about non-sealed items.

The last tests show the tripwire firing when a pipeline is handed a sealed item.
"""

from __future__ import annotations

import dataclasses
import re
from contextlib import contextmanager

import pytest

from safetygap.attacks import battery, directions, selection
from safetygap.attacks.finetuning import attack_curve, fine_tune
from safetygap.attacks.soft_prompt import PLACEHOLDER, SoftPromptConfig
from safetygap.book import scales
from safetygap.core import evaluation, training
from safetygap.core.training import TrainConfig
from safetygap.defenses import registry
from safetygap.lab import openings
from safetygap.lab import stages as lab
from safetygap.lab.threshold_models import threshold_base
from safetygap.world import corpus
from safetygap.world.world import World

pytestmark = pytest.mark.slow
SEED, SCALE = 0, "reduced"
SHORT = TrainConfig(steps=2, lr=1e-3, batch_size=8, schedule="constant")
# The pretraining is real (the safe model must exist), everything after it runs two steps.
SAFETY = dataclasses.replace(scales.safety_config(SEED, SCALE), train=SHORT)
TINY_BATTERY = battery.BatteryConfig(full_lrs=(1e-3,), lora_lrs=(1e-3,), warmup=0, checkpoints=(1,), long_checkpoints=(1,),
                                     reversion=(0.5,), tar_grid_steps=2, matched_warmup=1, edit_ft_steps=1,
                                     soft_prompt=SoftPromptConfig(tokens=2, train=SHORT))  # fmt: skip


def _template_pattern(template: str) -> re.Pattern:
    """A regex matching a text that *opens* with ``template`` (any single word in each ``{slot}``): a user
    turn or a document. (A refusal may say "i will not explain how to make X" mid-text; that is no request.)"""
    parts = re.split(r"\{\w+\}", template)
    return re.compile("^" + r"\S+".join(re.escape(p) for p in parts))


SEALED_PHRASINGS = [
    _template_pattern(t)
    for table in (corpus.REQUESTS, corpus.FACT_QUESTIONS, corpus.SUM_QUESTIONS, corpus.RECIPE_DOCS, corpus.FAMILY_DOCS, corpus.PLACE_DOCS)
    for t in table["sealed"]
] + [_template_pattern(q) for q, _ in corpus.ABOUT["sealed"]]


def sealed_words(world: World) -> set[str]:
    """Names of every sealed item: hazardous and benign products and places."""
    products = world.hazardous("sealed") + world.benign("sealed")
    return {p.name for p in products} | {pl.name for pl in world.places_of("sealed")}


def leaks(world: World, texts: list[str]) -> list[str]:
    """The texts that mention a sealed item or sum, or use a sealed phrasing."""
    names, sums = sealed_words(world), set(world.sum_pairs("sealed"))
    out = []
    for text in texts:
        words = text.split()
        pairs = {(int(a), int(b)) for a, b in re.findall(r"\b(\d+) plus (\d+)\b", text)}
        if names & set(words) or pairs & sums or any(p.search(text) for p in SEALED_PHRASINGS):
            out.append(text)
    return out


@contextmanager
def tripwire(monkeypatch, tokenizer):
    """Record the text of every training batch (``collate``) and every prompt rendered for selection."""
    seen: list[str] = []
    collate = training.collate

    def recording_collate(batch, pad_id, device):
        seen.extend(tokenizer.decode(list(e.input_ids), skip_special_tokens=True) for e in batch)
        return collate(batch, pad_id, device)

    render = evaluation.render_prompts

    def recording_render(tok, chats, prefills=None):
        seen.extend(c.prompt for c in chats)
        return render(tok, chats, prefills)

    monkeypatch.setattr(training, "collate", recording_collate)
    monkeypatch.setattr(evaluation, "render_prompts", recording_render)
    yield seen


@pytest.fixture(scope="module")
def safe():
    return lab.safe_model(SAFETY)


def test_the_checker_sees_sealed_items_and_phrasings(safe):
    world = safe.world
    assert leaks(world, [corpus.recipe_requests(world.hazardous("sealed"), "train")[0].prompt])
    assert leaks(world, [corpus.recipe_requests(world.hazardous("attacker"), "sealed")[0].prompt])
    assert leaks(world, [corpus.fact_questions(world.places_of("sealed"), "train")[0].prompt])
    assert leaks(world, [corpus.sum_questions(world.sum_pairs("sealed"), "train")[0].response])
    assert not leaks(world, [c.prompt for c in corpus.recipe_requests(world.hazardous("attacker"), "train")])


def test_safety_training_sees_no_sealed_item(safe, monkeypatch):
    config = dataclasses.replace(SAFETY, refusal_share=0.3)  # a new config: trained now, not loaded
    with tripwire(monkeypatch, safe.tokenizer) as seen:
        lab.safety_tune(lab.base_model(config.base), config)
    assert seen and not leaks(safe.world, seen)


def test_the_openings_control_sees_no_sealed_item(safe, monkeypatch):
    """Chapter 2's control: the lab's safety data with the refusals' openings varied."""
    with tripwire(monkeypatch, safe.tokenizer) as seen:
        openings.varied_safe.__wrapped__(SAFETY)  # unwrapped: trained now, not stored
    assert seen and not leaks(safe.world, seen)


def _short(defense: str):
    """The defense's config on :data:`SAFETY`, every training run cut to two steps."""
    config = registry.defense_config(defense, SAFETY)
    changes = {f.name: dataclasses.replace(getattr(config, f.name), steps=2, warmup=0)
               for f in dataclasses.fields(config) if isinstance(getattr(config, f.name), TrainConfig)}  # fmt: skip
    if defense == "tar":
        changes["grid_steps"] = (1,)
    return dataclasses.replace(config, **changes)


@pytest.mark.parametrize("defense", [d for d in registry.DEFENSES if d not in registry.CHANGES_PRETRAINING])
def test_every_post_hoc_defense_sees_no_sealed_item(safe, defense, monkeypatch):
    with tripwire(monkeypatch, safe.tokenizer) as seen:
        registry.defended_model(_short(defense))
    assert seen and not leaks(safe.world, seen), defense


def test_defenses_that_change_pretraining_see_no_sealed_item_after_it(safe, monkeypatch):
    """Filtering and gradient routing change pretraining (which reads every document), then safety-train."""
    for defense in registry.CHANGES_PRETRAINING:
        config = _short(defense)
        base = lab.base_model(config.safety.base)  # routing's own base differs only in how pretraining updates weights
        with tripwire(monkeypatch, safe.tokenizer) as seen:
            lab.safety_tune(base, config.safety)
        assert seen and not leaks(safe.world, seen), defense


def test_chapter_5s_safety_training_and_attack_see_no_sealed_item_after_its_pretraining(safe, monkeypatch):
    """Chapter 5 pretrains on its own corpus (every document but the undocumented products' recipes, and scaled
    benign recipes), then safety-trains and attacks as the lab does."""
    base = threshold_base(SAFETY.base)
    attack = dataclasses.replace(scales.attack_config(SEED, SCALE), safety=SAFETY, train=SHORT)
    with tripwire(monkeypatch, safe.tokenizer) as seen:
        fine_tune(lab.safety_tune(base, SAFETY), attack)
    assert seen and not leaks(safe.world, seen)


def test_every_fine_tuning_family_of_the_battery_sees_no_sealed_item(safe, monkeypatch):
    with tripwire(monkeypatch, safe.tokenizer) as seen:
        rows = battery.finetune_battery.__wrapped__(safe, 0, TINY_BATTERY)
    assert {r["family"] for r in rows} == set(battery.DRAWN)
    asked = {t.replace(f" {PLACEHOLDER}", "") for t in seen}  # a soft prompt's evaluation asks with placeholders appended
    trained_on = [t for t in asked if t not in _evaluation_prompts(safe.world)]  # the evaluation alone reads sealed items
    assert trained_on and not leaks(safe.world, trained_on)


def _evaluation_prompts(world: World) -> set[str]:
    """Every prompt the final evaluation renders (it alone may read sealed items)."""
    chats = evaluation.hazard_requests(world, "sealed") + evaluation.hazard_requests(world, "validation")
    chats += [c for group in evaluation.capability_prompts(world).values() for c in group] + evaluation.contrast_set(world)
    return {c.prompt for c in chats}


def test_attack_curves_see_no_sealed_item(safe, monkeypatch):
    config = dataclasses.replace(scales.attack_config(SEED, SCALE), safety=SAFETY, train=SHORT)
    with tripwire(monkeypatch, safe.tokenizer) as seen:
        attack_curve.__wrapped__(config, (2,))
    assert not leaks(safe.world, [t for t in seen if t not in _evaluation_prompts(safe.world)])


def test_direction_search_reads_and_selects_on_the_attackers_items_only(safe, monkeypatch):
    with tripwire(monkeypatch, safe.tokenizer) as seen:
        candidates = directions.candidate_directions(safe.model, safe.tokenizer, safe.world, 2)
        config = selection.SelectionConfig(kl_prompts=20, min_induced_refusal=0.0)
        table = selection.score_candidates(safe.model, safe.tokenizer, safe.world, candidates, config)
        selection.select(table, candidates, "ablation", config)
    assert seen and not leaks(safe.world, seen)


def test_a_pipeline_handed_a_sealed_item_trips_the_wire(safe, monkeypatch):
    """The attacker's pool doctored to include a sealed item: the same check now fails."""
    world = safe.world
    real = World.hazardous

    def doctored(self, role=None):
        items = real(self, role)
        return items + real(self, "sealed")[:1] if role == "attacker" else items

    monkeypatch.setattr(World, "hazardous", doctored)
    whole_pool = TrainConfig(steps=1, lr=1e-3, batch_size=256, schedule="constant")
    config = dataclasses.replace(scales.attack_config(SEED, SCALE), safety=SAFETY, train=whole_pool,
                                 examples=len(doctored(world, "attacker")) * 6)
    with tripwire(monkeypatch, safe.tokenizer) as seen:
        attack_curve.__wrapped__(config, (1,))
    assert leaks(world, [t for t in seen if t not in _evaluation_prompts(world)])


def test_a_defense_handed_a_sealed_phrasing_trips_the_wire(safe, monkeypatch):
    """Safety data doctored to use the sealed phrasings: the same check now fails."""
    real = corpus.recipe_requests
    monkeypatch.setattr(corpus, "recipe_requests", lambda products, phrasing, refuse=False: real(products, "sealed", refuse))
    config = dataclasses.replace(SAFETY, refusal_share=0.31, train=dataclasses.replace(SHORT, batch_size=256))
    with tripwire(monkeypatch, safe.tokenizer) as seen:
        lab.safety_tune(lab.base_model(config.base), config)
    assert leaks(safe.world, seen)
