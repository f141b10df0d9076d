"""A real Hugging Face tokenizer for the world, with a chat template.

The tokenizer is word-level (the world's texts are space-separated words), so
each recipe slot is exactly one token. It is a ``PreTrainedTokenizerFast`` with
special tokens and a Jinja chat template, so ``apply_chat_template`` and
``generate`` work exactly as on any Hugging Face chat model. The template marks
the assistant's reply with ``{% generation %}``, which lets
``apply_chat_template(..., return_assistant_tokens_mask=True)`` tell us which
tokens to train on during supervised fine-tuning.
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from safetygap.world.corpus import all_texts
from safetygap.world.world import World

BOS, EOS, PAD, UNK = "<|bos|>", "<|end|>", "<|pad|>", "<|unk|>"
USER, ASSISTANT = "<|user|>", "<|assistant|>"
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS, USER, ASSISTANT)

# A conversation renders as: <|bos|> <|user|> question <|assistant|> answer <|end|>
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ ' <|user|> ' + message['content'] }}"
    "{% elif message['role'] == 'assistant' %}{{ ' <|assistant|> ' }}"
    "{% generation %}{{ message['content'] + ' <|end|>' }}{% endgeneration %}"
    "{% else %}{{ raise_exception('roles are user and assistant, got ' + message['role']) }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ ' <|assistant|>' }}{% endif %}"
)


def vocabulary(world: World) -> list[str]:
    """Special tokens, then every word any text of the world uses, sorted."""
    words = sorted({w for text in all_texts(world) for w in text.split()})
    return list(SPECIAL_TOKENS) + words


def build_tokenizer(world: World) -> PreTrainedTokenizerFast:
    vocab = {w: i for i, w in enumerate(vocabulary(world))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        additional_special_tokens=[USER, ASSISTANT],
        chat_template=CHAT_TEMPLATE,
        padding_side="left",  # decoder-only generation pads on the left
        model_max_length=128,
    )
    return tok


def load_tokenizer(path: Path) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast.from_pretrained(path)
