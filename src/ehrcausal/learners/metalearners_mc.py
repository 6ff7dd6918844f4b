"""S-, T- and X-learners for class and vector outcomes with scikit-learn base models.

With ``mu_t(x)`` the outcome model of arm ``t`` -- class probabilities ``P(Y = c | T = t, x)``
for a class outcome, conditional means per domain for a continuous one -- the learners are
(Kuenzel, Sekhon, Bickel & Yu 2019, "Metalearners for estimating heterogeneous treatment
effects using machine learning", PNAS):

- **S**: one model ``mu(x, t)`` on the covariates augmented with the treatment;
  ``tau(x) = mu(x, 1) - mu(x, 0)``.
- **T**: one model per arm; ``tau(x) = mu_1(x) - mu_0(x)``.
- **X**: the T-learner's models impute individual effects
  ``D1_i = y_i - mu_0(x_i)`` on treated and ``D0_i = mu_1(x_i) - y_i`` on controls
  (``y_i`` one-hot for classes), a regressor per arm and output column fits ``tau_1`` on the
  treated ``D1`` and ``tau_0`` on the controls' ``D0``, and with a propensity model ``g(x)``
  ``tau(x) = g(x) tau_0(x) + (1 - g(x)) tau_1(x)``. For class outcomes the per-class effects
  are projected onto vectors summing to zero (their row mean is subtracted). Fitting ``g``
  gives an :class:`~ehrcausal.validation.OverlapWarning` when estimates leave ``[0.01, 0.99]``.

Class probabilities are always returned for the classes ``0..C-1`` in order: a class absent
from an arm's training labels gets probability 0 in that arm (and an arm with a single class
is modelled as that class with probability 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from ..nuisance import make_model, predict_treated
from ..runtime import child_seeds
from ..validation import warn_overlap
from .base import store_params
from .multioutcome import MultiOutcomeLearner, OutcomeTask
from .registry import register

__all__ = ["MetaLearnerMC", "KINDS"]

KINDS = ("s", "t", "x")


class _AlignedClassifier:
    """A classifier whose probabilities are columns ``0..C-1`` whatever classes it saw."""

    def __init__(self, spec: Any, n_classes: int, seed: int) -> None:
        self.spec, self.n_classes, self.seed = spec, n_classes, seed

    def fit(self, X: np.ndarray, y: np.ndarray) -> _AlignedClassifier:
        self.classes_ = np.unique(y)
        if len(self.classes_) == 1:
            self.model_ = None  # a single class: probability 1 for it
        else:
            self.model_ = make_model(self.spec, "classifier", self.seed).fit(X, y)
            self.classes_ = np.asarray(self.model_.classes_).astype(int)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        out = np.zeros((len(X), self.n_classes))
        if self.model_ is None:
            out[:, int(self.classes_[0])] = 1.0
        else:
            out[:, self.classes_] = self.model_.predict_proba(X)
        return out


class _ColumnRegressors:
    """One regressor per output column (works with single-output base models)."""

    def __init__(self, spec: Any, seed: int) -> None:
        self.spec, self.seed = spec, seed

    def fit(self, X: np.ndarray, Y: np.ndarray) -> _ColumnRegressors:
        seeds = child_seeds(self.seed, Y.shape[1])
        self.models_ = [
            make_model(self.spec, "regressor", s).fit(X, Y[:, j]) for j, s in enumerate(seeds)
        ]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.column_stack([m.predict(X) for m in self.models_])


class MetaLearnerMC(MultiOutcomeLearner):
    """S-, T- or X-learner (``kind``) for class and vector outcomes (Kuenzel et al. 2019).

    See the module docstring for the estimators. Class outcomes are modelled by ``base``
    classifiers (``predict_proba``), continuous outcomes and the X-learner's imputed effects by
    ``base`` regressors, one per output column. ``fit_tasks`` fits an independent learner per
    task.

    Parameters
    ----------
    kind : "s", "t" or "x".
    base : a spec of :func:`~ehrcausal.nuisance.make_model` ("ridge", "linear",
        "gbm", "forest") or a scikit-learn estimator (cloned). An estimator serves one role
        only: the X-learner on class outcomes needs classifiers and regressors, so give it a
        spec name.
    propensity_model : the classifier spec of the X-learner's ``g(x)`` (default "ridge":
        standardised logistic regression).
    outcome, n_classes : see :class:`~ehrcausal.learners.multioutcome.MultiOutcomeLearner`.
    random_state : seeds every base model (each gets its own child seed).

    Attributes
    ----------
    models_ : the outcome model(s): ``{"s": model}`` or ``{0: model, 1: model}``.
    effect_models_, propensity_model_ : the X-learner's stage-2 regressors per arm and ``g``.
    """

    def __init__(
        self,
        kind: str = "t",
        base: str | BaseEstimator = "gbm",
        outcome: str = "class",
        n_classes: int | None = None,
        propensity_model: str | BaseEstimator = "ridge",
        random_state: int | None = None,
    ) -> None:
        store_params(self, locals())

    def _model(self, seed: int) -> Any:
        if self.spec_.outcome == "class":
            return _AlignedClassifier(self.base, self.spec_.n_outputs, seed)
        return _ColumnRegressors(self.base, seed)

    def _predict(self, model: Any, X: np.ndarray) -> np.ndarray:
        if self.spec_.outcome == "class":
            return model.predict_proba(X)
        return model.predict(X)

    def _fit_one(self, task: OutcomeTask, seed: int, **fit_params: Any) -> None:
        self._reject_unknown(fit_params)  # no extra fit input, not even val_mask (no tuning)
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        self.spec_ = task.spec
        X, T = task.X, task.T
        y = task.Y if task.spec.outcome == "class" else task.targets()
        s0, s1, s_g, s_t0, s_t1 = child_seeds(seed, 5)
        if self.kind == "s":
            self.models_ = {"s": self._model(s0).fit(np.column_stack([X, T]), y)}
            return
        self.models_ = {
            arm: self._model(s).fit(X[T == arm], y[T == arm]) for arm, s in ((0, s0), (1, s1))
        }
        if self.kind == "x":
            target = task.targets()
            mu0 = self._predict(self.models_[0], X)
            mu1 = self._predict(self.models_[1], X)
            d1 = target[T == 1] - mu0[T == 1]
            d0 = mu1[T == 0] - target[T == 0]
            self.effect_models_ = {
                0: _ColumnRegressors(self.base, s_t0).fit(X[T == 0], d0),
                1: _ColumnRegressors(self.base, s_t1).fit(X[T == 1], d1),
            }
            self.propensity_model_ = make_model(self.propensity_model, "classifier", s_g).fit(X, T)
            warn_overlap(
                predict_treated(self.propensity_model_, X), f"MetaLearnerMC (task {task.name!r})"
            )

    def _outcomes_one(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.kind == "s":
            n = len(X)
            m = self.models_["s"]
            return (
                self._predict(m, np.column_stack([X, np.zeros(n)])),
                self._predict(m, np.column_stack([X, np.ones(n)])),
            )
        return self._predict(self.models_[0], X), self._predict(self.models_[1], X)

    def _effect_one(self, X: np.ndarray) -> np.ndarray:
        if self.kind != "x":
            mu0, mu1 = self._outcomes_one(X)
            return mu1 - mu0
        g = predict_treated(self.propensity_model_, X)[:, None]
        tau0 = self.effect_models_[0].predict(X)
        tau1 = self.effect_models_[1].predict(X)
        tau = g * tau0 + (1.0 - g) * tau1
        if self.spec_.outcome == "class":
            tau = tau - tau.mean(axis=1, keepdims=True)
        return tau

    def propensity(self, X: Any, task: str | None = None) -> np.ndarray:
        """The X-learner's ``g(x) = P(T = 1 | x)`` for ``task``."""
        spec = self._resolve_task(task)
        if self.kind != "x":
            raise ValueError("only the X-learner (kind='x') fits a propensity model")
        x = self._check_X(X)
        return predict_treated(self._estimator_for(spec.name).propensity_model_, x)

for _kind in ("s", "t", "x"):
    register(
        f"mc_{_kind}_learner", MetaLearnerMC,
        f"{_kind.upper()}-learner for class/vector outcomes (GBM)", family="multi_outcome",
        kind=_kind,
    )
