"""EconML's CATE learners behind the package's learner protocol.

One wrapper, :class:`EconMLLearner`, exposes six EconML estimators, chosen by ``method``:

- ``"s"``: ``econml.metalearners.SLearner`` (Künzel, Sekhon, Bickel & Yu 2019, PNAS);
- ``"t"``: ``econml.metalearners.TLearner`` (Künzel et al. 2019);
- ``"x"``: ``econml.metalearners.XLearner`` (Künzel et al. 2019);
- ``"dr"``: ``econml.dr.DRLearner`` (Kennedy 2023, Electronic Journal of Statistics);
- ``"r"``: ``econml.dml.NonParamDML`` (Nie & Wager 2021, Biometrika);
- ``"causal_forest"``: ``econml.dml.CausalForestDML`` (Athey, Tibshirani & Wager 2019,
  Annals of Statistics).

Every nuisance and final model is a scikit-learn random forest made by the package's one
factory, :func:`ehrcausal.nuisance.make_model` (kind ``"forest"``), from the wrapper's
``n_estimators``, ``min_samples_leaf``, ``max_depth``, ``n_jobs`` and ``random_state``;
``random_state`` is also passed to EconML's own ``random_state`` arguments (cross-fitting
folds, the causal forest), so a fixed integer makes a fit reproducible. The thin
subclasses :class:`SLearner`, :class:`TLearner`, :class:`XLearner`, :class:`DRLearner`,
:class:`RLearner` and :class:`CausalForest` fix ``method``.

The cross-fitted methods (``"dr"``, ``"r"``, ``"causal_forest"``) need ``cv`` units in each
arm (EconML stratifies its folds by treatment); ``fit`` says so, naming ``cv``, before EconML's
splitter fails or warns. The methods that estimate a propensity (``"x"``, ``"dr"``, ``"r"``,
``"causal_forest"``) give an :class:`~ehrcausal.validation.OverlapWarning` when estimates fall
outside ``[0.01, 0.99]`` (:func:`~ehrcausal.validation.warn_overlap`): out-of-fold propensities
of the cross-fitted methods, the X-learner's own (fitted on every row) for ``"x"``.

EconML is imported when a learner is fitted, not when this module is imported.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from ..nuisance import make_model
from ..runtime import check_seed
from ..validation import check_float32_range, check_int, check_number, warn_overlap
from .base import CATELearner, store_params

#: the values ``EconMLLearner(method=...)`` accepts
METHODS: tuple[str, ...] = ("s", "t", "x", "dr", "r", "causal_forest")
#: methods whose fitted models give the potential outcomes mu0(x), mu1(x)
OUTCOME_METHODS: tuple[str, ...] = ("s", "t")
#: methods that cross-fit their nuisances over ``cv`` folds stratified by treatment
CROSSFIT_METHODS: tuple[str, ...] = ("dr", "r", "causal_forest")
_FLOAT32_WHY = "scikit-learn's trees split on float32 values"


@contextmanager
def _quiet_econml() -> Iterator[None]:
    """Silence EconML's known, uninformative warnings inside the block only (not globally)."""
    with warnings.catch_warnings():
        # API deprecations raised by or through EconML (e.g. scikit-learn renames)
        for category in (DeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", category=category, module=r"econml(\..*)?$")
        # CausalForestDML: a few units without out-of-bag trees (affects only its ate_)
        warnings.filterwarnings("ignore", message="Could not generate out-of-bag predictions")
        # cross-fitting: EconML's weight-balanced KFold falls back to stratification
        warnings.filterwarnings("ignore", message="The KFold algorithm failed to find")
        yield


class EconMLLearner(CATELearner):
    """An EconML CATE estimator with random-forest nuisance models, chosen by ``method``.

    Estimand: tau(x) = E[Y(1) - Y(0) | X = x] under unconfoundedness and overlap.

    - ``"s"`` (S-learner): one outcome model mu(x, t) on [x, t]; tau(x) = mu(x, 1) - mu(x, 0).
    - ``"t"`` (T-learner): one outcome model per arm; tau(x) = mu_1(x) - mu_0(x).
    - ``"x"`` (X-learner): imputed effects Y - mu_0(x) (treated) and mu_1(x) - Y (controls)
      regressed on x, combined as tau(x) = e(x) tau_0(x) + (1 - e(x)) tau_1(x).
      Künzel et al. (2019), "Metalearners for estimating heterogeneous treatment effects using
      machine learning", PNAS (all three).
    - ``"dr"`` (DR-learner): cross-fitted doubly robust pseudo-outcomes
      psi = mu_1 - mu_0 + T (Y - mu_1) / e - (1 - T)(Y - mu_0) / (1 - e) regressed on x.
      Kennedy (2023), "Towards optimal doubly robust estimation of heterogeneous causal
      effects", Electronic Journal of Statistics.
    - ``"r"`` (R-learner): minimises sum_i [(Y_i - m(x_i)) - (T_i - e(x_i)) tau(x_i)]^2 with
      cross-fitted m = E[Y | x], e = P(T = 1 | x) (EconML's ``NonParamDML``). Nie & Wager
      (2021), "Quasi-oracle estimation of heterogeneous treatment effects", Biometrika.
    - ``"causal_forest"``: an honest generalised random forest solving the same residual-on-
      residual moment locally (EconML's ``CausalForestDML``). Athey, Tibshirani & Wager (2019),
      "Generalized random forests", Annals of Statistics.

    Parameters
    ----------
    method : {"s", "t", "x", "dr", "r", "causal_forest"}, default="dr"
        Which learner.
    n_estimators : int, default=100
        Trees in every forest (nuisance, final and causal forest).
    min_samples_leaf : int, default=5
        Minimum samples per leaf in every forest.
    max_depth : int or None, default=None
        Maximum tree depth in every forest.
    cv : int, default=3
        Cross-fitting folds of the DR- and R-learners and the causal forest; each arm then needs
        at least ``cv`` units.
    propensity_clip : float, default=0.01
        Propensities are clipped to [clip, 1 - clip] in the DR-learner's pseudo-outcomes
        (EconML's ``min_propensity``). The other methods do not divide by propensities and
        ignore it.
    random_state : int, RandomState or None, default=None
        Passed to every forest and to EconML's own ``random_state`` arguments.
    n_jobs : int or None, default=1
        Parallel jobs of every forest.

    Attributes
    ----------
    estimator_ : econml estimator
        The fitted EconML object.

    Notes
    -----
    ``fit`` takes no extra input: a ``val_mask`` is rejected like any unknown argument (these
    learners have no early stopping and train on every row given; the registry's
    ``fit_inputs`` says which learners take one). ``predict_outcomes`` is available for ``"s"``
    and ``"t"`` only.
    """

    method: str

    def __init__(
        self,
        method: str = "dr",
        n_estimators: int = 100,
        min_samples_leaf: int = 5,
        max_depth: int | None = None,
        cv: int = 3,
        propensity_clip: float = 0.01,
        random_state: Any = None,
        n_jobs: int | None = 1,
    ) -> None:
        store_params(self, locals())

    @property
    def models_outcomes(self) -> bool:  # type: ignore[override]
        """Whether :meth:`predict_outcomes` is available (S- and T-learners only)."""
        return self.method in OUTCOME_METHODS

    # --- construction ---------------------------------------------------------------------
    def _check_params(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {list(METHODS)}, got {self.method!r}")
        check_int(self.n_estimators, "n_estimators", 1)
        check_int(self.min_samples_leaf, "min_samples_leaf", 1)
        if self.max_depth is not None:
            check_int(self.max_depth, "max_depth", 1)
        check_int(self.cv, "cv", 2)
        check_number(self.propensity_clip, "propensity_clip", 0.0, 0.5, high_open=True)
        rs = self.random_state
        if isinstance(rs, np.random.Generator):
            raise ValueError(
                "random_state of the EconML learners must be None, an int in [0, 2**32 - 1] or "
                f"a numpy RandomState (scikit-learn's forests take no Generator), got {rs!r}"
            )
        if rs is not None and not isinstance(rs, np.random.RandomState):
            check_seed(rs)  # validation only: the value itself reaches the forests and EconML

    def _forest(self, kind: str) -> RandomForestRegressor | RandomForestClassifier:
        return make_model(
            "forest",
            kind,  # type: ignore[arg-type]
            self.random_state,
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_depth=self.max_depth,
            n_jobs=self.n_jobs,
        )

    def _make_estimator(self) -> Any:
        from econml import dml, dr, metalearners

        def reg() -> RandomForestRegressor:
            return self._forest("regressor")

        def clf() -> RandomForestClassifier:
            return self._forest("classifier")

        crossfit = {"cv": self.cv, "random_state": self.random_state}
        if self.method == "s":
            return metalearners.SLearner(overall_model=reg())
        if self.method == "t":
            return metalearners.TLearner(models=reg())
        if self.method == "x":
            return metalearners.XLearner(models=reg(), propensity_model=clf(), cate_models=reg())
        if self.method == "dr":
            return dr.DRLearner(
                model_propensity=clf(),
                model_regression=reg(),
                model_final=reg(),
                min_propensity=self.propensity_clip,
                **crossfit,
            )
        if self.method == "r":
            return dml.NonParamDML(
                model_y=reg(), model_t=clf(), model_final=reg(), discrete_treatment=True, **crossfit
            )
        # causal_forest; inference=False: no intervals are used, and it lifts EconML's rule
        # that n_estimators be a multiple of its subforest size
        return dml.CausalForestDML(
            model_y=reg(),
            model_t=clf(),
            discrete_treatment=True,
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_depth=self.max_depth,
            inference=False,
            n_jobs=self.n_jobs,
            **crossfit,
        )

    # --- protocol -------------------------------------------------------------------------
    def _arm_minimum(self) -> tuple[int, str | None]:
        """``cv`` units per arm for the cross-fitted methods (folds stratified by treatment)."""
        self._check_params()
        if self.method in CROSSFIT_METHODS and self.cv > self.min_per_arm:
            return self.cv, f"cv = {self.cv} cross-fitting folds, stratified by treatment"
        return self.min_per_arm, None

    def _check_X(self, X: Any) -> np.ndarray:
        return check_float32_range(super()._check_X(X), "X", why=_FLOAT32_WHY)

    def _fit(self, Y: np.ndarray, T: np.ndarray, X: np.ndarray, **fit_params: Any) -> None:
        self._reject_unknown(fit_params)
        self._check_params()
        check_float32_range(X, "X", why=_FLOAT32_WHY)
        est = self._make_estimator()
        crossfit = self.method in CROSSFIT_METHODS
        with _quiet_econml():
            # cache_values keeps the out-of-fold nuisances for the overlap diagnostic
            est.fit(Y, T, X=X, **({"cache_values": True} if crossfit else {}))
        self.estimator_ = est
        e = self._propensity_estimates(X)
        if e is not None:
            warn_overlap(e, type(self).__name__, stacklevel=3)

    def _propensity_estimates(self, X: np.ndarray) -> np.ndarray | None:
        """The propensities the fitted method used, before clipping; None if it uses none.

        DR-learner: its out-of-fold raw propensities. R-learner and causal forest: from the
        out-of-fold treatment residuals ``T - e`` (``e = 1 - r`` for a treated unit, ``-r`` for a
        control; a residual of exactly 0 maps to 0, outside the overlap bounds either way).
        X-learner: its propensity model, fitted on every row, at the training rows. The
        cached nuisances (and their copy of the data) are released afterwards.
        """
        est = self.estimator_
        if self.method == "x":
            return est.propensity_models[0].predict_proba(X)[:, 1]
        if self.method not in CROSSFIT_METHODS:
            return None
        if self.method == "dr":
            raw = est._cached_values.nuisances[2]  # (Y_pred, clipped, raw) of EconML 0.17
            e = np.asarray(raw)[:, 1]
        else:
            _, t_res, _, _ = est.residuals_
            r = np.ravel(t_res)
            e = np.where(r > 0, 1.0 - r, -r)
        est._cached_values = None  # as after fit(cache_values=False): no copy of the data
        return e

    def _effect(self, X: np.ndarray) -> np.ndarray:
        with _quiet_econml():
            return np.ravel(self.estimator_.effect(X))

    def _predict_outcomes(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.method == "t":
            model0, model1 = self.estimator_.models
            return model0.predict(X), model1.predict(X)
        # S-learner: EconML fits one model on [X, 1 - T, T] (the control column, then T)
        ones, zeros = np.ones((len(X), 1)), np.zeros((len(X), 1))
        model = self.estimator_.overall_model
        mu0 = model.predict(np.hstack([X, ones, zeros]))
        mu1 = model.predict(np.hstack([X, zeros, ones]))
        return mu0, mu1


class _FixedMethod(EconMLLearner):
    """An :class:`EconMLLearner` whose ``method`` is fixed by the subclass (not a parameter)."""

    method: ClassVar[str]

    def __init__(
        self,
        n_estimators: int = 100,
        min_samples_leaf: int = 5,
        max_depth: int | None = None,
        cv: int = 3,
        propensity_clip: float = 0.01,
        random_state: Any = None,
        n_jobs: int | None = 1,
    ) -> None:
        store_params(self, locals())


class SLearner(_FixedMethod):
    """S-learner: one forest mu(x, t); tau(x) = mu(x, 1) - mu(x, 0) (Künzel et al. 2019).

    Parameters as :class:`EconMLLearner` without ``method``.
    """

    method = "s"


class TLearner(_FixedMethod):
    """T-learner: a forest per arm; tau(x) = mu_1(x) - mu_0(x) (Künzel et al. 2019).

    Parameters as :class:`EconMLLearner` without ``method``.
    """

    method = "t"


class XLearner(_FixedMethod):
    """X-learner: imputed effects regressed per arm, propensity-weighted (Künzel et al. 2019).

    tau(x) = e(x) tau_0(x) + (1 - e(x)) tau_1(x), with tau_1 fitted on Y - mu_0(x) among the
    treated and tau_0 on mu_1(x) - Y among the controls. Parameters as :class:`EconMLLearner`
    without ``method``.
    """

    method = "x"


class DRLearner(_FixedMethod):
    """DR-learner: cross-fitted doubly robust pseudo-outcomes regressed on x (Kennedy 2023).

    psi = mu_1 - mu_0 + T (Y - mu_1) / e - (1 - T)(Y - mu_0) / (1 - e), e clipped to
    [propensity_clip, 1 - propensity_clip]. Parameters as :class:`EconMLLearner` without
    ``method``.
    """

    method = "dr"


class RLearner(_FixedMethod):
    """R-learner (EconML ``NonParamDML``): residual-on-residual loss (Nie & Wager 2021).

    tau = argmin sum_i [(Y_i - m(x_i)) - (T_i - e(x_i)) tau(x_i)]^2 with cross-fitted m, e.
    Parameters as :class:`EconMLLearner` without ``method``.
    """

    method = "r"


class CausalForest(_FixedMethod):
    """Causal forest (EconML ``CausalForestDML``; Athey, Tibshirani & Wager 2019).

    An honest generalised random forest solving the residualised moment
    E[(Y - m(x) - (T - e(x)) tau(x)) (T - e(x)) | x] = 0 locally. Parameters as
    :class:`EconMLLearner` without ``method``.
    """

    method = "causal_forest"
