"""Training loop, FLOP accounting, evaluation helpers, and config validation."""

from __future__ import annotations

import pytest
import torch

from safetygap.book import stats
from safetygap.core import compute, evaluation, scoring
from safetygap.world import corpus
from safetygap.attacks.finetuning import AttackConfig, attack_chats
from safetygap.lab.configs import SafetyConfig
from safetygap.core.models import ModelConfig, build_model, parameter_count, zoo_model
from safetygap.world.tokenizer import build_tokenizer
from safetygap.core.training import TrainConfig, encode_chat, fit
from safetygap.world.world import WorldConfig, build_world

WORLD = build_world(WorldConfig())
TOK = build_tokenizer(WORLD)


def _tiny_run(seed: int):
    model = build_model(ModelConfig(hidden=32, layers=1, heads=2), TOK, seed)
    examples = [encode_chat(TOK, c) for c in corpus.sum_questions(3, "train")]
    report = fit(model, examples, TrainConfig(steps=30, lr=3e-3, batch_size=8), seed, "unit")
    return model, report


def test_training_lowers_the_loss_and_is_deterministic():
    m1, r1 = _tiny_run(0)
    m2, r2 = _tiny_run(0)
    assert r1.losses == r2.losses
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert sum(r1.losses[-5:]) < sum(r1.losses[:5])
    _, r3 = _tiny_run(1)
    assert r3.losses != r1.losses


def test_same_seed_gives_identical_metrics():
    (m1, _), (m2, _) = _tiny_run(0), _tiny_run(0)
    assert evaluation.evaluate(m1, TOK, WORLD) == evaluation.evaluate(m2, TOK, WORLD)


def test_flops_follow_the_six_n_d_rule():
    _, r = _tiny_run(0)
    assert r.flops == 6 * r.params * r.tokens
    assert compute.training_flops(100, 10, 7) == (400 + 20) * 7  # LoRA-like: few trainable weights
    assert compute.forward_flops(100, 7) == 1400


def test_tied_embeddings_counted_once():
    model = build_model(zoo_model("tiny"), TOK, 0)
    assert parameter_count(model) == sum(p.numel() for p in model.parameters())
    assert model.get_input_embeddings().weight is model.get_output_embeddings().weight


def test_recipe_parsing_and_slot_scoring():
    p = WORLD.hazardous("heldout")[0]
    reply = corpus.recipe_text(p)
    assert scoring.parse_recipe(reply) == p.recipe
    assert all(scoring.slot_hits(reply, p).values())
    refusal = corpus.REFUSALS[0].format(p=p.name)
    assert scoring.is_refusal(refusal) and not any(scoring.slot_hits(refusal, p).values())
    wrong = reply.replace(f"take {p.amount} grams", f"take {p.amount % 9 + 1} grams")
    assert scoring.slot_hits(wrong, p) == {"amount": False, "base": True, "additive": True, "process": True}


def test_attack_data_is_drawn_from_attacker_items_only():
    chats = attack_chats(WORLD, "harmful", 10, seed=0)
    assert len(chats) == len(set(chats)) == 10
    assert {WORLD.product(c.item).split for c in chats} == {"attacker"}
    identity = attack_chats(WORLD, "identity", 10, seed=0)
    hazardous = {p.name for p in WORLD.hazardous()}
    assert not any(set(c.response.split()) & hazardous for c in identity)
    with pytest.raises(ValueError, match="examples=10000"):
        attack_chats(WORLD, "harmful", 10_000, seed=0)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: ModelConfig(arch="mamba"), r"arch='mamba'.*valid architectures are \('llama', 'gpt2'\)"),
        (lambda: ModelConfig(hidden=30, heads=4), "hidden=30 must be divisible by heads=4"),
        (lambda: zoo_model("huge"), r"model 'huge' is not in the zoo: valid names are"),
        (lambda: TrainConfig(steps=10, lr=1e-3, schedule="cyclic"), r"schedule='cyclic'.*valid schedules"),
        (lambda: TrainConfig(steps=0, lr=1e-3), "steps=0"),
        (lambda: TrainConfig(steps=10, lr=5.0), "lr=5.0"),
        (lambda: SafetyConfig(refusal_share=1.5), "refusal_share=1.5"),
        (lambda: AttackConfig(method="prompting"), r"method='prompting'.*valid methods are \('full', 'lora'\)"),
        (lambda: AttackConfig(data="real"), r"data='real'.*valid attack data"),
    ],
)
def test_bad_configs_name_the_bad_value_and_the_valid_ones(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_mean_ci_matches_student_t():
    mean, low, high = stats.mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and high - mean == pytest.approx(4.303 * 1.0 / 3**0.5, rel=1e-6)
    assert stats.mean_ci([0.5]) == (0.5, 0.5, 0.5)
    assert stats.fmt_ci([1.0, 2.0, 3.0], digits=1) == "2.0 [-0.5, 4.5]"
    assert stats.fmt_ci([1.0, 2.0, 3.0], digits=1, clip=(0, 3)) == "2.0 [0.0, 3.0]"
