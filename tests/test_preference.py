"""DPO (safetygap.lab.preference): the loss against a reference computation written out token by token, the pairs,
and a few steps that move the policy the way the loss says."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from safetygap.core import training
from safetygap.core.models import ModelConfig, build_model
from safetygap.core.training import IGNORE, TrainConfig, encode_chat
from safetygap.lab import preference
from safetygap.lab.configs import SafetyConfig
from safetygap.world import corpus
from safetygap.world.tokenizer import build_tokenizer
from safetygap.world.world import WorldConfig, build_world

WORLD = build_world(WorldConfig())
TOK = build_tokenizer(WORLD)
PAIRS = preference.preference_pairs(WORLD, SafetyConfig().refusal_share)


def _model(seed: int = 0):
    return build_model(ModelConfig(hidden=32, layers=1, heads=2), TOK, seed).eval()


def _reference_logprob(model, chat: corpus.Chat) -> float:
    """log p(reply | prompt), one token at a time: the sum over reply tokens of the log-softmax of the logits at
    the position before each (the definition, with no batching, padding or masking tricks)."""
    example = encode_chat(TOK, chat)
    ids = torch.tensor([example.input_ids])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].double()
    total = 0.0
    for t in range(1, len(example.input_ids)):
        if example.labels[t] != IGNORE:
            total += torch.log_softmax(logits[t - 1], dim=-1)[example.labels[t]].item()
    return total


def test_reply_logprobs_match_the_token_by_token_definition_with_padding():
    model = _model()
    chats = [PAIRS[0][0], PAIRS[0][1], PAIRS[-1][0]]  # different lengths, so the batch is padded
    batch = training.collate([encode_chat(TOK, c) for c in chats], TOK.pad_token_id, model.device)
    with torch.no_grad():
        got = preference.reply_logprobs(model, batch)
    expected = [_reference_logprob(model, c) for c in chats]
    assert got.tolist() == pytest.approx(expected, abs=1e-4)


def test_dpo_loss_matches_the_formula_and_the_paper_s_special_cases():
    chosen, rejected = torch.tensor([-3.0, -10.0]), torch.tensor([-5.0, -2.0])
    ref_chosen, ref_rejected = torch.tensor([-4.0, -9.0]), torch.tensor([-4.0, -3.0])
    beta = 0.1
    expected = [-math.log(1 / (1 + math.exp(-beta * ((c - rc) - (r - rr)))))
                for c, r, rc, rr in zip(chosen.tolist(), rejected.tolist(), ref_chosen.tolist(), ref_rejected.tolist())]  # fmt: skip
    assert preference.dpo_loss(chosen, rejected, ref_chosen, ref_rejected, beta).item() == pytest.approx(sum(expected) / 2, rel=1e-6)
    # A policy equal to its reference is at log 2 whatever the replies; the loss falls as the chosen reply gains.
    assert preference.dpo_loss(chosen, rejected, chosen, rejected, beta).item() == pytest.approx(math.log(2), rel=1e-6)
    better = preference.dpo_loss(chosen + 1, rejected, ref_chosen, ref_rejected, beta)
    assert better < preference.dpo_loss(chosen, rejected, ref_chosen, ref_rejected, beta)


def test_pairs_prefer_refusal_on_defender_hazards_and_answers_on_harmless_chats():
    defender = {p.name for p in WORLD.hazardous("defender")}
    hazardous = [(c, r) for c, r in PAIRS if c.kind == "refusal"]
    harmless = [(c, r) for c, r in PAIRS if c.kind != "refusal"]
    assert hazardous and harmless
    assert all(c.item in defender and r.kind == "recipe" and c.prompt == r.prompt for c, r in hazardous)
    assert all(r.response.startswith(corpus.REFUSAL_WORD) and c.prompt == r.prompt for c, r in harmless)
    others = {p.name for role in ("attacker", "validation", "sealed") for p in WORLD.hazardous(role)}
    assert not any(c.item in others for c, _ in PAIRS), "DPO trains on the defender's hazardous items only"


def test_a_few_dpo_steps_raise_the_chosen_margin_and_reject_a_bad_beta():
    model = _model(1)
    reference = copy.deepcopy(model).requires_grad_(False)
    pairs = [(encode_chat(TOK, c), encode_chat(TOK, r)) for c, r in PAIRS[:8]]
    config = preference.PreferenceConfig(train=TrainConfig(steps=20, lr=3e-3, batch_size=8, warmup=0))
    report = training.train(model, config.train, preference.dpo_step(model, reference, pairs, config, seed=0), 0, "unit", len(pairs))
    assert report.losses[0] == pytest.approx(math.log(2), abs=1e-4)  # the policy starts as its reference
    assert report.losses[-1] < report.losses[0]
    assert report.forward_tokens == report.tokens  # the reference read every token the policy trained on
    with pytest.raises(ValueError, match="beta"):
        preference.PreferenceConfig(beta=0.0)


# --- Chapter 2's claims about DPO at reduced size ----------------------------------------------------------

from safetygap.book.ch2_preference import REDUCED_HEADLINE as HEADLINE  # noqa: E402 (why these two: see the module)


@pytest.mark.slow
@pytest.mark.parametrize("name", HEADLINE)
def test_dpo_headline_claims_hold_at_reduced_size(name):
    from safetygap.book import ch2_preference, ch2_reading, scales

    seeds = (scales.DEV_SEED,)
    result = ch2_preference.compare(seeds, "reduced")
    oracle = ch2_reading.reference(ch2_reading.reference_metrics(seeds, "reduced"), "oracle", "edc_sealed")
    claim = {c.name: c for c in ch2_preference.claims(result, oracle)}[name]
    assert claim.holds, f"{claim.name}: {claim.statement} ({claim.evidence})"
