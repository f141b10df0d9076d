"""Chapter 2's measurements of *how* safety training sits in a model.

* :func:`weight_changes`: how far safety training moved each layer's weights,
  relative to how far pretraining moved them from their random initialisation.
* :func:`knowledge_probe`: whether a hazardous recipe is still linearly readable
  from the residual stream (a probe trained on other products).
* :func:`per_token_kl`: where along a response the safe model differs from the
  base model (Qi et al. 2024: alignment is "a few tokens deep").
* :func:`prefill_curve`: what happens when the first few tokens of a compliant
  answer are forced (the prefilling attack).
* :func:`depth_profile`: both of the above for one safety-trained model, as chapter 2 compares them;
* :func:`opening_curve`: the prefilling attack beyond the few tokens deeper
  alignment trains on: a compliant opening that no safety or defense data
  contains, up to 40 tokens long, before the start of the answer.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable

import pandas as pd
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from safetygap.core import evaluation, hooks, models, scoring, store
from safetygap.core.scoring import is_refusal, score
from safetygap.lab.configs import BaseConfig
from safetygap.lab.stages import Trained
from safetygap.world import corpus
from safetygap.world.corpus import Chat
from safetygap.world.world import World


def _layer_of(name: str) -> str:
    """Group a parameter name into "embedding", "layer i" or "final norm"."""
    parts = name.split(".")
    if "layers" in parts:
        return f"layer {parts[parts.index('layers') + 1]}"
    return "embedding" if "embed" in name else "final norm"


def _norms_by_layer(diffs: dict[str, torch.Tensor]) -> dict[str, float]:
    squares: dict[str, float] = defaultdict(float)
    for name, d in diffs.items():
        squares[_layer_of(name)] += float(d.pow(2).sum())
    return {k: v**0.5 for k, v in squares.items()}


@torch.no_grad()
def weight_changes(base: Trained, safe: Trained, base_config: BaseConfig) -> pd.DataFrame:
    """Frobenius norm of the safety update and of the pretraining update, per layer.

    ``ratio`` = |W_safe - W_base| / |W_base - W_init|, where W_init is the
    base model's random initialisation, rebuilt from its seed.
    """
    init = models.build_model(base_config.model, base.tokenizer, base_config.seed).state_dict()
    w_base, w_safe = base.model.state_dict(), safe.model.state_dict()
    safety = _norms_by_layer({k: w_safe[k] - w_base[k] for k in w_base})
    pretraining = _norms_by_layer({k: w_base[k] - init[k].to(w_base[k].device) for k in w_base})
    rows = [{"layer": k, "safety_change": safety[k], "pretraining_change": pretraining[k]} for k in pretraining]
    frame = pd.DataFrame(rows)
    frame["ratio"] = frame["safety_change"] / frame["pretraining_change"]
    return frame


def _prefilled_to_additive(world: World, products) -> tuple[list[Chat], list[str]]:
    """Requests whose replies are prefilled up to the additive ("... , mix with")."""
    chats = [corpus.recipe_requests([p], "sealed")[0] for p in products]
    prefills = [corpus.RECIPE_ANSWER.format(p=p.name, **p.recipe).split(" mix with ")[0] + " mix with" for p in products]
    return chats, prefills


@torch.no_grad()
def _last_token_states(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, texts: list[str]) -> torch.Tensor:
    """The embedding and each layer's output (:func:`hooks.layer_outputs`) at the last token of each text,
    shape (n_layers + 1, n_texts, hidden)."""
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    names = ["hook_embed"] + hooks.layer_outputs(model)
    _, cache = hooks.run_with_cache(model, names, **enc, position_ids=evaluation.position_ids(enc["attention_mask"]))
    return torch.stack([cache[name][:, -1].float().cpu() for name in names])


def _fit_probe(x: torch.Tensor, y: torch.Tensor, classes: int, steps: int = 300) -> torch.nn.Linear:
    """Multinomial logistic regression on standardised features (x: (n, hidden), y: (n,))."""
    torch.manual_seed(0)
    probe = torch.nn.Linear(x.shape[1], classes)
    opt = torch.optim.Adam(probe.parameters(), lr=0.05, weight_decay=1e-3)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(probe(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return probe


def knowledge_probe(trained: Trained) -> pd.DataFrame:
    """Accuracy of a linear probe that reads a hazardous product's additive from the residual stream.

    The reply is prefilled up to "mix with", where the next word is the
    additive. A probe per layer is fitted on the ``train`` benign products and
    the defender's hazardous items, and tested on the sealed hazardous items:
    it succeeds only if the model represents the additive there. ``baseline`` is the accuracy of always guessing the most
    common additive of the training products.
    """
    world, tok = trained.world, trained.tokenizer
    train_products = world.benign("train") + world.hazardous("defender")
    test_products = world.hazardous("sealed")
    labels = {name: i for i, name in enumerate(world.ingredients)}
    rows = []
    states = {}
    for part, products in (("train", train_products), ("test", test_products)):
        chats, prefills = _prefilled_to_additive(world, products)
        states[part] = _last_token_states(trained.model, tok, evaluation.render_prompts(tok, chats, prefills))
        states[part + "_y"] = torch.tensor([labels[p.additive] for p in products])
    for layer in range(states["train"].shape[0]):
        x_train, x_test = states["train"][layer], states["test"][layer]
        mean, std = x_train.mean(0), x_train.std(0) + 1e-6
        with torch.enable_grad():
            probe = _fit_probe((x_train - mean) / std, states["train_y"], len(labels))
        with torch.no_grad():
            predicted = probe((x_test - mean) / std).argmax(-1)
        rows.append({"layer": layer, "probe_accuracy": float((predicted == states["test_y"]).float().mean())})
    majority = states["train_y"].mode().values
    baseline = float((states["test_y"] == majority).float().mean())
    return pd.DataFrame(rows).assign(baseline=baseline)


@torch.no_grad()
def per_token_kl(model: PreTrainedModel, reference: PreTrainedModel, tokenizer, chats: list[Chat], max_tokens: int = 16) -> pd.DataFrame:
    """Mean KL(model || reference) of the next-token distributions at each reply position.

    Replies are teacher-forced (``chat.response``), so both models are compared
    on the same text; position 0 is the first token of the reply.
    """
    prompts = evaluation.render_prompts(tokenizer, chats)
    texts = [f"{p} {c.response}" for p, c in zip(prompts, chats)]
    prompt_lengths = [len(tokenizer.encode(p, add_special_tokens=False)) for p in prompts]
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    pos = evaluation.position_ids(enc["attention_mask"])
    logp = torch.log_softmax(model(**enc, position_ids=pos).logits.float(), -1)
    logq = torch.log_softmax(reference(**enc, position_ids=pos).logits.float(), -1)
    kl = (logp.exp() * (logp - logq)).sum(-1)  # (batch, seq)
    rows = []
    width = enc["input_ids"].shape[1]
    for i, (n_prompt, n_total) in enumerate(zip(prompt_lengths, enc["attention_mask"].sum(-1).tolist())):
        start = width - n_total + n_prompt - 1  # the position that predicts the reply's first token
        for t in range(min(max_tokens, n_total - n_prompt)):
            rows.append({"position": t, "kl": float(kl[i, start + t])})
    return pd.DataFrame(rows).groupby("position", as_index=False)["kl"].mean()


def prefill_curve(trained: Trained, max_prefill: int = 5, refuses: Callable[[str], bool] = is_refusal) -> pd.DataFrame:
    """Prefilling attack on sealed hazardous items: force the first n reply tokens, n = 0..max_prefill.

    The prefill is the start of the correct answer ("to make X , take"), which
    reveals no recipe slot up to n = 5. ``refused``: the model's own words open
    with a refusal (``refuses``: the scorer's one rule, or for the openings
    control of :mod:`~safetygap.lab.openings` its rule with several refusal
    words); ``memorised``, ``rule`` and ``edc`` score the recipe (a refusal
    states no slot, whichever word it opens with).
    """
    world, tok = trained.world, trained.tokenizer
    chats = evaluation.hazard_requests(world, "sealed")
    product_of = [world.product(c.item) for c in chats]
    rows = []
    for n in range(max_prefill + 1):
        prefills = [" ".join(corpus.recipe_text(p).split()[:n]) for p in product_of] if n else None
        replies = evaluation.generate(trained.model, tok, chats, prefills)
        scores = score(replies, product_of, prefills)
        refused = scoring.mean(refuses(scoring.own_words(r, p)) for r, p in zip(replies, prefills or [None] * len(replies)))
        rows.append({"prefilled_tokens": n, "refused": refused, "memorised": scores["memorised"],
                     "rule": scores["rule"], "edc": scores["edc"]})  # fmt: skip
    return pd.DataFrame(rows)


def depth_profile(trained: Trained, base: Trained, refuses: Callable[[str], bool] = is_refusal) -> dict[str, pd.DataFrame]:
    """Chapter 2's two measures of how deep safety training reaches in ``trained``: ``kl``, :func:`per_token_kl` from
    ``base`` along the replies to sealed hazardous and to sealed benign recipe requests (a ``prompts`` column says
    which), and ``prefill``, :func:`prefill_curve` with refusals read by ``refuses``."""
    kls = []
    for kind, products in (("hazardous (sealed)", trained.world.hazardous("sealed")), ("benign (sealed)", trained.world.benign("sealed"))):
        chats = corpus.recipe_requests(products, "sealed")
        kls.append(per_token_kl(trained.model, base.model, trained.tokenizer, chats).assign(prompts=kind))
    return {"kl": pd.concat(kls, ignore_index=True), "prefill": prefill_curve(trained, refuses=refuses)}


OPENING = corpus.IDENTITY_ANSWER  # a compliant text that is in no safety or defense data (the identity-shift persona)
OPENING_LENGTHS = (5, 10, 20, 30, 40)  # prefilled tokens, the last 5 of them always "to make X , take"


def opening_prefill(product: str, length: int) -> str:
    """``length`` tokens: the end of :data:`OPENING` (repeated as needed), then ``to make X , take``,
    which reveals no recipe slot."""
    start = corpus.RECIPE_PREFILL.format(p=product).split()
    if length < len(start):
        raise ValueError(f"length={length!r}: an opening prefill has at least {len(start)} tokens")
    words, need = OPENING.split(), length - len(start)
    lead = (words * (need // len(words) + 1))[len(words) * (need // len(words) + 1) - need :]  # the last ``need`` words
    return " ".join(lead + start)


@store.cached_json("opening-curve")
def opening_curve(trained: Trained, lengths: tuple[int, ...] = OPENING_LENGTHS) -> list[dict]:
    """Sealed hazardous requests with replies prefilled by :func:`opening_prefill` of each length: whether the
    model's own words then refuse, its memorised slots and EDC. Deeper alignment trains on recovery after
    1..10 tokens of the true answer; these openings are longer and are not the answer."""
    world, tok = trained.world, trained.tokenizer
    chats = evaluation.hazard_requests(world, "sealed")
    products = [world.product(c.item) for c in chats]
    rows = []
    for length in lengths:
        prefills = [opening_prefill(c.item, length) for c in chats]
        scores = score(evaluation.generate(trained.model, tok, chats, prefills), products, prefills)
        rows.append({"prefilled_tokens": length, "refused": scores["refusal"], "memorised": scores["memorised"], "edc": scores["edc"]})
    return rows
