r"""Annotation-assisted causal policies (AACE), a risk-based policy and an oracle.

Arno & Demeester (2025), "Learning Treatment Policies From Multimodal Electronic Health
Records", arXiv:2507.20993 (later named AACE). A record has a representation :math:`\phi`
(note embedding + tabular columns) that is available for every patient but is a poor basis for
causal adjustment (text breaks positivity and hides the confounders). For a subset :math:`S` of
records experts annotate structured facts; together with the tabular confounders they span the
*annotation space* :math:`a = [\text{annotations}, \text{confounders}]`, in which
unconfoundedness and overlap are plausible. The annotations supervise training only: the policy
needs :math:`\phi` alone.

:class:`AACE`
    1. On :math:`S`, fit the propensity :math:`e(a) = P(T = 1 \mid a)` and one outcome model per
       arm :math:`\mu_t(a) = E[Y \mid a, T = t]`.
    2. Doubly robust (AIPW) pseudo-outcomes, with :math:`\hat e` clipped to
       :math:`[c, 1 - c]`:

       .. math:: \psi_i = \hat\mu_1(a_i) - \hat\mu_0(a_i)
                 + \frac{T_i (Y_i - \hat\mu_1(a_i))}{\hat e(a_i)}
                 - \frac{(1 - T_i)(Y_i - \hat\mu_0(a_i))}{1 - \hat e(a_i)},

       so that :math:`E[\psi \mid a] = \tau(a)` when either nuisance is correct.
    3. Regress :math:`\psi` on :math:`\phi` over :math:`S`:
       :math:`\hat\tau(\phi) \approx E[\psi \mid \phi] = E[\tau(a) \mid \phi]`, the best policy
       score available from the representation (Kennedy 2023's DR-learner, with the nuisances
       and the final stage on different inputs).

       :math:`\psi` is one *target* of this regression; :data:`TARGETS` holds others built from
       the same nuisances (plug-in, X-, R-learner in annotation space, smoothed, stabilised and
       overlap-weighted DR scores, :func:`annotation_targets`). ``target="select"`` (the
       registered ``aace``) fits them all and keeps the one whose final stage has the smallest
       held-out R-loss (or DR-loss) of :mod:`ehrcausal.validate`, without the truth.

    The public AACE code fits the nuisances and evaluates :math:`\psi` on the same rows
    (``cv=1`` here); ``cv >= 2`` cross-fits them (Chernozhukov et al. 2018, "Double/debiased
    machine learning", Econometrics Journal), which removes the own-observation overfitting
    bias; both run the package's nuisance engine (:func:`ehrcausal.nuisance.cross_fit`,
    :func:`ehrcausal.nuisance.aipw_scores`). ``annotation_weighting=True`` corrects for
    annotation that depends on observed covariates and treatment by
    inverse-probability-of-annotation weights.

:class:`RiskBased`
    The usual clinical baseline: predict the outcome under control from :math:`\phi` and treat the
    highest predicted risk first. Not an effect estimator.

:class:`Oracle`
    Regresses the *true* effect on :math:`\phi` with the final-stage model family: the closest
    any learner of the family can get to :math:`\tau` from :math:`\phi` (the yardstick).

Effects follow the outcome's scale: the sections that use these learners have lower outcomes
better, so a beneficial treatment has a negative effect and a policy treats in ascending order of
``effect``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline

from ..nuisance import (
    Auto,
    CrossFit,
    Nuisance,
    aipw_scores,
    cross_fit,
    fit_weighted,
    make_model,
    predict_treated,
)
from ..runtime import blas_threads, check_seed, child_seeds
from ..validate import Nuisances, dr_loss, r_loss
from ..validation import as_1d, as_2d, check_int, check_number, check_same_length
from .base import CATELearner, store_params
from .registry import available, register, spec

__all__ = [
    "AACE",
    "RiskBased",
    "Oracle",
    "TARGETS",
    "SELECTION_LOSSES",
    "ANNOTATION_NUISANCE",
    "Target",
    "annotation_targets",
    "target_variants",
]


# ---------------------------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------------------------


def _check_annotations(annotations: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Annotation matrix ``(n, k)`` with NaN rows for unannotated records, and the annotated mask.

    A row is annotated when all its values are present and unannotated when all are NaN; a row
    with some but not all values missing is an error, and so are infinite values.
    """
    if annotations is None:
        raise ValueError("annotations are required: an (n, k) array with NaN rows if unannotated")
    try:
        if isinstance(annotations, pd.DataFrame | pd.Series):
            values = annotations.to_numpy(dtype=float, na_value=np.nan)
        else:
            values = np.asarray(annotations, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"annotations must be numeric (NaN where not annotated): {exc}") from exc
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2 or values.shape[1] == 0:
        raise ValueError(f"annotations must have shape (n, k) with k >= 1, got {values.shape}")
    if values.shape[0] != n:
        raise ValueError(f"annotations have {values.shape[0]} rows but Y, T and X have {n}")
    missing = np.isnan(values)
    partly = missing.any(axis=1) & ~missing.all(axis=1)
    if partly.any():
        raise ValueError(
            f"{int(partly.sum())} annotation row(s) are partly NaN (first: row "
            f"{int(np.flatnonzero(partly)[0])}); a row must be fully annotated or all NaN"
        )
    n_inf = int(np.isinf(values).sum())
    if n_inf:
        raise ValueError(f"annotations contain {n_inf} infinite value(s)")
    return values, ~missing.all(axis=1)


