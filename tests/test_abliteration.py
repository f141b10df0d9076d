"""Abliteration: the edits do what their formulas say, and chapter 2's claims hold at reduced size.

The edit tests use a randomly initialised model (the algebra does not need a
trained one, and it keeps them fast); the claim tests use the reduced safe model.
"""

from __future__ import annotations

import re

import pytest
import torch

from safetygap.attacks import abliteration
from safetygap.attacks import directions as ab
from safetygap.book import ch2_anatomy
from safetygap.book import claims, scales
from safetygap.attacks import selection
from safetygap.core import evaluation, hooks, models
from safetygap.lab import stages as lab

SEED, SCALE = 0, "reduced"


@pytest.fixture(scope="module")
def lab_parts():
    """A random-weight model of the reduced world, its tokenizer, world, and candidates read from it."""
    world_config = scales.base_config(SEED, SCALE).world
    world, tok = lab.get_world(world_config), lab.get_tokenizer(world_config)
    model = models.build_model(models.zoo_model("tiny"), tok, seed=SEED).eval()
    return model, tok, world, ab.candidate_directions(model, tok, world)


def encoded(tok, chats, device):
    enc = tok(evaluation.render_prompts(tok, chats), return_tensors="pt", padding=True, add_special_tokens=False)
    enc = enc.to(device)
    return {**enc, "position_ids": evaluation.position_ids(enc["attention_mask"])}


def some_prompts(world):
    return ab.harmful_prompts(world)[:12] + ab.harmless_prompts(world)[::40]


@torch.no_grad()
def test_orthogonalised_weights_compute_what_the_ablation_hooks_compute(lab_parts):
    model, tok, world, cands = lab_parts
    r = cands.direction(1, -1)
    enc = encoded(tok, some_prompts(world), model.device)
    with ab.directional_ablation(model, r):
        hooked = model(**enc).logits
    edited = ab.orthogonalised(model, r)
    torch.testing.assert_close(edited(**enc).logits, hooked, atol=1e-4, rtol=0)
    # the unembedding is the original one, now untied; the original model is untouched and still tied
    assert torch.equal(edited.lm_head.weight, model.lm_head.weight)
    assert edited.lm_head.weight is not edited.get_input_embeddings().weight
    assert model.lm_head.weight is model.get_input_embeddings().weight
    assert not torch.allclose(model(**enc).logits, hooked)


def test_ablation_leaves_no_component_along_the_direction(lab_parts):
    model, tok, world, cands = lab_parts
    r = cands.direction(1, -1)
    with ab.directional_ablation(model, r):
        h = ab.residual_stream(model, tok, some_prompts(world), positions=5)  # (L+1, B, 5, d)
    before = ab.residual_stream(model, tok, some_prompts(world), positions=5)  # the hooks are gone
    assert (h @ ab.unit(r)).abs().max() < 1e-4 * (before @ ab.unit(r)).abs().max()


def test_ace_moves_activations_onto_the_hyperplane_through_the_harmless_mean(lab_parts):
    model, tok, world, cands = lab_parts
    point, r, mu = 1, cands.direction(1, -1), cands.harmless_mean(1, -1)
    r_hat = ab.unit(r)
    with ab.affine_edit(model, r, mu, point):
        h = ab.residual_stream(model, tok, ab.harmless_prompts(world), positions=3)[point]  # (B, 3, d)
    torch.testing.assert_close(h @ r_hat, torch.full(h.shape[:2], float(mu @ r_hat)), atol=1e-4, rtol=0)
    # so the harmless mean's projection is what it was, and the mean itself is a fixed point
    torch.testing.assert_close((h[:, -1] @ r_hat).mean(), mu @ r_hat, atol=1e-4, rtol=0)
    torch.testing.assert_close(ab.project_out(mu, r_hat, mu @ r_hat), mu, atol=1e-5, rtol=0)


