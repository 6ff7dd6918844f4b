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

    The public AACE code fits the nuisances and evaluates :math:`\psi` on the same rows
    (``cv=1`` here); ``cv >= 2`` cross-fits them (Chernozhukov et al. 2018, "Double/debiased
    machine learning", Econometrics Journal), which removes the own-observation overfitting
    bias. ``annotation_weighting=True`` corrects for annotation that depends on observed
    covariates and treatment by inverse-probability-of-annotation weights.

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

from numbers import Real
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from ..metrics import _aipw
from ..runtime import check_seed, child_seeds
from ..validation import as_1d, as_2d, check_features, check_int, check_same_length
from .base import CATELearner, store_params
from .registry import register
from .sklearn_models import fit_weighted, make_model

__all__ = ["AACE", "RiskBased", "Oracle"]


# ---------------------------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------------------------


def _check_real(value: Any, name: str, low: float, high: float, *, closed_high: bool) -> float:
    ok = isinstance(value, Real) and not isinstance(value, bool)
    ok = ok and low < value and (value <= high if closed_high else value < high)
    if not ok:
        interval = f"({low:g}, {high:g}{']' if closed_high else ')'}"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    return float(value)


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


def _proba1(model: BaseEstimator, X: np.ndarray) -> np.ndarray:
    """P(class 1 | X) from a fitted binary classifier."""
    col = list(model.classes_).index(1)
    return model.predict_proba(X)[:, col]


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
    pi = np.clip(_proba1(model, Z[annotated]), clip, 1.0)
    w = 1.0 / pi
    return w / w.mean(), model


def dr_pseudo_outcomes(
    Y: np.ndarray,
    T: np.ndarray,
    A: np.ndarray,
    weights: np.ndarray,
    *,
    nuisance: str | BaseEstimator,
    cv: int,
    clip: float,
    random_state: int,
) -> tuple[np.ndarray, np.ndarray, list[dict[str, BaseEstimator]]]:
    r"""AIPW pseudo-outcomes :math:`\psi_i` in annotation space, cross-fitted when ``cv >= 2``.

    With ``cv >= 2`` the rows are split into ``cv`` folds (:class:`StratifiedKFold` on ``T``,
    shuffled); the propensity :math:`\hat e` and the outcome models
    :math:`\hat\mu_0`, :math:`\hat\mu_1` (one per arm) are fitted on the other folds with
    ``weights`` and evaluated on the held-out fold. With ``cv == 1`` they are fitted and
    evaluated on the same rows. :math:`\hat e` is clipped to ``[clip, 1 - clip]``.
    ``random_state`` gives two child seeds, one for the folds and one for every model, so a
    model's seed does not depend on the split.

    Returns:
        ``(psi, clipped e, fitted models per fold as dicts with keys propensity, mu0, mu1)``.
    """
    n = len(Y)
    fold_seed, model_seed = child_seeds(random_state, 2)
    if cv == 1:
        folds = [(np.arange(n), np.arange(n))]
    else:
        splitter = StratifiedKFold(n_splits=cv, shuffle=True, random_state=fold_seed)
        folds = list(splitter.split(A, T))
    psi = np.empty(n)
    e = np.empty(n)
    models: list[dict[str, BaseEstimator]] = []
    for train, test in folds:
        fold = {
            "propensity": fit_weighted(
                make_model(nuisance, "classifier", model_seed), A[train], T[train], weights[train]
            )
        }
        mu = []
        for arm in (0, 1):
            rows = train[T[train] == arm]
            reg = make_model(nuisance, "regressor", model_seed)
            fold[f"mu{arm}"] = fit_weighted(reg, A[rows], Y[rows], weights[rows])
            mu.append(fold[f"mu{arm}"].predict(A[test]))
        e[test] = np.clip(_proba1(fold["propensity"], A[test]), clip, 1.0 - clip)
        psi[test] = _aipw(Y[test], T[test], mu[0], mu[1], e[test])
        models.append(fold)
    return psi, e, models


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
        self.final_model_ = fit_weighted(make_model(spec, "regressor", seed), X, target, weights)

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

    ``fit`` requires at least ``2 * cv`` annotated rows and at least ``max(cv, 2)`` annotated
    rows in each arm (every fold's training rows then hold both arms); annotations must be
    finite where present, and a row is either fully annotated or all NaN.

    Parameters
    ----------
    nuisance : str or estimator, default="forest"
        Model family of :math:`e` (classifier) and :math:`\mu_0, \mu_1` (regressors), see
        :func:`~ehrcausal.learners.sklearn_models.make_model`. Random forests are the default
        because their out-of-fold propensities stay calibrated on a few hundred annotated
        records; boosted trees ("gbm") overfit the propensity there, and the resulting extreme
        inverse weights make the pseudo-outcomes heavy-tailed.
    final : str or estimator, default="ridge"
        Regressor of :math:`\psi` on :math:`\phi`.
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
    random_state : int or None
        Seeds the folds and every model (independent child seeds).

    Attributes
    ----------
    final_model_ : the fitted regression of :math:`\psi` on :math:`\phi`.
    pseudo_outcomes_ : (n_annotated,) :math:`\psi` on the annotated rows, in row order.
    propensity_ : (n_annotated,) clipped :math:`\hat e` on the annotated rows (out-of-fold when
        cross-fitted).
    annotated_ : (n,) bool mask of the annotated rows.
    annotation_weights_ : (n_annotated,) weights used (ones when ``annotation_weighting`` is off).
    n_annotated_ : number of annotated rows.
    nuisance_models_ : list (one dict per fold) of the fitted ``propensity``, ``mu0``, ``mu1``.
    annotation_model_ : fitted annotation model, or None.
    """

    estimates_effect = True

    def __init__(
        self,
        nuisance: str | BaseEstimator = "forest",
        final: str | BaseEstimator = "ridge",
        cv: int = 5,
        propensity_clip: float = 0.05,
        annotation_weighting: bool = False,
        annotation_clip: float = 0.05,
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
        val_mask: Any = None,
    ) -> AACE:
        """Fit on outcomes ``Y``, treatment ``T``, representation ``X`` = phi (n, d).

        Args:
            annotations: (n, k) expert facts (array or DataFrame); a row of all NaN marks an
                unannotated record.
            confounders: optional (n, m) tabular confounders, appended to the annotations to
                form the annotation space (observed for every record).
            val_mask: accepted for uniformity with the other learners (the experiment loop
                passes it to every learner) and ignored: nothing here is early-stopped.
        """
        return super().fit(
            Y, T, X=X, annotations=annotations, confounders=confounders, val_mask=val_mask
        )

    def _fit(
        self,
        Y: np.ndarray,
        T: np.ndarray,
        X: np.ndarray,
        *,
        annotations: Any,
        confounders: Any = None,
        val_mask: Any = None,
    ) -> None:
        cv = check_int(self.cv, "cv", 1)
        clip = _check_real(self.propensity_clip, "propensity_clip", 0.0, 0.5, closed_high=False)
        a_clip = _check_real(self.annotation_clip, "annotation_clip", 0.0, 1.0, closed_high=True)
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
        seed_nuis, seed_annot, seed_final = child_seeds(check_seed(self.random_state), 3)
        if self.annotation_weighting:
            Z = np.hstack([*covariates, T[:, None].astype(float)])
            weights, self.annotation_model_ = annotation_weights(
                Z, annotated, clip=a_clip, random_state=seed_annot
            )
        else:
            weights, self.annotation_model_ = np.ones(n_ann), None
        psi, e, models = dr_pseudo_outcomes(
            Y[annotated],
            t_s,
            space[annotated],
            weights,
            nuisance=self.nuisance,
            cv=cv,
            clip=clip,
            random_state=seed_nuis,
        )
        self._fit_final(self.final, X[annotated], psi, weights, seed_final)
        self.pseudo_outcomes_ = psi
        self.propensity_ = e
        self.annotated_ = annotated
        self.annotation_weights_ = weights
        self.n_annotated_ = n_ann
        self.nuisance_models_ = models


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
        Regressor family, see :func:`~ehrcausal.learners.sklearn_models.make_model`.
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

    def fit(self, Y: Any, T: Any, *, X: Any, val_mask: Any = None) -> RiskBased:
        """Fit the control-outcome model; ``val_mask`` is accepted and ignored."""
        return super().fit(Y, T, X=X, val_mask=val_mask)

    def _fit(self, Y: np.ndarray, T: np.ndarray, X: np.ndarray, *, val_mask: Any = None) -> None:
        if not isinstance(self.lower_is_better, bool | np.bool_):
            raise ValueError(f"lower_is_better must be True or False, got {self.lower_is_better!r}")
        control = T == 0
        self._fit_final(self.model, X[control], Y[control], None, check_seed(self.random_state))

    def risk(self, X: Any) -> np.ndarray:
        """Predicted outcome without treatment, :math:`\\hat E[Y \\mid \\phi, T = 0]`."""
        check_is_fitted(self, "fitted_")
        return self.final_model_.predict(check_features(X, self.n_features_in_))

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
        Regressor family, see :func:`~ehrcausal.learners.sklearn_models.make_model`.
    random_state : int or None
        Seed of the model.
    """

    estimates_effect = True

    def __init__(self, final: str | BaseEstimator = "ridge", random_state: int | None = None):
        store_params(self, locals())

    def fit(
        self, Y: Any, T: Any, *, X: Any, tau: Any = None, val_mask: Any = None
    ) -> Oracle:
        """Fit on the true effect ``tau`` (n,); ``Y``, ``T`` are validated, ``val_mask`` ignored."""
        if tau is None:
            raise ValueError(
                "Oracle.fit needs the true effect: pass tau=... (available on simulated data only)"
            )
        return super().fit(Y, T, X=X, tau=tau, val_mask=val_mask)

    def _fit(
        self, Y: np.ndarray, T: np.ndarray, X: np.ndarray, *, tau: Any, val_mask: Any = None
    ) -> None:
        target = as_1d(tau, "tau")
        check_same_length(Y=Y, tau=target)
        self._fit_final(self.final, X, target, None, check_seed(self.random_state))


_AACE = {"family": "aace", "fit_inputs": ("annotations", "confounders")}
register(
    "aace", AACE, "AACE: annotation-space DR pseudo-outcomes regressed on phi, cross-fitted",
    **_AACE, cv=5,
)
register(
    "aace_no_crossfit", AACE, "AACE with nuisances fitted and evaluated on the same rows",
    **_AACE, cv=1,
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
