"""The configs of the lab's stages. Configs nest, so a stage's config (and its artifact key) covers its history."""

from __future__ import annotations

from dataclasses import dataclass

from safetygap.core.models import ModelConfig
from safetygap.core.training import TrainConfig
from safetygap.world.world import WorldConfig

@dataclass(frozen=True)
class BaseConfig:
    """Pretraining: the world, the model shape, the optimiser, and whether hazardous documents are in."""

    world: WorldConfig = WorldConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig(steps=1000, lr=3e-3, batch_size=64, warmup=50, weight_decay=0.1)
    hazardous_documents: bool = True
    seed: int = 0


@dataclass(frozen=True)
class SafetyConfig:
    """Safety SFT on top of a base model; ``refusal_share`` of the data are refusals.

    With ``freeze_embeddings`` (the default) the token embeddings, tied to the
    output layer, are left as pretraining made them. Safety training then has to
    act on what the network computes about a product (it knows which products
    are poisons) rather than on each name's embedding, and its refusals carry
    over to hazardous products it never saw refused.
    """

    base: BaseConfig = BaseConfig()
    train: TrainConfig = TrainConfig(steps=300, lr=7e-4, batch_size=32, warmup=10)
    refusal_share: float = 0.35
    freeze_embeddings: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.refusal_share < 1:
            raise ValueError(f"SafetyConfig.refusal_share={self.refusal_share!r}: must be in (0, 1)")
