"""Property-based tests (Hypothesis) of the public API: a correct answer or an error that names it.

Random shapes (0, 1 and a few rows; mismatched lengths), dtypes (int, float32, bool,
object/strings), NaN and infinities, ties, single-unit arms and reordered or renamed DataFrame
columns are thrown at the learners (through ``ehrcausal.learners.make``), the metrics, the
validation helpers, ``nuisance.dr_scores`` and the data loaders' parameter checks. Every call
must either

- return a correct answer: finite, of the right shape, with the invariances the mathematics
  gives (row order, strictly increasing transforms of a ranking score, a constant score ranks
  nothing, a power-of-two rescaling of the covariates), or
- raise a ``ValueError`` (``FileNotFoundError`` where documented) *raised by ehrcausal itself*
  whose message names the offending parameter; an exception that escapes from inside numpy,
  pandas, scikit-learn, EconML or torch fails the property, whatever its type.

The runs are derandomised (the same examples on every run, no example database) and sized so
the whole file takes well under a minute on one core.
"""

from __future__ import annotations

import linecache
import math
import re
import tempfile
from collections.abc import Callable, Sequence
from fractions import Fraction
from numbers import Number
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

import ehrcausal
from ehrcausal import metrics, validation
from ehrcausal.data import (
    IHDP_REALIZATIONS,
    load_ihdp,
    simulate_cardiac,
    simulate_respiratory,
    simulate_spine,
)
from ehrcausal.learners import make, spec
from ehrcausal.nuisance import dr_scores
from ehrcausal.text.notes import STYLES

PACKAGE = Path(ehrcausal.__file__).resolve().parent


def _settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One BLAS/OpenMP/torch thread: tiny fits are fastest, and timings do not depend on load."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------------------------------------
# the property: an answer, or an error raised by the package that names the parameter
# ---------------------------------------------------------------------------------------------


def _innermost(exc: BaseException) -> tuple[Path, int]:
    tb = exc.__traceback__
    assert tb is not None
    while tb.tb_next is not None:
        tb = tb.tb_next
    return Path(tb.tb_frame.f_code.co_filename).resolve(), tb.tb_lineno


def _names_one_of(message: str, names: Sequence[str]) -> bool:
    return any(
        re.search(rf"(?<![A-Za-z0-9_]){re.escape(n)}(?![A-Za-z0-9_])", message) for n in names
    )


def check_error(
    exc: BaseException, names: Sequence[str], types: tuple[type, ...] = (ValueError,)
) -> None:
    """``exc`` is one of ``types``, raised by ehrcausal's own code, naming one of ``names``."""
    path, line = _innermost(exc)
    where = f"{path}:{line}"
    # a `raise` statement of the package, not a call into compiled code (numpy's C functions
    # add no frame, so their errors show the package line that called them)
    statement = linecache.getline(str(path), line).lstrip()
    if not path.is_relative_to(PACKAGE) or not statement.startswith("raise"):
        raise AssertionError(
            f"{type(exc).__name__} escaped from inside a dependency ({where}: "
            f"{statement.strip()!r}): {exc}"
        ) from exc
    if not isinstance(exc, types):
        raise AssertionError(
            f"{type(exc).__name__} (expected one of {[t.__name__ for t in types]}) at {where}: "
            f"{exc}"
        ) from exc
    if not _names_one_of(str(exc), names):
        raise AssertionError(f"the message names none of {list(names)} ({where}): {exc}") from exc


def answer_or_error(
    call: Callable[[], Any], names: Sequence[str], types: tuple[type, ...] = (ValueError,)
) -> Any:
    """``call()``, or None after :func:`check_error` accepted the exception it raised."""
    try:
        return call()
    except Exception as exc:  # every exception is judged by check_error
        check_error(exc, names, types)
        return None


def expect_error(
    call: Callable[[], Any], names: Sequence[str], types: tuple[type, ...] = (ValueError,)
) -> BaseException:
    """The exception ``call()`` must raise (checked by :func:`check_error`)."""
    try:
        result = call()
    except Exception as exc:
        check_error(exc, names, types)
        return exc
    raise AssertionError(f"no error was raised; the call returned {result!r}")


def assert_finite(value: Any, shape: tuple[int, ...] | None = None) -> None:
    arr = np.asarray(value, dtype=float)
    if shape is not None:
        assert arr.shape == shape, f"shape {arr.shape}, expected {shape}"
    assert np.isfinite(arr).all(), f"non-finite result {value!r}"


# ---------------------------------------------------------------------------------------------
# input strategies
# ---------------------------------------------------------------------------------------------

DTYPES = ("float64", "float32", "int64", "bool")
#: float32-representable values, so casting between dtypes changes nothing but the type
SMALL = st.floats(-10, 10, width=32)


def cast(a: np.ndarray, dtype: str) -> np.ndarray:
    """``a`` as ``dtype``: integers rounded, booleans as ``a > 0``."""
    if dtype == "bool":
        return a > 0
    if dtype == "int64":
        return np.round(a).astype(np.int64)
    return a.astype(dtype)


def container(a: np.ndarray, kind: str, columns: Sequence[str] | None = None) -> Any:
    """``a`` as a numpy array, a (nested) list or a pandas object."""
    if kind == "list":
        return a.tolist()
    if kind == "pandas":
        if a.ndim == 2:
            cols = list(columns) if columns is not None else [f"x{j}" for j in range(a.shape[1])]
            return pd.DataFrame(a, columns=cols)
        return pd.Series(a)
    return a


@st.composite
def fit_data(draw: st.DrawFn, min_n: int = 0, max_n: int = 12) -> dict[str, Any]:
    """Random (Y, T, X) of one length: shapes, dtypes and containers vary; values are finite."""
    n = draw(st.integers(min_n, max_n))
    d = draw(st.integers(1, 3))
    t = draw(arrays(np.int64, n, elements=st.integers(0, 1)))
    x = draw(arrays(np.float64, (n, d), elements=SMALL))
    y = draw(arrays(np.float64, n, elements=SMALL))
    kind = draw(st.sampled_from(("numpy", "list", "pandas")))
    return {
        "t": t,
        "Y": container(cast(y, draw(st.sampled_from(DTYPES[:3]))), kind),
        "T": container(cast(t.astype(float), draw(st.sampled_from(DTYPES))), kind),
        "X": container(cast(x, draw(st.sampled_from(DTYPES))), kind),
    }


