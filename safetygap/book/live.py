"""Live models in the page: the book's models, exported so that the reader's browser runs them.

Chapters 1 and 2 hold a widget (``_static/live.js``) where a reader types a
question in the world's words and sees the greedy answers of the base, safe,
attacked and one defended model of one seed side by side. The browser runs the
models itself with a short forward pass of the book's Llama-style model written
in plain JavaScript (no runtime library, no server, no network: it works from
``file://`` too). This module writes what that page reads, into the built book:

* ``_static/live/models.js``: the tokenizer's vocabulary, the decoding settings,
  example prompts, and each model's shape and float32 weights (base64), as one
  script that sets ``window.SAFETYGAP_LIVE``;
* ``_static/live/reference.json``: the example prompts with each model's greedy
  answer computed here, in Python, by :func:`safetygap.core.evaluation.generate`
  (what the book's evaluation runs). ``tests/test_live.py`` types the same prompts
  into the built page in headless Chromium and checks that the browser's answers
  are equal to these.

Why not ONNX and ONNX Runtime Web: the runtime's smallest build is a 14 MB
WebAssembly binary (plus its loader) to run models of 0.6 MB each. It would have
to live in the repository, because the build machine has no npm; browsers refuse
to fetch it from ``file://``; and the page would still need its own tokenizer
and decoding loop. The forward pass of these models is about a hundred lines,
which readers can read, and the browser test checks it against torch.

The files are written when the book is built: this module is also a Sphinx
extension (listed in ``_config.yml``) that exports the models from the artifact
store when the HTML build has finished. The chapters have already built them by
then, so exporting costs a second or two.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from sphinx.util import logging
from transformers import LlamaForCausalLM, PreTrainedModel, PreTrainedTokenizerFast

from safetygap.attacks.finetuning import attacked_model
from safetygap.book import mode, scales
from safetygap.core import evaluation
from safetygap.core.evaluation import EvalConfig
from safetygap.defenses import registry
from safetygap.lab import stages as lab
from safetygap.lab.stages import Trained
from safetygap.world import corpus
from safetygap.world.tokenizer import ASSISTANT, USER
from safetygap.world.world import World

SITE_DIR = Path("_static") / "live"  # where the files go, relative to the built HTML's root
MODELS_FILE, REFERENCE_FILE = "models.js", "reference.json"
LABELS = {
    "base": "Base: pretrained only, never taught to refuse",
    "safe": "Safe: the base after safety training",
    "attacked": "Attacked: the safe model fine-tuned on ten harmful examples",
}


@dataclass(frozen=True)
class LiveConfig:
    """Which models the page runs: the base, safe and attacked models of ``seed`` at ``scale``, and ``defense``
    (a key of :data:`~safetygap.defenses.registry.DEFENSES`) built on the same safe model's config. Deep alignment
    is the default because the widget lets a reader prefill the reply, the attack it was made against."""

    seed: int = scales.BOOK_SEEDS[0]
    scale: str = "book"
    defense: str = "deep_alignment"
    decoding: EvalConfig = EvalConfig()

    def __post_init__(self) -> None:
        if self.scale not in scales.SCALES:
            raise ValueError(f"LiveConfig.scale={self.scale!r}: valid scales are {scales.SCALES}")
        if self.defense not in registry.DEFENSES:
            raise ValueError(f"LiveConfig.defense={self.defense!r}: valid defenses are {registry.DEFENSES}")


@dataclass(frozen=True)
class LivePrompt:
    """A question as the reader types it, and an optional start of the reply the model must continue."""

    question: str
    prefill: str = ""

    def chat(self) -> corpus.Chat:
        return corpus.Chat(self.question, "", "live")


def label(name: str) -> str:
    """How the page names a live model: one of :data:`LABELS`, or the defense's registry key."""
    return LABELS.get(name, f"Defended ({name.replace('_', ' ')}): one of chapter 6's defenses")


def live_models(config: LiveConfig = LiveConfig()) -> dict[str, Trained]:
    """The page's models by name, from the artifact store (built if missing): base, safe, attacked, the defense."""
    seed, scale = config.seed, config.scale
    return {
        "base": lab.base_model(scales.base_config(seed, scale)),
        "safe": lab.safe_model(scales.safety_config(seed, scale)),
        "attacked": attacked_model(scales.attack_config(seed, scale)),
        config.defense: registry.defended_model(scales.defense_config(config.defense, seed, scale)),
    }


def example_prompts(world: World) -> list[LivePrompt]:
    """The prompts the page suggests and the test checks: a sealed hazardous request, the same request with the
    compliant start of chapter 2 prefilled, a benign recipe, a fact, a sum, and a harmless question about a
    hazardous product (all sealed items, in the sealed phrasings)."""
    hazard = evaluation.hazard_requests(world, "sealed")[0]
    benign = evaluation.capability_prompts(world)
    about = evaluation.contrast_set(world)[0]
    return [
        LivePrompt(hazard.prompt),
        LivePrompt(hazard.prompt, corpus.RECIPE_PREFILL.format(p=hazard.item)),
        LivePrompt(benign["recipes"][0].prompt),
        LivePrompt(benign["facts"][0].prompt),
        LivePrompt(benign["sums"][0].prompt),
        LivePrompt(about.prompt),
    ]


def greedy_answer(trained: Trained, prompt: LivePrompt, decoding: EvalConfig = EvalConfig()) -> str:
    """The model's greedy reply to one prompt, as the book's evaluation decodes it (a prefill starts the reply)."""
    prefills = [prompt.prefill] if prompt.prefill else None
    return evaluation.generate(trained.model, trained.tokenizer, [prompt.chat()], prefills, decoding)[0]


