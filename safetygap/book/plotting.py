"""One plotting style for the whole book, and the colours and labels that name its models."""

from __future__ import annotations

import matplotlib.pyplot as plt
import seaborn as sns

# Each kind of model keeps its colour in every figure of the book.
MODEL_COLORS = {
    "base": "#7f7f7f",
    "oracle": "#2ca02c",
    "safe": "#1f77b4",
    "attacked": "#d62728",
    "defended": "#9467bd",
}


# How the book names each model of chapter 6 (the undefended safe model and the defenses' registry keys).
LABELS = {
    "undefended": "undefended (safe)", "filtering": "filtering, every mention", "technical_filtering": "filtering, technical",
    "deep_alignment": "deeper alignment",
    "repnoise": "RepNoise", "circuit_breakers": "circuit breakers", "rmu": "RMU unlearning", "tar": "TAR",
    "gradient_routing": "gradient routing",
}  # fmt: skip


def use_book_style() -> None:
    """Seaborn's white grid, readable fonts, and figures sized for the book's column."""
    sns.set_theme(style="whitegrid", context="notebook", palette="colorblind")
    plt.rcParams.update({"figure.figsize": (7.0, 3.6), "figure.dpi": 110, "savefig.bbox": "tight", "axes.titleweight": "bold"})


def model_palette(names) -> dict[str, str]:
    """Colours for the model kinds in ``names`` (unknown kinds get seaborn's next colours)."""
    extra = iter(sns.color_palette("colorblind", 10).as_hex())
    return {n: MODEL_COLORS.get(n) or next(extra) for n in names}
