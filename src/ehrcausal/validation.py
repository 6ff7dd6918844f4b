"""Input validation at the package boundary.

Every public entry point (learners' ``fit``/``effect``, metrics, loaders) calls these helpers, so
bad input fails fast with a :class:`ValueError` that names the problem: NaN or infinite values,
lengths that disagree, a treatment that is not binary, an arm with too few units, propensities
outside the open interval (0, 1), covariate columns that differ from the ones seen in ``fit``,
integer parameters given as floats, strings or booleans.

One diagnostic warns instead of raising: :func:`warn_overlap` emits an :class:`OverlapWarning`
when estimated propensities leave ``[0.01, 0.99]``, where the arms barely overlap and inverse
weights exceed 100.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd

ArrayLike = Any  # numpy array, pandas object or nested sequence


def _asarray(values: ArrayLike, name: str) -> np.ndarray:
    """``np.asarray(values)``; a ragged, unconvertible or complex input is a ValueError naming it."""
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a rectangular numeric array: {exc}") from None
    if np.iscomplexobj(arr):
        raise ValueError(f"{name} must be real-valued, got complex values")
    return arr


def as_1d(values: ArrayLike, name: str, *, dtype: type = float) -> np.ndarray:
    """Return ``values`` as a finite 1-d array, raising ``ValueError`` naming ``name``."""
    if values is None:
        raise ValueError(f"{name} is required, got None")
    arr = _asarray(values, name)
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
    arr = _asarray(values, name)
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


def check_arms(T: np.ndarray, min_per_arm: int = 2, reason: str | None = None) -> None:
    """Require at least ``min_per_arm`` units in each treatment arm.

    ``reason`` (e.g. ``"cv = 5 cross-fitting folds stratified by treatment"``) is appended to
    the error, so that a minimum set by a parameter names it.
    """
    n1 = int(T.sum())
    n0 = int(len(T) - n1)
    why = f" ({reason})" if reason else ""
    for arm, n in (("treated (T=1)", n1), ("control (T=0)", n0)):
        if n < min_per_arm:
            raise ValueError(
                f"the {arm} arm has {n} unit(s); at least {min_per_arm} are needed in each "
                f"arm{why}"
            )


def check_fit_inputs(
    Y: ArrayLike, T: ArrayLike, X: ArrayLike, *, min_per_arm: int = 2, reason: str | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate the ``fit(Y, T, X=X)`` triple: finite, same length, binary T, both arms present.

    Each arm needs ``min_per_arm`` units (``reason`` says why, see :func:`check_arms`).
    """
    y = as_1d(Y, "Y")
    t = check_treatment(T)
    x = as_2d(X, "X")
    check_same_length(Y=y, T=t, X=x)
    check_arms(t, min_per_arm, reason)
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


def feature_names(X: ArrayLike) -> np.ndarray | None:
    """The column names of a DataFrame ``X`` as an object array of strings; None otherwise.

    Learners store them as ``feature_names_in_`` when fitted on a DataFrame (scikit-learn's
    convention) and :func:`check_feature_names` compares them at inference.
    """
    columns = getattr(X, "columns", None)
    if columns is None:
        return None
    return np.asarray([str(c) for c in columns], dtype=object)


def _shown(names: Sequence[str], limit: int = 6) -> str:
    listed = ", ".join(repr(n) for n in names[:limit])
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return f"[{listed}{more}]"


def check_feature_names(X: ArrayLike, fitted: Sequence[str] | None, name: str = "X") -> None:
    """Require the columns of a DataFrame ``X`` to be ``fitted``, by name and in order.

    As scikit-learn: a learner fitted on a DataFrame records its column names; a DataFrame given
    later must have the same names in the same order (a renamed, missing, extra or reordered
    column would silently feed the wrong values to the model). A plain array, or a learner fitted
    on one (``fitted`` None), is not checked. The ``ValueError`` names the unexpected, missing or
    reordered columns.
    """
    if fitted is None:
        return
    given = feature_names(X)
    if given is None:
        return
    given_l, fitted_l = [str(c) for c in given], [str(c) for c in fitted]
    if given_l == fitted_l:
        return
    seen, now = set(fitted_l), set(given_l)
    unexpected = [c for c in given_l if c not in seen]
    missing = [c for c in fitted_l if c not in now]
    problems = []
    if unexpected:
        problems.append(f"unexpected column(s) {_shown(unexpected)}")
    if missing:
        problems.append(f"missing column(s) {_shown(missing)}")
    if not problems:
        if sorted(given_l) == sorted(fitted_l):
            i = next(k for k, (a, b) in enumerate(zip(given_l, fitted_l, strict=True)) if a != b)
            problems.append(
                f"the columns are reordered (position {i} holds {given_l[i]!r}, fit had "
                f"{fitted_l[i]!r})"
            )
        else:
            problems.append("columns are repeated a different number of times")
    raise ValueError(
        f"{name} does not have the columns the model was fitted on: {'; '.join(problems)}; "
        f"expected {len(fitted_l)} column(s) {_shown(fitted_l)} in this order"
    )


