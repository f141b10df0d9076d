"""The word-level tokenizer and its chat template."""

from __future__ import annotations

from safetygap.world import corpus
from safetygap.world.tokenizer import ASSISTANT, build_tokenizer, load_tokenizer
from safetygap.core.training import IGNORE, encode_chat
from safetygap.world.world import WorldConfig, build_world

WORLD = build_world(WorldConfig())


def test_every_text_encodes_without_unknown_tokens():
    tok = build_tokenizer(WORLD)
    for text in corpus.all_texts(WORLD):
        assert tok.unk_token_id not in tok.encode(text, add_special_tokens=False), text


def test_save_and_load_round_trip(tmp_path):
    tok = build_tokenizer(WORLD)
    tok.save_pretrained(tmp_path)
    again = load_tokenizer(tmp_path)
    chat = corpus.recipe_requests(WORLD.hazardous("sealed"), "sealed")[0]
    assert again.apply_chat_template(chat.messages(), tokenize=False) == tok.apply_chat_template(chat.messages(), tokenize=False)
    assert again.get_vocab() == tok.get_vocab()


def test_chat_template_and_generation_prompt():
    tok = build_tokenizer(WORLD)
    chat = corpus.Chat("what is 2 plus 3 ?", "2 plus 3 is 5 .", "sum")
    prompt = tok.apply_chat_template(chat.messages(False), tokenize=False, add_generation_prompt=True)
    assert prompt == "<|bos|> <|user|> what is 2 plus 3 ? <|assistant|>"
    full = tok.apply_chat_template(chat.messages(), tokenize=False)
    assert full == prompt + " 2 plus 3 is 5 . <|end|>"


def test_sft_labels_cover_exactly_the_reply():
    tok = build_tokenizer(WORLD)
    chat = corpus.Chat("what is 2 plus 3 ?", "2 plus 3 is 5 .", "sum")
    ex = encode_chat(tok, chat)
    labelled = [t for t, label in zip(ex.input_ids, ex.labels) if label != IGNORE]
    assert tok.decode(labelled) == "2 plus 3 is 5 . <|end|>"
    assert tok.convert_ids_to_tokens(ex.input_ids[len(ex.input_ids) - len(labelled) - 1]) == ASSISTANT
