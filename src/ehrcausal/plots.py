"""One figure style for the whole book (seaborn), the figure parts the chapters share, saving.

- :func:`set_style` -- the book's style; :func:`learner_palette` -- a stable colour per learner;
- :func:`mean_se_lines` -- one line with error bars (mean ± s.e.) per learner across a knob;
- :func:`legend_right` -- the legend beside the last panel, outside the axes;
- :func:`save_figure` -- SVG and PNG copies into ``$EHRCAUSAL_FIGURES``;
- :func:`describe_figure` -- a text description of a figure's panels (its alt text), with
  :func:`plain_text` turning TeX labels into readable text.

The palette is seaborn's ``colorblind`` (Okabe-Ito-like): its colours stay distinct under the
common colour-vision deficiencies, and the figures also separate series by marker or line style
where they overlap.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
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


def legend_right(ax: plt.Axes) -> None:
    """Put ``ax``'s legend to its right, outside the axes (beside the last panel of a row)."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))


def mean_se_lines(
    ax: plt.Axes,
    summary: pd.DataFrame,
    x: str,
    metric: str,
    names: Sequence[str],
    *,
    labels: Mapping[str, str],
    palette: Mapping[str, object],
    styles: Mapping[str, str] | None = None,
    by: str = "learner",
) -> None:
    """One line per name with error bars: ``<metric>_mean`` ± ``<metric>_se`` across ``x``.

    ``summary`` is a table of means and standard errors (one row per name and ``x`` level, the
    name in column ``by``). A line is labelled ``labels[name]`` (the name itself if absent)
    and coloured ``palette[label]`` (grey if absent); ``styles`` gives line styles by name
    (solid otherwise). Names whose metric is never finite are skipped; a missing standard
    error (one replicate) draws no bar.
    """
    for name in names:
        rows = summary[summary[by] == name].sort_values(x)
        if not np.isfinite(rows[f"{metric}_mean"]).any():
            continue
        label = labels.get(name, name)
        style = {} if styles is None else {"ls": styles.get(name, "-")}
        ax.errorbar(rows[x], rows[f"{metric}_mean"], yerr=rows[f"{metric}_se"].fillna(0),
                    marker="o", capsize=3, color=palette.get(label, "grey"), label=label,
                    **style)


def figure_files(name: str) -> list[str]:
    """The file names :func:`save_figure` writes for ``name``: SVG, then PNG."""
    return [f"{name}.svg", f"{name}.png"]


_TEX_SYMBOLS = {
    "sqrt": "√", "epsilon": "ε", "varepsilon": "ε", "tau": "τ", "mu": "μ", "phi": "φ",
    "sigma": "σ", "gamma": "γ", "alpha": "α", "beta": "β", "Delta": "Δ", "hat": "estimated ", "mathrm": "",
    "mathbb": "", "pm": "±", "leq": "≤", "geq": "≥", "times": "×", "cdot": "·",
}


def plain_text(label: str) -> str:
    """A label with matplotlib's TeX (``$\\sqrt{\\epsilon_{PEHE}}$``) as readable text (``√ε PEHE``).

    Greek letters and common symbols become their characters; sub- and superscripts, braces
    and dollar signs are dropped, so a screen reader reads the words, not the markup.
    """
    text = re.sub(r"\\([A-Za-z]+)\s*", lambda m: _TEX_SYMBOLS.get(m[1], m[1]), label)
    text = re.sub(r"[_^]\{([^{}]*)\}", r" \1", text)
    text = re.sub(r"[_^](\w)", r" \1", text)
    text = text.replace("$", "").replace("{", "").replace("}", "")
    return " ".join(text.split())


def _axis_text(ax: plt.Axes) -> str:
    parts = []
    title = ax.get_title() or ax.get_title("left")
    parts.append(f"panel '{title}'" if title else "a panel")
    if ax.get_xlabel():
        parts.append(f"x: {ax.get_xlabel()}")
    if ax.get_ylabel():
        parts.append(f"y: {ax.get_ylabel()}")
    handles, labels = ax.get_legend_handles_labels()
    legend = ax.get_legend()
    if legend is not None and not labels:
        labels = [t.get_text() for t in legend.get_texts()]
    labels = [lb for lb in labels if lb and not lb.startswith("_")]
    if labels:
        parts.append("series: " + ", ".join(dict.fromkeys(labels)))
    return "; ".join(parts)


def describe_figure(fig: plt.Figure) -> str:
    """A one-paragraph text description of ``fig`` for its alt text.

    Names the figure's title, and per panel (axes with content) its title, axis labels and the
    series of its legend, e.g. ``"Figure with 2 panels: panel 'In sample' (x: learner; y:
    √PEHE); panel 'Out of sample' (...)."`` Deterministic: it reads only the figure's texts.
    """
    axes = [ax for ax in fig.get_axes() if ax.has_data() or ax.get_title()]
    suptitle = fig.get_suptitle()  # TeX in any label is made plain at the end
    head = f"Figure '{suptitle}'" if suptitle else "Figure"
    if not axes:
        return head + "."
    legends = [t.get_text() for lg in fig.legends for t in lg.get_texts()]
    text = f"{head} with {len(axes)} panel{'s' * (len(axes) > 1)}: "
    text += "; ".join(f"({_axis_text(ax)})" for ax in axes)
    if legends:
        text += "; series: " + ", ".join(dict.fromkeys(legends))
    return plain_text(text) + "."


def save_figure(fig: plt.Figure, name: str, folder: str | os.PathLike | None = None) -> list[Path]:
    """Save ``fig`` as SVG and PNG into ``folder`` (default ``$EHRCAUSAL_FIGURES``).

    Returns the written paths; writes nothing when no folder is configured (e.g. under nbval).
    """
    target = folder if folder is not None else os.environ.get(FIG_ENV)
    if not target:
        return []
    out = Path(target)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f for f in figure_files(name)]
    for p in paths:
        fig.savefig(p, metadata={"Date": None} if p.suffix == ".svg" else None)
    return paths