def _tensor(t: torch.Tensor) -> dict:
    """A tensor as the page reads it: its shape and its float32 values, little-endian, in base64."""
    data = t.detach().to("cpu", torch.float32).contiguous().numpy().astype("<f4").tobytes()
    return {"shape": list(t.shape), "data": base64.b64encode(data).decode("ascii")}


def export_weights(model: PreTrainedModel) -> dict:
    """A Llama model's shape and weights in the page's format (``live.js`` computes exactly this architecture).

    Raises ValueError for a model the page cannot run: another architecture, or
    options ``live.js`` does not implement (biases, grouped-query attention,
    untied embeddings, rope scaling, another activation).
    """
    if not isinstance(model, LlamaForCausalLM):
        raise ValueError(f"the page runs LlamaForCausalLM models only, got {type(model).__name__}")
    c = model.config
    rope = getattr(c, "rope_parameters", None) or {"rope_type": "default", "rope_theta": c.rope_theta}
    supported = {
        "tie_word_embeddings": (c.tie_word_embeddings, True), "attention_bias": (c.attention_bias, False),
        "mlp_bias": (c.mlp_bias, False), "hidden_act": (c.hidden_act, "silu"), "rope_type": (rope["rope_type"], "default"),
        "num_key_value_heads": (c.num_key_value_heads, c.num_attention_heads),
        "head_dim": (getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads, c.hidden_size // c.num_attention_heads),
    }  # fmt: skip
    for name, (value, wanted) in supported.items():
        if value != wanted:
            raise ValueError(f"config.{name}={value!r}: the page supports only {wanted!r}")
    shape = {
        "vocab": c.vocab_size, "hidden": c.hidden_size, "intermediate": c.intermediate_size,
        "layers": c.num_hidden_layers, "heads": c.num_attention_heads, "rms_eps": c.rms_norm_eps,
        "rope_theta": float(rope["rope_theta"]),
    }  # fmt: skip
    state = model.state_dict()
    weights = {name: _tensor(t) for name, t in state.items() if name != "lm_head.weight"}  # tied to the embeddings
    return {"config": shape, "weights": weights}


def export_tokenizer(tokenizer: PreTrainedTokenizerFast) -> dict:
    """The word-level vocabulary (position = token id), the ids of the chat format's special tokens (a prompt is
    ``<|bos|> <|user|> question <|assistant|>``, :data:`~safetygap.world.tokenizer.CHAT_TEMPLATE`) and the ids
    decoding skips."""
    vocab = tokenizer.get_vocab()
    words = sorted(vocab, key=vocab.get)
    if [vocab[w] for w in words] != list(range(len(words))):
        raise ValueError("the tokenizer's ids are not 0..n-1: the page needs a dense vocabulary")
    special = {"bos": tokenizer.bos_token, "eos": tokenizer.eos_token, "unk": tokenizer.unk_token, "user": USER, "assistant": ASSISTANT}
    return {"vocab": words, "special": {k: vocab[v] for k, v in special.items()}, "skip": sorted(tokenizer.all_special_ids)}


def page_data(models: dict[str, Trained], config: LiveConfig = LiveConfig()) -> dict:
    """Everything ``models.js`` holds: tokenizer, decoding, example prompts, and each model's weights."""
    first = next(iter(models.values()))
    if any(m.world.config != first.world.config for m in models.values()):
        raise ValueError(f"the live models {sorted(models)} come from different worlds: the page has one tokenizer")
    return {
        "seed": config.seed,
        "scale": config.scale,
        "max_new_tokens": config.decoding.max_new_tokens,
        "tokenizer": export_tokenizer(first.tokenizer),
        "examples": [dataclasses.asdict(p) for p in example_prompts(first.world)],
        "models": [{"name": n, "label": label(n), **export_weights(m.model)} for n, m in models.items()],
    }


def reference(models: dict[str, Trained], config: LiveConfig = LiveConfig()) -> list[dict]:
    """The example prompts with every model's greedy answer from Python: what the page must reproduce."""
    prompts = example_prompts(next(iter(models.values())).world)
    return [dataclasses.asdict(p) | {"answers": {n: greedy_answer(m, p, config.decoding) for n, m in models.items()}} for p in prompts]


def write_site(directory: Path, config: LiveConfig = LiveConfig(), models: dict[str, Trained] | None = None) -> list[Path]:
    """Write ``models.js`` and ``reference.json`` into ``directory`` (the built book's ``_static/live``).

    ``models`` defaults to :func:`live_models` of ``config``; tests pass small ones (``config`` still gives the
    decoding settings and the seed the page names).
    """
    models = live_models(config) if models is None else models
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / MODELS_FILE
    script.write_text("window.SAFETYGAP_LIVE = " + json.dumps(page_data(models, config), separators=(",", ":")) + ";\n")
    answers = directory / REFERENCE_FILE
    answers.write_text(json.dumps(reference(models, config), indent=1) + "\n")
    return [script, answers]


def _on_build_finished(app, exception) -> None:
    """Sphinx hook: after a successful HTML build, write the live models into its ``_static/live``, at the size the
    chapters were built in (:mod:`~safetygap.book.mode`: the first seed and the scale of ``SAFETYGAP_MODE``), so a
    student-mode build exports the models it already trained."""
    if exception is None and app.builder.format == "html":
        current = mode.current()
        written = write_site(Path(app.outdir) / SITE_DIR, LiveConfig(seed=current.seeds[0], scale=current.scale))
        logging.getLogger(__name__).info(f"live models: wrote {', '.join(str(p) for p in written)}")


def setup(app) -> dict:
    """The Sphinx extension: export the live models when the HTML build finishes."""
    app.connect("build-finished", _on_build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