# ---------------------------------------------------------------------------------------------
# the AACE steps as functions
# ---------------------------------------------------------------------------------------------


def annotation_weights(
    Z: np.ndarray, annotated: np.ndarray, *, clip: float, random_state: int | None
) -> tuple[np.ndarray, BaseEstimator | None]:
    r"""Inverse-probability-of-annotation weights for the annotated rows.

    :math:`\pi(z) = P(R = 1 \mid z)` with :math:`R` the annotation indicator and :math:`z`
    covariates observed for every record (here :math:`\phi`, the tabular confounders and
    :math:`T`), fitted by the ``"ridge"`` logistic regression on all rows and clipped to
    ``[clip, 1]``. Annotated row :math:`i` gets :math:`w_i \propto 1 / \hat\pi(z_i)`, normalised
    to mean one. Under missingness at random given :math:`z`, the weighted annotated sample has
    the joint law of :math:`(z, a, Y)` of the whole cohort (Horvitz & Thompson 1952; Robins,
    Rotnitzky & Zhao 1994). When every row is annotated the weights are ones and no model is
    fitted.

    Returns:
        ``(weights over the annotated rows, fitted annotation model or None)``.
    """
    if annotated.all():
        return np.ones(int(annotated.sum())), None
    model = fit_weighted(make_model("ridge", "classifier", random_state), Z, annotated.astype(int))
    pi = np.clip(predict_treated(model, Z[annotated]), clip, 1.0)
    w = 1.0 / pi
    return w / w.mean(), model


# ---------------------------------------------------------------------------------------------
# targets in annotation space
# ---------------------------------------------------------------------------------------------

#: the default nuisance of AACE: chosen by out-of-fold loss (:func:`~ehrcausal.nuisance.
#: select_model`) between models suited to a small, mostly discrete annotation space: a
#: regularised linear/logistic model and degree-2 polynomial models (squares and every pairwise
#: interaction, which hold any function of binary facts up to second order)
ANNOTATION_NUISANCE = Auto(candidates=("ridge", "poly"), cv=3)


@dataclass(frozen=True)
class Target:
    """What a target strategy returns on the annotated rows.

    Attributes:
        values: the regression target of the final stage, ``(n_annotated,)``.
        weights: its per-row weights (multiplied by the annotation weights), ``(n_annotated,)``.
    """

    values: np.ndarray
    weights: np.ndarray


def _outcome_spec(nuisance: Nuisance, fitted: CrossFit) -> Any:
    """The outcome model the nuisances used (the data-chosen one when it was chosen)."""
    if "outcome" in fitted.selection:
        return fitted.selection["outcome"].chosen
    return nuisance[0] if isinstance(nuisance, tuple | list) else nuisance


def _dr_target(y, t, fitted, **_: Any) -> Target:
    return Target(aipw_scores(y, t, fitted.mu0, fitted.mu1, fitted.e), np.ones(len(y)))


def _plugin_target(y, t, fitted, **_: Any) -> Target:
    return Target(fitted.mu1 - fitted.mu0, np.ones(len(y)))


def _fold_fit(spec_: Any, space: np.ndarray, target: np.ndarray, weights: np.ndarray,
              folds: list, seed: Any, rows: np.ndarray | None = None) -> np.ndarray:
    """Out-of-fold predictions of ``spec_`` fitted to ``target`` on the annotation space over
    ``folds`` (only the training ``rows`` of each fold when given)."""
    pred = np.empty(len(target))
    for train, test in folds:
        use = train if rows is None else train[rows[train]]
        model = fit_weighted(make_model(spec_, "regressor", seed), space[use], target[use],
                             weights[use])
        pred[test] = model.predict(space[test])
    return pred


def _x_target(y, t, fitted, *, space, nuisance, weights, seed, **_: Any) -> Target:
    spec_ = _outcome_spec(nuisance, fitted)
    imputed = np.where(t == 1, y - fitted.mu0, fitted.mu1 - y)
    tau1 = _fold_fit(spec_, space, imputed, weights, fitted.folds, seed, rows=t == 1)
    tau0 = _fold_fit(spec_, space, imputed, weights, fitted.folds, seed, rows=t == 0)
    return Target(fitted.e * tau0 + (1.0 - fitted.e) * tau1, np.ones(len(y)))


