"""Live models in the page (safetygap/book/live.py and _static/live.js).

* The export: weights, vocabulary and prompt format read back to what the torch model and the tokenizer hold,
  and models the page cannot run are refused with a clear error.
* The page in headless Chromium: a page made here with two small models (random weights, so their replies run
  to the full length and exercise every step of the forward pass), opened from ``file://``; the example prompts
  are typed into the widget and every model's answer must equal Python's greedy answer.
* The built book (``_build/html``, after ``make book``): the same check on the pages of chapters 1 and 2 with the
  book's models, against the greedy answers the build computed in Python (``_static/live/reference.json``).

The browser tests need Playwright (pinned) and a Chromium (``chromium`` on PATH, or ``SAFETYGAP_CHROMIUM``);
without one they are skipped, unless ``SAFETYGAP_BROWSER_TESTS=1`` (CI sets it), which turns a skip into a
failure. The built-book test runs when ``_build/html`` holds the live models; ``SAFETYGAP_BUILT_BOOK=1`` requires it.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from safetygap.book import live, scales
from safetygap.core import evaluation, models
from safetygap.core.compute import ComputeReport
from safetygap.lab import stages as lab
from safetygap.lab.stages import Trained

ROOT = Path(__file__).resolve().parent.parent
BUILT = ROOT / "_build" / "html"
CHAPTERS = ("01_safety_gap", "02_anatomy")
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# As root Chromium needs --no-sandbox; the rest keep it off a network this machine does not have.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]  # fmt: skip


def small_model(world_config, seed: int) -> Trained:
    """A model of the book's architecture with random weights, drawn wide (std 0.3) so that the next token is
    never a near tie: the page must reproduce a long reply token for token."""
    tokenizer, world = lab.get_tokenizer(world_config), lab.get_world(world_config)
    model = models.build_model(models.ModelConfig(hidden=32, layers=2, heads=2), tokenizer, seed).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.3 + (1.0 if p.ndim == 1 else 0.0))  # norms near 1
    return Trained(model, tokenizer, world, ComputeReport("random", 0, 0, 0, 0, 0, 0.0))


@pytest.fixture(scope="module")
def small_models() -> dict[str, Trained]:
    world_config = scales.base_config(scales.DEV_SEED, "reduced").world
    return {"first": small_model(world_config, 1), "second": small_model(world_config, 2)}


def weights_of(data: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(data["data"]), dtype="<f4").reshape(data["shape"])


def test_export_reads_back_to_the_model(small_models):
    trained = small_models["first"]
    exported = live.export_weights(trained.model)
    state = trained.model.state_dict()
    assert set(exported["weights"]) == set(state) - {"lm_head.weight"}  # the output layer is the embedding
    for name, data in exported["weights"].items():
        np.testing.assert_array_equal(weights_of(data), state[name].numpy())
    assert exported["config"]["hidden"] == 32 and exported["config"]["heads"] == 2


def test_prompt_format_matches_the_tokenizer(small_models):
    """live.js builds a prompt as [bos, user, words..., assistant, prefill words...] from the exported vocabulary:
    the same ids as the chat template and the tokenizer give."""
    trained = small_models["first"]
    tok = live.export_tokenizer(trained.tokenizer)
    ids = {w: i for i, w in enumerate(tok["vocab"])}
    s = tok["special"]
    for prompt in live.example_prompts(trained.world):
        words = [ids.get(w, s["unk"]) for w in prompt.question.split()]
        page = [s["bos"], s["user"], *words, s["assistant"], *(ids[w] for w in prompt.prefill.split())]
        text = evaluation.render_prompts(trained.tokenizer, [prompt.chat()], [prompt.prefill] if prompt.prefill else None)[0]
        assert page == trained.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert s["eos"] in tok["skip"] and s["unk"] in tok["skip"]


def test_examples_cover_refusal_prefill_and_capability(small_models):
    prompts = live.example_prompts(small_models["first"].world)
    assert len({p.question for p in prompts}) == len(prompts) - 1  # the hazardous request twice, once prefilled
    assert sum(bool(p.prefill) for p in prompts) == 1


def test_unsupported_models_are_refused(small_models):
    tokenizer = small_models["first"].tokenizer
    gpt2 = models.build_model(models.ModelConfig(arch="gpt2", hidden=32, layers=1, heads=2), tokenizer, 0)
    with pytest.raises(ValueError, match="LlamaForCausalLM"):
        live.export_weights(gpt2)
    llama = models.build_model(models.ModelConfig(hidden=32, layers=1, heads=2), tokenizer, 0)
    llama.config.attention_bias = True
    with pytest.raises(ValueError, match="attention_bias"):
        live.export_weights(llama)


def test_config_is_validated():
    with pytest.raises(ValueError, match="valid defenses"):
        live.LiveConfig(defense="prayer")
    with pytest.raises(ValueError, match="valid scales"):
        live.LiveConfig(scale="huge")


# ---- In the browser ----------------------------------------------------------------------------------------------


def unavailable(reason: str) -> None:
    """Skip a browser test, or fail it where the environment promises a browser (CI)."""
    if os.environ.get("SAFETYGAP_BROWSER_TESTS") == "1":
        pytest.fail(f"SAFETYGAP_BROWSER_TESTS=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright is not installed (it is pinned in requirements.txt)")
    executable = os.environ.get("SAFETYGAP_CHROMIUM") or next(filter(None, map(shutil.which, BROWSERS)), None)
    if executable is None:
        unavailable(f"no Chromium found (looked for {', '.join(BROWSERS)} on PATH and SAFETYGAP_CHROMIUM); "
                    "on Debian or Ubuntu: apt-get install chromium")  # fmt: skip
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def page_answers(browser, url: str, prompts: list[dict]) -> list[dict[str, str]]:
    """Type each prompt into the page's widget, press the button, and read every model's answer."""
    page = browser.new_page()
    errors: list[str] = []  # uncaught errors thrown by the widget's scripts (the theme's own are not ours to test)
    page.on("pageerror", lambda e: errors.append(f"{e}: {e.stack}") if "live" in (e.stack or "") else None)
    page.goto(url)
    widget = page.locator(".live-models")
    assert widget.count() == 1, f"{url} has {widget.count()} live-model widgets"
    out = []
    for prompt in prompts:
        widget.locator(".live-question").fill(prompt["question"])
        widget.locator(".live-prefill").fill(prompt["prefill"])
        widget.locator(".live-ask").click()
        page.wait_for_function("s => ['done', 'error'].includes(document.querySelector(s).dataset.state)", arg=".live-models")
        assert widget.get_attribute("data-state") == "done", widget.locator(".live-status").inner_text()
        answers = widget.locator(".live-answer")
        out.append({answers.nth(i).get_attribute("data-model"): answers.nth(i).inner_text() for i in range(answers.count())})
        page.evaluate("s => { document.querySelector(s).dataset.state = 'idle'; }", ".live-models")
    page.close()
    assert not errors, errors
    return out


def test_page_answers_equal_python(browser, small_models, tmp_path):
    static = tmp_path / "_static"
    live.write_site(static / "live", models=small_models)
    shutil.copy(ROOT / "_static" / "live.js", static / "live.js")
    page = tmp_path / "page.html"
    page.write_text('<!doctype html><html><body><div class="live-models"></div><script src="_static/live.js"></script></body></html>')
    world = small_models["first"].world
    prompts = [{"question": p.question, "prefill": p.prefill} for p in live.example_prompts(world)]
    expected = [{name: live.greedy_answer(m, live.LivePrompt(**p)) for name, m in small_models.items()} for p in prompts]
    assert all(len(a.split()) > 20 for answers in expected for a in answers.values())  # long replies, no early stop
    assert page_answers(browser, page.as_uri(), prompts) == expected


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_built_book_answers_equal_python(browser, chapter):
    reference_file = BUILT / live.SITE_DIR / live.REFERENCE_FILE
    if not reference_file.exists():
        if os.environ.get("SAFETYGAP_BUILT_BOOK") == "1":
            pytest.fail(f"SAFETYGAP_BUILT_BOOK=1 but {reference_file} does not exist: build the book first (make book)")
        pytest.skip(f"the book is not built ({reference_file} does not exist)")
    reference = json.loads(reference_file.read_text())
    got = page_answers(browser, (BUILT / "chapters" / f"{chapter}.html").as_uri(), reference)
    assert got == [r["answers"] for r in reference]