def balanced(n: int, seed: int, d: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A small data set with both arms well filled: T alternates, effect 1 + x0."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    T = np.arange(n) % 2
    Y = X[:, 0] + T * (1.0 + X[:, 0]) + 0.1 * rng.normal(size=n)
    return Y, T, X


SEEDS = st.one_of(
    st.integers(0, 2**32 - 1),
    st.integers(2**32, 2**70),
    st.integers(-(2**40), -1),
    st.sampled_from([1.5, 0.0, "0", True, False, float("nan"), [0]]),
)


def _valid_seed(seed: Any) -> bool:
    return isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**32


# ---------------------------------------------------------------------------------------------
# learners
# ---------------------------------------------------------------------------------------------

#: a fast configuration of each learner under test
LEARNERS: dict[str, dict[str, Any]] = {
    "ols": {},
    "t_learner": {"n_estimators": 3},
    "dr_learner": {"n_estimators": 3, "cv": 2},
    "tarnet": {
        "epochs": 2, "hidden": 4, "head_hidden": 4, "n_rep_layers": 1, "n_head_layers": 1,
        "device": "cpu",
    },
}
FIT_NAMES = ("Y", "T", "X")


#: tolerance of "the same effects": the torch networks compute in float32
RTOL, ATOL = 1e-4, 1e-6


def learner(name: str, **params: Any):
    return make(name, **{"random_state": 0, **LEARNERS[name], **params})


def check_predictions(est: Any, X: Any, n: int) -> np.ndarray:
    """effect/ate/predict_outcomes on X: finite, n rows, consistent, row by row."""
    tau = est.effect(X)
    assert_finite(tau, (n,))
    ate = est.ate(X)
    assert isinstance(ate, float) and math.isclose(ate, float(np.mean(tau)), rel_tol=1e-9,
                                                    abs_tol=1e-12)
    if est.models_outcomes:
        mu0, mu1 = est.predict_outcomes(X)
        assert_finite(mu0, (n,))
        assert_finite(mu1, (n,))
        np.testing.assert_allclose(mu1 - mu0, tau, rtol=RTOL, atol=ATOL)
    return tau


@pytest.mark.parametrize("name", LEARNERS)
@_settings(12)
@given(data=fit_data())
def test_learner_fit_on_random_inputs(name: str, data: dict[str, Any]) -> None:
    """Any shape/dtype/container: fitted and predicting finitely, or a ValueError naming Y, T or X.

    With at least four units in each arm the fit must succeed.
    """
    est = learner(name)
    fitted = answer_or_error(lambda: est.fit(data["Y"], data["T"], X=data["X"]), FIT_NAMES)
    t = data["t"]
    if fitted is None:
        assert min(t.sum(), len(t) - t.sum()) < 4, "fit refused data with 4+ units per arm"
        return
    X = np.asarray(data["X"], dtype=float)
    tau = check_predictions(fitted, data["X"], len(t))
    # one row at a time gives the same effects as all rows together
    np.testing.assert_allclose(fitted.effect(X[:1]), tau[:1], rtol=RTOL, atol=ATOL)


CORRUPTIONS = ("nan", "inf", "-inf", "string", "none", "nonbinary", "2d")


@pytest.mark.parametrize("name", LEARNERS)
@_settings(12)
@given(
    n=st.integers(8, 12),
    which=st.sampled_from(FIT_NAMES),
    how=st.sampled_from(CORRUPTIONS),
    pos=st.integers(0, 7),
    seed=st.integers(0, 3),
)
def test_learner_fit_rejects_bad_values(name, n, which, how, pos, seed) -> None:
    """One NaN, inf, string, None, non-binary treatment or extra dimension: a ValueError naming it."""
    Y, T, X = balanced(n, seed)
    data: dict[str, Any] = {"Y": Y, "T": T.astype(float), "X": X}
    arr = data[which]
    if how == "2d":
        bad: Any = np.stack([arr, arr], axis=-1) if which != "X" else arr[:, :, None]
    elif how == "nonbinary":
        assume(which == "T")
        bad = arr.copy()
        bad[pos] = 2.0
    else:
        value = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf, "string": "a", "none": None}[how]
        bad = arr.astype(object) if how in ("string", "none") else arr.copy()
        bad.flat[pos] = value
    data[which] = bad
    est = learner(name)
    expect_error(lambda: est.fit(data["Y"], data["T"], X=data["X"]), (which,))


@pytest.mark.parametrize("name", LEARNERS)
@_settings(8)
@given(n=st.integers(6, 10), which=st.sampled_from(FIT_NAMES), drop=st.integers(1, 3))
def test_learner_fit_rejects_mismatched_lengths(name, n, which, drop) -> None:
    Y, T, X = balanced(n, 0)
    data = {"Y": Y, "T": T, "X": X}
    data[which] = data[which][:-drop]
    est = learner(name)
    expect_error(lambda: est.fit(data["Y"], data["T"], X=data["X"]), (which,))


@pytest.mark.parametrize("name", LEARNERS)
@_settings(10)
@given(
    small=st.integers(0, 3),
    large=st.integers(2, 9),
    treated_small=st.booleans(),
    seed=st.integers(0, 5),
    cv=st.integers(2, 4),
)
def test_learner_small_arms(name, small, large, treated_small, seed, cv) -> None:
    """0 or 1 unit in an arm is a ValueError naming the arm; 2 or 3 fit or say why (e.g. the
    DR-learner's cv folds, stratified by treatment, need cv units per arm)."""
    rng = np.random.default_rng(seed)
    n = small + large
    T = np.r_[np.ones(small), np.zeros(large)] if treated_small else np.r_[
        np.zeros(small), np.ones(large)]
    X = rng.normal(size=(n, 2))
    Y = X[:, 0] + T + 0.1 * rng.normal(size=n)
    est = learner(name, **({"cv": cv} if "cv" in LEARNERS[name] else {}))
    if small <= 1:
        expect_error(lambda: est.fit(Y, T, X=X), ("T", "arm"))
        return
    fitted = answer_or_error(lambda: est.fit(Y, T, X=X), ("T", "arm", "cv"))
    if fitted is not None:
        check_predictions(fitted, X, n)


_FITTED: dict[tuple[str, int], Any] = {}


def fitted_on_frame(name: str, d: int) -> tuple[Any, pd.DataFrame]:
    """A learner fitted once on a DataFrame with columns c0..c{d-1} (cached per learner, d)."""
    Y, T, X = balanced(24, 7, d)
    frame = pd.DataFrame(X, columns=[f"c{j}" for j in range(d)])
    if (name, d) not in _FITTED:
        _FITTED[name, d] = learner(name).fit(Y, T, X=frame)
    return _FITTED[name, d], frame