@torch.no_grad()
def test_addition_adds_on_prompt_positions_and_not_on_generated_tokens(lab_parts):
    model, tok, world, cands = lab_parts
    point, r, scale = 1, cands.direction(1, -1), 2.0
    chats = some_prompts(world)
    before = ab.residual_stream(model, tok, chats, positions=3)[point]
    with ab.activation_addition(model, r, point, scale):
        after = ab.residual_stream(model, tok, chats, positions=3)[point]
        one_token = model(input_ids=torch.tensor([[tok.bos_token_id]], device=model.device)).logits
    torch.testing.assert_close(after, before + scale * r, atol=1e-5, rtol=0)
    plain = model(input_ids=torch.tensor([[tok.bos_token_id]], device=model.device)).logits
    torch.testing.assert_close(one_token, plain)


@pytest.mark.parametrize(
    "changes, named",
    [
        ({"select_by": "origin"}, ["'origin'", "('ablation', 'ace')"]),
        ({"positions": 0}, ["positions=0", ">= 1"]),
        ({"discard_last_fraction": 1.0}, ["discard_last_fraction=1.0", "[0, 1)"]),
        ({"kl_threshold": 0.0}, ["kl_threshold=0.0", "> 0"]),
        ({"min_induced_refusal": 1.5}, ["min_induced_refusal=1.5", "[0, 1]"]),
        ({"addition_scale": -1.0}, ["-1.0", "> 0"]),
        ({"addition_sweep": (1.0, 0.0)}, ["0.0", "> 0"]),
    ],
)
def test_bad_config_values_are_named_with_the_valid_ones(changes, named):
    selection_fields = {"discard_last_fraction", "kl_threshold", "min_induced_refusal"}
    with pytest.raises(ValueError) as err:
        if set(changes) <= selection_fields:
            selection.SelectionConfig(**changes)
        else:
            abliteration.AbliterationConfig(**changes)
    for text in named:
        assert text in str(err.value)


def test_bad_points_offsets_and_edits_are_named_with_the_valid_ones(lab_parts):
    model, tok, world, cands = lab_parts
    with pytest.raises(ValueError, match=re.escape("residual point 3: valid points are 0..2")):
        hooks.resid_point(model, 3)
    with pytest.raises(ValueError, match=re.escape("hook point 'blocks.7.hook_resid_post': valid points are")):
        hooks.module_at(model, "blocks.7.hook_resid_post")
    with pytest.raises(ValueError, match=re.escape("position offset -4: valid offsets are [-3, -2, -1]")):
        cands.direction(1, -4)
    with pytest.raises(ValueError, match=re.escape("edit='origin': valid edits are ('ablation', 'ace')")):
        with ab.removal(model, "origin", cands, 1, -1):
            pass
    with pytest.raises(ValueError, match=re.escape("positions=99: must be in 1..")):
        ab.residual_stream(model, tok, some_prompts(world), positions=99)
    with pytest.raises(ValueError, match="norm"):  # <|assistant|> is the same token in every prompt
        ab.unit(cands.direction(0, -1))


# ---------------------------------------------------------------- chapter 2's claims, at reduced size


@pytest.fixture(scope="module")
def result():
    return ch2_anatomy.run_abliteration(SEED, SCALE)


@pytest.mark.slow
def test_selection_keeps_the_best_eligible_candidate_away_from_the_output(result):
    table = result.candidates
    chosen = table[table["selected"]]
    assert len(chosen) == 1 and bool(chosen["eligible"].iloc[0])
    assert result.point < table["point"].max()  # not the residual stream the unembedding reads
    eligible = table[table["eligible"]]
    score = f"refusal_score_{abliteration.AbliterationConfig().select_by}"
    assert float(chosen[score].iloc[0]) == eligible[score].min()


@pytest.mark.slow
def test_removing_the_direction_removes_refusal_and_leaves_a_usable_model(result):
    """Chapter 2's bars (claims.THRESHOLDS): refusal gone, at least ``usable`` of the safe model's capability kept."""
    assert result.metric("safe", "refusal_sealed") >= claims.threshold("refuses")
    edit = result.best_edit
    assert result.metric(edit, "refusal_sealed") <= claims.threshold("complies")
    assert result.metric(edit, "benign_capability") >= claims.threshold("usable") * result.metric("safe", "benign_capability")


@pytest.mark.slow
def test_adding_the_direction_makes_harmless_requests_refused(result):
    assert result.metric("safe", "benign_refusal") <= claims.threshold("complies")
    assert result.metric("addition", "benign_refusal") >= claims.threshold("refuses")
