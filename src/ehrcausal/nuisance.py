r"""The nuisance engine: one model factory, one P(T=1), one cross-fitting loop, one AIPW score.

Notation: outcome :math:`Y`, binary treatment :math:`T \in \{0, 1\}`, covariates :math:`X`;
outcome regressions :math:`\mu_t(x) = E[Y \mid X = x, T = t]`, the marginal regression
:math:`m(x) = E[Y \mid X = x]` and the propensity :math:`e(x) = P(T = 1 \mid X = x)`.

- :func:`make_model` -- a fresh, seeded scikit-learn regressor or classifier from a short name
  (table below) or from an unfitted estimator, which is cloned.
- :func:`fit_weighted` -- fit with optional per-row weights, routed through pipelines.
- :func:`predict_treated` -- :math:`\hat e(x)` from a fitted classifier, optionally clipped.
- :func:`cross_fit` -- out-of-fold :math:`\hat\mu_0, \hat\mu_1, \hat e` (and :math:`\hat m`)
  over :math:`K` folds (Chernozhukov et al. 2018); ``cv=1`` fits and predicts on the same rows.
- :func:`aipw_scores` -- the augmented inverse-propensity-weighted pseudo-outcome (Robins,
  Rotnitzky & Zhao 1994).
- :func:`select_model` -- choose a model kind by out-of-fold loss among candidates (what the
  nuisance spec ``"auto"`` does inside :func:`cross_fit`).
- :func:`dr_scores` -- cross-fitted AIPW scores, the DR-learner's pseudo-outcomes (Kennedy 2023)
  and the truth-free stand-in for the effect in ranking metrics (Yadlowsky et al. 2021).

Model kinds (``random_state`` reaches every part of a model that has one):

===========  ===========================================  =======================================
kind         regressor                                    classifier
===========  ===========================================  =======================================
ridge        StandardScaler + RidgeCV (alphas 10^-3 ..    StandardScaler +
             10^3, 13 values, efficient leave-one-out)    LogisticRegression(C=1, max_iter=2000)
linear       LinearRegression                             LogisticRegression(C=1e6,
                                                          max_iter=2000), practically unpenalised
gbm          HistGradientBoostingRegressor                HistGradientBoostingClassifier
             (200 iterations, learning rate 0.05, no early stopping)
gbm_default  HistGradientBoostingRegressor                HistGradientBoostingClassifier
             (scikit-learn's defaults: 100 iterations, learning rate 0.1, early stopping
             when n > 10 000)
forest       RandomForestRegressor                        RandomForestClassifier
             (100 trees, min_samples_leaf=5)
poly         StandardScaler + degree-2 polynomial         the same features + StandardScaler +
             features (squares and pairwise interactions) LogisticRegression(C=1, max_iter=2000)
             + StandardScaler + RidgeCV (as ridge)
stack        StackingRegressor of ridge, forest and       StackingClassifier of ridge, forest and
             gbm_default, final RidgeCV, 3 inner folds    gbm_default, final logistic, 3 folds
===========  ===========================================  =======================================

Data-chosen nuisances: the spec ``"auto"`` (or an :class:`Auto` with its own candidates) makes
:func:`cross_fit` choose each model by its out-of-fold loss among candidates
(:func:`select_model`: squared error of the per-arm outcome regressions, log loss of the
propensity), and records the choice and every candidate's loss on the result
(:attr:`CrossFit.selection`). The default candidates are ``ridge``, ``forest``, ``gbm``,
``stack`` and, when the covariates have at most :data:`POLY_MAX_FEATURES` columns (a small,
e.g. discrete annotation space), ``poly``; with unequal sample weights the ``stack`` is left
out (scikit-learn's stacking cannot pass weights into its pipelines).

References: Robins, Rotnitzky & Zhao (1994), "Estimation of regression coefficients when some
regressors are not always observed", JASA 89; Chernozhukov, Chetverikov, Demirer, Duflo,
Hansen, Newey & Robins (2018), "Double/debiased machine learning for treatment and structural
parameters", Econometrics Journal 21; Kennedy (2023), "Towards optimal doubly robust estimation
of heterogeneous causal effects", Electronic Journal of Statistics 17; Yadlowsky, Fleming, Shah,
Brunskill & Wager (2021), "Evaluating treatment prioritization rules via rank-weighted average
treatment effects", arXiv:2111.07966.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Integral
from typing import Any, Literal

import numpy as np
from sklearn.base import BaseEstimator, clone, is_classifier
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
    StackingClassifier,
    StackingRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression, RidgeCV
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler
from sklearn.utils.validation import has_fit_parameter

from .runtime import check_seed
from .validation import (
    ArrayLike,
    as_1d,
    as_2d,
    check_fit_inputs,
    check_int,
    check_number,
    check_propensity,
    check_same_length,
    check_treatment,
    warn_overlap,
)

__all__ = [
    "MODEL_KINDS",
    "AUTO_CANDIDATES",
    "POLY_MAX_FEATURES",
    "Auto",
    "Selection",
    "Nuisance",
    "make_model",
    "fit_weighted",
    "predict_treated",
    "select_model",
    "CrossFit",
    "cross_fit",
    "aipw_scores",
    "dr_scores",
]

#: the names :func:`make_model` accepts (besides an unfitted estimator)
MODEL_KINDS: tuple[str, ...] = (
    "ridge", "linear", "gbm", "gbm_default", "forest", "poly", "stack",
)

#: the candidates of the ``"auto"`` nuisance, in the order ties are broken
AUTO_CANDIDATES: tuple[str, ...] = ("ridge", "poly", "forest", "gbm", "stack")

#: ``poly`` joins the ``"auto"`` candidates only up to this many covariates (d <= 20 gives at
#: most 230 polynomial features)
POLY_MAX_FEATURES = 20

_TASKS = ("regressor", "classifier")



@dataclass(frozen=True)
class Auto:
    """A nuisance chosen by data: the candidate with the smallest out-of-fold loss.

    Attributes:
        candidates: model kinds (or unfitted estimators) to choose from; ``None`` takes
            :data:`AUTO_CANDIDATES` (``poly`` only when the covariates have at most
            :data:`POLY_MAX_FEATURES` columns).
        cv: folds of the selection's out-of-fold loss (at least 2).
    """

    candidates: tuple[str | BaseEstimator, ...] | None = None
    cv: int = 3


#: a model kind, ``"auto"``, an :class:`Auto`, an unfitted estimator, or a pair
#: (outcome regressor, propensity classifier) of those
Spec = str | BaseEstimator | Auto
Nuisance = Spec | tuple[Spec, Spec]


# ---------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------


def _build(kind: str, task: str) -> BaseEstimator:
    regressor = task == "regressor"
    if kind == "ridge":
        if regressor:
            return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    if kind == "linear":
        return LinearRegression() if regressor else LogisticRegression(C=1e6, max_iter=2000)
    if kind == "gbm":
        cls = HistGradientBoostingRegressor if regressor else HistGradientBoostingClassifier
        return cls(max_iter=200, learning_rate=0.05, early_stopping=False)
    if kind == "gbm_default":
        return HistGradientBoostingRegressor() if regressor else HistGradientBoostingClassifier()
    if kind == "forest":
        cls = RandomForestRegressor if regressor else RandomForestClassifier
        return cls(n_estimators=100, min_samples_leaf=5)
    if kind == "poly":
        features = PolynomialFeatures(degree=2, include_bias=False)
        if regressor:
            return make_pipeline(StandardScaler(), features, StandardScaler(),
                                 RidgeCV(alphas=np.logspace(-3, 3, 13)))
        return make_pipeline(StandardScaler(), features, StandardScaler(),
                             LogisticRegression(C=1.0, max_iter=2000))
    if kind == "stack":
        base = [(name, _build(name, task)) for name in ("ridge", "forest", "gbm_default")]
        if regressor:
            return StackingRegressor(base, final_estimator=RidgeCV(), cv=3)
        return StackingClassifier(base, final_estimator=LogisticRegression(max_iter=2000), cv=3)
    raise ValueError(f"unknown model kind {kind!r}; known kinds: {', '.join(MODEL_KINDS)}")


def _final_step(model: BaseEstimator) -> BaseEstimator:
    """The estimator at the end of (nested) pipelines."""
    while isinstance(model, Pipeline):
        model = model.steps[-1][1]
    return model


def _set_random_state(model: BaseEstimator, random_state: Any) -> BaseEstimator:
    """Set every ``random_state`` parameter of ``model``, nested pipeline steps included."""
    keys = [k for k in model.get_params(deep=True) if k.split("__")[-1] == "random_state"]
    if keys:
        model.set_params(**dict.fromkeys(keys, random_state))
    return model


def make_model(
    kind: str | BaseEstimator,
    task: Literal["regressor", "classifier"],
    random_state: int | np.random.RandomState | None = None,
    **overrides: Any,
) -> BaseEstimator:
    """A fresh, unfitted scikit-learn model: the one factory of nuisance and final models.

    Args:
        kind: a name of :data:`MODEL_KINDS` (see the module table), or an unfitted estimator,
            which is cloned (:func:`sklearn.base.clone`) so the caller's object is never fitted.
        task: ``"regressor"`` or ``"classifier"``. A classifier must have ``predict_proba``; an
            estimator that is a classifier is refused where a regressor is asked for.
        random_state: given to every ``random_state`` parameter of the model (nested pipeline
            steps included): an int, a :class:`numpy.random.RandomState`, or ``None`` (unseeded).
        **overrides: hyper-parameters set on the model (on the last step of a pipeline), e.g.
            ``make_model("forest", "regressor", 0, n_estimators=10)``.

    Raises:
        ValueError: unknown kind or task, an object that is not a scikit-learn estimator, an
            estimator of the wrong task, a bad ``random_state`` or an unknown override.
    """
    if task not in _TASKS:
        raise ValueError(f"task must be 'regressor' or 'classifier', got {task!r}")
    if isinstance(random_state, Integral) and not isinstance(random_state, bool):
        random_state = int(random_state)
    elif random_state is not None and not isinstance(random_state, np.random.RandomState):
        raise ValueError(
            f"random_state must be None, an int or a numpy RandomState, got {random_state!r}"
        )
    if isinstance(kind, str):
        model = _build(kind, task)
    elif isinstance(kind, BaseEstimator) or (hasattr(kind, "get_params") and hasattr(kind, "fit")):
        model = clone(kind)
        if task == "classifier" and not hasattr(model, "predict_proba"):
            raise ValueError(
                f"{type(kind).__name__} has no predict_proba; a classifier is needed here"
            )
        if task == "regressor" and (is_classifier(model) or not hasattr(model, "predict")):
            raise ValueError(
                f"{type(kind).__name__} is not a regressor; a regressor is needed here"
            )
    else:
        raise ValueError(
            f"model kind must be one of {', '.join(MODEL_KINDS)} or an unfitted scikit-learn "
            f"estimator, got {kind!r}"
        )
    if overrides:
        _final_step(model).set_params(**overrides)
    return _set_random_state(model, random_state)


def _sample_weight_key(model: BaseEstimator) -> str:
    """The ``fit`` keyword that reaches the estimator at the end of (nested) pipelines."""
    if isinstance(model, Pipeline):
        name, last = model.steps[-1]
        return f"{name}__{_sample_weight_key(last)}"
    if not has_fit_parameter(model, "sample_weight"):
        raise ValueError(f"{type(model).__name__}.fit does not accept sample_weight")
    return "sample_weight"


def _check_weights(sample_weight: ArrayLike, n: int) -> np.ndarray:
    w = np.asarray(sample_weight, dtype=float)
    if w.ndim != 1 or len(w) != n:
        raise ValueError(f"sample_weight must have shape ({n},), got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0):
        raise ValueError("sample_weight must be finite, non-negative and not all zero")
    return w


def fit_weighted(
    model: BaseEstimator, X: np.ndarray, y: np.ndarray, sample_weight: ArrayLike = None
) -> BaseEstimator:
    r"""Fit ``model`` on ``(X, y)`` with optional per-row ``sample_weight``; return it.

    Minimises the weighted loss :math:`\sum_i w_i\,\ell(y_i, f(x_i))` of the model. For a
    :class:`~sklearn.pipeline.Pipeline` the weights go to its last step as
    ``<step>__sample_weight`` (the pre-processing steps are fitted unweighted), recursively for
    nested pipelines. Weights must be finite, non-negative, not all zero, one per row; weights
    that are all 1 give the unweighted fit (so a model without weighted fitting, such as the
    ``stack``, still takes them).
    """
    if sample_weight is None:
        return model.fit(X, y)
    w = _check_weights(sample_weight, len(X))
    if np.all(w == 1.0):
        return model.fit(X, y)  # unit weights: the unweighted fit, for any model
    return model.fit(X, y, **{_sample_weight_key(model): w})


def predict_treated(model: BaseEstimator, X: ArrayLike, clip: float | None = None) -> np.ndarray:
    r""":math:`\hat e(x) = \hat P(T = 1 \mid X = x)` from a fitted binary classifier.

    The column of ``predict_proba`` whose label in ``classes_`` is 1 (so any 0/1 label works,
    e.g. the annotation indicator). With ``clip`` :math:`= c` the probabilities are clipped to
    :math:`[c, 1 - c]`, which bounds the inverse weights :math:`1/\hat e` and
    :math:`1/(1 - \hat e)` by :math:`1/c`.

    Args:
        model: a fitted classifier with ``predict_proba`` and ``classes_`` holding the label 1.
        X: covariates ``(n, d)``.
        clip: ``None`` (no clipping) or a number in ``[0, 0.5)``.

    Raises:
        ValueError: no ``predict_proba``, an unfitted model, a model that never saw the label 1,
            or a bad ``clip``.
    """
    if not hasattr(model, "predict_proba"):
        raise ValueError(
            f"{type(model).__name__} has no predict_proba; P(T=1|X) needs a classifier"
        )
    classes = getattr(model, "classes_", None)
    if classes is None:
        raise ValueError(f"{type(model).__name__} is not fitted (it has no classes_)")
    classes = list(classes)
    if 1 not in classes:
        raise ValueError(f"the classifier was fitted without the label 1 (its classes: {classes})")
    p = np.asarray(model.predict_proba(X))[:, classes.index(1)]
    if clip is not None:
        c = check_number(clip, "clip", 0.0, 0.5, high_open=True)
        p = np.clip(p, c, 1.0 - c)
    return p


# ---------------------------------------------------------------------------------------------
# data-chosen nuisances
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """The record of :func:`select_model`: what was chosen, among what, by which loss.

    Attributes:
        task: ``"regressor"`` or ``"classifier"``.
        chosen: the chosen candidate (a kind name or an unfitted estimator).
        name: its label (the kind, or the estimator's class name).
        losses: out-of-fold loss of every candidate, by label, in candidate order.
        loss: ``"squared error"`` (regressor) or ``"log loss"`` (classifier).
        by_arm: whether regressors were fitted per treatment arm (the outcome models).
    """

    task: str
    chosen: str | BaseEstimator
    name: str
    losses: dict[str, float]
    loss: str
    by_arm: bool = False


def _label(spec: str | BaseEstimator) -> str:
    return spec if isinstance(spec, str) else type(spec).__name__


def _is_auto(spec: Any) -> bool:
    return isinstance(spec, Auto) or (isinstance(spec, str) and spec == "auto")


def _candidates(
    spec: Any, n_features: int, weighted: bool = False
) -> tuple[tuple[str | BaseEstimator, ...], int]:
    auto = spec if isinstance(spec, Auto) else Auto()
    cv = check_int(auto.cv, "Auto.cv", 2)
    if auto.candidates is None:
        chosen = tuple(c for c in AUTO_CANDIDATES
                       if (c != "poly" or n_features <= POLY_MAX_FEATURES)
                       and (c != "stack" or not weighted))
        return chosen, cv
    candidates = tuple(auto.candidates)
    if not candidates:
        raise ValueError("Auto.candidates must name at least one model kind or estimator")
    return candidates, cv


def select_model(
    X: ArrayLike,
    y: ArrayLike,
    task: Literal["regressor", "classifier"],
    *,
    candidates: Auto | str = "auto",
    arms: ArrayLike = None,
    sample_weight: ArrayLike = None,
    random_state: Any = None,
) -> Selection:
    r"""Choose a model by its out-of-fold loss among candidates.

    The rows are split into the ``cv`` folds of ``candidates`` (an :class:`Auto`; ``"auto"``
    is ``Auto()``), stratified by the class (classifier) or by the arm (regressor with
    ``arms``). Every candidate :math:`c` is fitted on the other folds and predicts the held-out
    fold, giving :math:`\hat f_c^{(-k(i))}(x_i)` for every row; the chosen model minimises the
    (weighted) out-of-fold loss

    .. math:: L(c) = rac{\sum_i w_i\,\ell(y_i, \hat f_c^{(-k(i))}(x_i))}{\sum_i w_i},

    with :math:`\ell` the squared error of a regressor and the log loss of a classifier
    (probabilities clipped to :math:`[10^{-6}, 1 - 10^{-6}]`); ties go to the earlier
    candidate. With ``arms`` a regressor is fitted per arm (the outcome models
    :math:`\mu_0, \mu_1` of a T-learner), so :math:`L` is the error of :math:`\hat\mu_{T_i}`.
    This is cross-validated model selection (the "discrete super learner" of van der Laan,
    Polley & Hubbard 2007, "Super learner", Statistical Applications in Genetics and Molecular
    Biology 6), here among the kinds of :func:`make_model`, one of which is itself a stack.

    Args:
        X, y: covariates ``(n, d)`` and target ``(n,)`` (0/1 for a classifier).
        task: ``"regressor"`` or ``"classifier"``.
        candidates: ``"auto"`` or an :class:`Auto`.
        arms: optional binary ``(n,)``: fit one regressor per arm.
        sample_weight: optional ``(n,)`` weights of the fits and of the loss.
        random_state: seed of the folds and of every candidate.

    Raises:
        ValueError: a bad candidate, task or input, or too few rows for the folds.
    """
    if task not in _TASKS:
        raise ValueError(f"task must be 'regressor' or 'classifier', got {task!r}")
    if not _is_auto(candidates):
        raise ValueError(f"candidates must be 'auto' or an Auto(...), got {candidates!r}")
    x = as_2d(X, "X")
    target = as_1d(y, "y")
    n = check_same_length(X=x, y=target)
    w = np.ones(n) if sample_weight is None else _check_weights(sample_weight, n)
    specs, k = _candidates(candidates, x.shape[1], weighted=not np.all(w == 1.0))
    for spec in specs:
        make_model(spec, task)  # a bad candidate fails before anything is fitted
    classifier = task == "classifier"
    if classifier:
        target = check_treatment(target, "y")
    groups = np.zeros(n, dtype=int) if arms is None else check_treatment(arms, "arms")
    check_same_length(X=x, arms=groups)
    strata = target if classifier else groups
    counts = np.bincount(strata.astype(int), minlength=2)
    smallest = int(counts[counts > 0].min())
    if smallest < k:
        raise ValueError(
            f"select_model needs at least cv = {k} rows in every "
            f"{'class' if classifier else 'arm'}; the smallest has {smallest}"
        )
    seed = check_seed(random_state)
    folds = list(StratifiedKFold(k, shuffle=True, random_state=seed).split(x, strata))
    losses: dict[str, float] = {}
    for spec in specs:
        pred = np.empty(n)
        for train, test in folds:
            for g in np.unique(groups):
                tr, te = train[groups[train] == g], test[groups[test] == g]
                if len(te) == 0:
                    continue
                model = make_model(spec, task, seed)
                fit_weighted(model, x[tr], target[tr], None if sample_weight is None else w[tr])
                pred[te] = predict_treated(model, x[te]) if classifier else model.predict(x[te])
        if classifier:
            p = np.clip(pred, 1e-6, 1 - 1e-6)
            loss = -(target * np.log(p) + (1 - target) * np.log(1 - p))
        else:
            loss = (target - pred) ** 2
        losses[_label(spec)] = float(np.sum(w * loss) / np.sum(w))
    best = min(range(len(specs)), key=lambda i: losses[_label(specs[i])])
    return Selection(
        task=task,
        chosen=specs[best],
        name=_label(specs[best]),
        losses=losses,
        loss="log loss" if classifier else "squared error",
        by_arm=arms is not None,
    )


# ---------------------------------------------------------------------------------------------
# cross-fitting
# ---------------------------------------------------------------------------------------------


def _roles(nuisance: Nuisance) -> tuple[str | BaseEstimator, str | BaseEstimator]:
    """(outcome model, propensity model) specs from a kind, an estimator or a pair."""
    if isinstance(nuisance, tuple | list):
        if len(nuisance) != 2:
            raise ValueError(
                "nuisance as a pair must be (outcome regressor, propensity classifier), got "
                f"{len(nuisance)} item(s)"
            )
        return nuisance[0], nuisance[1]
    return nuisance, nuisance


@dataclass
class CrossFit:
    r"""Out-of-fold nuisance predictions of :func:`cross_fit`, each of shape ``(n,)``.

    Attributes:
        mu0, mu1: :math:`\hat\mu_0(X_i)`, :math:`\hat\mu_1(X_i)` from the outcome models.
        e: :math:`\hat e(X_i)` (clipped if :func:`cross_fit` was given ``clip``).
        m: :math:`\hat m(X_i)`, or ``None`` unless ``marginal=True``.
        folds: the ``(train, test)`` row indices of every fold.
        models: per fold, the fitted ``propensity``, ``mu0``, ``mu1`` (and ``m``).
        selection: for each data-chosen role (``"outcome"``, ``"propensity"``), the
            :class:`Selection` that chose it; empty when every model was named.
    """

    mu0: np.ndarray
    mu1: np.ndarray
    e: np.ndarray
    m: np.ndarray | None = None
    folds: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    models: list[dict[str, BaseEstimator]] = field(default_factory=list)
    selection: dict[str, Selection] = field(default_factory=dict)


def cross_fit(
    Y: ArrayLike,
    T: ArrayLike,
    X: ArrayLike,
    *,
    nuisance: Nuisance,
    cv: int = 5,
    stratify: bool = True,
    sample_weight: ArrayLike = None,
    clip: float | None = None,
    marginal: bool = False,
    random_state: Any = None,
    model_random_state: Any = None,
    overlap_name: str | None = "cross_fit",
) -> CrossFit:
    r"""Cross-fitted nuisances: outcome models per arm, the propensity and optionally :math:`m`.

    The rows are split into ``cv`` folds :math:`I_1, \dots, I_K` (shuffled; stratified by
    :math:`T` when ``stratify``, so every fold keeps the treated share). For each fold :math:`k`
    the models are fitted on the other folds :math:`I_{-k}` and predict on :math:`I_k`:

    .. math:: \hat\mu_t^{(-k)} = \text{fit}\{(X_i, Y_i) : i \in I_{-k}, T_i = t\},\quad
              \hat e^{(-k)} = \text{fit}\{(X_i, T_i) : i \in I_{-k}\},

    and, with ``marginal``, :math:`\hat m^{(-k)} = \text{fit}\{(X_i, Y_i) : i \in I_{-k}\}`
    (the :math:`E[Y \mid X]` of the R-learner, Nie & Wager 2021). Each unit's nuisances then
    come from models that never saw it, which removes the own-observation overfitting bias of
    the plug-in (Chernozhukov et al. 2018). ``cv=1`` is the one-fold variant that fits and
    predicts on the same rows (the public AACE code does this).

    Args:
        Y, T, X: outcome ``(n,)``, binary treatment ``(n,)``, covariates ``(n, d)``.
        nuisance: a kind of :func:`make_model` (or an unfitted estimator) used for the outcome
            regressors and the propensity classifier, or a pair ``(outcome, propensity)``;
            ``"auto"`` or an :class:`Auto` (alone or in the pair) chooses that model by
            out-of-fold loss on all ``n`` rows first (:func:`select_model`; the outcome
            regressors per arm), then cross-fits the chosen one; the record is
            :attr:`CrossFit.selection`.
        cv: number of folds, ``1 <= cv <= n``.
        stratify: :class:`~sklearn.model_selection.StratifiedKFold` on ``T`` if True (each
            arm then needs at least ``cv`` units), else :class:`~sklearn.model_selection.KFold`.
        sample_weight: optional ``(n,)`` weights passed to every model fit (the rows' subset).
        clip: clip :math:`\hat e` to ``[clip, 1 - clip]`` (see :func:`predict_treated`).
        marginal: also fit :math:`\hat m` with the outcome model.
        random_state: seeds the folds and, unless ``model_random_state`` is given, every model.
        model_random_state: seed of every model, when it should differ from the folds' seed.
        overlap_name: the name an :class:`~ehrcausal.validation.OverlapWarning` gives when
            out-of-fold propensities (before clipping) fall outside ``[0.01, 0.99]``
            (:func:`~ehrcausal.validation.warn_overlap`); None turns the diagnostic off.

    Raises:
        ValueError: bad inputs or options, or a fold whose training rows miss an arm.
    """
    y, t, x = check_fit_inputs(Y, T, X, min_per_arm=0)
    n = len(y)
    k = check_int(cv, "cv", 1, n)
    w = None if sample_weight is None else _check_weights(sample_weight, n)
    if clip is not None:
        clip = check_number(clip, "clip", 0.0, 0.5, high_open=True)
    outcome, propensity = _roles(nuisance)
    for spec, task in ((outcome, "regressor"), (propensity, "classifier")):
        if _is_auto(spec):
            _candidates(spec, x.shape[1])
        else:
            make_model(spec, task)  # a bad model spec fails before any fold is fitted
    fold_seed = check_seed(random_state)
    model_seed = fold_seed if model_random_state is None else check_seed(model_random_state)
    selection: dict[str, Selection] = {}
    if _is_auto(outcome):
        selection["outcome"] = select_model(
            x, y, "regressor", candidates=outcome, arms=t, sample_weight=w, random_state=model_seed
        )
        outcome = selection["outcome"].chosen
    if _is_auto(propensity):
        selection["propensity"] = select_model(
            x, t, "classifier", candidates=propensity, sample_weight=w, random_state=model_seed
        )
        propensity = selection["propensity"].chosen
    if k > 1 and stratify:
        for arm, label in ((0, "control (T=0)"), (1, "treated (T=1)")):
            count = int(np.sum(t == arm))
            if count < k:
                raise ValueError(
                    f"stratified folds need at least cv = {k} units in each arm; the {label} "
                    f"arm has {count}"
                )
    if k == 1:
        folds = [(np.arange(n), np.arange(n))]
    elif stratify:
        folds = list(StratifiedKFold(k, shuffle=True, random_state=fold_seed).split(x, t))
    else:
        folds = list(KFold(k, shuffle=True, random_state=fold_seed).split(x))

    def fit(spec: Any, task: str, rows: np.ndarray, target: np.ndarray) -> BaseEstimator:
        model = make_model(spec, task, model_seed)  # type: ignore[arg-type]
        return fit_weighted(model, x[rows], target[rows], None if w is None else w[rows])

    out = {key: np.empty(n) for key in ("mu0", "mu1", "e", *(("m",) if marginal else ()))}
    models: list[dict[str, BaseEstimator]] = []
    for fold, (train, test) in enumerate(folds):
        for arm, label in ((0, "control (T=0)"), (1, "treated (T=1)")):
            if not np.any(t[train] == arm):
                raise ValueError(
                    f"the training rows of fold {fold} hold no {label} units; "
                    "use fewer folds or more data"
                )
        fitted = {"propensity": fit(propensity, "classifier", train, t)}
        for arm in (0, 1):
            fitted[f"mu{arm}"] = fit(outcome, "regressor", train[t[train] == arm], y)
        if marginal:
            fitted["m"] = fit(outcome, "regressor", train, y)
        out["e"][test] = predict_treated(fitted["propensity"], x[test])
        for key in ("mu0", "mu1", "m"):
            if key in fitted:
                out[key][test] = fitted[key].predict(x[test])
        models.append(fitted)
    if overlap_name is not None:
        warn_overlap(out["e"], overlap_name, stacklevel=2)
    if clip is not None:
        out["e"] = np.clip(out["e"], clip, 1.0 - clip)
    return CrossFit(out["mu0"], out["mu1"], out["e"], out.get("m"), folds, models, selection)


# ---------------------------------------------------------------------------------------------
# doubly robust scores
# ---------------------------------------------------------------------------------------------


def aipw_scores(
    Y: ArrayLike, T: ArrayLike, mu0: ArrayLike, mu1: ArrayLike, e: ArrayLike
) -> np.ndarray:
    r"""The AIPW (doubly robust) pseudo-outcome of every unit.

    .. math:: \psi_i = \hat\mu_1(X_i) - \hat\mu_0(X_i)
              + \frac{T_i\,(Y_i - \hat\mu_1(X_i))}{\hat e(X_i)}
              - \frac{(1 - T_i)\,(Y_i - \hat\mu_0(X_i))}{1 - \hat e(X_i)}

    (Robins, Rotnitzky & Zhao 1994). :math:`E[\psi \mid X] = \tau(X)` when either the outcome
    models or the propensity are correct; the mean of :math:`\psi` is the AIPW estimate of the
    average effect, and regressing :math:`\psi` on covariates is Kennedy's (2023) DR-learner.

    Args:
        Y, T: outcome and binary treatment ``(n,)``.
        mu0, mu1: outcome predictions under control and treatment ``(n,)``.
        e: propensities ``(n,)``, strictly inside ``(0, 1)`` (clip them first).
    """
    y = as_1d(Y, "Y")
    t = check_treatment(T)
    m0 = as_1d(mu0, "mu0")
    m1 = as_1d(mu1, "mu1")
    p = check_propensity(e, "e")
    check_same_length(Y=y, T=t, mu0=m0, mu1=m1, e=p)
    return m1 - m0 + t * (y - m1) / p - (1 - t) * (y - m0) / (1 - p)


def dr_scores(
    Y: ArrayLike,
    T: ArrayLike,
    X: ArrayLike,
    *,
    cv: int = 5,
    nuisance: Nuisance = "gbm_default",
    clip: float = 0.01,
    stratify: bool = False,
    random_state: Any = 0,
) -> np.ndarray:
    r"""Cross-fitted AIPW scores :math:`\psi_i` (:func:`aipw_scores` on :func:`cross_fit`).

    .. math:: \psi_i = \hat\mu_1^{(-k(i))} - \hat\mu_0^{(-k(i))}
              + \frac{T_i (Y_i - \hat\mu_1^{(-k(i))})}{\hat e^{(-k(i))}}
              - \frac{(1 - T_i)(Y_i - \hat\mu_0^{(-k(i))})}{1 - \hat e^{(-k(i))}}

    with every nuisance evaluated at :math:`X_i` by models fitted without unit :math:`i`'s fold
    :math:`k(i)` (Chernozhukov et al. 2018) and :math:`\hat e` clipped to ``[clip, 1 - clip]``.
    :math:`E[\psi_i \mid X_i] = \tau(X_i)` if either nuisance is correct, so the scores stand
    in for the unknown effect on real data, e.g. ``autoc(dr_scores(Y, T, X), score)``
    (Yadlowsky et al. 2021), and are the DR-learner's regression target (Kennedy 2023).

    Args:
        Y, T, X: outcome ``(n,)``, binary treatment ``(n,)``, covariates ``(n, d)``.
        cv: number of folds, at least 2.
        nuisance: a kind of :func:`make_model`, an unfitted estimator, or a pair
            ``(outcome regressor, propensity classifier)``; default scikit-learn's
            histogram gradient boosting with its default settings.
        clip: propensity clipping level in ``(0, 0.5)``.
        stratify: stratify the folds by ``T`` (default: plain shuffled K-fold).
        random_state: seed of the folds and of every model.
    """
    check_int(cv, "cv", 2)
    check_number(clip, "clip", 0.0, 0.5, low_open=True, high_open=True)
    fitted = cross_fit(
        Y, T, X, nuisance=nuisance, cv=cv, stratify=stratify, clip=clip, random_state=random_state
    )
    return aipw_scores(Y, T, fitted.mu0, fitted.mu1, fitted.e)