@pytest.mark.parametrize("name", LEARNERS)
@_settings(12)
@given(
    d=st.integers(2, 4),
    data=st.data(),
    change=st.sampled_from(("reorder", "rename", "both", "none")),
)
def test_learner_inference_checks_columns(name, d, data, change) -> None:
    """A DataFrame with reordered or renamed columns is refused at inference, as scikit-learn does.

    The same columns in the same order (any row order) give the fitted effects row by row.
    """
    est, frame = fitted_on_frame(name, d)
    rows = data.draw(st.permutations(range(len(frame))))[: data.draw(st.integers(1, len(frame)))]
    sub = frame.iloc[rows]
    tau = est.effect(frame)
    if change == "none":
        np.testing.assert_allclose(est.effect(sub), tau[rows], rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(est.effect(sub.to_numpy()), tau[rows], rtol=RTOL, atol=ATOL)
        return
    cols = list(frame.columns)
    if change in ("reorder", "both"):
        order = data.draw(st.permutations(cols).filter(lambda p: list(p) != cols))
        sub = sub[list(order)]
    if change in ("rename", "both"):
        j = data.draw(st.integers(0, d - 1))
        sub = sub.rename(columns={sub.columns[j]: "renamed"})
    names = ("X", "feature", "features", "column", "columns")
    expect_error(lambda: est.effect(sub), names)
    if est.models_outcomes:
        expect_error(lambda: est.predict_outcomes(sub), names)


@pytest.mark.parametrize("name", ["ols", "tarnet"])
def test_learner_refit_on_array_forgets_column_names(name) -> None:
    """``feature_names_in_`` is set by a DataFrame fit and removed by a refit on an array."""
    Y, T, X = balanced(24, 3)
    est = learner(name).fit(Y, T, X=pd.DataFrame(X, columns=["a", "b"]))
    assert list(est.feature_names_in_) == ["a", "b"]
    est.fit(Y, T, X=X)
    assert not hasattr(est, "feature_names_in_")
    assert_finite(est.effect(pd.DataFrame(X, columns=["b", "a"])), (24,))


@pytest.mark.parametrize("name", LEARNERS)
@_settings(12)
@given(
    how=st.sampled_from(("width", "nan", "inf", "rows0", "string", "3d")),
    n=st.integers(1, 5),
)
def test_learner_inference_rejects_bad_X(name, how, n) -> None:
    est, frame = fitted_on_frame(name, 2)
    X = frame.to_numpy()[:n].copy()
    if how == "width":
        bad: Any = np.hstack([X, X[:, :1]])
    elif how == "nan":
        X[0, 0] = np.nan
        bad = X
    elif how == "inf":
        X[-1, -1] = -np.inf
        bad = X
    elif how == "rows0":
        bad = X[:0]
    elif how == "string":
        bad = X.astype(object)
        bad[0, 1] = "a"
    else:
        bad = X[:, :, None]
    expect_error(lambda: est.effect(bad), ("X",))


def _bad_counts() -> st.SearchStrategy:
    """Values an integer count (epochs, n_estimators) must refuse."""
    return st.one_of(
        st.integers(-3, 0),
        st.floats(0.5, 50).filter(lambda v: v != int(v)),
        st.sampled_from([2.0, 10.0, float("nan"), float("inf"), "3", "ten", True, None, [3]]),
        st.builds(np.float64, st.sampled_from([2.0, 3.5])),
    )


#: integer parameters of each learner (OLS has none)
INT_PARAMS = {
    "t_learner": ("n_estimators", "min_samples_leaf"),
    "dr_learner": ("n_estimators", "cv", "min_samples_leaf"),
    "tarnet": ("epochs", "batch_size", "hidden", "n_rep_layers", "patience"),
}


@pytest.mark.parametrize("name", INT_PARAMS)
@_settings(15)
@given(data=st.data())
def test_learner_rejects_bad_parameters(name, data) -> None:
    """Budget knobs and other integer parameters: a ValueError naming the parameter."""
    knobs = INT_PARAMS[name]
    knob = data.draw(st.sampled_from(knobs))
    value = data.draw(_bad_counts())
    if knob == "cv" and isinstance(value, int) and not isinstance(value, bool):
        value = min(value, 1)  # cv must be at least 2
    Y, T, X = balanced(12, 1)
    est = learner(name, **{knob: value})
    expect_error(lambda: est.fit(Y, T, X=X), (knob,))


#: real-valued parameters of each learner
REAL_PARAMS = {
    "dr_learner": ("propensity_clip",),
    "tarnet": ("lr", "weight_decay", "dropout", "val_fraction"),
}


@pytest.mark.parametrize("name", REAL_PARAMS)
@_settings(15)
@given(data=st.data())
def test_learner_rejects_bad_rates(name, data) -> None:
    """Real parameters: negative, NaN, infinite, string, boolean or None values are a ValueError
    naming the parameter (an infinite learning rate or weight decay is not a rate)."""
    knob = data.draw(st.sampled_from(REAL_PARAMS[name]))
    value = data.draw(st.one_of(
        st.floats(-10, 0, exclude_max=True),
        st.sampled_from([float("nan"), float("inf"), -float("inf"), "0.1", True, None, [0.1]]),
    ))
    Y, T, X = balanced(12, 1)
    est = learner(name, **{knob: value})
    expect_error(lambda: est.fit(Y, T, X=X), (knob,))


@pytest.mark.parametrize("name", LEARNERS)
@_settings(10)
@given(seed=SEEDS)
def test_learner_random_state(name, seed) -> None:
    """A seed in [0, 2**32) fits; anything else fits too or is a ValueError naming random_state."""
    Y, T, X = balanced(12, 2)
    est = make(name, **{**LEARNERS[name], "random_state": seed})
    if _valid_seed(seed):
        check_predictions(est.fit(Y, T, X=X), X, 12)
        return
    fitted = answer_or_error(lambda: est.fit(Y, T, X=X), ("random_state",))
    if fitted is not None:
        if name != "ols":  # OLS documents random_state as accepted and ignored
            assert isinstance(seed, int) and seed >= 0, f"random_state={seed!r} was accepted"
        check_predictions(fitted, X, 12)


_REFERENCE: dict[str, np.ndarray] = {}


@pytest.mark.parametrize("name", LEARNERS)
@_settings(10)
@given(k=st.integers(-1000, 1000))
def test_learner_invariant_to_power_of_two_scaling(name, k) -> None:
    """Fitting and predicting on ``2**k * X`` gives the effects of ``X`` (or a ValueError naming X).

    A power of two rescales every value exactly, so standardisation (TARNet), least squares
    (OLS) and tree splits (forests) see the same problem; 2**1000 ~ 1e301 and 2**-1000 ~ 1e-301
    are finite doubles. Forests are checked for scaling up only: scikit-learn's trees treat
    feature values closer than 1e-7 as equal (an absolute threshold), so shrinking X merges
    splits by design.
    """
    if "n_estimators" in spec(name).budget:
        k = abs(k)
    Y, T, X = balanced(24, 5)
    if name not in _REFERENCE:
        _REFERENCE[name] = learner(name).fit(Y, T, X=X).effect(X)
    Xs = X * 2.0**k
    est = answer_or_error(lambda: learner(name).fit(Y, T, X=Xs), ("X",))
    if est is None:
        return
    np.testing.assert_allclose(est.effect(Xs), _REFERENCE[name], rtol=RTOL, atol=ATOL,
                               err_msg=f"X scaled by 2**{k}")


@pytest.mark.parametrize("name", LEARNERS)
@_settings(8)
@given(x_dtype=st.sampled_from(DTYPES), t_dtype=st.sampled_from(DTYPES),
       y_dtype=st.sampled_from(DTYPES[:3]), seed=st.integers(0, 3))
def test_learner_dtypes_change_nothing(name, x_dtype, t_dtype, y_dtype, seed) -> None:
    """int, float32 and bool inputs give the effects of the same values as float64."""
    Y, T, X = balanced(16, seed)
    Xc, Tc, Yc = cast(X * 3, x_dtype), cast(T.astype(float), t_dtype), cast(Y * 3, y_dtype)
    a = learner(name).fit(Yc, Tc, X=Xc).effect(Xc)
    b = learner(name).fit(Yc.astype(float), Tc.astype(float), X=Xc.astype(float)).effect(
        Xc.astype(float))
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


# ---------------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------------

#: argument roles: real numbers, binary labels, probabilities in (0, 1), covariates (n, 2)
ROLES = {
    "tau_true": "real", "tau_hat": "real", "tau": "real", "score": "real", "mu0": "real",
    "mu1": "real", "Y": "real", "T": "binary", "X": "matrix", "m_hat": "real",
    "e_hat": "prob", "mu0_hat": "real", "mu1_hat": "real", "y_true": "binary", "proba": "prob",
    "a": "real", "b": "real",
}
METRICS: dict[str, tuple[Callable[..., Any], tuple[str, ...]]] = {
    "pehe": (metrics.pehe, ("tau_true", "tau_hat")),
    "ate_error": (metrics.ate_error, ("tau_true", "tau_hat")),
    "nn_pehe": (metrics.nn_pehe, ("X", "T", "Y", "tau_hat")),
    "policy_value_curve": (metrics.policy_value_curve, ("mu0", "mu1", "score")),
    "policy_value": (metrics.policy_value, ("mu0", "mu1", "score")),
    "policy_risk": (metrics.policy_risk, ("tau_hat", "Y", "T")),
    "toc_curve": (metrics.toc_curve, ("tau", "score")),
    "autoc": (metrics.autoc, ("tau", "score")),
    "qini": (metrics.qini, ("tau", "score")),
    "r_loss": (metrics.r_loss, ("Y", "T", "tau_hat", "m_hat", "e_hat")),
    "dr_risk": (metrics.dr_risk, ("Y", "T", "tau_hat", "mu0_hat", "mu1_hat", "e_hat")),
    "auc": (metrics.auc, ("y_true", "score")),
    "brier": (metrics.brier, ("y_true", "proba")),
    "calibration_table": (metrics.calibration_table, ("y_true", "proba")),
    "rank_agreement": (metrics.rank_agreement, ("a", "b")),
}


def _values(draw: st.DrawFn, role: str, n: int) -> np.ndarray:
    if role == "binary":
        return draw(arrays(np.int64, n, elements=st.integers(0, 1)))
    if role == "prob":
        return draw(arrays(np.float64, n, elements=st.floats(0.05, 0.95)))
    if role == "matrix":
        return draw(arrays(np.float64, (n, 2), elements=st.integers(-3, 3).map(float)))
    # few distinct values, so ties are common
    return draw(arrays(np.float64, n, elements=st.integers(-4, 4).map(float) | SMALL))


@st.composite
def metric_call(draw: st.DrawFn) -> tuple[str, dict[str, Any], str | None]:
    """A metric, its arguments (one length n; dtypes vary), and possibly one corrupted argument."""
    name = draw(st.sampled_from(sorted(METRICS)))
    _, params = METRICS[name]
    n = draw(st.integers(0, 8))
    args: dict[str, Any] = {}
    for p in params:
        v = _values(draw, ROLES[p], n)
        dtype = draw(st.sampled_from(("float64", "float32", "int64", "bool") if ROLES[p] ==
                                     "binary" else ("float64", "float32")))
        args[p] = container(v.astype(dtype), draw(st.sampled_from(("numpy", "list", "pandas"))))
    bad = draw(st.none() | st.sampled_from(params))
    if bad is not None:
        how = draw(st.sampled_from(("nan", "inf", "string", "length", "3d")))
        v = np.asarray(args[bad], dtype=float)
        if how == "length":
            v = np.concatenate([v, np.zeros((1, *v.shape[1:]))])
        elif how == "3d":
            v = v.reshape(*v.shape, 1, 1)
        else:
            assume(len(v))
            v = v.astype(object) if how == "string" else v.copy()
            v.flat[0] = {"nan": np.nan, "inf": np.inf, "string": "x"}[how]
        args[bad] = v
    return name, args, bad


@_settings(300)
@given(call=metric_call())
def test_metrics_answer_or_name_the_argument(call) -> None:
    """Every metric on random inputs: a finite answer of the right shape, or a ValueError naming
    an argument (the corrupted one, when one was corrupted)."""
    name, args, bad = call
    fn, params = METRICS[name]
    # a valid call may still be refused (an empty input, one class, too few pairs): the message
    # then names an argument or the metric
    n = len(np.asarray(args[params[0]]))
    n_ok = all(len(np.asarray(args[p])) > 0 for p in params if p != bad)
    result = answer_or_error(lambda: fn(**args), (bad,) if bad and n_ok else (*params, name))
    if result is None:
        return
    assert bad is None, f"{name} accepted a corrupted {bad}: {args[bad]!r} -> {result!r}"
    if name == "policy_value_curve":
        assert_finite(result, (n + 1,))
    elif name == "toc_curve":
        assert_finite(result[0], (n,))
        assert_finite(result[1], (n,))
    elif name == "calibration_table":
        assert isinstance(result, pd.DataFrame) and result["count"].sum() == n
        assert_finite(result.to_numpy(dtype=float))
    elif name == "rank_agreement":
        assert -1 - 1e-12 <= result[0] <= 1 + 1e-12 and 0 <= result[1] <= 1
    else:
        assert isinstance(result, float) and math.isfinite(result), result
        if name in ("pehe", "ate_error", "nn_pehe", "r_loss", "dr_risk", "brier"):
            assert result >= 0
        if name == "auc":
            assert 0 <= result <= 1


@st.composite
def ranking_data(draw: st.DrawFn, min_n: int = 1, max_n: int = 12) -> dict[str, np.ndarray]:
    """Effects, potential outcomes and a score with many ties (values from a small set)."""
    n = draw(st.integers(min_n, max_n))
    ints = st.integers(-3, 3).map(float)
    mu0 = draw(arrays(np.float64, n, elements=ints | SMALL))
    tau = draw(arrays(np.float64, n, elements=ints | SMALL))
    score = draw(arrays(np.float64, n, elements=st.integers(0, 2).map(float)))
    return {"tau": tau, "mu0": mu0, "mu1": mu0 + tau, "score": score}


def _close(a: float, b: float, scale: float = 1.0) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9 * max(1.0, scale))


