"""What every chapter reports with: summaries, paired comparisons, one verdict, one number format.

- :func:`summarise` -- mean and standard error over replicates, per learner (or any grouping);
- :func:`paired_difference` -- the mean and standard error of a difference between two learners
  matched replicate by replicate;
- :func:`within_two_se` and :func:`verdict` -- the one rule (a difference counts when it exceeds
  two standard errors) and the one sentence that states it, with the words chosen by arguments;
- :func:`pm` and :func:`ci` -- the number formats: ``mean ± se`` and ``point [lower, upper]``;
- :func:`metric_table` -- a results table of ``mean ± se`` strings from a :func:`summarise` frame;
- :class:`Md`, :func:`glue_all` and :func:`glue_figure` -- glue a chapter's named numbers,
  sentences and figures for the book's prose (myst-nb).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "Md",
    "ci",
    "glue_all",
    "glue_figure",
    "mean_se",
    "metric_table",
    "paired_difference",
    "pm",
    "summarise",
    "verdict",
    "within_two_se",
]


def summarise(
    df: pd.DataFrame, value_cols: Sequence[str], by: Sequence[str] | str = "learner"
) -> pd.DataFrame:
    """Mean and standard error of ``value_cols`` grouped ``by``: columns ``<col>_mean``, ``<col>_se``.

    The standard error is the sample standard deviation over replicates divided by sqrt(R).
    """
    by = [by] if isinstance(by, str) else list(by)
    g = df.groupby(by, sort=False)[list(value_cols)]
    mean = g.mean().add_suffix("_mean")
    se = (g.std(ddof=1) / np.sqrt(g.count())).add_suffix("_se")
    out = pd.concat([mean, se], axis=1)
    cols = [c for v in value_cols for c in (f"{v}_mean", f"{v}_se")]
    out = out[cols]
    out.insert(0, "replicates", g.count().iloc[:, 0].to_numpy())
    return out.reset_index()


def mean_se(values: pd.Series | np.ndarray) -> tuple[float, float]:
    """Mean and standard error (``s.d. / sqrt(n)``, ``ddof = 1``) of ``values``, e.g. one value
    per replicate; the standard error is NaN with one value."""
    v = np.asarray(values, dtype=float)
    se = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")
    return float(v.mean()), se


def paired_difference(
    df: pd.DataFrame, a: str, b: str, metric: str, *, by: str = "replicate",
    column: str = "learner",
) -> tuple[float, float]:
    """Mean and standard error over replicates of the paired difference ``a - b`` in ``metric``.

    ``df`` is a tidy table (one row per replicate and learner); rows are matched on ``by``, so
    two learners fitted on the same replicates are compared replicate by replicate, which
    removes the variation the replicates share. The standard error is NaN with one replicate.
    """
    for name in (a, b):
        if name not in set(df[column]):
            raise ValueError(f"{column} {name!r} is not in the table")
    wide = df.pivot_table(index=by, columns=column, values=metric)
    diff = (wide[a] - wide[b]).dropna()
    if diff.empty:
        raise ValueError(f"{a!r} and {b!r} share no {by}")
    return mean_se(diff)


def within_two_se(diff: float, se: float) -> bool:
    """Whether a difference is within two standard errors of zero (False without a s.e.)."""
    return bool(np.isfinite(se)) and abs(diff) <= 2 * se


def verdict(
    diff: float,
    se: float,
    *,
    higher: str = "higher than",
    lower: str = "lower than",
    within: str = "within two standard errors of",
    above: str | None = None,
    below: str | None = None,
    subject: str = "",
    versus: tuple[float, float] | None = None,
    digits: int = 3,
) -> str:
    """One sentence judging a difference ``diff`` (with standard error ``se``) against zero.

    The word is ``higher`` when ``diff > 2 se``, ``lower`` when ``diff < -2 se`` and ``within``
    otherwise. Without a standard error (one replicate, ``se`` NaN) nothing is judged and the
    word only gives the direction: ``above`` when ``diff >= 0``, ``below`` otherwise (by default
    the ``higher`` and ``lower`` words). The words may use the fields ``{direction}`` (the
    unjudged word of the difference's sign), ``{diff}`` (signed), ``{size}`` (absolute) and
    ``{se}``, formatted with ``digits`` decimals. ``subject`` follows the word; ``versus=(a, b)``
    appends ``(a vs b; paired difference d ± se)``, or ``(a vs b, one replicate)``.

    >>> verdict(-0.5, 0.1, subject="that of TARNet", versus=(1.0, 1.5))
    'lower than that of TARNet (1.000 vs 1.500; paired difference -0.500 ± 0.100)'
    """
    up = higher if above is None else above
    down = lower if below is None else below
    direction = down if diff < 0 else up
    judged = bool(np.isfinite(se))
    if not judged:
        word = direction
    elif diff > 2 * se:
        word = higher
    elif diff < -2 * se:
        word = lower
    else:
        word = within
    d = digits
    text = word.format(
        direction=direction, diff=f"{diff:+.{d}f}", size=f"{abs(diff):.{d}f}", se=f"{se:.{d}f}"
    )
    if subject:
        text += f" {subject}"
    if versus is not None:
        tail = f"; paired difference {diff:+.{d}f} ± {se:.{d}f}" if judged else ", one replicate"
        text += f" ({versus[0]:.{d}f} vs {versus[1]:.{d}f}{tail})"
    return text


def _decimals(mean: float, se: float) -> int:
    """Decimals that show two significant digits of ``se`` (three of ``mean`` without one)."""
    ref, sig = (se, 2) if np.isfinite(se) and se > 0 else (abs(mean), 3)
    if ref == 0:
        return sig
    return int(min(max(sig - 1 - math.floor(math.log10(ref)), 0), 8))


def pm(
    mean: float, se: float = float("nan"), digits: int | None = 3, *, nbsp: bool = False,
    missing: str = "–",
) -> str:
    """``mean ± se`` as text; ``mean`` alone when ``se`` is not finite; ``missing`` for no mean.

    ``digits`` decimals for both numbers; ``None`` chooses them from the numbers: two
    significant digits of the standard error (three of the mean when there is no s.e.).
    ``nbsp`` joins with non-breaking spaces, so a table cell does not wrap inside the number.

    >>> pm(0.12345, 0.0321)
    '0.123 ± 0.032'
    >>> pm(12.345, 0.51, None)
    '12.35 ± 0.51'
    """
    if not np.isfinite(mean):
        return missing
    d = _decimals(mean, se) if digits is None else digits
    if not np.isfinite(se):
        return f"{mean:.{d}f}"
    sep = "\u00a0±\u00a0" if nbsp else " ± "
    return f"{mean:.{d}f}{sep}{se:.{d}f}"


def ci(point: float, lower: float, upper: float, digits: int = 2) -> str:
    """A point estimate with its interval: ``0.84 [0.80, 0.88]``."""
    return f"{point:.{digits}f} [{lower:.{digits}f}, {upper:.{digits}f}]"


def metric_table(
    summary: pd.DataFrame,
    columns: Mapping[str, str],
    *,
    index: Sequence[Any] | pd.Index | None = None,
    digits: int | None = 3,
    nbsp: bool = False,
) -> pd.DataFrame:
    """A results table: one ``mean ± se`` column per metric of a :func:`summarise` frame.

    ``columns`` maps a metric (``summary`` has ``<metric>_mean`` and ``<metric>_se``) to its
    header, in the table's order; ``index`` labels the rows (default: ``summary``'s index).
    """
    data = {
        header: [pm(m, s, digits, nbsp=nbsp)
                 for m, s in zip(summary[f"{metric}_mean"], summary[f"{metric}_se"], strict=True)]
        for metric, header in columns.items()
    }
    return pd.DataFrame(data, index=summary.index if index is None else index)


class Md(str):
    """Text to be glued as Markdown (a sentence with emphasis, code, or a fenced block)."""


def _displayable(value: Any) -> Any:
    if isinstance(value, Md):
        from IPython.display import Markdown

        return Markdown(str(value))
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def glue_all(values: Mapping[str, Any]) -> None:
    """Glue every named value for the prose (myst-nb ``glue`` without display).

    Numbers are glued as plain Python numbers (so ``{glue:text}`name:.2f``` formats them), an
    :class:`Md` as Markdown (``{glue:md}``), anything else (text, tables) as it is.
    """
    from myst_nb import glue

    for name, value in values.items():
        glue(name, _displayable(value), display=False)


def glue_figure(name: str, fig: Any, file: str | None = None, *, alt: str | None = None) -> None:
    """Save ``fig`` as ``file`` (:func:`ehrcausal.plots.save_figure`), glue it, and close it.

    Beside the figure, ``<name>__figure`` is glued: its alt text (``alt``, else
    :func:`ehrcausal.plots.describe_figure`) and the names of the SVG and PNG files, from which
    the runner writes the figure's alt text and lists its files on the reproducibility page.
    ``file`` defaults to ``name``.
    """
    import matplotlib.pyplot as plt
    from myst_nb import glue

    from ..plots import describe_figure, figure_files, save_figure

    file = name if file is None else file
    save_figure(fig, file)
    companion = {"alt": alt if alt is not None else describe_figure(fig),
                 "files": figure_files(file)}
    glue(name, fig, display=False)
    glue(f"{name}__figure", companion, display=False)
    plt.close(fig)
