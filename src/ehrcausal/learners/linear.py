"""Linear CATE learners: the two-model ordinary least squares baseline ("OLS-2")."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LinearRegression

from .base import CATELearner


class OLSTLearner(CATELearner):
    """T-learner with one ordinary least squares regression per arm ("OLS-2").

    Fits ``mu_t(x) = a_t + b_t' x`` by least squares on the units of arm ``t`` (t = 0, 1)
    and estimates ``tau(x) = mu_1(x) - mu_0(x) = (a_1 - a_0) + (b_1 - b_0)' x``. This is the
    OLS-2 baseline of Shalit, Johansson & Sontag (2017), "Estimating individual treatment
    effect: generalization bounds and algorithms", ICML.

    Parameters
    ----------
    random_state : int, RandomState or None, default=None
        Accepted for uniformity with the other learners and ignored: least squares is
        deterministic.

    Attributes
    ----------
    model0_, model1_ : sklearn.linear_model.LinearRegression
        The fitted control-arm and treated-arm regressions.
    """

    models_outcomes = True

    def __init__(self, random_state: Any = None) -> None:
        self.random_state = random_state

    def _fit(self, Y: np.ndarray, T: np.ndarray, X: np.ndarray, **fit_params: Any) -> None:
        self._reject_unknown(fit_params)  # no extra fit input, not even val_mask (no tuning)
        self.model0_ = LinearRegression().fit(X[T == 0], Y[T == 0])
        self.model1_ = LinearRegression().fit(X[T == 1], Y[T == 1])

    def _predict_outcomes(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.model0_.predict(X), self.model1_.predict(X)