@_settings(150)
@given(r=ranking_data(), perm_seed=st.integers(0, 2**16), budget=st.floats(0, 1))
def test_ranking_metrics_do_not_depend_on_row_order(r, perm_seed, budget) -> None:
    """autoc, qini, toc_curve, policy_value(_curve), pehe, ate_error, auc: same value for any
    order of the rows, tied scores included (a tied group is one group)."""
    p = np.random.default_rng(perm_seed).permutation(len(r["tau"]))
    s = {k: v[p] for k, v in r.items()}
    scale = float(np.abs(r["mu0"]).max() + np.abs(r["tau"]).max())
    for fn in (metrics.autoc, metrics.qini):
        assert _close(fn(r["tau"], r["score"]), fn(s["tau"], s["score"]), scale), fn.__name__
    np.testing.assert_allclose(metrics.toc_curve(r["tau"], r["score"])[1],
                               metrics.toc_curve(s["tau"], s["score"])[1], atol=1e-9 * scale)
    np.testing.assert_allclose(metrics.policy_value_curve(r["mu0"], r["mu1"], r["score"]),
                               metrics.policy_value_curve(s["mu0"], s["mu1"], s["score"]),
                               atol=1e-9 * scale)
    for b in (None, budget):
        assert _close(metrics.policy_value(r["mu0"], r["mu1"], r["score"], b),
                      metrics.policy_value(s["mu0"], s["mu1"], s["score"], b), scale)
    assert _close(metrics.pehe(r["tau"], r["score"]), metrics.pehe(s["tau"], s["score"]), scale)
    assert _close(metrics.ate_error(r["tau"], r["score"]),
                  metrics.ate_error(s["tau"], s["score"]), scale)
    y = (r["tau"] > 0).astype(int)
    if 0 < y.sum() < len(y):
        assert _close(metrics.auc(y, r["score"]), metrics.auc(y[p], s["score"]))


