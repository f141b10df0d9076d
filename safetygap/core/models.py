"""The model zoo: small causal language models built from transformers configs.

Models start from random weights (nothing is downloaded) and are ordinary
``transformers`` models, so ``generate``, ``save_pretrained`` and peft work on
them unchanged. Llama-style is the default; GPT-2 style gives a second
architecture for the scale chapter.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, PreTrainedModel, PreTrainedTokenizerFast

ARCHITECTURES = ("llama", "gpt2")


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a model. ``hidden`` is the residual-stream width d_model."""

    arch: str = "llama"
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    mlp_ratio: int = 4
    max_len: int = 64

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"ModelConfig.arch={self.arch!r}: valid architectures are {ARCHITECTURES}")
        for name in ("hidden", "layers", "heads", "mlp_ratio", "max_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"ModelConfig.{name}={getattr(self, name)!r}: must be >= 1")
        if self.hidden % self.heads:
            raise ValueError(f"ModelConfig.hidden={self.hidden} must be divisible by heads={self.heads}")


# The zoo of chapters 3 and 5 (the scale of the problem, capability thresholds): widths and depths around the lab's default ``tiny``, in both
# architectures. Parameter counts with the book world's 307-token vocabulary (tied embeddings counted once).
ZOO: dict[str, ModelConfig] = {
    "micro": ModelConfig(hidden=32, layers=2, heads=2),  # 43K
    "mini": ModelConfig(hidden=48, layers=2, heads=4),  # 89K: between micro and tiny (chapter 5's middle size)
    "tiny": ModelConfig(hidden=64, layers=2, heads=4),  # 151K: every other chapter's model
    "tiny-deep": ModelConfig(hidden=64, layers=4, heads=4),  # 282K: tiny's width, twice its depth
    "medium": ModelConfig(hidden=96, layers=4, heads=4),  # 620K
    "small": ModelConfig(hidden=128, layers=4, heads=4),  # 1.1M
    "micro-gpt2": ModelConfig(arch="gpt2", hidden=32, layers=2, heads=2),  # 37K
    "tiny-gpt2": ModelConfig(arch="gpt2", hidden=64, layers=2, heads=4),  # 124K
}


def zoo_model(name: str) -> ModelConfig:
    """Look a model up in :data:`ZOO` by name."""
    if name not in ZOO:
        raise ValueError(f"model {name!r} is not in the zoo: valid names are {sorted(ZOO)}")
    return ZOO[name]


def pick_device() -> torch.device:
    """The GPU when there is one, else the CPU: the book runs unchanged on either."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build_model(config: ModelConfig, tokenizer: PreTrainedTokenizerFast, seed: int) -> PreTrainedModel:
    """A randomly initialised causal LM for ``tokenizer``'s vocabulary and special tokens; ``seed`` fixes the init."""
    torch.manual_seed(seed)
    vocab_size = len(tokenizer)
    ids = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    if config.arch == "llama":
        hf_config = LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=config.hidden,
            intermediate_size=config.mlp_ratio * config.hidden,
            num_hidden_layers=config.layers,
            num_attention_heads=config.heads,
            num_key_value_heads=config.heads,
            max_position_embeddings=config.max_len,
            tie_word_embeddings=True,
            **ids,
        )
        model: PreTrainedModel = LlamaForCausalLM(hf_config)
    else:
        hf_config = GPT2Config(
            vocab_size=vocab_size,
            n_embd=config.hidden,
            n_layer=config.layers,
            n_head=config.heads,
            n_inner=config.mlp_ratio * config.hidden,
            n_positions=config.max_len,
            **ids,
        )
        model = GPT2LMHeadModel(hf_config)
    return model.to(pick_device())


def parameter_count(model: torch.nn.Module, trainable_only: bool = False) -> int:
    """Number of distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