def check_features(
    X: ArrayLike,
    n_features: int,
    name: str = "X",
    *,
    feature_names_in: Sequence[str] | None = None,
) -> np.ndarray:
    """Validate inference-time covariates against what ``fit`` saw: width and column names.

    ``feature_names_in`` (a learner's ``feature_names_in_``) is checked by
    :func:`check_feature_names` when ``X`` is a DataFrame.
    """
    check_feature_names(X, feature_names_in, name)
    x = as_2d(X, name)
    if x.shape[1] != n_features:
        raise ValueError(f"{name} has {x.shape[1]} columns; the model was fitted on {n_features}")
    return x


def check_float32_range(x: np.ndarray, name: str = "X", *, why: str = "") -> np.ndarray:
    """Require finite ``x`` within float32's range (``|x| <= 3.4e38``); return it unchanged.

    For models that compute in float32 (scikit-learn's trees cast their input), so that a value
    beyond the range is a ``ValueError`` naming ``name`` instead of an error from inside the
    library. ``why`` says which computation needs it.
    """
    limit = float(np.finfo(np.float32).max)
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak > limit:
        because = f" ({why})" if why else ""
        raise ValueError(
            f"{name} has values up to {peak:.3g} in absolute value, beyond the float32 range "
            f"(about {limit:.3g}){because}; rescale {name}"
        )
    return x


class OverlapWarning(UserWarning):
    """Estimated propensities near 0 or 1: the treatment arms barely overlap for some units."""


#: estimated propensities outside this closed interval count as lacking overlap
OVERLAP_BOUNDS: tuple[float, float] = (0.01, 0.99)


def warn_overlap(
    e: ArrayLike,
    name: str,
    *,
    bounds: tuple[float, float] = OVERLAP_BOUNDS,
    stacklevel: int = 1,
) -> float:
    r"""Warn when estimated propensities leave ``bounds``; return the share that does.

    The share :math:`\frac{1}{n} \#\{i : \hat e(x_i) \notin [l, u]\}` with
    :math:`[l, u] =` ``[0.01, 0.99]`` by default. Outside it an inverse weight
    :math:`1/\hat e` or :math:`1/(1 - \hat e)` exceeds 100: the positivity (overlap)
    assumption of every propensity-based estimator is close to failing there and the effect
    rests on extrapolation (Crump, Hotz, Imbens & Mitnik 2009, "Dealing with limited overlap in
    estimation of average treatment effects", Biometrika 96). A positive share gives one
    :class:`OverlapWarning` naming ``name`` (the learner or step), the share and the count.
    ``e`` are the estimates before any clipping. ``stacklevel`` counts from the caller as
    :func:`warnings.warn` does (1: the line that calls this function; larger values point the
    warning at the user's ``fit`` call).
    """
    p = as_1d(e, "propensity")
    low, high = bounds
    outside = int(np.sum((p < low) | (p > high)))
    share = outside / len(p)
    if outside:
        warnings.warn(
            f"{name}: {share:.1%} of units ({outside} of {len(p)}) have an estimated propensity "
            f"outside [{low:g}, {high:g}]; the treatment arms barely overlap there and their "
            "effects rest on extrapolation",
            OverlapWarning,
            stacklevel=stacklevel + 1,
        )
    return share


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
    high_open=True)`` accepts ``[0, 1)``. A missing bound is an open end at infinity, so
    ``check_number(lr, "lr", 0, low_open=True)`` accepts ``(0, inf)`` and refuses ``inf``. The
    error names the parameter and the interval.
    """
    ok = isinstance(value, Real) and not isinstance(value, bool) and not math.isnan(value)
    if ok:
        v = float(value)
        # a missing bound is an open end at infinity: -inf and inf themselves are refused
        ok = (v > -np.inf if low is None else (v > low if low_open else v >= low)) and (
            v < np.inf if high is None else (v < high if high_open else v <= high)
        )
    if not ok:
        lo = "(-inf" if low is None else f"{'(' if low_open else '['}{low:g}"
        hi = "inf)" if high is None else f"{high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be a number in {lo}, {hi}, got {value!r}")
    return float(value)
