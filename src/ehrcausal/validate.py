r"""Trusting an effect estimate without the truth: DR scores, RATE, calibration, model selection.

On real data the individual effect :math:`\tau(x) = E[Y(1) - Y(0) \mid X = x]` is never observed,
so a learner cannot be scored by its PEHE. Every criterion here replaces the unknown effect by
quantities estimated from held-out data with cross-fitted nuisances (the package's one engine,
:mod:`ehrcausal.nuisance`); they work with any learner that has ``effect(X)`` (every learner of
the registry) or with an array of effect estimates.

- :func:`fit_nuisances` -- cross-fitted :math:`\hat\mu_0, \hat\mu_1, \hat e, \hat m` and the AIPW
  scores :math:`\psi` on the evaluation rows (:class:`Nuisances`); by default the nuisance
  models are chosen by data (``"auto"``, :func:`ehrcausal.nuisance.select_model`).
- :func:`dr_scores` -- the cross-fitted AIPW scores alone (:func:`ehrcausal.nuisance.dr_scores`).
- :func:`rate` -- the rank-weighted average treatment effect of a prioritisation rule (AUTOC or
  Qini weights) with a half-sample bootstrap standard error, or the paired difference of two
  rules (Yadlowsky, Fleming, Shah, Brunskill & Wager 2021, "Evaluating treatment prioritization
  rules via rank-weighted average treatment effects", arXiv:2111.07966; as grf's
  ``rank_average_treatment_effect``, ``r-package/grf/R/rank_average_treatment.R``).
- :func:`blp_test` -- the best-linear-predictor calibration test (Chernozhukov, Demirer, Duflo &
  Fernández-Val 2018, "Generic machine learning inference on heterogeneous treatment effects in
  randomized experiments", arXiv:1712.04802; as grf's ``test_calibration``,
  ``r-package/grf/R/forest_summary.R``).
- :func:`r_loss`, :func:`dr_loss` -- held-out R-loss (Nie & Wager 2021, "Quasi-oracle
  estimation of heterogeneous treatment effects", Biometrika 108) and DR-loss (Kennedy 2023;
  Saito & Yasui 2020, "Counterfactual cross-validation", ICML) with confidence intervals, the
  scores of EconML's ``RScorer`` and ``DRScorer``.
- :func:`nn_pehe` -- the nearest-neighbour PEHE of :func:`ehrcausal.metrics.nn_pehe_ci`
  (Schwab, Linhardt & Karlen 2018) with its bootstrap interval, as one more criterion.
- :func:`evaluate` -- every criterion for several learners on the same held-out rows, and
  :func:`select` -- the learner a criterion picks.

Conventions: larger effects are better unless a rule is given as ``-effect``; the scores,
priorities and effects are aligned with the evaluation rows, and the priorities and effects
must come from learners fitted on *other* rows (otherwise the tests are not valid, grf's
warning in ``rank_average_treatment.R``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.stats import norm

from .metrics import autoc, nn_pehe_ci, qini, toc_curve
from .nuisance import CrossFit, Nuisance, aipw_scores, cross_fit, dr_scores
from .runtime import check_seed
from .validation import (
    ArrayLike,
    as_1d,
    check_fit_inputs,
    check_int,
    check_number,
    check_propensity,
    check_same_length,
    check_treatment,
)

__all__ = [
    "Estimate",
    "RATEResult",
    "Calibration",
    "Nuisances",
    "CRITERIA",
    "fit_nuisances",
    "dr_scores",
    "effect_of",
    "rate",
    "blp_test",
    "r_loss",
    "dr_loss",
    "nn_pehe",
    "evaluate",
    "select",
]

#: criteria of :func:`evaluate` and whether larger is better
CRITERIA: dict[str, bool] = {
    "r_loss": False,
    "dr_loss": False,
    "nn_pehe": False,
    "autoc": True,
    "qini": True,
    "blp_differential": True,
}

_WEIGHTS = ("autoc", "qini")


# ---------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """A number with its standard error, ``1 - alpha`` interval and p-value.

    Attributes:
        estimate: the point estimate.
        stderr: its standard error.
        ci: ``(lower, upper)``.
        p_value: of the test stated by the function that made it.
    """

    estimate: float
    stderr: float
    ci: tuple[float, float]
    p_value: float

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        """Flat ``{estimate, stderr, lower, upper, p_value}`` with an optional key prefix."""
        return {
            f"{prefix}estimate": self.estimate,
            f"{prefix}stderr": self.stderr,
            f"{prefix}lower": self.ci[0],
            f"{prefix}upper": self.ci[1],
            f"{prefix}p_value": self.p_value,
        }


@dataclass(frozen=True)
class RATEResult(Estimate):
    """A RATE (or the difference of two), with its TOC curve on a grid.

    Attributes:
        weight: ``"autoc"`` or ``"qini"``.
        q: the grid of treated fractions of the TOC.
        toc: :math:`\\widehat{TOC}(q)` on the grid (of the first rule minus the second's for a
            paired comparison).
        toc_stderr: bootstrap standard errors of the TOC.
    """

    weight: str = "autoc"
    q: np.ndarray = field(default_factory=lambda: np.empty(0))
    toc: np.ndarray = field(default_factory=lambda: np.empty(0))
    toc_stderr: np.ndarray = field(default_factory=lambda: np.empty(0))


@dataclass(frozen=True)
class Calibration:
    """The best-linear-predictor calibration test of :func:`blp_test`.

    Attributes:
        mean: coefficient of the mean forecast (1 when the average effect is right).
        differential: coefficient of the differential forecast (1 when the heterogeneity is
            well calibrated, 0 when the forecast carries no heterogeneity); its one-sided
            p-value tests "no detectable heterogeneity" against a positive coefficient.
    """

    mean: Estimate
    differential: Estimate


@dataclass
class Nuisances:
    r"""Cross-fitted nuisances and AIPW scores on the evaluation rows.

    Attributes:
        Y, T, X: the evaluation data.
        mu0, mu1, e, m: out-of-fold :math:`\hat\mu_0, \hat\mu_1, \hat e` (clipped),
            :math:`\hat m = E[Y \mid X]`.
        scores: the AIPW scores :math:`\psi_i`.
        fit: the :class:`~ehrcausal.nuisance.CrossFit` (folds, models, data-driven choice).
    """

    Y: np.ndarray
    T: np.ndarray
    X: np.ndarray
    mu0: np.ndarray
    mu1: np.ndarray
    e: np.ndarray
    m: np.ndarray
    scores: np.ndarray
    fit: CrossFit

    @property
    def selection(self) -> dict[str, str]:
        """The chosen outcome and propensity models by name (empty when none was chosen)."""
        return {role: sel.name for role, sel in self.fit.selection.items()}


def _normal_estimate(value: float, se: float, alpha: float, *, one_sided: bool = False,
                     null: float = 0.0) -> Estimate:
    z = norm.ppf(1 - alpha / 2)
    if se > 0:
        stat = (value - null) / se
        p = float(norm.sf(stat)) if one_sided else float(2 * norm.sf(abs(stat)))
    else:
        p = float("nan")
    return Estimate(float(value), float(se), (float(value - z * se), float(value + z * se)), p)


def _check_alpha(alpha: float) -> float:
    return check_number(alpha, "alpha", 0.0, 1.0, low_open=True, high_open=True)


# ---------------------------------------------------------------------------------------------
# nuisances and effects
# ---------------------------------------------------------------------------------------------


def fit_nuisances(
    Y: ArrayLike,
    T: ArrayLike,
    X: ArrayLike,
    *,
    cv: int = 5,
    nuisance: Nuisance = "auto",
    clip: float = 0.01,
    random_state: Any = 0,
) -> Nuisances:
    r"""Cross-fitted nuisances and AIPW scores of the evaluation rows.

    :func:`ehrcausal.nuisance.cross_fit` (``cv`` folds stratified by :math:`T`, the marginal
    :math:`\hat m` included, :math:`\hat e` clipped to ``[clip, 1 - clip]``) and
    :func:`ehrcausal.nuisance.aipw_scores`:

    .. math:: \psi_i = \hat\mu_1 - \hat\mu_0 + \frac{T_i (Y_i - \hat\mu_1)}{\hat e}
              - \frac{(1 - T_i)(Y_i - \hat\mu_0)}{1 - \hat e}

    with every nuisance from models that did not see unit :math:`i`. ``nuisance="auto"`` picks
    the outcome and propensity models by out-of-fold loss (the record is
    :attr:`Nuisances.selection`). An :class:`~ehrcausal.validation.OverlapWarning` gives the
    share of units whose propensity leaves ``[0.01, 0.99]`` (those clipped).
    """
    y, t, x = check_fit_inputs(Y, T, X, min_per_arm=0)
    check_int(cv, "cv", 2)
    clip = check_number(clip, "clip", 0.0, 0.5, low_open=True, high_open=True)
    fitted = cross_fit(y, t, x, nuisance=nuisance, cv=cv, stratify=True, clip=clip,
                       marginal=True, random_state=random_state, overlap_name="fit_nuisances")
    psi = aipw_scores(y, t, fitted.mu0, fitted.mu1, fitted.e)
    assert fitted.m is not None
    return Nuisances(y, t, x, fitted.mu0, fitted.mu1, fitted.e, fitted.m, psi, fitted)


def effect_of(learner: Any, X: ArrayLike = None, name: str = "learner") -> np.ndarray:
    """Effect estimates from a fitted learner (its ``effect(X)``) or an array of effects.

    Raises:
        ValueError: an object without ``effect`` that is not an array of numbers, a learner
            whose ``effect`` is a ranking score rather than an effect
            (``estimates_effect = False``), or a learner given without ``X``.
    """
    if hasattr(learner, "effect") and callable(learner.effect):
        if getattr(learner, "estimates_effect", True) is False:
            raise ValueError(
                f"{name} ({type(learner).__name__}) gives a ranking score, not an effect "
                "(estimates_effect is False); use its score as a priority in rate() instead"
            )
        if X is None:
            raise ValueError(f"{name} is a learner: X is needed to call its effect(X)")
        return as_1d(learner.effect(X), f"{name}.effect(X)")
    if isinstance(learner, np.ndarray | pd.Series | list | tuple):
        return as_1d(learner, name)
    raise ValueError(
        f"{name} must be a fitted learner with an effect(X) method or an array of effects, "
        f"got {type(learner).__name__}"
    )


# ---------------------------------------------------------------------------------------------
# RATE
# ---------------------------------------------------------------------------------------------


def _rate_value(scores: np.ndarray, priority: np.ndarray, weight: str) -> float:
    return autoc(scores, priority) if weight == "autoc" else qini(scores, priority)


def rate(
    scores: ArrayLike,
    priority: ArrayLike,
    *,
    weight: Literal["autoc", "qini"] = "autoc",
    compare: ArrayLike = None,
    n_boot: int = 200,
    alpha: float = 0.05,
    q: ArrayLike = None,
    random_state: Any = 0,
) -> RATEResult:
    r"""Rank-weighted average treatment effect of a prioritisation rule, with a bootstrap s.e.

    Units sorted by ``priority`` (descending; ties as one group, the expected value over
    random tie-breaking); with AIPW ``scores`` :math:`\psi` standing in for the effect,

    .. math:: \widehat{TOC}(q) = \frac{1}{\lceil qn\rceil}\sum_{i \le \lceil qn\rceil}
              \psi_{(i)} - \bar\psi, \qquad
              \widehat{AUTOC} = \frac1n\sum_{k=1}^n \widehat{TOC}(k/n), \qquad
              \widehat{Qini} = \frac1n\sum_{k=1}^n \tfrac kn\,\widehat{TOC}(k/n)

    (:func:`ehrcausal.metrics.autoc`, :func:`ehrcausal.metrics.qini`; Yadlowsky et al. 2021).
    The standard error is the standard deviation of the statistic over ``n_boot`` half-samples
    drawn without replacement (:math:`\lfloor n/2\rfloor` units each), which has the variance of
    the full-sample statistic without rescaling, as grf (``boot_grf`` with
    ``half.sample = TRUE`` in ``rank_average_treatment.R``). The interval is
    :math:`\hat\theta \pm z_{1-\alpha/2}\,\widehat{se}` and the p-value two-sided for
    :math:`\theta = 0`: a positive RATE that excludes 0 says that the rule finds units that
    benefit more than average, i.e. that there is heterogeneity the rule detects.

    With ``compare`` (a second rule) the result is the paired difference
    RATE(``priority``) - RATE(``compare``), both computed on the same half-samples.

    Args:
        scores: AIPW scores ``(n,)`` of the evaluation rows (e.g. :func:`dr_scores` or
            :attr:`Nuisances.scores`).
        priority: the rule ``(n,)``, larger first; computed without these rows' outcomes.
        weight: ``"autoc"`` (more power when few units benefit) or ``"qini"`` (when many do).
        compare: optional second rule ``(n,)``.
        n_boot: half-samples (at least 2).
        alpha: the interval's level is ``1 - alpha``.
        q: grid of the returned TOC curve; default 0.1, 0.2, ..., 1 (grf's).
        random_state: seed of the half-samples.

    Raises:
        ValueError: scores and priorities of different lengths, non-finite values, an unknown
            weight, fewer than 4 units, a bad ``n_boot``, ``alpha`` or ``q``.
    """
    psi = as_1d(scores, "scores")
    s1 = as_1d(priority, "priority")
    s2 = None if compare is None else as_1d(compare, "compare")
    n = check_same_length(scores=psi, priority=s1, **({} if s2 is None else {"compare": s2}))
    if weight not in _WEIGHTS:
        raise ValueError(f"weight must be 'autoc' or 'qini', got {weight!r}")
    n_boot = check_int(n_boot, "n_boot", 2)
    alpha = _check_alpha(alpha)
    if n < 4:
        raise ValueError(f"rate needs at least 4 units (half-samples of 2), got {n}")
    grid = np.round(np.arange(1, 11) / 10, 10) if q is None else as_1d(q, "q")

    def stat(idx: np.ndarray) -> tuple[float, np.ndarray]:
        value = _rate_value(psi[idx], s1[idx], weight)
        _, toc = toc_curve(psi[idx], s1[idx], grid)
        if s2 is not None:
            value -= _rate_value(psi[idx], s2[idx], weight)
            toc = toc - toc_curve(psi[idx], s2[idx], grid)[1]
        return value, toc

    point, toc = stat(np.arange(n))
    rng = np.random.default_rng(check_seed(random_state))
    half = n // 2
    draws = np.empty(n_boot)
    toc_draws = np.empty((n_boot, len(grid)))
    for b in range(n_boot):
        draws[b], toc_draws[b] = stat(rng.choice(n, size=half, replace=False))
    se = float(np.std(draws, ddof=1))
    est = _normal_estimate(point, se, alpha)
    return RATEResult(est.estimate, est.stderr, est.ci, est.p_value, weight=weight, q=grid,
                      toc=toc, toc_stderr=np.std(toc_draws, axis=0, ddof=1))


# ---------------------------------------------------------------------------------------------
# calibration
# ---------------------------------------------------------------------------------------------


def _hc3_ols(target: np.ndarray, design: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OLS coefficients and their HC3 standard errors (MacKinnon & White 1985)."""
    xtx_inv = np.linalg.pinv(design.T @ design)
    beta = xtx_inv @ design.T @ target
    resid = target - design @ beta
    leverage = np.einsum("ij,jk,ik->i", design, xtx_inv, design)
    scale = resid**2 / np.clip(1.0 - leverage, 1e-12, None) ** 2
    cov = xtx_inv @ (design.T * scale) @ design @ xtx_inv
    return beta, np.sqrt(np.clip(np.diag(cov), 0.0, None))


def blp_test(
    Y: ArrayLike,
    T: ArrayLike,
    tau_hat: ArrayLike,
    *,
    m_hat: ArrayLike,
    e_hat: ArrayLike,
    alpha: float = 0.05,
) -> Calibration:
    r"""Best-linear-predictor calibration test of an effect forecast (as grf test_calibration).

    With cross-fitted :math:`\hat m = E[Y \mid X]` and :math:`\hat e` on the evaluation rows and
    the forecast :math:`\hat\tau_i` (from a learner fitted elsewhere), the least-squares fit
    without intercept

    .. math:: Y_i - \hat m_i = \alpha\,(T_i - \hat e_i)\,\bar{\hat\tau}
              + \beta\,(T_i - \hat e_i)(\hat\tau_i - \bar{\hat\tau}) + \varepsilon_i

    gives the *mean forecast* coefficient :math:`\alpha` (1 when the average effect is right)
    and the *differential forecast* coefficient :math:`\beta` (1 when the heterogeneity is
    calibrated, 0 when the forecast does not track it); Chernozhukov, Demirer, Duflo &
    Fernández-Val (2018, the best linear predictor), as grf's ``test_calibration`` in
    ``forest_summary.R``. Standard errors are heteroskedasticity-robust (HC3) and p-values
    one-sided for a positive coefficient, as grf: a small p-value of :math:`\beta` rejects "no
    heterogeneity that the forecast captures".

    Args:
        Y, T: outcome and binary treatment ``(n,)`` of the evaluation rows.
        tau_hat: effect forecast ``(n,)``.
        m_hat, e_hat: cross-fitted :math:`E[Y \mid X]` and propensity (e.g. from
            :func:`fit_nuisances`), ``e_hat`` strictly inside (0, 1).
        alpha: the intervals' level is ``1 - alpha``.
    """
    y = as_1d(Y, "Y")
    t = check_treatment(T)
    tau = as_1d(tau_hat, "tau_hat")
    m = as_1d(m_hat, "m_hat")
    e = check_propensity(e_hat, "e_hat")
    check_same_length(Y=y, T=t, tau_hat=tau, m_hat=m, e_hat=e)
    alpha = _check_alpha(alpha)
    if len(y) < 3:
        raise ValueError(f"blp_test needs at least 3 units, got {len(y)}")
    centre = float(tau.mean())
    design = np.column_stack([(t - e) * centre, (t - e) * (tau - centre)])
    if np.allclose(design[:, 1], 0.0):
        raise ValueError(
            "tau_hat is constant: the differential forecast is undefined (no heterogeneity to "
            "calibrate)"
        )
    if centre == 0.0:
        raise ValueError("tau_hat has mean 0: the mean-forecast coefficient is undefined")
    beta, se = _hc3_ols(y - m, design)
    return Calibration(
        mean=_normal_estimate(beta[0], se[0], alpha, one_sided=True),
        differential=_normal_estimate(beta[1], se[1], alpha, one_sided=True),
    )


# ---------------------------------------------------------------------------------------------
# held-out losses
# ---------------------------------------------------------------------------------------------


def _mean_estimate(values: np.ndarray, alpha: float) -> Estimate:
    n = len(values)
    se = float(np.std(values, ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    est = _normal_estimate(float(np.mean(values)), se, alpha)
    return Estimate(est.estimate, est.stderr, est.ci, float("nan"))


def _check_nuisances(nuisances: Any) -> Nuisances:
    if not isinstance(nuisances, Nuisances):
        raise ValueError(
            f"nuisances must be the result of fit_nuisances(...), got {type(nuisances).__name__}"
        )
    return nuisances


def _effects_on(learner: Any, nuisances: Any) -> tuple[np.ndarray, Nuisances]:
    """The learner's effects on the evaluation rows, checked against the nuisances' length."""
    nuis = _check_nuisances(nuisances)
    tau = effect_of(learner, nuis.X)
    if len(tau) != len(nuis.Y):
        raise ValueError(
            f"the effects have {len(tau)} rows but the nuisances were fitted on {len(nuis.Y)}"
        )
    return tau, nuis


def r_loss(
    learner: Any,
    nuisances: Nuisances,
    *,
    alpha: float = 0.05,
) -> Estimate:
    r"""Held-out R-loss of a learner (or of effect estimates), with a normal interval.

    .. math:: \hat L_R = \frac1n\sum_i \ell_i,\quad
              \ell_i = \big((Y_i - \hat m_i) - (T_i - \hat e_i)\,\hat\tau(X_i)\big)^2

    on the evaluation rows of ``nuisances`` (Nie & Wager 2021; EconML's ``RScorer`` reports it
    relative to a constant effect). The interval is :math:`\hat L_R \pm z\,s/\sqrt n` with
    :math:`s` the standard deviation of :math:`\ell_i`; compare learners on the same rows,
    where their difference is far more precise than either interval (:func:`evaluate`).

    Args:
        learner: a fitted learner with ``effect(X)`` or effect estimates ``(n,)``.
        nuisances: :func:`fit_nuisances` on the evaluation rows.
    """
    alpha = _check_alpha(alpha)
    tau, nuis = _effects_on(learner, nuisances)
    losses = ((nuis.Y - nuis.m) - (nuis.T - nuis.e) * tau) ** 2
    return _mean_estimate(losses, alpha)


def dr_loss(
    learner: Any,
    nuisances: Nuisances,
    *,
    alpha: float = 0.05,
) -> Estimate:
    r"""Held-out DR-loss of a learner (or of effect estimates), with a normal interval.

    .. math:: \hat L_{DR} = \frac1n\sum_i (\psi_i - \hat\tau(X_i))^2

    with the cross-fitted AIPW scores :math:`\psi` of ``nuisances``: an unbiased estimate of
    :math:`E[(\tau - \hat\tau)^2]` up to a constant that does not depend on :math:`\hat\tau`
    when the nuisances are right (Saito & Yasui 2020; Kennedy 2023; EconML's ``DRScorer``).
    Interval as :func:`r_loss`.
    """
    alpha = _check_alpha(alpha)
    tau, nuis = _effects_on(learner, nuisances)
    return _mean_estimate((nuis.scores - tau) ** 2, alpha)


def nn_pehe(
    learner: Any,
    nuisances: Nuisances,
    *,
    n_boot: int = 200,
    alpha: float = 0.05,
    random_state: Any = 0,
) -> Estimate:
    r"""Nearest-neighbour PEHE of a learner on the evaluation rows, with a bootstrap interval.

    :func:`ehrcausal.metrics.nn_pehe_ci` (Schwab, Linhardt & Karlen 2018, the X-MultiTask
    chapter's criterion): the error against :math:`Y_i - Y_{j(i)}` with :math:`j(i)` the nearest
    unit of the other arm on standardised covariates. Needs no nuisance model but is biased by
    the matching distance; the standard error is the interval's width over
    :math:`2 z_{1-\alpha/2}`.
    """
    tau, nuis = _effects_on(learner, nuisances)
    alpha = _check_alpha(alpha)
    value, lower, upper = nn_pehe_ci(nuis.X, nuis.T, nuis.Y, tau, n_boot=n_boot, alpha=alpha,
                                     random_state=random_state)
    se = (upper - lower) / (2 * norm.ppf(1 - alpha / 2))
    return Estimate(value, float(se), (lower, upper), float("nan"))


# ---------------------------------------------------------------------------------------------
# selection
# ---------------------------------------------------------------------------------------------


def evaluate(
    learners: Mapping[str, Any],
    nuisances: Nuisances,
    *,
    priorities: Mapping[str, ArrayLike] | None = None,
    criteria: Sequence[str] | None = None,
    n_boot: int = 200,
    alpha: float = 0.05,
    random_state: Any = 0,
) -> pd.DataFrame:
    """Every criterion for every learner on the same held-out rows, one row per learner.

    Columns: for each criterion of :data:`CRITERIA` asked for, ``<criterion>`` (the estimate)
    and ``<criterion>_se``; with RATE also ``<criterion>_p`` (two-sided) and for
    ``blp_differential`` its one-sided p-value. A learner's priority for RATE is its effect
    (larger first) unless ``priorities`` gives another rule (e.g. ``-effect`` when lower outcomes
    are better). Losses are skipped (NaN) for a learner whose ``effect`` is a ranking score
    (``estimates_effect = False``), which still gets its RATE.

    Args:
        learners: name -> fitted learner (any registry learner) or effect array ``(n,)``.
        nuisances: :func:`fit_nuisances` on the evaluation rows.
        priorities: optional name -> rule ``(n,)`` for RATE.
        criteria: subset of :data:`CRITERIA` (default all).
    """
    _check_nuisances(nuisances)
    if not isinstance(learners, Mapping) or not learners:
        raise ValueError("learners must be a non-empty mapping of name -> fitted learner")
    names = list(CRITERIA) if criteria is None else list(criteria)
    unknown = sorted(set(names) - set(CRITERIA))
    if unknown:
        raise ValueError(f"unknown criteria {unknown}; known: {', '.join(CRITERIA)}")
    priorities = dict(priorities or {})
    rows = []
    for name, learner in learners.items():
        row: dict[str, Any] = {"learner": name}
        is_effect = getattr(learner, "estimates_effect", True) is not False
        if name in priorities:
            prio = as_1d(priorities[name], f"priorities[{name!r}]")
        elif is_effect:
            prio = effect_of(learner, nuisances.X, name)
        elif hasattr(learner, "effect"):
            prio = as_1d(learner.effect(nuisances.X), f"{name}.effect(X)")
        else:
            prio = effect_of(learner, nuisances.X, name)
        check_same_length(scores=nuisances.scores, **{f"priority of {name}": prio})
        tau = effect_of(learner, nuisances.X, name) if is_effect else None
        for crit in names:
            if crit in ("autoc", "qini"):
                res = rate(nuisances.scores, prio, weight=crit, n_boot=n_boot, alpha=alpha,
                           random_state=random_state)
                row.update({crit: res.estimate, f"{crit}_se": res.stderr, f"{crit}_p": res.p_value})
                continue
            if tau is None:
                row.update({crit: np.nan, f"{crit}_se": np.nan})
                continue
            if crit == "r_loss":
                res = r_loss(tau, nuisances, alpha=alpha)
            elif crit == "dr_loss":
                res = dr_loss(tau, nuisances, alpha=alpha)
            elif crit == "nn_pehe":
                res = nn_pehe(tau, nuisances, n_boot=n_boot, alpha=alpha,
                              random_state=random_state)
            else:
                if np.allclose(tau, tau[0]) or tau.mean() == 0:
                    row.update({crit: np.nan, f"{crit}_se": np.nan, f"{crit}_p": np.nan})
                    continue
                res = blp_test(nuisances.Y, nuisances.T, tau, m_hat=nuisances.m,
                               e_hat=nuisances.e, alpha=alpha).differential
                row[f"{crit}_p"] = res.p_value
            row.update({crit: res.estimate, f"{crit}_se": res.stderr})
        rows.append(row)
    return pd.DataFrame(rows)


def select(table: pd.DataFrame, criterion: str) -> str:
    """The learner a criterion picks from an :func:`evaluate` table.

    The smallest loss (``r_loss``, ``dr_loss``, ``nn_pehe``), the largest RATE (``autoc``,
    ``qini``) or the differential-forecast coefficient closest to 1 (``blp_differential``);
    learners with a NaN value are not eligible.

    Raises:
        ValueError: an unknown criterion, a table without it, or no eligible learner.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; known: {', '.join(CRITERIA)}")
    if not isinstance(table, pd.DataFrame) or criterion not in table or "learner" not in table:
        raise ValueError(f"table must be an evaluate() result with a {criterion!r} column")
    values = table[criterion].to_numpy(dtype=float)
    ok = np.isfinite(values)
    if not ok.any():
        raise ValueError(f"no learner has a finite {criterion}")
    if criterion == "blp_differential":
        key = -np.abs(values - 1.0)
    else:
        key = values if CRITERIA[criterion] else -values
    key = np.where(ok, key, -np.inf)
    return str(table["learner"].iloc[int(np.argmax(key))])