def _r_pseudo(y, t, fitted) -> tuple[np.ndarray, np.ndarray]:
    m = fitted.e * fitted.mu1 + (1.0 - fitted.e) * fitted.mu0
    resid_t = t - fitted.e
    return (y - m) / resid_t, resid_t**2


def _r_phi_target(y, t, fitted, **_: Any) -> Target:
    return Target(*_r_pseudo(y, t, fitted))


def _r_target(y, t, fitted, *, space, nuisance, weights, seed, **_: Any) -> Target:
    pseudo, w_r = _r_pseudo(y, t, fitted)
    spec_ = _outcome_spec(nuisance, fitted)
    return Target(_fold_fit(spec_, space, pseudo, weights * w_r, fitted.folds, seed),
                  np.ones(len(y)))


def _dr_smooth_target(y, t, fitted, *, space, nuisance, weights, seed, **_: Any) -> Target:
    psi = _dr_target(y, t, fitted).values
    spec_ = _outcome_spec(nuisance, fitted)
    return Target(_fold_fit(spec_, space, psi, weights, fitted.folds, seed), np.ones(len(y)))


def _dr_overlap_target(y, t, fitted, **kw: Any) -> Target:
    return Target(_dr_target(y, t, fitted).values, fitted.e * (1.0 - fitted.e))


def _dr_stabilised_target(y, t, fitted, *, weights, **_: Any) -> Target:
    inv1, inv0 = t / fitted.e, (1 - t) / (1.0 - fitted.e)
    inv1 = inv1 / np.average(inv1, weights=weights)
    inv0 = inv0 / np.average(inv0, weights=weights)
    psi = fitted.mu1 - fitted.mu0 + inv1 * (y - fitted.mu1) - inv0 * (y - fitted.mu0)
    return Target(psi, np.ones(len(y)))


#: the targets of the final stage, by name: each maps the annotated rows' outcome, treatment
#: and cross-fitted annotation-space nuisances to (target, weights) (see :class:`AACE`)
TARGETS: dict[str, Callable[..., Target]] = {
    "dr": _dr_target,
    "plugin": _plugin_target,
    "x": _x_target,
    "r": _r_target,
    "r_phi": _r_phi_target,
    "dr_smooth": _dr_smooth_target,
    "dr_overlap": _dr_overlap_target,
    "dr_stabilised": _dr_stabilised_target,
}

#: the held-out criteria that can choose the target (:mod:`ehrcausal.validate`)
SELECTION_LOSSES: dict[str, Callable[..., Any]] = {"dr_loss": dr_loss, "r_loss": r_loss}


def annotation_targets(
    Y: Any,
    T: Any,
    fitted: CrossFit,
    *,
    names: Sequence[str],
    space: Any,
    nuisance: Nuisance = "ridge",
    weights: Any = None,
    random_state: int | None = 0,
) -> dict[str, Target]:
    r"""The final-stage targets ``names`` of :data:`TARGETS` from annotation-space nuisances.

    With :math:`\hat\mu_0, \hat\mu_1, \hat e` the cross-fitted nuisances on the annotated rows
    (``fitted``, :func:`~ehrcausal.nuisance.cross_fit` with ``e`` clipped) and
    :math:`\hat m = \hat e\hat\mu_1 + (1 - \hat e)\hat\mu_0`:

    - ``dr``: :math:`\psi`, the AIPW score (Robins, Rotnitzky & Zhao 1994), weight 1;
    - ``plugin``: :math:`\hat\mu_1(a) - \hat\mu_0(a)` (T-learner in annotation space), weight 1;
    - ``x``: :math:`\hat e(a)\hat\tau_0(a) + (1 - \hat e(a))\hat\tau_1(a)`, with
      :math:`\hat\tau_1` the outcome model family fitted on the treated to
      :math:`Y - \hat\mu_0(a)` and :math:`\hat\tau_0` on the controls to
      :math:`\hat\mu_1(a) - Y`, over the folds of ``fitted`` (X-learner, Künzel, Sekhon, Bickel
      & Yu 2019, PNAS 116), weight 1;
    - ``r``: :math:`(Y - \hat m)/(T - \hat e)` with weight :math:`(T - \hat e)^2`, so the
      weighted least squares of the final stage minimises the R-loss
      :math:`\sum_i ((Y_i - \hat m_i) - (T_i - \hat e_i) f(\phi_i))^2` (Nie & Wager 2021,
      Biometrika 108; residual on residual);
    - ``dr_overlap``: :math:`\psi` with weight :math:`\hat e(1 - \hat e)`, the overlap weights of
      Li, Morgan & Zaslavsky (2018, JASA 113): rows with extreme propensities, whose scores are
      the noisiest, count less (the final stage then targets the overlap-weighted projection
      of :math:`\tau` on :math:`\phi`, which ranks patients alike when :math:`\phi` determines
      :math:`a`);
    - ``dr_stabilised``: :math:`\psi` with the inverse weights :math:`T/\hat e` and
      :math:`(1 - T)/(1 - \hat e)` each normalised to mean one over the rows (Hájek), weight 1.

    Args:
        Y, T: outcome and treatment of the annotated rows ``(n,)``.
        fitted: their cross-fitted nuisances.
        names: target names (keys of :data:`TARGETS`).
        space: the annotation space ``(n, k)`` (the X-learner's second stage).
        nuisance: the nuisance spec (the X-learner reuses its outcome model, or the data-chosen
            one recorded in ``fitted.selection``).
        weights: annotation weights ``(n,)`` (ones by default).
        random_state: seed of the X-learner's second-stage models.
    """
    y, t = as_1d(Y, "Y"), as_1d(T, "T")
    w = np.ones(len(y)) if weights is None else as_1d(weights, "weights")
    x = as_2d(space, "space")
    check_same_length(Y=y, T=t, space=x, weights=w, e=fitted.e)
    unknown = [name for name in names if name not in TARGETS]
    if unknown:
        raise ValueError(f"unknown target(s) {unknown}; known targets: {', '.join(TARGETS)}")
    return {name: TARGETS[name](y, t, fitted, space=x, nuisance=nuisance, weights=w,
                                seed=random_state) for name in names}