@_settings(150)
@given(r=ranking_data(), budget=st.floats(0, 1), const=st.floats(-5, 5))
def test_constant_score_ranks_nothing(r, budget, const) -> None:
    """A constant score: TOC 0 everywhere, AUTOC 0, Qini 0, the policy value of treating a
    random share k/n (mean mu0 + k/n mean tau), AUC 1/2."""
    n = len(r["tau"])
    score = np.full(n, const)
    scale = float(np.abs(r["mu0"]).max() + np.abs(r["tau"]).max())
    assert _close(metrics.autoc(r["tau"], score), 0.0, scale)
    assert _close(metrics.qini(r["tau"], score), 0.0, scale)
    np.testing.assert_allclose(metrics.toc_curve(r["tau"], score)[1], 0.0, atol=1e-9 * scale)
    m0, mt = r["mu0"].mean(), r["tau"].mean()
    curve = metrics.policy_value_curve(r["mu0"], r["mu1"], score)
    np.testing.assert_allclose(curve, m0 + np.arange(n + 1) / n * mt, atol=1e-9 * scale)
    k = math.floor(budget * n + 0.5)
    assert _close(metrics.policy_value(r["mu0"], r["mu1"], score, budget), m0 + k / n * mt, scale)
    assert _close(metrics.policy_value(r["mu0"], r["mu1"], score),
                  m0 + (n + 1) / (2 * n) * mt, scale)
    y = (r["tau"] > 0).astype(int)
    if 0 < y.sum() < n:
        assert metrics.auc(y, score) == 0.5


MONOTONE = {
    "affine": lambda s: 3.0 * s - 7.0,
    "exp": lambda s: np.exp(s / 4.0),
    "rank": lambda s: np.unique(s, return_inverse=True)[1].astype(float),
    "cube": lambda s: s**3,
}


@_settings(120)
@given(r=ranking_data(min_n=2), f=st.sampled_from(sorted(MONOTONE)))
def test_ranking_metrics_see_only_the_order_of_the_score(r, f) -> None:
    """A strictly increasing transform of the score (ties kept) changes no ranking metric, and
    ranking by the truth is the best ranking (AUTOC >= 0; the highest policy value)."""
    s2 = MONOTONE[f](r["score"])
    scale = float(np.abs(r["mu0"]).max() + np.abs(r["tau"]).max())
    for fn in (metrics.autoc, metrics.qini):
        assert _close(fn(r["tau"], r["score"]), fn(r["tau"], s2), scale), fn.__name__
    assert _close(metrics.policy_value(r["mu0"], r["mu1"], r["score"]),
                  metrics.policy_value(r["mu0"], r["mu1"], s2), scale)
    assert metrics.autoc(r["tau"], r["tau"]) >= -1e-9 * scale
    assert metrics.qini(r["tau"], r["tau"]) >= -1e-9 * scale
    assert (metrics.policy_value(r["mu0"], r["mu1"], r["tau"])
            >= metrics.policy_value(r["mu0"], r["mu1"], r["score"]) - 1e-9 * scale)


def _bad_fraction() -> st.SearchStrategy:
    return st.one_of(
        st.floats(1.0, 1e6, exclude_min=True), st.floats(-1e6, 0.0, exclude_max=True),
        st.sampled_from([float("nan"), float("inf"), "0.5", True, [0.5]]),
    )


