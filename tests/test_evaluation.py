"""Teacher-forced shortcuts give exactly the numbers of plain greedy decoding, on trained models."""

from __future__ import annotations

import pytest

from safetygap.attacks.finetuning import attacked_model
from safetygap.book import scales
from safetygap.core import evaluation
from safetygap.core.evaluation import EvalConfig
from safetygap.lab import anatomy
from safetygap.lab import stages as lab
from safetygap.world import corpus

SEED, SCALE = 0, "reduced"
PLAIN = EvalConfig(teacher_forcing=False)


@pytest.fixture(scope="module")
def models():
    return {
        "base": lab.base_model(scales.base_config(SEED, SCALE)),
        "oracle": lab.base_model(scales.base_config(SEED, SCALE, hazardous_documents=False)),
        "safe": lab.safe_model(scales.safety_config(SEED, SCALE)),
        "attacked": attacked_model(scales.attack_config(SEED, SCALE)),
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", ["base", "oracle", "safe", "attacked"])
def test_every_metric_is_the_same_with_and_without_teacher_forcing(models, name):
    m = models[name]
    fast = evaluation.evaluate(m.model, m.tokenizer, m.world)
    plain = evaluation.evaluate(m.model, m.tokenizer, m.world, PLAIN)
    assert fast == plain


@pytest.mark.slow
@pytest.mark.parametrize("name", ["base", "safe"])
def test_prefilling_curve_is_the_same_with_and_without_teacher_forcing(models, name):
    assert anatomy.prefill_curve(models[name]).equals(anatomy.prefill_curve(models[name], config=PLAIN))


@pytest.mark.slow
def test_shortcut_replies_equal_generated_replies_where_taken(models):
    m = models["attacked"]
    chats = corpus.recipe_requests(m.world.hazardous("heldout"), "heldout")
    expected = [c.response for c in chats]
    fast = evaluation.generate(m.model, m.tokenizer, chats, expected=expected)
    assert fast == evaluation.generate(m.model, m.tokenizer, chats)
    first = evaluation.teacher_forced(m.model, m.tokenizer, evaluation.render_prompts(m.tokenizer, chats), expected, EvalConfig())
    assert any(follows for _, follows in first)  # the shortcut is taken on some rows, not vacuous
