"""Compute accounting: FLOPs and wall time of every training stage.

The estimate is the usual one for transformers (Kaplan et al. 2020): a forward
pass costs about 2 FLOPs per parameter per token; the backward pass about 2 for
the activation gradients plus 2 per *trainable* parameter for the weight
gradients. Full fine-tuning is therefore ~6 x params x tokens, and LoRA, which
trains few weights but still back-propagates through the whole network, ~4 x.
Tokens are the non-padding tokens actually processed.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def training_flops(params: int, trainable: int, tokens: int) -> float:
    """FLOPs to train on ``tokens`` tokens: forward 2N, backward 2N + 2N_trainable."""
    return float((4 * params + 2 * trainable) * tokens)


def forward_flops(params: int, tokens: int) -> float:
    return float(2 * params * tokens)


@dataclass
class ComputeReport:
    """What one training run cost, and its loss curve (one value per step)."""

    stage: str
    steps: int
    examples: int
    tokens: int
    params: int
    trainable_params: int
    seconds: float
    losses: list[float] = field(default_factory=list)
    forward_tokens: int = 0  # tokens a frozen reference model read, forward only (defenses that compare with it)

    @property
    def flops(self) -> float:
        """Training FLOPs of the trained tokens plus forward FLOPs of the frozen model's tokens."""
        return training_flops(self.params, self.trainable_params, self.tokens) + forward_flops(self.params, self.forward_tokens)

    def to_dict(self) -> dict:
        return {
            "stage": self.stage,
            "steps": self.steps,
            "examples": self.examples,
            "tokens": self.tokens,
            "params": self.params,
            "trainable_params": self.trainable_params,
            "seconds": self.seconds,
            "flops": self.flops,
            "losses": self.losses,
            "forward_tokens": self.forward_tokens,
        }

    @classmethod
    def from_dict(cls, d: dict) -> ComputeReport:
        return cls(**{k: v for k, v in d.items() if k != "flops"})