def _with_fixed_penalty(model: BaseEstimator) -> BaseEstimator:
    """An unfitted copy of a fitted final stage, with a :class:`~sklearn.linear_model.RidgeCV`
    (alone or ending a pipeline) replaced by a :class:`~sklearn.linear_model.Ridge` at the
    penalty it chose: the held-out refits of the target selection then cost one solve each
    instead of a new search over penalties."""
    last = model.steps[-1][1] if isinstance(model, Pipeline) else model
    if not isinstance(last, RidgeCV):
        return clone(model)
    ridge = Ridge(alpha=float(last.alpha_), fit_intercept=last.fit_intercept)
    if isinstance(model, Pipeline):
        return Pipeline([*[(n, clone(s)) for n, s in model.steps[:-1]], ("ridge", ridge)])
    return ridge


def target_variants() -> dict[str, str]:
    """The registered single-target AACE variants, ``{target: learner name}`` (from the registry:
    the entries of class :class:`AACE` whose ``target`` is one of :data:`TARGETS`, the
    cross-fitted defaults only)."""
    out: dict[str, str] = {}
    for name in available("aace"):
        s = spec(name)
        target = s.defaults.get("target")
        if s.factory is AACE and target in TARGETS and set(s.defaults) == {"target"}:
            out.setdefault(target, name)
    return out


# ---------------------------------------------------------------------------------------------
# learners
# ---------------------------------------------------------------------------------------------


class _PhiRegression(CATELearner):
    """Shared final stage: a weighted regression on the representation phi, effect = prediction."""

    #: whether :meth:`effect` estimates tau (False for pure ranking scores)
    estimates_effect: bool = True

    def _fit_final(
        self, spec: Any, X: np.ndarray, target: np.ndarray, weights: Any, seed: int
    ) -> None:
        with blas_threads(1):  # one small regression: one BLAS thread is the fastest
            self.final_model_ = fit_weighted(make_model(spec, "regressor", seed), X, target,
                                             weights)

    def _effect(self, X: np.ndarray) -> np.ndarray:
        return self.final_model_.predict(X)


