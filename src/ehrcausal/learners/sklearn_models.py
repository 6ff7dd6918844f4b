"""The one factory of scikit-learn nuisance and final-stage models for the AACE learner family.

:func:`make_model` turns a short name (or an estimator instance) into a fresh, unfitted
scikit-learn model, with ``random_state`` set on every part of it that has one;
:func:`fit_weighted` fits any such model with optional sample weights, routing them through a
:class:`~sklearn.pipeline.Pipeline` to its final step.

=========  ====================================================  ===============================
spec       regressor                                             classifier
=========  ====================================================  ===============================
ridge      StandardScaler + RidgeCV (alphas 10^-3 .. 10^3,      StandardScaler +
           13 values, efficient leave-one-out)                   LogisticRegression(C=1)
linear     LinearRegression                                      LogisticRegression(C=1e6),
                                                                 i.e. practically unpenalised
gbm        HistGradientBoostingRegressor                         HistGradientBoostingClassifier
           (200 iterations, learning rate 0.05, no early stopping)
forest     RandomForestRegressor                                 RandomForestClassifier
           (200 trees, min_samples_leaf=5)
=========  ====================================================  ===============================
"""

from __future__ import annotations

from numbers import Integral
from typing import Any, Literal

import numpy as np
from sklearn.base import BaseEstimator, clone, is_classifier
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression, RidgeCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import has_fit_parameter

__all__ = ["MODEL_SPECS", "make_model", "fit_weighted", "set_random_state"]

#: the names :func:`make_model` accepts (besides an estimator instance)
MODEL_SPECS: tuple[str, ...] = ("ridge", "linear", "gbm", "forest")

_KINDS = ("regressor", "classifier")


def _build(spec: str, kind: str) -> BaseEstimator:
    if spec == "ridge":
        if kind == "regressor":
            return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    if spec == "linear":
        if kind == "regressor":
            return LinearRegression()
        return LogisticRegression(C=1e6, max_iter=2000)
    if spec == "gbm":
        if kind == "regressor":
            return HistGradientBoostingRegressor(
                max_iter=200, learning_rate=0.05, early_stopping=False
            )
        return HistGradientBoostingClassifier(
            max_iter=200, learning_rate=0.05, early_stopping=False
        )
    if spec == "forest":
        cls = RandomForestRegressor if kind == "regressor" else RandomForestClassifier
        return cls(n_estimators=100, min_samples_leaf=5)
    raise ValueError(f"unknown model spec {spec!r}; known specs: {', '.join(MODEL_SPECS)}")


def set_random_state(model: BaseEstimator, random_state: int | None) -> BaseEstimator:
    """Set every ``random_state`` parameter of ``model``, nested ones included (in place).

    A :class:`~sklearn.pipeline.Pipeline` exposes its steps' parameters as
    ``<step>__random_state``; all of them get ``random_state``. Returns ``model``.
    """
    keys = [k for k in model.get_params(deep=True) if k.split("__")[-1] == "random_state"]
    if keys:
        model.set_params(**dict.fromkeys(keys, random_state))
    return model


def make_model(
    spec: str | BaseEstimator,
    kind: Literal["regressor", "classifier"],
    random_state: int | None,
) -> BaseEstimator:
    """A fresh, unfitted scikit-learn model from ``spec`` (see the module table).

    Args:
        spec: ``"ridge"``, ``"linear"``, ``"gbm"``, ``"forest"``, or an estimator instance, which
            is cloned (:func:`sklearn.base.clone`) so the caller's object is never fitted.
        kind: ``"regressor"`` or ``"classifier"``. A classifier must have ``predict_proba``; an
            estimator instance that is a classifier is refused where a regressor is asked for.
        random_state: seed given to every ``random_state`` parameter of the model (nested
            pipeline steps included); ``None`` leaves them unseeded.

    Raises:
        ValueError: unknown spec or kind, an object that is not a scikit-learn estimator, or an
            estimator of the wrong kind.
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be 'regressor' or 'classifier', got {kind!r}")
    if random_state is not None and (
        isinstance(random_state, bool) or not isinstance(random_state, Integral)
    ):
        raise ValueError(f"random_state must be None or an int, got {random_state!r}")
    if isinstance(spec, str):
        model = _build(spec, kind)
    elif hasattr(spec, "get_params") and hasattr(spec, "fit"):
        model = clone(spec)
        if kind == "classifier" and not hasattr(model, "predict_proba"):
            raise ValueError(
                f"{type(spec).__name__} has no predict_proba; a classifier is needed here"
            )
        if kind == "regressor" and (is_classifier(model) or not hasattr(model, "predict")):
            raise ValueError(
                f"{type(spec).__name__} is not a regressor; a regressor is needed here"
            )
    else:
        raise ValueError(
            f"model spec must be one of {', '.join(MODEL_SPECS)} or a scikit-learn estimator, "
            f"got {spec!r}"
        )
    return set_random_state(model, None if random_state is None else int(random_state))


def _sample_weight_key(model: BaseEstimator) -> str:
    """The ``fit`` keyword that reaches the estimator at the end of (nested) pipelines."""
    if isinstance(model, Pipeline):
        name, last = model.steps[-1]
        return f"{name}__{_sample_weight_key(last)}"
    if not has_fit_parameter(model, "sample_weight"):
        raise ValueError(f"{type(model).__name__}.fit does not accept sample_weight")
    return "sample_weight"


def fit_weighted(
    model: BaseEstimator, X: np.ndarray, y: np.ndarray, sample_weight: Any = None
) -> BaseEstimator:
    r"""Fit ``model`` on ``(X, y)`` with optional per-row ``sample_weight``; return it.

    Minimises the weighted loss :math:`\sum_i w_i\,\ell(y_i, f(x_i))` of the model. For a
    :class:`~sklearn.pipeline.Pipeline` the weights go to its last step as
    ``<step>__sample_weight`` (the pre-processing steps are fitted unweighted), recursively for
    nested pipelines. Weights must be finite, non-negative, not all zero, one per row.
    """
    if sample_weight is None:
        return model.fit(X, y)
    w = np.asarray(sample_weight, dtype=float)
    if w.ndim != 1 or len(w) != len(X):
        raise ValueError(f"sample_weight must have shape ({len(X)},), got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0):
        raise ValueError("sample_weight must be finite, non-negative and not all zero")
    return model.fit(X, y, **{_sample_weight_key(model): w})
