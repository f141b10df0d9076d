/*
 * Live models in the page: the book's base, safe, attacked and defended models, run in the reader's browser.
 *
 * A page opts in with an empty <div class="live-models"></div>. On the first question this script loads
 * _static/live/models.js (written when the book is built, by safetygap/book/live.py), which sets
 * window.SAFETYGAP_LIVE: the word-level vocabulary, the decoding settings, example prompts and each model's
 * float32 weights. It then computes each model's greedy reply itself, with the forward pass below: the
 * Hugging Face LlamaForCausalLM the book trains (RMSNorm, rotary positions, causal multi-head attention, a
 * SwiGLU MLP, output layer tied to the embeddings), one token at a time with a cache of keys and values.
 * No library, no server and no network: it works from file:// as well as from a web server.
 *
 * The reply is the one the book's evaluation decodes (safetygap.core.evaluation.generate): prompt
 * "<|bos|> <|user|> question <|assistant|> [prefill]", greedy decoding (the first highest logit), stop at
 * <|end|> or after max_new_tokens, special tokens dropped, words joined by spaces, the prefill kept in front.
 * tests/test_live.py checks in headless Chromium that the answers equal Python's.
 */
(function () {
  "use strict";

  var SCRIPT_URL = document.currentScript ? document.currentScript.src : "";
  var loading = null; // Promise of the decoded models, shared by every widget on the page

  // ---- Loading: one <script> (works from file://, where fetch does not) ----------------------------------

  function loadData() {
    if (window.SAFETYGAP_LIVE) return Promise.resolve(window.SAFETYGAP_LIVE);
    return new Promise(function (resolve, reject) {
      var tag = document.createElement("script");
      tag.src = new URL("live/models.js", SCRIPT_URL).href;
      tag.onload = function () { resolve(window.SAFETYGAP_LIVE); };
      tag.onerror = function () { reject(new Error("could not load " + tag.src + " (is the book built?)")); };
      document.head.appendChild(tag);
    });
  }

  function decodeTensor(t) {
    var bytes = atob(t.data), buffer = new Uint8Array(bytes.length);
    for (var i = 0; i < bytes.length; i++) buffer[i] = bytes.charCodeAt(i);
    var values = new Float32Array(buffer.buffer); // little-endian, as written (every browser platform is)
    var size = t.shape.reduce(function (a, b) { return a * b; }, 1);
    if (values.length !== size) throw new Error("tensor of shape " + t.shape + " holds " + values.length + " values");
    return values;
  }

  function loadModels() {
    if (!loading) {
      loading = loadData().then(function (data) {
        var models = data.models.map(function (m) {
          var w = {};
          Object.keys(m.weights).forEach(function (k) { w[k] = decodeTensor(m.weights[k]); });
          return { name: m.name, label: m.label, config: m.config, w: w };
        });
        return { data: data, models: models };
      });
    }
    return loading;
  }

  // ---- Tokenizer: word-level, as safetygap/world/tokenizer.py -------------------------------------------

  // What the reader types, in the world's spelling: lower case, punctuation as words of its own.
  function normalise(text) {
    return text.toLowerCase().replace(/([?.,:])/g, " $1 ").replace(/\s+/g, " ").trim();
  }

  function encode(tok, text) {
    if (!tok.ids) tok.ids = new Map(tok.vocab.map(function (word, i) { return [word, i]; }));
    return text.split(/\s+/).filter(Boolean).map(function (word) {
      return tok.ids.has(word) ? tok.ids.get(word) : tok.special.unk;
    });
  }

  function promptIds(tok, question, prefill) {
    var s = tok.special;
    return [s.bos, s.user].concat(encode(tok, question), [s.assistant], encode(tok, prefill));
  }

  function decode(tok, ids) {
    var skip = new Set(tok.skip);
    return ids.filter(function (id) { return !skip.has(id); }).map(function (id) { return tok.vocab[id]; }).join(" ").trim();
  }

  // ---- The forward pass of LlamaForCausalLM, one position at a time ---------------------------------------

  // out = W x for a row-major W of shape (rows, cols); sums in double precision, stored as float32.
  function matvec(W, x, rows, cols, out) {
    for (var r = 0; r < rows; r++) {
      var sum = 0, base = r * cols;
      for (var c = 0; c < cols; c++) sum += W[base + c] * x[c];
      out[r] = sum;
    }
    return out;
  }

  function rmsnorm(x, weight, eps) {
    var ss = 0;
    for (var i = 0; i < x.length; i++) ss += x[i] * x[i];
    var scale = Math.fround(1 / Math.sqrt(Math.fround(ss / x.length) + eps)), out = new Float32Array(x.length);
    for (var j = 0; j < x.length; j++) out[j] = weight[j] * Math.fround(x[j] * scale);
    return out;
  }

  // Rotary embedding of one head's vector v (length d) at position pos, in place: Hugging Face's
  // rotate_half convention, where dimension i pairs with i + d/2 and turns at frequency theta^(-2i/d).
  function rotate(v, offset, d, pos, theta) {
    var half = d / 2;
    for (var i = 0; i < half; i++) {
      var invFreq = Math.fround(1 / Math.fround(Math.pow(theta, Math.fround((2 * i) / d))));
      var angle = Math.fround(pos * invFreq), cos = Math.fround(Math.cos(angle)), sin = Math.fround(Math.sin(angle));
      var a = v[offset + i], b = v[offset + i + half];
      v[offset + i] = a * cos - b * sin;
      v[offset + i + half] = b * cos + a * sin;
    }
  }

  function silu(x) { return x / (1 + Math.exp(-x)); }

  // A fresh cache of keys and values, and step(token) -> logits of the next token.
  function session(model) {
    var c = model.config, w = model.w, H = c.hidden, heads = c.heads, d = H / heads, I = c.intermediate;
    var keys = [], values = [];
    for (var l = 0; l < c.layers; l++) { keys.push([]); values.push([]); }
    var pos = 0;
    return function step(token) {
      var x = w["model.embed_tokens.weight"].slice(token * H, (token + 1) * H);
      for (var l = 0; l < c.layers; l++) {
        var p = "model.layers." + l + ".";
        var h = rmsnorm(x, w[p + "input_layernorm.weight"], c.rms_eps);
        var q = matvec(w[p + "self_attn.q_proj.weight"], h, H, H, new Float32Array(H));
        var k = matvec(w[p + "self_attn.k_proj.weight"], h, H, H, new Float32Array(H));
        var v = matvec(w[p + "self_attn.v_proj.weight"], h, H, H, new Float32Array(H));
        for (var hd = 0; hd < heads; hd++) { rotate(q, hd * d, d, pos, c.rope_theta); rotate(k, hd * d, d, pos, c.rope_theta); }
        keys[l].push(k); values[l].push(v);
        var attended = new Float32Array(H), n = keys[l].length, scale = 1 / Math.sqrt(d);
        for (var hd2 = 0; hd2 < heads; hd2++) {
          var o = hd2 * d, scores = new Float64Array(n), max = -Infinity;
          for (var t = 0; t < n; t++) {
            var dot = 0;
            for (var i = 0; i < d; i++) dot += q[o + i] * keys[l][t][o + i];
            scores[t] = Math.fround(dot) * scale;
            if (scores[t] > max) max = scores[t];
          }
          var total = 0;
          for (var t2 = 0; t2 < n; t2++) { scores[t2] = Math.exp(scores[t2] - max); total += scores[t2]; }
          for (var i2 = 0; i2 < d; i2++) {
            var acc = 0;
            for (var t3 = 0; t3 < n; t3++) acc += (scores[t3] / total) * values[l][t3][o + i2];
            attended[o + i2] = acc;
          }
        }
        var out = matvec(w[p + "self_attn.o_proj.weight"], attended, H, H, new Float32Array(H));
        for (var j = 0; j < H; j++) x[j] += out[j];
        var h2 = rmsnorm(x, w[p + "post_attention_layernorm.weight"], c.rms_eps);
        var gate = matvec(w[p + "mlp.gate_proj.weight"], h2, I, H, new Float32Array(I));
        var up = matvec(w[p + "mlp.up_proj.weight"], h2, I, H, new Float32Array(I));
        for (var m = 0; m < I; m++) gate[m] = Math.fround(silu(gate[m])) * up[m];
        var down = matvec(w[p + "mlp.down_proj.weight"], gate, H, I, new Float32Array(H));
        for (var j2 = 0; j2 < H; j2++) x[j2] += down[j2];
      }
      pos += 1;
      var final = rmsnorm(x, w["model.norm.weight"], c.rms_eps);
      return matvec(w["model.embed_tokens.weight"], final, c.vocab, H, new Float32Array(c.vocab)); // tied output layer
    };
  }

  function argmax(logits) {
    var best = 0;
    for (var i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }

  // The greedy reply of one model, as safetygap.core.evaluation.generate writes it.
  function greedyReply(model, tok, question, prefill, maxNew) {
    var step = session(model), logits = null;
    promptIds(tok, question, prefill).forEach(function (id) { logits = step(id); });
    var generated = [];
    for (var n = 0; n < maxNew; n++) {
      var next = argmax(logits);
      if (next === tok.special.eos) break;
      generated.push(next);
      if (n + 1 < maxNew) logits = step(next);
    }
    var reply = decode(tok, generated);
    return prefill ? prefill + " " + reply : reply;
  }

  // ---- The widget ------------------------------------------------------------------------------------------

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function build(root) {
    root.dataset.state = "idle";
    var form = el("form", { class: "live-form" });
    var question = el("input", { class: "live-question", type: "text", placeholder: "explain how to make ... ." });
    var prefill = el("input", { class: "live-prefill", type: "text", placeholder: "(optional) the reply starts with ..." });
    var ask = el("button", { class: "live-ask", type: "submit" }, "Ask the models");
    form.append(el("label", {}, "Question"), question, el("label", {}, "Reply starts with"), prefill, ask);
    var examples = el("div", { class: "live-examples" });
    var seen = el("div", { class: "live-tokens" });
    var status = el("p", { class: "live-status" }, "The models load when you come to this box: then pick an example or type a question.");
    var answers = el("div", { class: "live-answers" });
    root.append(form, examples, seen, status, answers);

    function showExamples(data) {
      if (examples.childElementCount) return;
      examples.append(el("span", {}, "Try: "));
      data.examples.forEach(function (ex) {
        var b = el("button", { type: "button", class: "live-example" }, ex.question + (ex.prefill ? "  [" + ex.prefill + " ...]" : ""));
        b.onclick = function () { question.value = ex.question; prefill.value = ex.prefill; form.requestSubmit(); };
        examples.append(b);
      });
    }

    function showTokens(tok, q) {
      seen.textContent = "";
      seen.append(el("span", {}, "The models read: "));
      q.split(" ").filter(Boolean).forEach(function (word) {
        var known = encode(tok, word)[0] !== tok.special.unk;
        seen.append(el("span", { class: known ? "live-token" : "live-token live-unknown", title: known ? "" : "not a word of the world: <|unk|>" }, word), " ");
      });
    }

    form.onsubmit = function (event) {
      event.preventDefault();
      root.dataset.state = "running";
      status.textContent = "Loading the models...";
      loadModels().then(function (loaded) {
        var data = loaded.data, tok = data.tokenizer, q = normalise(question.value), pre = normalise(prefill.value);
        showExamples(data);
        showTokens(tok, q);
        answers.textContent = "";
        loaded.models.forEach(function (model) {
          var card = el("div", { class: "live-card" });
          card.append(el("div", { class: "live-label" }, model.label));
          card.append(el("div", { class: "live-answer", "data-model": model.name }, greedyReply(model, tok, q, pre, data.max_new_tokens)));
          answers.append(card);
        });
        status.textContent = "Greedy replies (at most " + data.max_new_tokens + " words) of the models of seed " + data.seed +
          ", computed in your browser.";
        root.dataset.state = "done";
      }).catch(function (err) {
        status.textContent = "The live models could not run: " + err.message;
        root.dataset.state = "error";
      });
    };
    // Load when the reader comes to the widget, so example questions are there before the first one is typed.
    function prepare() { loadModels().then(function (loaded) { showExamples(loaded.data); }, function () {}); }
    root.addEventListener("pointerenter", prepare, { once: true });
    root.addEventListener("focusin", prepare, { once: true });
  }

  function start() { document.querySelectorAll(".live-models").forEach(build); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();

  window.safetygapLive = { normalise: normalise, greedyReply: greedyReply, loadModels: loadModels };
})();