class AACE(_PhiRegression):
    r"""Annotation-assisted DR-learner: nuisances in annotation space, final stage on phi.

    Estimand: :math:`\tau(\phi) = E[\tau(A) \mid \phi]` with
    :math:`\tau(a) = E[Y(1) - Y(0) \mid A = a]`, identified under unconfoundedness and overlap in
    the annotation space :math:`A` (Arno & Demeester 2025). Method (see the module docstring):
    :math:`\hat e(a)`, :math:`\hat\mu_0(a)`, :math:`\hat\mu_1(a)` on the annotated rows
    :math:`S`; the AIPW pseudo-outcome

    .. math:: \psi = \hat\mu_1 - \hat\mu_0 + \frac{T (Y - \hat\mu_1)}{\hat e}
              - \frac{(1 - T)(Y - \hat\mu_0)}{1 - \hat e},
              \quad \hat e \in [c, 1 - c];

    and :math:`\hat\tau = \arg\min_f \sum_{i \in S} w_i (\psi_i - f(\phi_i))^2` over the
    ``final`` model family (:math:`w_i = 1` unless ``annotation_weighting``).

    An :class:`~ehrcausal.validation.OverlapWarning` reports the share of annotated rows whose
    (out-of-fold, unclipped) :math:`\hat e` falls outside ``[0.01, 0.99]``.

    ``fit`` requires at least ``2 * cv`` annotated rows and at least ``max(cv, 2)`` annotated
    rows in each arm (every fold's training rows then hold both arms); annotations must be
    finite where present, and a row is either fully annotated or all NaN.

    Parameters
    ----------
    nuisance : str, estimator, Auto or pair, default=ANNOTATION_NUISANCE
        Model family of :math:`e` (classifier) and :math:`\mu_0, \mu_1` (regressors), see
        :func:`~ehrcausal.nuisance.make_model`; a pair ``(outcome, propensity)`` sets them
        apart. ``"auto"`` (or an :class:`~ehrcausal.nuisance.Auto`) chooses each by
        out-of-fold loss on the annotated rows among regularised linear/logistic models,
        degree-2 polynomial models (squares and interactions, offered when the annotation space
        has at most :data:`~ehrcausal.nuisance.POLY_MAX_FEATURES` columns), random forests,
        boosted trees and a stack of them (:func:`~ehrcausal.nuisance.select_model`), and
        records the choice in ``nuisance_selection_``; it costs about six times the CPU of
        ``"forest"`` per fit. The default, :data:`ANNOTATION_NUISANCE`, chooses the same way
        between the ridge and ``poly`` models only (the kinds suited to a small, mostly binary
        annotation space; on the chapter's simulators the forest and boosted candidates were
        never chosen and cost most of the time).
    final : str or estimator, default="ridge"
        Regressor of the target on :math:`\phi`.
    cv : int, default=5
        Number of cross-fitting folds; ``1`` fits and evaluates the nuisances on the same rows
        (as the public AACE code does).
    propensity_clip : float in (0, 0.5), default=0.05
        :math:`c`, the clipping of :math:`\hat e`.
    annotation_weighting : bool, default=False
        Weight annotated rows by :math:`1/\hat\pi` with
        :math:`\pi = P(\text{annotated} \mid \phi, \text{confounders}, T)` in every model fit
        (propensity, outcomes, final stage); for annotation that is not uniformly at random but
        depends on observed covariates and treatment. The confounders join :math:`\phi` in
        :math:`\pi` because they too are observed for every record (usually they are already
        columns of :math:`\phi`). See :func:`annotation_weights`.
    annotation_clip : float in (0, 1], default=0.05
        Lower clip of :math:`\hat\pi`.
    target : str, default="select"
        The final stage's target, a key of :data:`TARGETS` (``"dr"`` is the original AACE
        pseudo-outcome :math:`\psi`), or ``"select"``: every target of ``candidates`` is
        fitted and the one whose final stage has the smallest held-out ``selection`` loss is
        kept. The held-out predictions come from ``selection_cv`` stratified folds of the
        annotated rows, each refitting the final stage on the other folds (a ridge at the
        penalty it chose on all rows); the loss uses the cross-fitted nuisances of the
        held-out rows, :math:`\hat m = \hat e\hat\mu_1 + (1 - \hat e)\hat\mu_0` and the AIPW
        scores (those nuisances were fitted on folds that held the row out, but the final
        stage's training targets used nuisances that saw it: a mild optimism shared by every
        target). Ties (within rounding) go to the earlier target.
    candidates : sequence of str or None, default=None
        Targets ``"select"`` chooses among (None: all of :data:`TARGETS`).
    selection : {"r_loss", "dr_loss"}, default="r_loss"
        The held-out criterion of :func:`ehrcausal.validate.r_loss` (Nie & Wager 2021) or
        :func:`ehrcausal.validate.dr_loss` (Kennedy 2023); see :data:`SELECTION_LOSSES`. The
        R-loss is the default: on the chapter's simulators the DR-loss, which averages the
        heavy-tailed AIPW scores, picked worse targets (``benchmarks/aace_ceiling.py``).
    selection_cv : int, default=5
        Folds of the selection (at least 2; each arm needs that many annotated rows).
    random_state : int or None
        Seeds the folds and every model (independent child seeds).

    Attributes
    ----------
    final_model_ : the fitted regression of :math:`\psi` on :math:`\phi`.
    pseudo_outcomes_ : (n_annotated,) the AIPW scores :math:`\psi` on the annotated rows, in
        row order (whatever the target).
    target_ : the target of ``final_model_`` (the chosen one with ``target="select"``).
    target_losses_ : dict, each candidate target's held-out loss (empty without selection).
    targets_ : dict, each fitted target's values on the annotated rows.
    target_models_ : dict, each fitted target's final stage (:meth:`effect_of_target`).
    propensity_ : (n_annotated,) clipped :math:`\hat e` on the annotated rows (out-of-fold when
        cross-fitted).
    annotated_ : (n,) bool mask of the annotated rows.
    annotation_weights_ : (n_annotated,) weights used (ones when ``annotation_weighting`` is off).
    n_annotated_ : number of annotated rows.
    nuisance_models_ : list (one dict per fold) of the fitted ``propensity``, ``mu0``, ``mu1``.
    folds_ : list of the ``(train, test)`` indices (into the annotated rows) of every fold.
    nuisance_selection_ : dict mapping ``"outcome"`` / ``"propensity"`` to the
        :class:`~ehrcausal.nuisance.Selection` that chose it (chosen name and every
        candidate's out-of-fold loss); empty when both models were named.
    annotation_model_ : fitted annotation model, or None.
    """

    estimates_effect = True

    def __init__(
        self,
        nuisance: Nuisance = ANNOTATION_NUISANCE,
        final: str | BaseEstimator = "ridge",
        cv: int = 5,
        propensity_clip: float = 0.05,
        annotation_weighting: bool = False,
        annotation_clip: float = 0.05,
        target: str = "select",
        candidates: Sequence[str] | None = None,
        selection: str = "r_loss",
        selection_cv: int = 5,
        random_state: int | None = None,
    ) -> None:
        store_params(self, locals())

    def fit(
        self,
        Y: Any,
        T: Any,
        *,
        X: Any,
        annotations: Any,
        confounders: Any = None,
        **fit_params: Any,
    ) -> AACE:
        """Fit on outcomes ``Y``, treatment ``T``, representation ``X`` = phi (n, d).

        Args:
            annotations: (n, k) expert facts (array or DataFrame); a row of all NaN marks an
                unannotated record.
            confounders: optional (n, m) tabular confounders, appended to the annotations to
                form the annotation space (observed for every record).

        Any other keyword (e.g. ``val_mask``: nothing here is early-stopped) is refused with a
        ValueError; the registry entry's ``fit_inputs`` lists the inputs this learner takes.
        """
        self._reject_unknown(fit_params, ("annotations", "confounders"))
        with blas_threads(1):  # many small linear fits: one BLAS thread is the fastest
            return super().fit(Y, T, X=X, annotations=annotations, confounders=confounders)

    def _fit(
        self,
        Y: np.ndarray,
        T: np.ndarray,
        X: np.ndarray,
        *,
        annotations: Any,
        confounders: Any = None,
    ) -> None:
        cv = check_int(self.cv, "cv", 1)
        clip = check_number(
            self.propensity_clip, "propensity_clip", 0.0, 0.5, low_open=True, high_open=True
        )
        a_clip = check_number(self.annotation_clip, "annotation_clip", 0.0, 1.0, low_open=True)
        selection_cv = check_int(self.selection_cv, "selection_cv", 2)
        if self.target != "select" and self.target not in TARGETS:
            raise ValueError(
                f"target must be 'select' or one of {', '.join(TARGETS)}, got {self.target!r}"
            )
        if self.candidates is not None:
            cands = list(self.candidates) if not isinstance(self.candidates, str) else []
            bad = [c for c in cands if c not in TARGETS]
            if not cands or bad:
                raise ValueError(
                    f"candidates must be a non-empty list of targets among {', '.join(TARGETS)}"
                    f" (or None for all), got {self.candidates!r}"
                )
        if self.selection not in SELECTION_LOSSES:
            raise ValueError(f"selection must be one of {', '.join(SELECTION_LOSSES)}, got "
                             f"{self.selection!r}")
        n = len(Y)
        space, annotated = _check_annotations(annotations, n)  # annotation space A
        covariates = [X]
        if confounders is not None:
            conf = as_2d(confounders, "confounders")
            check_same_length(Y=Y, confounders=conf)
            space = np.hstack([space, conf])
            covariates.append(conf)
        n_ann = int(annotated.sum())
        if n_ann < 2 * cv:
            raise ValueError(
                f"only {n_ann} annotated row(s); at least 2 * cv = {2 * cv} are needed"
            )
        t_s = T[annotated]
        min_arm = max(cv, 2)
        for arm, label in ((1, "treated (T=1)"), (0, "control (T=0)")):
            k = int((t_s == arm).sum())
            if k < min_arm:
                raise ValueError(
                    f"the annotated rows hold {k} {label} unit(s); at least {min_arm} "
                    f"(= max(cv, 2)) are needed in each arm among the annotated rows"
                )
            if self.target == "select" and k < selection_cv:
                raise ValueError(
                    f"the annotated rows hold {k} {label} unit(s); choosing the target needs at "
                    f"least selection_cv = {selection_cv} in each arm (lower selection_cv or "
                    "fix target)"
                )
        seed_nuis, seed_annot, seed_final = child_seeds(check_seed(self.random_state), 3)
        if self.annotation_weighting:
            Z = np.hstack([*covariates, T[:, None].astype(float)])
            weights, self.annotation_model_ = annotation_weights(
                Z, annotated, clip=a_clip, random_state=seed_annot
            )
        else:
            weights, self.annotation_model_ = np.ones(n_ann), None
        # independent seeds for the folds and for every nuisance model, so a model's seed does
        # not depend on the split
        fold_seed, model_seed = child_seeds(seed_nuis, 2)
        y_s = Y[annotated]
        nuis = cross_fit(
            y_s,
            t_s,
            space[annotated],
            nuisance=self.nuisance,
            cv=cv,
            stratify=True,
            sample_weight=weights,
            clip=clip,
            random_state=fold_seed,
            model_random_state=model_seed,
            overlap_name=type(self).__name__,
        )
        names = list(TARGETS) if self.candidates is None else list(self.candidates)
        if self.target != "select":
            names = [self.target]
        targets = annotation_targets(y_s, t_s, nuis, names=names, space=space[annotated],
                                     nuisance=self.nuisance, weights=weights,
                                     random_state=model_seed)
        x_s = X[annotated]
        self.target_models_ = {
            name: fit_weighted(make_model(self.final, "regressor", seed_final), x_s,
                               tgt.values, weights * tgt.weights)
            for name, tgt in targets.items()
        }
        if self.target == "select":
            self.target_losses_ = self._selection_losses(
                y_s, t_s, x_s, nuis, targets, self.target_models_, weights, seed_final,
                selection_cv)
            best = min(self.target_losses_.values())
            # ties (within rounding) go to the earlier target
            self.target_ = next(k for k, v in self.target_losses_.items()
                                if v <= best + 1e-9 * max(abs(best), 1e-12))
        else:
            self.target_losses_ = {}
            self.target_ = self.target
        self.final_model_ = self.target_models_[self.target_]
        psi = aipw_scores(y_s, t_s, nuis.mu0, nuis.mu1, nuis.e)
        self.targets_ = {name: tgt.values for name, tgt in targets.items()}
        self.pseudo_outcomes_ = psi
        self.propensity_ = nuis.e
        self.annotated_ = annotated
        self.annotation_weights_ = weights
        self.n_annotated_ = n_ann
        self.nuisance_models_ = nuis.models
        self.folds_ = nuis.folds
        self.nuisance_selection_ = nuis.selection

    def _selection_losses(
        self,
        y: np.ndarray,
        t: np.ndarray,
        x: np.ndarray,
        nuis: CrossFit,
        targets: dict[str, Target],
        fitted: dict[str, BaseEstimator],
        weights: np.ndarray,
        seed: int,
        k: int,
    ) -> dict[str, float]:
        """Held-out loss (``selection`` of :mod:`ehrcausal.validate`) of every target's final
        stage, refitted on ``k - 1`` folds of the annotated rows with the penalty it chose on
        all of them (:func:`_with_fixed_penalty`) and evaluated on the held-out fold."""
        folds = list(StratifiedKFold(k, shuffle=True, random_state=seed).split(x, t))
        m = nuis.e * nuis.mu1 + (1.0 - nuis.e) * nuis.mu0
        psi = aipw_scores(y, t, nuis.mu0, nuis.mu1, nuis.e)
        held = Nuisances(y, t, x, nuis.mu0, nuis.mu1, nuis.e, m, psi, nuis)
        losses: dict[str, float] = {}
        for name, tgt in targets.items():
            pred = np.empty(len(y))
            for train, test in folds:
                model = fit_weighted(_with_fixed_penalty(fitted[name]), x[train],
                                     tgt.values[train], (weights * tgt.weights)[train])
                pred[test] = model.predict(x[test])
            losses[name] = float(SELECTION_LOSSES[self.selection](pred, held).estimate)
        return losses

    def effect_of_target(self, X: Any, target: str) -> np.ndarray:
        """The effect that the single-``target`` variant would give (its final stage was fitted
        alongside the chosen one on the same nuisances): ``target`` is a key of
        ``target_models_``."""
        x = self._check_X(X)
        if target not in self.target_models_:
            raise ValueError(f"target {target!r} was not fitted; fitted targets: "
                             f"{', '.join(self.target_models_)}")
        return self.target_models_[target].predict(x)


