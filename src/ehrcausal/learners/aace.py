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

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from ..nuisance import Nuisance, aipw_scores, cross_fit, fit_weighted, make_model, predict_treated
from ..runtime import check_seed, child_seeds
from ..validation import as_1d, as_2d, check_int, check_number, check_same_length
from .base import CATELearner, store_params
from .registry import register

__all__ = ["AACE", "RiskBased", "Oracle"]


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

    An :class:`~ehrcausal.validation.OverlapWarning` reports the share of annotated rows whose
    (out-of-fold, unclipped) :math:`\hat e` falls outside ``[0.01, 0.99]``.

    ``fit`` requires at least ``2 * cv`` annotated rows and at least ``max(cv, 2)`` annotated
    rows in each arm (every fold's training rows then hold both arms); annotations must be
    finite where present, and a row is either fully annotated or all NaN.

    Parameters
    ----------
    nuisance : str, estimator, Auto or pair, default="forest"
        Model family of :math:`e` (classifier) and :math:`\mu_0, \mu_1` (regressors), see
        :func:`~ehrcausal.nuisance.make_model`; a pair ``(outcome, propensity)`` sets them
        apart. ``"auto"`` (or an :class:`~ehrcausal.nuisance.Auto`) chooses each by
        out-of-fold loss on the annotated rows among regularised linear/logistic models,
        degree-2 polynomial models (squares and interactions, offered when the annotation space
        has at most :data:`~ehrcausal.nuisance.POLY_MAX_FEATURES` columns), random forests,
        boosted trees and a stack of them (:func:`~ehrcausal.nuisance.select_model`), and
        records the choice in ``nuisance_selection_``; it costs about six times the CPU of
        ``"forest"`` per fit (``benchmarks/aace_crossfit.py`` measures whether it pays).
        Random forests stay the default because their out-of-fold propensities stay calibrated
        on a few hundred annotated records; boosted trees ("gbm") overfit the propensity there,
        and the resulting extreme inverse weights make the pseudo-outcomes heavy-tailed.
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
    folds_ : list of the ``(train, test)`` indices (into the annotated rows) of every fold.
    nuisance_selection_ : dict mapping ``"outcome"`` / ``"propensity"`` to the
        :class:`~ehrcausal.nuisance.Selection` that chose it (chosen name and every
        candidate's out-of-fold loss); empty when both models were named.
    annotation_model_ : fitted annotation model, or None.
    """

    estimates_effect = True

    def __init__(
        self,
        nuisance: Nuisance = "forest",
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
        psi = aipw_scores(y_s, t_s, nuis.mu0, nuis.mu1, nuis.e)
        self._fit_final(self.final, X[annotated], psi, weights, seed_final)
        self.pseudo_outcomes_ = psi
        self.propensity_ = nuis.e
        self.annotated_ = annotated
        self.annotation_weights_ = weights
        self.n_annotated_ = n_ann
        self.nuisance_models_ = nuis.models
        self.folds_ = nuis.folds
        self.nuisance_selection_ = nuis.selection


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
