"""Chapter 2's exercises: the difference-of-means refusal direction and projecting it out (graded), and the
experiment whose results the answer of the LoRA-rank exercise quotes."""

from __future__ import annotations

import pandas as pd
import torch

from safetygap.attacks import finetuning
from safetygap.book import ch2_anatomy as ch2
from safetygap.book import ch2_reading, scales
from safetygap.core.training import TrainConfig


def refusal_direction(harmful: torch.Tensor, harmless: torch.Tensor) -> torch.Tensor:
    """The unit vector along mean(harmful) - mean(harmless); both are activations of shape (prompts, d)."""
    r = harmful.mean(dim=0) - harmless.mean(dim=0)
    return r / r.norm()


def project_out(h: torch.Tensor, r_hat: torch.Tensor) -> torch.Tensor:
    """``h`` (shape (..., d)) with its component along the unit vector ``r_hat`` removed: h - (h . r_hat) r_hat."""
    return h - (h @ r_hat).unsqueeze(-1) * r_hat


def lora_ranks(seed: int, scale: str = "book", ranks: tuple[int, ...] = (1, 2, 8)) -> pd.DataFrame:
    """Exercise ch2-ex-lora-rank: the chapter's ten-example LoRA attack curve at each rank (8 is the chapter's), scored
    against the seed's references: one row per (rank, checkpoint) with refusal, uplift and benign capability / safe."""
    refs = ch2_reading.reference_metrics((seed,), scale)
    train = TrainConfig(steps=max(ch2.CHECKPOINTS), lr=ch2.DEFAULT_LR["lora"], batch_size=ch2.BATCH_SIZE, schedule="constant")
    curves = []
    for rank in ranks:
        cfg = scales.attack_config(seed, scale, method="lora", lora_rank=rank, train=train)
        curve = pd.DataFrame(finetuning.attack_curve(cfg, ch2.CHECKPOINTS)).assign(seed=seed, rank=rank)
        curves.append(ch2_reading.scored(curve, refs)[["rank", "step", "refusal_sealed", "uplift", "benign_vs_safe"]])
    return pd.concat(curves, ignore_index=True)
