"""Input validation at the package boundary.

Every public entry point (learners' ``fit``/``effect``, metrics, loaders) calls these helpers, so
bad input fails fast with a :class:`ValueError` that names the problem: NaN or infinite values,
lengths that disagree, a treatment that is not binary, an arm with too few units, propensities
outside the open interval (0, 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd

ArrayLike = Any  # numpy array, pandas object or nested sequence


def as_1d(values: ArrayLike, name: str, *, dtype: type = float) -> np.ndarray:
    """Return ``values`` as a finite 1-d array, raising ``ValueError`` naming ``name``."""
    if values is None:
        raise ValueError(f"{name} is required, got None")
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    try:
        arr = arr.astype(dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from exc
    _check_finite(arr, name)
    return arr


def as_2d(values: ArrayLike, name: str = "X") -> np.ndarray:
    """Return ``values`` as a finite float 2-d array (a 1-d input becomes one column)."""
    if values is None:
        raise ValueError(f"{name} is required, got None")
    if isinstance(values, pd.DataFrame):
        non_numeric = [c for c in values.columns if not pd.api.types.is_numeric_dtype(values[c])]
        if non_numeric:
            raise ValueError(
                f"{name} has non-numeric columns {non_numeric[:5]}; encode them before fitting"
            )
    arr = np.asarray(values)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be two-dimensional (n, d), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} has no rows")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has no columns")
    try:
        arr = arr.astype(float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from exc
    _check_finite(arr, name)
    return arr


def _check_finite(arr: np.ndarray, name: str) -> None:
    if np.issubdtype(arr.dtype, np.floating):
        n_nan = int(np.isnan(arr).sum())
        if n_nan:
            raise ValueError(f"{name} contains {n_nan} NaN value(s)")
        n_inf = int(np.isinf(arr).sum())
        if n_inf:
            raise ValueError(f"{name} contains {n_inf} infinite value(s)")


def check_treatment(T: ArrayLike, name: str = "T") -> np.ndarray:
    """Return a binary treatment as an int array in {0, 1}."""
    t = as_1d(T, name)
    values = np.unique(t)
    if not np.all(np.isin(values, (0.0, 1.0))):
        shown = ", ".join(f"{v:g}" for v in values[:6])
        raise ValueError(f"{name} must be binary with values in {{0, 1}}, got values {{{shown}}}")
    return t.astype(int)


def check_same_length(**arrays: np.ndarray | Sequence | None) -> int:
    """Check that all non-None arguments have the same first dimension; return it."""
    lengths = {k: len(v) for k, v in arrays.items() if v is not None}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"{k} has {n}" for k, n in lengths.items())
        raise ValueError(f"inputs have different numbers of rows: {desc}")
    return next(iter(lengths.values()))


def check_arms(T: np.ndarray, min_per_arm: int = 2) -> None:
    """Require at least ``min_per_arm`` units in each treatment arm."""
    n1 = int(T.sum())
    n0 = int(len(T) - n1)
    for arm, n in (("treated (T=1)", n1), ("control (T=0)", n0)):
        if n < min_per_arm:
            raise ValueError(
                f"the {arm} arm has {n} unit(s); at least {min_per_arm} are needed in each arm"
            )


def check_fit_inputs(
    Y: ArrayLike, T: ArrayLike, X: ArrayLike, *, min_per_arm: int = 2
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate the ``fit(Y, T, X=X)`` triple: finite, same length, binary T, both arms present."""
    y = as_1d(Y, "Y")
    t = check_treatment(T)
    x = as_2d(X, "X")
    check_same_length(Y=y, T=t, X=x)
    check_arms(t, min_per_arm)
    return y, t, x


def check_propensity(e: ArrayLike, name: str = "propensity") -> np.ndarray:
    """Require propensities strictly inside (0, 1)."""
    p = as_1d(e, name)
    bad = (p <= 0) | (p >= 1)
    if bad.any():
        raise ValueError(
            f"{name} must lie strictly in (0, 1); {int(bad.sum())} value(s) outside "
            f"(min {p.min():.3g}, max {p.max():.3g}); clip them or check the model"
        )
    return p


def check_features(X: ArrayLike, n_features: int, name: str = "X") -> np.ndarray:
    """Validate inference-time covariates against the width seen in ``fit``."""
    x = as_2d(X, name)
    if x.shape[1] != n_features:
        raise ValueError(f"{name} has {x.shape[1]} columns; the model was fitted on {n_features}")
    return x


def check_int(value: Any, name: str, low: int | None = None, high: int | None = None) -> int:
    """An integer parameter (``bool`` rejected, NumPy integers accepted) within ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        if high is None:
            bound = f">= {low}"
        elif low is None:
            bound = f"<= {high}"
        else:
            bound = f"in [{low}, {high}]"
        raise ValueError(f"{name} must be an integer {bound}, got {value}")
    return value


def check_number(
    value: Any,
    name: str,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A real-valued parameter (``bool`` and NaN rejected) within its interval, as a float.

    The bounds are closed unless ``low_open`` / ``high_open``: ``check_number(p, "p", 0, 1,
    high_open=True)`` accepts ``[0, 1)``. The error names the parameter and the interval.
    """
    ok = isinstance(value, Real) and not isinstance(value, bool) and not np.isnan(value)
    if ok:
        v = float(value)
        ok = (low is None or (v > low if low_open else v >= low)) and (
            high is None or (v < high if high_open else v <= high)
        )
    if not ok:
        lo = "(-inf" if low is None else f"{'(' if low_open else '['}{low:g}"
        hi = "inf)" if high is None else f"{high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be a number in {lo}, {hi}, got {value!r}")
    return float(value)