METRIC_PARAMETERS: dict[str, tuple[Callable[[Any], Any], st.SearchStrategy]] = {
    "budget": (lambda v: metrics.policy_value([0.0, 1, 2], [1.0, 1, 3], [0.0, 2, 1], v),
               _bad_fraction()),
    "q": (lambda v: metrics.autoc([0.0, 1, 2], [0.0, 2, 1], q=v),
          _bad_fraction().filter(lambda v: not isinstance(v, list)).map(
              lambda v: [0.5, v] if isinstance(v, float) else v)),
    "threshold": (lambda v: metrics.policy_risk([0.0, 1, 2, 3], [0.0, 1, 1, 0], [0, 1, 0, 1],
                                                threshold=v),
                  st.sampled_from([float("nan"), "0", None, True, [0.0]])),
    "n_bins": (lambda v: metrics.calibration_table([0, 1, 1], [0.1, 0.5, 0.9], n_bins=v),
               _bad_counts()),
    "n_boot": (lambda v: metrics.bootstrap_ci(np.mean, np.arange(5.0), n_boot=v), _bad_counts()),
    "alpha": (lambda v: metrics.bootstrap_ci(np.mean, np.arange(5.0), n_boot=5, alpha=v),
              _bad_fraction() | st.sampled_from([0.0, 1.0, None])),
    "random_state": (lambda v: metrics.bootstrap_ci(np.mean, np.arange(5.0), n_boot=5,
                                                    random_state=v),
                     st.sampled_from([-1, 1.5, "0", True])),
}


@_settings(120)
@given(data=st.data())
def test_metric_parameters_name_themselves(data) -> None:
    """budget, q, threshold, n_bins, n_boot, alpha, random_state out of range or of the wrong
    type: a ValueError naming the parameter."""
    param = data.draw(st.sampled_from(sorted(METRIC_PARAMETERS)))
    call, values = METRIC_PARAMETERS[param]
    value = data.draw(values)
    expect_error(lambda: call(value), (param,))


