"""The learner protocol shared by every CATE learner of the package (EconML-compatible).

::

    est = make("tarnet", random_state=0)      # __init__ stores parameters only
    est.fit(Y, T, X=X)                         # returns self
    tau = est.effect(X)                        # (n,) estimated CATE
    est.ate(X)                                 # float, mean of effect(X)
    mu0, mu1 = est.predict_outcomes(X)         # where the learner models outcomes

Subclasses implement ``_fit(Y, T, X, **fit_params)`` and ``_effect(X)`` (and
``_predict_outcomes(X)`` when they model outcomes); :class:`CATELearner` does the validation at
the boundary, records ``n_features_in_`` (and ``feature_names_in_`` for DataFrames) and checks
that the learner is fitted before inference.

Columns follow scikit-learn: a fit on a DataFrame sets ``feature_names_in_``, a fit on an array
deletes it, and every method that takes ``X`` after fit (``effect``, ``ate``,
``predict_outcomes`` and each learner's own, e.g. ``propensity`` or ``risk``) goes through
:meth:`CATELearner._check_X`, which raises a ``ValueError`` naming the unexpected, missing or
reordered columns of a DataFrame (an array is accepted).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ..validation import check_features, check_fit_inputs, feature_names


def store_params(obj: Any, params: dict[str, Any]) -> None:
    """Store ``__init__`` arguments unchanged as attributes (scikit-learn convention).

    Call as ``store_params(self, locals())`` in an ``__init__`` whose signature lists every
    parameter explicitly (scikit-learn's ``get_params`` reads the signature).
    """
    for name, value in params.items():
        if name not in ("self", "__class__"):
            setattr(obj, name, value)


class CATELearner(BaseEstimator):
    """Base class: validation, fitted-state bookkeeping and the public protocol."""

    #: whether ``predict_outcomes`` is available
    models_outcomes: bool = False
    #: minimum number of units per arm that ``fit`` accepts (see :meth:`_arm_minimum`)
    min_per_arm: int = 2

    def _arm_minimum(self) -> tuple[int, str | None]:
        """The units each arm needs, and why when a parameter sets it (e.g. cross-fitting folds).

        Learners whose minimum follows a parameter override this, so that too small an arm is
        a ``ValueError`` naming the parameter before a third-party library fails.
        """
        return self.min_per_arm, None

    def fit(self, Y: Any, T: Any, *, X: Any, **fit_params: Any) -> CATELearner:
        """Fit on outcomes ``Y`` (n,), binary treatment ``T`` (n,) and covariates ``X`` (n, d).

        Extra training-time information (e.g. annotations, a validation mask) is passed as
        keyword arguments; inference needs ``X`` only.
        """
        y, t, x = self._check_fit(Y, T, X)
        self._fit(y, t, x, **fit_params)
        self.fitted_ = True
        return self

    def _check_fit(self, Y: Any, T: Any, X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The boundary of ``fit``: the inputs checked, the features recorded, unfitted state.

        Also used by fits that train several estimators at once
        (:func:`ehrcausal.learners.batched.fit_batched`).
        """
        if hasattr(self, "fitted_"):  # a failed refit must not look fitted
            del self.fitted_
        minimum, reason = self._arm_minimum()
        y, t, x = check_fit_inputs(Y, T, X, min_per_arm=minimum, reason=reason)
        self._record_features(feature_names(X), x.shape[1])
        return y, t, x

    def _record_features(self, names: np.ndarray | None, n_features: int) -> None:
        """``n_features_in_``; ``feature_names_in_`` for a DataFrame, deleted for an array.

        ``names`` are :func:`~ehrcausal.validation.feature_names` of the fitted ``X``.
        """
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.n_features_in_ = n_features

    def _check_X(self, X: Any) -> np.ndarray:
        """Inference-time ``X`` as a float array: fitted, same width, same columns (DataFrame)."""
        check_is_fitted(self, "fitted_")
        return check_features(
            X, self.n_features_in_, feature_names_in=getattr(self, "feature_names_in_", None)
        )

    def effect(self, X: Any) -> np.ndarray:
        """Estimated conditional average treatment effect tau(x) = E[Y(1) - Y(0) | X = x]."""
        x = self._check_X(X)
        tau = np.asarray(self._effect(x), dtype=float).reshape(len(x), -1)
        return tau[:, 0] if tau.shape[1] == 1 else tau

    def ate(self, X: Any) -> float:
        """Average of :meth:`effect` over ``X``."""
        return float(np.mean(self.effect(X)))

    def predict_outcomes(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Predicted potential outcomes ``(mu0(x), mu1(x))``."""
        if not self.models_outcomes:
            raise NotImplementedError(f"{type(self).__name__} does not model potential outcomes")
        x = self._check_X(X)
        mu0, mu1 = self._predict_outcomes(x)
        return np.asarray(mu0, dtype=float), np.asarray(mu1, dtype=float)

    # --- to implement -------------------------------------------------------------------
    def _fit(self, Y: np.ndarray, T: np.ndarray, X: np.ndarray, **fit_params: Any) -> None:
        raise NotImplementedError

    def _effect(self, X: np.ndarray) -> np.ndarray:
        mu0, mu1 = self._predict_outcomes(X)
        return mu1 - mu0

    def _predict_outcomes(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _reject_unknown(self, fit_params: dict[str, Any], allowed: tuple[str, ...] = ()) -> None:
        """Raise ``ValueError`` for fit keyword arguments outside ``allowed``.

        ``allowed`` is what the learner declares as its registry ``fit_inputs``; a learner that
        would ignore an input (e.g. ``val_mask`` without early stopping) rejects it instead.
        """
        unknown = sorted(set(fit_params) - set(allowed))
        if unknown:
            raise ValueError(
                f"unexpected fit argument(s) {unknown}; {type(self).__name__} accepts "
                f"{list(allowed) or 'none'}"
            )
