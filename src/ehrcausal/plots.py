"""One figure style for the whole book (seaborn), and saving figures beside the chapter."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
import seaborn as sns

PALETTE = "colorblind"
FIG_ENV = "EHRCAUSAL_FIGURES"


def set_style(context: str = "notebook") -> None:
    """Apply the book's style: white grid, colour-blind palette, readable sizes, SVG-friendly."""
    sns.set_theme(context=context, style="whitegrid", palette=PALETTE)
    mpl.rcParams.update(
        {
            "figure.dpi": 110,
            "savefig.dpi": 150,
            "savefig.bbox": "tight",
            "axes.titleweight": "bold",
            "axes.spines.top": False,
            "axes.spines.right": False,
            "svg.hashsalt": "ehrcausal",  # deterministic SVG ids
            "legend.frameon": False,
        }
    )


def learner_palette(names: list[str]) -> dict[str, tuple[float, float, float]]:
    """A stable colour per learner name, so a learner has the same colour in every figure."""
    colors = sns.color_palette(PALETTE, n_colors=max(len(names), 1))
    return dict(zip(names, colors, strict=False))


def save_figure(fig: plt.Figure, name: str, folder: str | os.PathLike | None = None) -> list[Path]:
    """Save ``fig`` as SVG and PNG into ``folder`` (default ``$EHRCAUSAL_FIGURES``).

    Returns the written paths; writes nothing when no folder is configured (e.g. under nbval).
    """
    target = folder if folder is not None else os.environ.get(FIG_ENV)
    if not target:
        return []
    out = Path(target)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.svg", out / f"{name}.png"]
    for p in paths:
        fig.savefig(p, metadata={"Date": None} if p.suffix == ".svg" else None)
    return paths