@_settings(60)
@given(
    n=st.integers(0, 8), classes=st.integers(1, 4), seed=st.integers(0, 100),
    corrupt=st.sampled_from(("none", "label", "nan", "length", "proba")),
)
def test_multiclass_metrics(n, classes, seed, corrupt) -> None:
    """auc_by_class, brier and their bootstrap: values in [0, 1] (NaN only for a class absent or
    held by all), or a ValueError naming y_true or proba."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, size=n)
    proba = rng.dirichlet(np.ones(classes), size=n) if n else np.zeros((0, classes))
    names: tuple[str, ...] = ("y_true", "proba")
    if corrupt == "label" and n:
        y = y.astype(float)
        y[0] = classes + 0.5
        names = ("y_true",)
    elif corrupt == "nan" and n:
        proba[0, 0] = np.nan
        names = ("proba",)
    elif corrupt == "length":
        y = np.r_[y, 0]
    elif corrupt == "proba" and n:
        proba[0, 0] = 1.5
        names = ("proba",)
    aucs = answer_or_error(lambda: metrics.auc_by_class(y, proba), names)
    # (an (n, 1) matrix is read by brier as the probability of class 1: binary, not one class)
    brier = answer_or_error(lambda: metrics.brier(y, proba), names) if classes > 1 else None
    if aucs is not None:
        assert corrupt in ("none", "proba"), f"auc_by_class accepted a corrupted input ({corrupt})"
        assert aucs.shape == (classes,)
        for c in range(classes):
            present = 0 < np.sum(y == c) < n
            assert (0 <= aucs[c] <= 1) if present else np.isnan(aucs[c])
    if brier is not None:
        assert corrupt == "none", f"brier accepted a corrupted input ({corrupt})"
        assert 0 <= brier <= 2


@_settings(60)
@given(
    n=st.integers(0, 9), n_treated=st.integers(0, 9), d=st.integers(1, 3),
    seed=st.integers(0, 50), n_boot=st.integers(1, 6),
)
def test_nn_pehe_and_its_interval(n, n_treated, d, seed, n_boot) -> None:
    """NN-PEHE: finite and >= 0 with both arms present, else a ValueError naming T; the
    bootstrap interval brackets nothing impossible (lower <= upper) or says why it cannot."""
    rng = np.random.default_rng(seed)
    T = (np.arange(n) < min(n_treated, n)).astype(int)
    X = rng.integers(-2, 3, size=(n, d)).astype(float)
    Y = rng.normal(size=n)
    tau = rng.normal(size=n)
    value = answer_or_error(lambda: metrics.nn_pehe(X, T, Y, tau), ("T", "X", "Y", "tau_hat"))
    if value is None:
        assert n == 0 or T.sum() in (0, n)
        return
    assert math.isfinite(value) and value >= 0
    ci = answer_or_error(lambda: metrics.nn_pehe_ci(X, T, Y, tau, n_boot=n_boot),
                         ("T", "X", "bootstrap", "resamples", "rows"))
    if ci is not None:
        est, lo, hi = ci
        assert est == value and lo <= hi and math.isfinite(lo) and math.isfinite(hi)


# ---------------------------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------------------------

ELEMENT = st.one_of(
    st.floats(), st.integers(-1000, 1000), st.booleans(), st.none(), st.text(max_size=3),
    st.complex_numbers(max_magnitude=10),
)
ARRAY_LIKE = st.one_of(
    arrays(st.sampled_from([np.float64, np.float32, np.int64, np.bool_, np.complex128]),
           array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)),
    st.lists(ELEMENT, max_size=5),
    st.lists(st.lists(st.floats(-5, 5), max_size=3), max_size=3),  # ragged when lengths differ
    st.lists(SMALL, max_size=5).map(pd.Series),
    ELEMENT,
)


def _expected_floats(values: Any) -> np.ndarray | None:
    """The values as float64, or None when they are not all real numbers."""
    try:
        arr = np.asarray(values, dtype=object)
    except ValueError:
        return None
    flat = arr.ravel().tolist()
    if not all(isinstance(v, Number) for v in flat):
        return None
    if any(complex(v).imag != 0 for v in flat):
        return None
    return np.array([complex(v).real for v in flat]).reshape(arr.shape)


@_settings(300)
@given(values=ARRAY_LIKE)
def test_as_1d(values) -> None:
    """A finite float vector equal to the input, or a ValueError naming the argument."""
    result = answer_or_error(lambda: validation.as_1d(values, "foo"), ("foo",))
    if result is None:
        return
    expected = _expected_floats(values)
    assert expected is not None, f"as_1d accepted {values!r} as {result!r}"
    assert result.dtype == np.float64 and result.ndim == 1 and len(result) >= 1
    np.testing.assert_array_equal(result, expected.ravel())
    assert np.isfinite(result).all()


@_settings(300)
@given(values=ARRAY_LIKE | st.builds(
    lambda a, s: pd.DataFrame({"a": a, "b": [s] * len(a)}), st.lists(SMALL, max_size=3),
    st.sampled_from(["x", 1.0, None, True])))
def test_as_2d(values) -> None:
    """A finite float (n, d) matrix equal to the input (a vector is one column), or a ValueError
    naming the argument."""
    result = answer_or_error(lambda: validation.as_2d(values, "foo"), ("foo",))
    if result is None:
        return
    expected = _expected_floats(values)
    assert expected is not None, f"as_2d accepted {values!r} as {result!r}"
    assert result.dtype == np.float64 and result.ndim == 2 and min(result.shape) >= 1
    np.testing.assert_array_equal(result, expected.reshape(len(result), -1))
    assert np.isfinite(result).all()


@_settings(200)
@given(values=ARRAY_LIKE | arrays(np.int64, st.integers(1, 6), elements=st.integers(-1, 2)))
def test_check_treatment(values) -> None:
    result = answer_or_error(lambda: validation.check_treatment(values, "treat"), ("treat",))
    if result is None:
        return
    expected = _expected_floats(values)
    assert expected is not None and set(np.unique(expected)) <= {0.0, 1.0}
    np.testing.assert_array_equal(result, expected.ravel().astype(int))


@_settings(200)
@given(values=ARRAY_LIKE | arrays(np.float64, st.integers(1, 6), elements=st.floats(-0.5, 1.5)))
def test_check_propensity(values) -> None:
    result = answer_or_error(lambda: validation.check_propensity(values, "ehat"), ("ehat",))
    if result is None:
        return
    assert ((result > 0) & (result < 1)).all()


NUMBERS = st.one_of(
    st.integers(-(10**30), 10**30), st.floats(), st.booleans(), st.none(), st.text(max_size=3),
    st.builds(np.int64, st.integers(-100, 100)), st.builds(np.float32, st.floats(-100, 100)),
    st.builds(Fraction, st.integers(-5, 5), st.integers(1, 4)),
)
BOUND = st.none() | st.integers(-5, 5)


@_settings(300)
@given(value=NUMBERS, low=BOUND, high=BOUND)
def test_check_int(value, low, high) -> None:
    """An int equal to the value when it is a non-bool integer in [low, high]; else a ValueError
    naming the parameter."""
    assume(low is None or high is None or low <= high)
    result = answer_or_error(lambda: validation.check_int(value, "count", low, high), ("count",))
    ok = (
        isinstance(value, int | np.integer) and not isinstance(value, bool)
        and (low is None or value >= low) and (high is None or value <= high)
    )
    if ok:
        assert type(result) is int and result == value
    else:
        assert result is None, f"check_int accepted {value!r} as {result!r}"


@_settings(300)
@given(value=NUMBERS, low=BOUND, high=BOUND, low_open=st.booleans(), high_open=st.booleans())
def test_check_number(value, low, high, low_open, high_open) -> None:
    """A float inside the interval the message states ((-inf, inf) when unbounded: infinities are
    outside), or a ValueError naming the parameter; booleans, strings and NaN are refused."""
    assume(low is None or high is None or low <= high)
    result = answer_or_error(
        lambda: validation.check_number(value, "rate", low, high, low_open=low_open,
                                        high_open=high_open),
        ("rate",),
    )
    if result is None:
        return
    assert type(result) is float
    assert not isinstance(value, bool | str) and value is not None
    assert math.isfinite(result), f"check_number accepted {value!r} for the interval " \
        f"{low}, {high}: an infinity is outside (-inf, inf)"
    assert result == float(value)
    assert low is None or (result > low if low_open else result >= low)
    assert high is None or (result < high if high_open else result <= high)


@_settings(100)
@given(values=ARRAY_LIKE, width=st.integers(1, 3))
def test_check_features(values, width) -> None:
    result = answer_or_error(lambda: validation.check_features(values, width, "Xnew"), ("Xnew",))
    if result is not None:
        assert result.ndim == 2 and result.shape[1] == width and np.isfinite(result).all()


# ---------------------------------------------------------------------------------------------
# nuisance.dr_scores
# ---------------------------------------------------------------------------------------------


@_settings(30)
@given(data=fit_data(max_n=10), cv=st.integers(2, 4), stratify=st.booleans())
def test_dr_scores_random_inputs(data, cv, stratify) -> None:
    """Cross-fitted AIPW scores on any shape/dtype: finite, one per unit, or a ValueError naming
    the input, cv or the arm that a fold lacks."""
    n = len(data["t"])
    result = answer_or_error(
        lambda: dr_scores(data["Y"], data["T"], data["X"], cv=cv, nuisance="linear",
                          stratify=stratify, random_state=0),
        ("Y", "T", "X", "cv", "arm"),
    )
    if result is not None:
        assert_finite(result, (n,))
        assert cv <= n


@_settings(40)
@given(
    n=st.integers(8, 14),
    cv=st.one_of(st.integers(-1, 6), st.sampled_from([2.0, "3", True, None])),
    clip=st.one_of(st.floats(0.001, 0.49), st.sampled_from([0.0, 0.5, -0.1, float("nan"), "x"])),
    nuisance=st.sampled_from(("linear", "ridge", "forest-ish", ("ridge", "linear"))),
    stratify=st.booleans(),
)
def test_dr_scores_parameters(n, cv, clip, nuisance, stratify) -> None:
    """cv, clip and nuisance: scores for valid values, else a ValueError naming the parameter
    (or the arm that a fold lacks)."""
    Y, T, X = balanced(n, 4)
    result = answer_or_error(
        lambda: dr_scores(Y, T, X, cv=cv, clip=clip, nuisance=nuisance, stratify=stratify,
                          random_state=0),
        ("cv", "clip", "nuisance", "kind", "arm"),
    )
    if result is not None:
        assert_finite(result, (n,))
        assert isinstance(cv, int) and not isinstance(cv, bool) and 2 <= cv <= n
        assert 0 < clip < 0.5 and nuisance != "forest-ish"


@_settings(10)
@given(seed=SEEDS)
def test_dr_scores_random_state(seed) -> None:
    """A seed in [0, 2**32) gives scores; any other value gives scores too (a larger int) or a
    ValueError naming random_state."""
    Y, T, X = balanced(12, 4)

    def call() -> np.ndarray:
        return dr_scores(Y, T, X, cv=2, nuisance="linear", random_state=seed)

    if _valid_seed(seed):
        assert_finite(call(), (12,))
        return
    result = answer_or_error(call, ("random_state",))
    if result is not None:
        assert isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0
        assert_finite(result, (12,))


# ---------------------------------------------------------------------------------------------
# data loaders and simulators
# ---------------------------------------------------------------------------------------------

BAD_SPLITS = st.sampled_from([
    (0.5, 0.5), (0.6, 0.2, 0.3), (1.0, 0.0, 0.0), (-0.2, 0.6, 0.6), "0.6,0.2,0.2", 0.6, None,
    (0.6, 0.2, float("nan")), ("0.6", "0.2", "0.2"),
])


@_settings(40)
@given(
    realization=st.one_of(
        st.integers(-(2**40), 0), st.integers(IHDP_REALIZATIONS + 1, 2**40),
        st.sampled_from([1.0, 2.5, "1", True, None, float("nan")]),
    )
)
def test_load_ihdp_rejects_bad_realizations(realization) -> None:
    expect_error(lambda: load_ihdp(realization), ("realization",))


@_settings(10)
@given(realization=st.integers(1, IHDP_REALIZATIONS),
       split_seed=st.one_of(st.none(), st.integers(0, 2**31 - 1), st.integers(-5, -1),
                            st.sampled_from([1.5, "3", True])))
def test_load_ihdp_valid_realizations_and_split_seed(realization, split_seed) -> None:
    data = answer_or_error(lambda: load_ihdp(realization, split_seed=split_seed), ("split_seed",))
    if data is None:
        assert not (split_seed is None or (isinstance(split_seed, int)
                                           and not isinstance(split_seed, bool)
                                           and split_seed >= 0))
        return
    assert data.X.shape == (747, 25) and np.isfinite(data.X.to_numpy()).all()
    assert set(np.unique(data.T)) == {0, 1} and np.isfinite(data.Y).all()


def test_load_ihdp_missing_folder_is_file_not_found() -> None:
    with tempfile.TemporaryDirectory() as empty:
        for r in (1, IHDP_REALIZATIONS):
            expect_error(lambda r=r: load_ihdp(r, data_dir=empty), ("IHDP", "ihdp_npci"),
                         types=(FileNotFoundError,))


BAD_KNOBS: dict[str, st.SearchStrategy] = {
    "n": st.one_of(st.integers(-5, 9), st.sampled_from([10.0, 12.5, "20", True, None])),
    "seed": st.one_of(st.integers(-(2**40), -1), st.sampled_from([1.5, "0", True, None])),
    "confounding": st.one_of(st.floats(-10, 0, exclude_max=True),
                             st.sampled_from([float("nan"), float("inf"), "1", None, True])),
    "annotated": st.one_of(st.floats(-1, 0), st.floats(1, 5, exclude_min=True),
                           st.sampled_from([float("nan"), "0.5", None, True])),
    "annotation_selection": st.text(max_size=5).filter(lambda s: s not in ("uniform",
                                                                           "covariates")),
    "style": st.text(max_size=5).filter(lambda s: s not in STYLES),
    "misspelling_rate": st.one_of(st.floats(-1, 0, exclude_max=True),
                                  st.floats(0.5, 5, exclude_min=True),
                                  st.sampled_from([float("nan"), "0.1", True])),
    "noise_sd": st.one_of(st.floats(-10, 0, exclude_max=True),
                          st.sampled_from([float("nan"), float("inf"), "1", None])),
    "split": BAD_SPLITS,
    "text_only": st.one_of(st.floats(-1, 0, exclude_max=True), st.floats(1, 3, exclude_min=True),
                           st.sampled_from([float("nan"), "0.5", None])),
}
SIMULATORS: dict[str, tuple[Callable[..., Any], tuple[str, ...]]] = {
    "respiratory": (simulate_respiratory, tuple(BAD_KNOBS)),
    "cardiac": (simulate_cardiac, tuple(k for k in BAD_KNOBS if k != "text_only")),
}


@pytest.mark.parametrize("sim", SIMULATORS)
@_settings(60)
@given(data=st.data())
def test_simulators_reject_bad_knobs(sim, data) -> None:
    """One bad knob (the others valid, n small): a ValueError naming that knob."""
    fn, knobs = SIMULATORS[sim]
    knob = data.draw(st.sampled_from(knobs))
    value = data.draw(BAD_KNOBS[knob])
    kwargs = {"n": 20, "seed": 0, knob: value}
    expect_error(lambda: fn(**kwargs), (knob,))


@pytest.mark.parametrize("sim", SIMULATORS)
@_settings(8)
@given(n=st.integers(10, 40), seed=st.integers(0, 2**31), confounding=st.floats(0, 3),
       annotated=st.floats(0.05, 1), selection=st.sampled_from(("uniform", "covariates")))
def test_simulators_small_valid_knobs(sim, n, seed, confounding, annotated, selection) -> None:
    """Valid knobs at the smallest sizes: a data set of n rows, binary T, finite X and Y."""
    fn, _ = SIMULATORS[sim]
    ds = fn(n=n, seed=seed, confounding=confounding, annotated=annotated,
            annotation_selection=selection)
    assert len(ds.Y) == n and len(ds.X) == n and set(np.unique(ds.T)) <= {0, 1}
    assert np.isfinite(np.asarray(ds.X, dtype=float)).all() and np.isfinite(ds.Y).all()


SPINE_KNOBS: dict[str, st.SearchStrategy] = {
    "n": st.one_of(st.integers(-5, 19), st.sampled_from([20.0, 50.5, "100", True, None])),
    "seed": BAD_KNOBS["seed"],
    "n_surgery": st.one_of(st.integers(-5, 9), st.integers(51, 10**6),
                           st.sampled_from([20.0, "20", True])),
    "confounding": BAD_KNOBS["confounding"],
    "shared_effect": BAD_KNOBS["confounding"],
    "split": BAD_SPLITS,
}


@_settings(60)
@given(data=st.data())
def test_simulate_spine_rejects_bad_knobs(data) -> None:
    knob = data.draw(st.sampled_from(sorted(SPINE_KNOBS)))
    value = data.draw(SPINE_KNOBS[knob])
    expect_error(lambda: simulate_spine(**{"n": 50, "seed": 0, knob: value}), (knob,))