class RiskBased(_PhiRegression):
    r"""Risk-based policy: treat the patients with the highest predicted risk first.

    Fits :math:`\hat r(\phi) = \hat E[Y \mid \phi, T = 0]` on the control units (the risk
    without treatment). This is not an effect estimator (``estimates_effect = False``):
    :meth:`effect` returns a ranking score on the effect scale, whose *ascending* order treats
    the highest-risk patients first, so that every policy that treats "the most negative effect
    first" treats the sickest first with this learner:

    - ``lower_is_better=True`` (e.g. a severity score, death): the highest risk is the largest
      :math:`\hat r`, and ``effect(X) = -risk(X)``;
    - ``lower_is_better=False``: the highest risk is the smallest :math:`\hat r`, and
      ``effect(X) = +risk(X)``.

    The score always keeps the ascending "treat first" order of a lower-is-better outcome; for a
    higher-is-better outcome the other learners' beneficial effects are positive and are ranked
    in descending order, so rank this score by ``-effect`` there to compare like with like.
    Use :meth:`risk` for the predicted outcome itself.

    Parameters
    ----------
    model : str or estimator, default="ridge"
        Regressor family, see :func:`~ehrcausal.nuisance.make_model`.
    lower_is_better : bool, default=True
        Direction of the outcome.
    random_state : int or None
        Seed of the model.

    Attributes
    ----------
    final_model_ : the fitted control-outcome regression.
    """

    estimates_effect = False

    def __init__(
        self,
        model: str | BaseEstimator = "ridge",
        lower_is_better: bool = True,
        random_state: int | None = None,
    ) -> None:
        store_params(self, locals())

    def fit(self, Y: Any, T: Any, *, X: Any, **fit_params: Any) -> RiskBased:
        """Fit the control-outcome model on the control units; any other keyword is refused."""
        self._reject_unknown(fit_params)
        return super().fit(Y, T, X=X)

    def _fit(self, Y: np.ndarray, T: np.ndarray, X: np.ndarray) -> None:
        if not isinstance(self.lower_is_better, bool | np.bool_):
            raise ValueError(f"lower_is_better must be True or False, got {self.lower_is_better!r}")
        control = T == 0
        self._fit_final(self.model, X[control], Y[control], None, check_seed(self.random_state))

    def risk(self, X: Any) -> np.ndarray:
        """Predicted outcome without treatment, :math:`\\hat E[Y \\mid \\phi, T = 0]`."""
        x = self._check_X(X)  # fitted, width and columns first
        return self.final_model_.predict(x)

    def _effect(self, X: np.ndarray) -> np.ndarray:
        risk = self.final_model_.predict(X)
        return -risk if self.lower_is_better else risk


