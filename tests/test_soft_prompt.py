"""The soft prompt (embedding-space attack): its vectors replace the placeholders, and only they are trained."""

from __future__ import annotations

import pytest
import torch

from safetygap.attacks.soft_prompt import PLACEHOLDER, SoftPrompt, SoftPromptConfig, soft_prompt, train_soft_prompt, with_placeholders
from safetygap.book import scales
from safetygap.core import evaluation
from safetygap.core.models import build_model, zoo_model
from safetygap.core.training import TrainConfig
from safetygap.lab import stages as lab
from safetygap.world import corpus

WORLD = scales.base_config(0, "reduced").world


@pytest.fixture(scope="module")
def setup():
    tokenizer, world = lab.get_tokenizer(WORLD), lab.get_world(WORLD)
    return build_model(zoo_model("tiny"), tokenizer, 0), tokenizer, world


def test_placeholders_are_replaced_by_the_prompt_in_order_and_nothing_else_changes(setup):
    model, tok, world = setup
    chat = with_placeholders(corpus.recipe_requests(world.hazardous("attacker")[:1], "train")[0], 3)
    ids = tok(evaluation.render_prompts(tok, [chat]), add_special_tokens=False, return_tensors="pt")["input_ids"]
    placeholder = tok.convert_tokens_to_ids(PLACEHOLDER)
    assert int((ids == placeholder).sum()) == 3  # one token each: the tokenizer keeps the placeholder whole
    prompt = SoftPrompt(model, 3)
    with torch.no_grad():
        prompt.vectors.copy_(torch.randn_like(prompt.vectors))
        plain = model.get_input_embeddings()(ids)
        with soft_prompt(model, prompt, placeholder):
            edited = model.get_input_embeddings()(ids)
    mask = ids[0] == placeholder
    assert torch.equal(edited[0, mask], prompt.vectors) and torch.equal(edited[0, ~mask], plain[0, ~mask])
    assert torch.equal(model.get_input_embeddings()(ids), plain)  # the hook is gone afterwards


def test_a_row_with_the_wrong_number_of_placeholders_is_refused(setup):
    model, tok, _ = setup
    placeholder = tok.convert_tokens_to_ids(PLACEHOLDER)
    with soft_prompt(model, SoftPrompt(model, 3), placeholder), pytest.raises(ValueError, match="expected 0 or 3"):
        model.get_input_embeddings()(torch.tensor([[placeholder, placeholder, 5]]))


def test_training_moves_the_prompt_only(setup):
    model, tok, world = setup
    chats = corpus.recipe_requests(world.hazardous("attacker")[:4], "train")
    config = SoftPromptConfig(tokens=2, train=TrainConfig(steps=3, lr=1e-2, batch_size=4, schedule="constant"))
    attacked, prompt, report = train_soft_prompt(model, tok, chats, config, seed=0)
    start = model.get_input_embeddings().weight.mean(dim=0)
    assert not torch.allclose(prompt.vectors, start.repeat(2, 1))
    for (name, p), q in zip(model.named_parameters(), attacked.parameters()):
        assert torch.equal(p, q), name
    assert report.trainable_params == prompt.vectors.numel() and len(report.losses) == 3