class Oracle(_PhiRegression):
    r"""Oracle: the regression of the true effect on phi, :math:`\hat E[\tau \mid \phi]`.

    :math:`\hat\tau = \arg\min_f \sum_i (\tau_i - f(\phi_i))^2` over the ``final`` model family
    that :class:`AACE` uses. It is the best that family can reach from the representation with
    noise-free targets: its PEHE is the floor set by the representation and the model family,
    and a learner's distance to it measures the cost of estimating the effect. Needs the true
    effect, so only on simulated data.

    Parameters
    ----------
    final : str or estimator, default="ridge"
        Regressor family, see :func:`~ehrcausal.nuisance.make_model`.
    random_state : int or None
        Seed of the model.
    """

    estimates_effect = True

    def __init__(self, final: str | BaseEstimator = "ridge", random_state: int | None = None):
        store_params(self, locals())

    def fit(self, Y: Any, T: Any, *, X: Any, tau: Any = None, **fit_params: Any) -> Oracle:
        """Fit on the true effect ``tau`` (n,); ``Y``, ``T`` are validated; no other keyword."""
        self._reject_unknown(fit_params, ("tau",))
        if tau is None:
            raise ValueError(
                "Oracle.fit needs the true effect: pass tau=... (available on simulated data only)"
            )
        return super().fit(Y, T, X=X, tau=tau)

    def _fit(self, Y: np.ndarray, T: np.ndarray, X: np.ndarray, *, tau: Any) -> None:
        target = as_1d(tau, "tau")
        check_same_length(Y=Y, tau=target)
        self._fit_final(self.final, X, target, None, check_seed(self.random_state))


_AACE = {"family": "aace", "fit_inputs": ("annotations", "confounders")}
register(
    "aace", AACE, "AACE: annotation-space target chosen by held-out R-loss, regressed on phi",
    **_AACE, target="select",
)
register(
    "aace_dr", AACE, "AACE with the DR (AIPW) pseudo-outcome, cross-fitted", **_AACE, target="dr",
)
register(
    "aace_plugin", AACE, "AACE with the plug-in target mu1(a) - mu0(a) (T-learner in annotation "
    "space)", **_AACE, target="plugin",
)
register(
    "aace_x", AACE, "AACE with an X-learner target in annotation space", **_AACE, target="x",
)
register(
    "aace_r", AACE, "AACE with the R-learner fitted in annotation space (residual on residual, "
    "weighted), then regressed on phi",
    **_AACE, target="r",
)
register(
    "aace_r_phi", AACE, "AACE with the R-loss minimised by the final stage on phi (R-learner "
    "pseudo-outcome with weights (T - e)^2)", **_AACE, target="r_phi",
)
register(
    "aace_dr_smooth", AACE, "AACE with DR scores smoothed in annotation space (DR-learner in a), "
    "then regressed on phi", **_AACE, target="dr_smooth",
)
register(
    "aace_overlap", AACE, "AACE with overlap-weighted DR scores", **_AACE, target="dr_overlap",
)
register(
    "aace_stabilised", AACE, "AACE with stabilised (Hajek) DR scores", **_AACE,
    target="dr_stabilised",
)
register(
    "aace_no_crossfit", AACE, "AACE (DR target) with nuisances fitted and evaluated on the same "
    "rows", **_AACE, target="dr", cv=1,
)
register(
    "aace_weighted", AACE, "AACE with inverse-probability-of-annotation weights",
    **_AACE, annotation_weighting=True,
)
register(
    "risk_based", RiskBased, "Risk-based policy: treat the highest predicted risk first",
    family="aace",
)
register("oracle", Oracle, "Oracle: regression of the true effect on phi", family="aace",
         fit_inputs=("tau",))
