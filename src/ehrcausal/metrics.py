r"""Effect, policy, ranking and prediction metrics.

Notation: ``n`` units indexed by ``i``; binary treatment :math:`T_i \in \{0, 1\}`; outcome
:math:`Y_i`; covariates :math:`X_i`; true conditional average treatment effect (CATE)
:math:`\tau_i = \mu_1(X_i) - \mu_0(X_i)`; an estimate :math:`\hat\tau_i`; propensity
:math:`e(X_i) = P(T_i = 1 \mid X_i)`.

Effect accuracy (needs the true effect, i.e. simulated or semi-synthetic data)
    * :func:`pehe` -- :math:`\sqrt{\tfrac1n \sum_i (\hat\tau_i - \tau_i)^2}`, the root of the
      precision in estimating heterogeneous effects (Hill 2011; Shalit, Johansson & Sontag 2017,
      "Estimating individual treatment effect: generalization bounds and algorithms", ICML).
    * :func:`ate_error` -- :math:`|\bar{\hat\tau} - \bar\tau|`.
    * :func:`nn_pehe` -- PEHE against nearest-neighbour pseudo-effects, usable without the truth
      (Schwab, Linhardt & Karlen 2018, "Perfect Match", arXiv:1810.00656).

Policy and ranking
    * :func:`policy_value_curve`, :func:`policy_value` -- value of treating the top-``k`` units
      ranked by a score, using the (true or estimated) potential-outcome means.
    * :func:`policy_risk` -- the policy risk of Shalit et al. (2017) on randomised data.
    * :func:`toc_curve`, :func:`autoc`, :func:`qini` -- the targeting operator characteristic and
      its rank-weighted average treatment effects (RATE) of Yadlowsky, Fleming, Shah, Brunskill &
      Wager (2021, "Evaluating treatment prioritization rules via rank-weighted average treatment
      effects", arXiv:2111.07966). With the true effect as ``tau`` these are oracle metrics; with
      the cross-fitted doubly robust scores of :func:`dr_scores` they are estimates on real data.
    * Ties: every ranking metric treats units with equal scores as one group and returns the
      expected value over a uniformly random order within ties (so a tied group that straddles a
      budget contributes the slots left times its mean); results never depend on row order, and
      without ties they are the plain sorted cumulative sums.

Model selection without the truth
    * :func:`r_loss` -- the R-learner loss of Nie & Wager (2021, "Quasi-oracle estimation of
      heterogeneous treatment effects", Biometrika 108(2)).
    * :func:`dr_risk` -- squared error against the AIPW (doubly robust) pseudo-outcome
      (Kennedy 2023, "Towards optimal doubly robust estimation of heterogeneous causal effects",
      EJS; Saito & Yasui 2020, "Counterfactual cross-validation", ICML).
    * :func:`nuisance_estimates`, :func:`dr_scores` -- the cross-fitted nuisances they need
      (both run :func:`ehrcausal.nuisance.cross_fit`; :func:`dr_scores` is
      :func:`ehrcausal.nuisance.dr_scores`, re-exported here).

Prediction
    * :func:`auc`, :func:`auc_by_class` -- area under the ROC curve (one-vs-rest per class).
    * :func:`brier`, :func:`calibration_table` -- Brier score and a reliability table.

Uncertainty and agreement (the X-MultiTask evaluation, Tamo et al. 2025)
    * :func:`bootstrap_ci` -- percentile bootstrap interval of any statistic of paired arrays
      (Efron & Tibshirani 1993).
    * :func:`auc_by_class_ci`, :func:`nn_pehe_ci` -- per-class AUC and NN-PEHE with intervals.
    * :func:`rank_agreement` -- Kendall's tau-b between two scores (Kendall 1938), e.g. whether
      NN-PEHE orders methods as the true PEHE does.

All functions validate their input with :mod:`ehrcausal.validation` and raise :class:`ValueError`
naming the offending argument (NaN/inf, lengths that disagree, non-binary treatment, empty input).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree
from scipy.stats import kendalltau, rankdata
from sklearn.metrics import roc_auc_score

from .nuisance import Nuisance, aipw_scores, cross_fit, dr_scores
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
)

__all__ = [
    "pehe",
    "ate_error",
    "nn_pehe",
    "ate_error_nn",
    "policy_value_curve",
    "policy_value",
    "policy_risk",
    "toc_curve",
    "autoc",
    "qini",
    "dr_scores",
    "r_loss",
    "dr_risk",
    "nuisance_estimates",
    "auc",
    "auc_by_class",
    "brier",
    "calibration_table",
    "bootstrap_ci",
    "auc_by_class_ci",
    "nn_pehe_ci",
    "rank_agreement",
]

# Clipping of cross-fitted propensities returned by :func:`nuisance_estimates`.
_NUISANCE_CLIP = 0.01


# ---------------------------------------------------------------------------------------------
# private helpers
# ---------------------------------------------------------------------------------------------


def _as_effect(values: ArrayLike, name: str) -> np.ndarray:
    """Validate an effect array that is either 1-d ``(n,)`` or 2-d ``(n, C)``.

    A ``(n, 1)`` column is treated as 1-d.
    """
    arr = np.asarray(values) if values is not None else None
    if arr is not None and arr.ndim == 2 and arr.shape[1] > 1:
        return as_2d(values, name)
    if arr is not None and arr.ndim > 2:
        raise ValueError(f"{name} must be 1-d (n,) or 2-d (n, C), got shape {arr.shape}")
    return as_1d(values, name)


def _check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    check_same_length(**{name_a: a, name_b: b})
    if a.shape != b.shape:
        raise ValueError(f"{name_a} has shape {a.shape} but {name_b} has shape {b.shape}")


def _expected_top_sums(score: np.ndarray, values: np.ndarray) -> np.ndarray:
    r"""Expected sums of ``values`` over the top-``k`` units by ``score``, for ``k = 0..n``.

    The one ranking primitive of the module: every ranking metric is built on it. Units are
    ranked by ``score`` in descending order and tied scores form one group, ranked in a
    uniformly random order. Let :math:`G_1, G_2, \dots` be the groups of equal score from the
    highest down, :math:`g_j = |G_j|` and :math:`N_j = g_1 + \dots + g_j` (:math:`N_0 = 0`). A
    budget :math:`k` with :math:`N_{j-1} < k \le N_j` takes all of :math:`G_1, \dots, G_{j-1}`
    and :math:`k - N_{j-1}` units of the group :math:`G_j` that straddles the cut-off, each of
    them with probability :math:`(k - N_{j-1}) / g_j`, so

    .. math:: S(k) = E\Big[\sum_{i \in \text{top } k} v_i\Big]
              = \sum_{l < j}\sum_{i \in G_l} v_i + (k - N_{j-1})\,\bar v_{G_j},

    with :math:`\bar v_{G_j}` the group's mean: a linear interpolation of the cumulative sum
    between the group's ends. This is the expected value over every way of breaking the ties
    (McSherry & Najork 2008, "Computing information retrieval performance measures efficiently
    in the presence of tied scores", ECIR; the convention of a ROC AUC counting a tie one half),
    so the result does not depend on the order of the rows.

    Within a group, units are summed in increasing order of ``values``, so :math:`S(N_j)` is
    the same floating-point number for any row order. Without ties, :math:`S` is exactly the
    cumulative sum of ``values`` sorted by descending ``score``: not a bit changes.

    Returns:
        Array of length ``n + 1``; ``S[0] = 0`` and ``S[n]`` is the sum of ``values``.
    """
    n = len(score)
    order = np.argsort(-score, kind="stable")
    ranked = score[order]
    starts = np.flatnonzero(np.concatenate(([True], ranked[1:] != ranked[:-1])))
    if len(starts) == n:  # no ties
        return np.concatenate(([0.0], np.cumsum(values[order])))
    order = np.lexsort((values, -score))  # within a tied group, by value: row order is moot
    sums = np.concatenate(([0.0], np.cumsum(values[order])))
    ends = np.append(starts[1:], n)
    cuts = np.arange(1, n + 1)
    group = np.searchsorted(starts, cuts, side="left") - 1  # starts[group] < cut <= ends[group]
    inside = cuts < ends[group]  # the cut-off falls strictly inside a tied group
    k, group = cuts[inside], group[inside]
    lo, hi = starts[group], ends[group]
    sums[k] = sums[lo] + (k - lo) / (hi - lo) * (sums[hi] - sums[lo])
    return sums


def _check_fraction_grid(q: ArrayLike | None, n: int) -> np.ndarray:
    if q is None:
        return np.arange(1, n + 1) / n
    grid = as_1d(q, "q")
    bad = (grid <= 0) | (grid > 1)
    if bad.any():
        raise ValueError(
            f"q must lie in (0, 1]; {int(bad.sum())} value(s) outside "
            f"(min {grid.min():.3g}, max {grid.max():.3g})"
        )
    return grid


# ---------------------------------------------------------------------------------------------
# effect accuracy
# ---------------------------------------------------------------------------------------------


def pehe(tau_true: ArrayLike, tau_hat: ArrayLike) -> float:
    r"""Root precision in estimating heterogeneous effects.

    .. math:: \sqrt{\epsilon_{PEHE}} = \sqrt{\frac{1}{n}\sum_{i=1}^n (\hat\tau_i - \tau_i)^2}

    (Hill 2011; Shalit et al. 2017). For 2-d effects of shape ``(n, C)`` (effects on class
    probabilities) the mean runs over units and classes, i.e. over all ``n * C`` entries.

    Args:
        tau_true: true effects, ``(n,)`` or ``(n, C)``.
        tau_hat: estimated effects, same shape.

    Returns:
        The square root of the PEHE.
    """
    tau = _as_effect(tau_true, "tau_true")
    est = _as_effect(tau_hat, "tau_hat")
    _check_same_shape(tau, est, "tau_true", "tau_hat")
    return float(np.sqrt(np.mean((est - tau) ** 2)))


def ate_error(tau_true: ArrayLike, tau_hat: ArrayLike) -> float:
    r"""Absolute error of the average treatment effect.

    .. math:: \epsilon_{ATE} = \Big|\frac1n\sum_i \hat\tau_i - \frac1n\sum_i \tau_i\Big|

    (Shalit et al. 2017). For 2-d effects ``(n, C)`` the absolute error is computed per class and
    averaged over the ``C`` classes: :math:`\frac1C\sum_c |\bar{\hat\tau}_c - \bar\tau_c|`.
    """
    tau = _as_effect(tau_true, "tau_true")
    est = _as_effect(tau_hat, "tau_hat")
    _check_same_shape(tau, est, "tau_true", "tau_hat")
    return float(np.mean(np.abs(est.mean(axis=0) - tau.mean(axis=0))))


def nn_pehe(
    X: ArrayLike,
    T: ArrayLike,
    Y: ArrayLike,
    tau_hat: ArrayLike,
    *,
    squared: bool = False,
    standardize: bool = True,
) -> float:
    r"""PEHE against nearest-neighbour pseudo-effects (Schwab, Linhardt & Karlen 2018).

    Every unit :math:`i` is matched to its Euclidean 1-nearest neighbour :math:`j(i)` in the
    opposite arm (covariates standardised to zero mean and unit variance over all units when
    ``standardize``; constant columns are left unscaled). The pseudo-effect is
    :math:`\tilde\tau_i = Y_i - Y_{j(i)}` for treated and :math:`Y_{j(i)} - Y_i` for control units,
    and

    .. math:: \text{NN-PEHE} = \sqrt{\frac1n\sum_i (\hat\tau_i - \tilde\tau_i)^2}

    (without the square root if ``squared``). With one-hot class outcomes ``Y`` of shape
    ``(n, C)`` and ``tau_hat`` of the same shape, the mean squared error is computed per class
    and averaged over classes (then the square root is taken unless ``squared``), as in the
    X-MultiTask evaluation. Ties between equidistant neighbours are resolved by the k-d tree.

    Args:
        X: covariates ``(n, d)``.
        T: binary treatment ``(n,)``; both arms must be present.
        Y: observed outcomes ``(n,)`` or one-hot ``(n, C)``.
        tau_hat: estimated effects, same shape as ``Y``.
        squared: return the mean squared error instead of its root.
        standardize: standardise covariates before the neighbour search.
    """
    pseudo, est = _nn_pseudo_effects(X, T, Y, tau_hat, standardize, "nn_pehe")
    mse = float(np.mean(np.mean((est - pseudo) ** 2, axis=0)))
    return mse if squared else float(np.sqrt(mse))


def _nn_pseudo_effects(
    X: ArrayLike, T: ArrayLike, Y: ArrayLike, tau_hat: ArrayLike, standardize: bool, caller: str
) -> tuple[np.ndarray, np.ndarray]:
    """The 1-NN pseudo-effects of :func:`nn_pehe` and the checked ``tau_hat``, same shapes."""
    x = as_2d(X, "X")
    t = check_treatment(T)
    y = _as_effect(Y, "Y")
    est = _as_effect(tau_hat, "tau_hat")
    check_same_length(X=x, T=t, Y=y, tau_hat=est)
    _check_same_shape(y, est, "Y", "tau_hat")
    treated = np.flatnonzero(t == 1)
    control = np.flatnonzero(t == 0)
    if len(treated) == 0 or len(control) == 0:
        raise ValueError(f"T must contain both treated (T=1) and control (T=0) units for {caller}")
    if standardize:
        sd = x.std(axis=0)
        x = (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    _, nn_of_treated = cKDTree(x[control]).query(x[treated], k=1)
    _, nn_of_control = cKDTree(x[treated]).query(x[control], k=1)
    pseudo = np.empty_like(y)
    pseudo[treated] = y[treated] - y[control[nn_of_treated]]
    pseudo[control] = y[treated[nn_of_control]] - y[control]
    return pseudo, est


def ate_error_nn(
    X: ArrayLike, T: ArrayLike, Y: ArrayLike, tau_hat: ArrayLike, *, standardize: bool = True
) -> float:
    r"""ATE error against nearest-neighbour pseudo-effects, the "ATE error" of X-MultiTask.

    With the pseudo-effects :math:`\tilde\tau_i` of :func:`nn_pehe` (1-nearest neighbour in the
    opposite arm), per outcome column :math:`c` (class or domain)

    .. math:: \epsilon_{\mathrm{ATE}}^{NN} = \frac1C\sum_c \Big|\frac1n\sum_i\tilde\tau_{ic}
              - \frac1n\sum_i\hat\tau_{ic}\Big| ,

    as the released evaluation of Tamo et al. (2025) computes it (``evaluate.py`` of
    Wizaaard/X-MultiTask, lines 233-238 and 256-258, there averaged over bootstrap resamples).
    Unlike :func:`ate_error` it needs no true effect, and it measures against a noisy target:
    even the true :math:`\tau` scores above zero.

    Args:
        X, T, Y, tau_hat, standardize: as in :func:`nn_pehe`.
    """
    pseudo, est = _nn_pseudo_effects(X, T, Y, tau_hat, standardize, "ate_error_nn")
    return float(np.mean(np.abs(pseudo.mean(axis=0) - est.mean(axis=0))))


# ---------------------------------------------------------------------------------------------
# policy
# ---------------------------------------------------------------------------------------------


def policy_value_curve(mu0: ArrayLike, mu1: ArrayLike, score: ArrayLike) -> np.ndarray:
    r"""Value of treating the top-``k`` units by ``score``, for every budget ``k = 0..n``.

    Units are sorted by ``score`` in descending order, giving the order
    :math:`(1), \dots, (n)`; then

    .. math:: V(k) = \frac1n\Big[\sum_{i \le k} \mu_1((i)) + \sum_{i > k} \mu_0((i))\Big]
              = \frac1n\Big[\sum_{i=1}^n \mu_0(i) + \sum_{i \le k} \tau((i))\Big],
              \quad \tau = \mu_1 - \mu_0,

    computed for all ``k`` at once with cumulative sums in :math:`O(n \log n)`. ``mu0`` and
    ``mu1`` are the (true or estimated) expected potential outcomes; larger values are better.
    This is the policy-value curve used with CATE rankings (cf. the policy risk of Shalit et al.
    2017, which is one minus a policy value).

    Tied scores form one group treated in a uniformly random order: :math:`V(k)` is its
    expected value over every way of breaking the ties. When the cut-off ``k`` falls inside a
    tied group of :math:`g` units of which :math:`r` still get a slot, each of them is treated
    with probability :math:`r / g`, so the group adds :math:`r` times its mean effect
    (see ``_expected_top_sums``). A constant score treats a random share:
    :math:`V(k) = \bar\mu_0 + \tfrac{k}{n}\bar\tau`. The curve does not depend on the order of
    the rows; without ties it is the plain sorted cumulative sum.

    Returns:
        Array of length ``n + 1``; ``V[0]`` is the mean of ``mu0`` and ``V[n]`` the mean of ``mu1``.
    """
    m0 = as_1d(mu0, "mu0")
    m1 = as_1d(mu1, "mu1")
    s = as_1d(score, "score")
    n = check_same_length(mu0=m0, mu1=m1, score=s)
    treated_sum = _expected_top_sums(s, m1)
    control_sum = _expected_top_sums(s, m0)
    return (treated_sum + (control_sum[-1] - control_sum)) / n


def policy_value(
    mu0: ArrayLike, mu1: ArrayLike, score: ArrayLike, budget: float | None = None
) -> float:
    r"""Policy value of treating the top units by ``score``.

    With ``budget=None`` the value averaged over all budgets, :math:`\frac1n\sum_{k=1}^n V(k)`,
    with :math:`V` from :func:`policy_value_curve`. With ``budget`` a fraction in ``[0, 1]`` the
    value :math:`V(k)` at :math:`k = \operatorname{round}(\text{budget} \cdot n)` (halves rounded
    up). Ties in ``score`` count as in :func:`policy_value_curve` (the expected value over random
    tie-breaking): a constant score gets :math:`\bar\mu_0 + \tfrac{k}{n}\bar\tau` at a budget and
    :math:`\bar\mu_0 + \tfrac{n+1}{2n}\bar\tau` averaged over budgets.
    """
    curve = policy_value_curve(mu0, mu1, score)
    n = len(curve) - 1
    if budget is None:
        return float(np.mean(curve[1:]))
    fraction = check_number(budget, "budget", 0.0, 1.0)
    k = int(math.floor(fraction * n + 0.5))
    return float(curve[k])


def policy_risk(tau_hat: ArrayLike, Y: ArrayLike, T: ArrayLike, threshold: float = 0.0) -> float:
    r"""Policy risk on randomised data (Shalit, Johansson & Sontag 2017).

    The policy treats a unit when its estimated effect exceeds ``threshold``,
    :math:`\pi(x) = 1[\hat\tau(x) > \text{threshold}]`, and

    .. math::
        R_{pol}(\pi) = 1 - \big(E[Y \mid T=1, \pi=1]\, P(\pi=1)
                               + E[Y \mid T=0, \pi=0]\, P(\pi=0)\big),

    with empirical means and probabilities; a conditional mean over an empty cell contributes 0.
    Valid for randomised treatment (e.g. the randomised subset of Jobs); lower is better when
    larger ``Y`` is the good outcome.
    """
    est = as_1d(tau_hat, "tau_hat")
    y = as_1d(Y, "Y")
    t = check_treatment(T)
    check_same_length(tau_hat=est, Y=y, T=t)
    cut = check_number(threshold, "threshold", -np.inf, np.inf, low_open=True, high_open=True)
    treat = est > cut
    p_treat = float(np.mean(treat))
    cell1 = (t == 1) & treat
    cell0 = (t == 0) & ~treat
    value1 = float(np.mean(y[cell1])) * p_treat if cell1.any() else 0.0
    value0 = float(np.mean(y[cell0])) * (1.0 - p_treat) if cell0.any() else 0.0
    return 1.0 - (value1 + value0)


# ---------------------------------------------------------------------------------------------
# ranking: TOC / RATE
# ---------------------------------------------------------------------------------------------


def toc_curve(
    tau: ArrayLike, score: ArrayLike, q: ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    r"""Targeting operator characteristic (Yadlowsky et al. 2021).

    .. math:: TOC(q) = \frac{1}{\lceil qn \rceil}\sum_{i \le \lceil qn \rceil} \tau_{(i)}
              - \frac1n\sum_{i=1}^n \tau_i

    where :math:`(1), \dots, (n)` sorts units by ``score`` in descending order. ``tau`` may be
    the true effect (oracle TOC) or cross-fitted doubly robust scores from :func:`dr_scores`
    (the estimator of Yadlowsky et al.).

    Tied scores form one group: the top-:math:`k` mean is its expected value over a uniformly
    random order within ties, so a tied group that straddles :math:`k = \lceil qn \rceil`, with
    :math:`g` units of which :math:`r` still fit, contributes :math:`r` times its mean effect
    (each of its units is in the top :math:`k` with probability :math:`r / g`; see
    ``_expected_top_sums``). This is the plug-in of the population TOC of Yadlowsky et al.,
    :math:`E[\tau \mid F(S) \ge 1 - q] - E[\tau]`, when :math:`S` has atoms; a constant score
    has :math:`TOC(q) = 0` for every ``q``. Without ties nothing changes.

    Args:
        tau: effects or DR scores ``(n,)``.
        score: prioritisation score ``(n,)``; higher means treat first.
        q: fractions in ``(0, 1]``; default ``k / n`` for ``k = 1..n``.

    Returns:
        ``(q, toc)``: the grid and :math:`TOC(q)` on it.
    """
    effect = as_1d(tau, "tau")
    s = as_1d(score, "score")
    n = check_same_length(tau=effect, score=s)
    grid = _check_fraction_grid(q, n)
    # ceil(q n), guarded against q = k/n evaluating to k + tiny in floating point
    k = np.ceil(grid * n - 1e-9).astype(int)
    k = np.clip(k, 1, n)
    top_sum = _expected_top_sums(s, effect)
    toc = top_sum[k] / k - effect.mean()
    return grid, toc


def autoc(tau: ArrayLike, score: ArrayLike, q: ArrayLike | None = None) -> float:
    r"""Area under the TOC curve, the AUTOC RATE of Yadlowsky et al. (2021).

    .. math:: AUTOC = \int_0^1 TOC(q)\,dq \approx \frac{1}{|Q|}\sum_{q \in Q} TOC(q)

    with uniform weights over the grid ``Q`` (default ``k / n``, ``k = 1..n``), the TOC of
    :func:`toc_curve`. Positive when the score ranks units with larger effects first, zero for a
    random ranking in expectation. Ties count as one group (the expected value over random
    tie-breaking), so an uninformative constant score gets exactly 0 up to rounding, whatever
    the order of the rows.
    """
    _, toc = toc_curve(tau, score, q)
    return float(np.mean(toc))


def qini(tau: ArrayLike, score: ArrayLike, q: ArrayLike | None = None) -> float:
    r"""Qini coefficient, the RATE with weight :math:`q` (Yadlowsky et al. 2021).

    .. math:: Qini = \int_0^1 q\,TOC(q)\,dq \approx \frac{1}{|Q|}\sum_{q \in Q} q\,TOC(q)

    with the TOC of :func:`toc_curve` (ties count as one group, the expected value over random
    tie-breaking; a constant score gets 0).
    """
    grid, toc = toc_curve(tau, score, q)
    return float(np.mean(grid * toc))


# ---------------------------------------------------------------------------------------------
# cross-fitted nuisances and truth-free risks
# ---------------------------------------------------------------------------------------------


def nuisance_estimates(
    Y: ArrayLike,
    T: ArrayLike,
    X: ArrayLike,
    *,
    cv: int = 5,
    nuisance: Nuisance = "gbm_default",
    random_state: int | None = 0,
) -> dict[str, np.ndarray]:
    r"""Cross-fitted nuisances for :func:`r_loss` and :func:`dr_risk`.

    :func:`ehrcausal.nuisance.cross_fit` with the folds (plain shuffled ``cv``-fold), models and
    ``random_state`` of :func:`dr_scores`, plus :math:`\hat m(x) = E[Y \mid X = x]`, an
    out-of-fold regression of ``Y`` on ``X`` with the outcome model, as in Nie & Wager (2021)
    (Chernozhukov et al. 2018 for cross-fitting). ``nuisance`` is as in :func:`dr_scores`: a
    kind of :func:`ehrcausal.nuisance.make_model`, an unfitted estimator, or a pair
    ``(outcome regressor, propensity classifier)``.

    Returns:
        ``{'m': E[Y|X], 'e': P(T=1|X) clipped to [0.01, 0.99], 'mu0': E[Y|X,T=0],
        'mu1': E[Y|X,T=1]}``, each an array of length ``n`` of out-of-fold predictions.
    """
    y, t, x = check_fit_inputs(Y, T, X, min_per_arm=0)
    check_int(cv, "cv", 2)
    fitted = cross_fit(
        y,
        t,
        x,
        nuisance=nuisance,
        cv=cv,
        stratify=False,
        clip=_NUISANCE_CLIP,
        marginal=True,
        random_state=random_state,
    )
    return {"m": fitted.m, "e": fitted.e, "mu0": fitted.mu0, "mu1": fitted.mu1}


def r_loss(
    Y: ArrayLike, T: ArrayLike, tau_hat: ArrayLike, m_hat: ArrayLike, e_hat: ArrayLike
) -> float:
    r"""R-loss of Nie & Wager (2021).

    .. math:: \hat L_R(\hat\tau) = \frac1n\sum_i \big((Y_i - \hat m(X_i))
              - (T_i - \hat e(X_i))\,\hat\tau(X_i)\big)^2

    with cross-fitted :math:`\hat m = E[Y \mid X]` and :math:`\hat e` (see
    :func:`nuisance_estimates`). Smaller is better; comparable across CATE estimates for the same
    nuisances. ``e_hat`` must lie strictly in ``(0, 1)``.
    """
    y = as_1d(Y, "Y")
    t = check_treatment(T)
    est = as_1d(tau_hat, "tau_hat")
    m = as_1d(m_hat, "m_hat")
    e = check_propensity(e_hat, "e_hat")
    check_same_length(Y=y, T=t, tau_hat=est, m_hat=m, e_hat=e)
    return float(np.mean(((y - m) - (t - e) * est) ** 2))


def dr_risk(
    Y: ArrayLike,
    T: ArrayLike,
    tau_hat: ArrayLike,
    mu0_hat: ArrayLike,
    mu1_hat: ArrayLike,
    e_hat: ArrayLike,
) -> float:
    r"""Doubly robust pseudo-outcome risk (Saito & Yasui 2020; Kennedy 2023).

    .. math:: \hat R_{DR}(\hat\tau) = \frac1n\sum_i (\psi_i - \hat\tau_i)^2,\quad
              \psi_i = \hat\mu_1 - \hat\mu_0 + \frac{T_i (Y_i - \hat\mu_1)}{\hat e}
              - \frac{(1 - T_i)(Y_i - \hat\mu_0)}{1 - \hat e}

    with nuisances evaluated at :math:`X_i` (ideally cross-fitted, see
    :func:`nuisance_estimates`). ``e_hat`` must lie strictly in ``(0, 1)``.
    """
    y = as_1d(Y, "Y")
    t = check_treatment(T)
    est = as_1d(tau_hat, "tau_hat")
    m0 = as_1d(mu0_hat, "mu0_hat")
    m1 = as_1d(mu1_hat, "mu1_hat")
    e = check_propensity(e_hat, "e_hat")
    check_same_length(Y=y, T=t, tau_hat=est, mu0_hat=m0, mu1_hat=m1, e_hat=e)
    psi = aipw_scores(y, t, m0, m1, e)
    return float(np.mean((psi - est) ** 2))


# ---------------------------------------------------------------------------------------------
# prediction
# ---------------------------------------------------------------------------------------------


def _check_probability(p: np.ndarray, name: str) -> None:
    bad = (p < 0) | (p > 1)
    if bad.any():
        raise ValueError(f"{name} must lie in [0, 1]; {int(bad.sum())} value(s) outside")


def _class_labels(y_true: ArrayLike, n_classes: int, name: str = "y_true") -> np.ndarray:
    labels = as_1d(y_true, name)
    ok = (labels == np.round(labels)) & (labels >= 0) & (labels <= n_classes - 1)
    if not ok.all():
        raise ValueError(
            f"{name} must hold integer class labels 0..{n_classes - 1}; "
            f"{int((~ok).sum())} value(s) are not"
        )
    return labels.astype(int)


def auc(y_true: ArrayLike, score: ArrayLike) -> float:
    r"""Area under the ROC curve for a binary outcome.

    :math:`AUC = P(s_i > s_j \mid y_i = 1, y_j = 0)` with ties counted one half (Hanley & McNeil
    1982), computed by :func:`sklearn.metrics.roc_auc_score`. ``y_true`` must contain both
    classes.
    """
    y = check_treatment(y_true, "y_true")
    s = as_1d(score, "score")
    check_same_length(y_true=y, score=s)
    if y.min() == y.max():
        raise ValueError(f"y_true contains only class {y[0]}; AUC needs both classes 0 and 1")
    return float(roc_auc_score(y, s))


def auc_by_class(y_true: ArrayLike, proba: ArrayLike) -> np.ndarray:
    r"""One-vs-rest AUC for each class.

    For class :math:`c`, the AUC of ``proba[:, c]`` for the indicator :math:`1[y = c]`. ``y_true``
    holds integer labels ``0..C-1`` and ``proba`` is ``(n, C)``. A class that is absent from
    ``y_true`` (or that every unit has) gets NaN, since its AUC is undefined.

    Returns:
        Array of length ``C``.
    """
    p = as_2d(proba, "proba")
    n_classes = p.shape[1]
    y = _class_labels(y_true, n_classes)
    check_same_length(y_true=y, proba=p)
    out = np.full(n_classes, np.nan)
    for c in range(n_classes):
        indicator = (y == c).astype(int)
        if 0 < indicator.sum() < len(indicator):
            out[c] = roc_auc_score(indicator, p[:, c])
    return out


def brier(y_true: ArrayLike, proba: ArrayLike) -> float:
    r"""Brier score (Brier 1950); lower is better.

    Binary (``proba`` of shape ``(n,)``, the probability of class 1):
    :math:`\frac1n\sum_i (p_i - y_i)^2`. Multiclass (``proba`` of shape ``(n, C)``, ``y_true``
    integer labels ``0..C-1`` or a one-hot ``(n, C)`` matrix):
    :math:`\frac1n\sum_i\sum_c (p_{ic} - 1[y_i = c])^2`.
    """
    arr = np.asarray(proba) if proba is not None else None
    if arr is not None and arr.ndim == 2 and arr.shape[1] > 1:
        p = as_2d(proba, "proba")
        _check_probability(p, "proba")
        y_arr = np.asarray(y_true) if y_true is not None else None
        if y_arr is not None and y_arr.ndim == 2 and y_arr.shape[1] > 1:
            onehot = as_2d(y_true, "y_true")
            _check_same_shape(onehot, p, "y_true", "proba")
            if not np.all(np.isin(onehot, (0.0, 1.0))) or not np.all(onehot.sum(axis=1) == 1):
                raise ValueError("y_true as a matrix must be one-hot (one 1 per row)")
        else:
            labels = _class_labels(y_true, p.shape[1])
            check_same_length(y_true=labels, proba=p)
            onehot = np.eye(p.shape[1])[labels]
        return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))
    p = as_1d(proba, "proba")
    _check_probability(p, "proba")
    y = check_treatment(y_true, "y_true")
    check_same_length(y_true=y, proba=p)
    return float(np.mean((p - y) ** 2))


def calibration_table(y_true: ArrayLike, proba: ArrayLike, n_bins: int = 10) -> pd.DataFrame:
    r"""Reliability table for a binary outcome.

    Predicted probabilities are put in ``n_bins`` equal-width bins on ``[0, 1]`` (bin ``b``
    holds :math:`b/B \le p < (b+1)/B`, the last bin also holds ``p = 1``). For every non-empty bin
    the table gives the mean predicted probability, the observed event rate and the count; a
    calibrated model has the two close in every bin.

    Returns:
        DataFrame with columns ``bin``, ``lower``, ``upper``, ``mean_predicted``,
        ``observed_rate``, ``count``, one row per non-empty bin in increasing order.
    """
    y = check_treatment(y_true, "y_true")
    p = as_1d(proba, "proba")
    _check_probability(p, "proba")
    check_same_length(y_true=y, proba=p)
    n_bins = check_int(n_bins, "n_bins", 1)
    bins = np.minimum(np.floor(p * n_bins).astype(int), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    pred_sum = np.bincount(bins, weights=p, minlength=n_bins)
    obs_sum = np.bincount(bins, weights=y.astype(float), minlength=n_bins)
    used = np.flatnonzero(count > 0)
    return pd.DataFrame(
        {
            "bin": used,
            "lower": used / n_bins,
            "upper": (used + 1) / n_bins,
            "mean_predicted": pred_sum[used] / count[used],
            "observed_rate": obs_sum[used] / count[used],
            "count": count[used],
        }
    )


# ---------------------------------------------------------------------------------------------
# uncertainty and agreement (the X-MultiTask evaluation)
# ---------------------------------------------------------------------------------------------


def _rank_auc(indicator: np.ndarray, score: np.ndarray) -> float:
    """Binary AUC by the Mann-Whitney rank sum (ties get average ranks, i.e. count one half).

    :math:`AUC = (R_1 - n_1(n_1 + 1)/2) / (n_1 n_0)` with :math:`R_1` the rank sum of the
    positives; identical to :func:`sklearn.metrics.roc_auc_score` and cheap enough for
    bootstrap loops. Raises ``ValueError`` when one class is missing.
    """
    n1 = int(indicator.sum())
    n0 = len(indicator) - n1
    if n1 == 0 or n0 == 0:
        raise ValueError("the AUC needs both a positive and a negative unit")
    ranks = rankdata(score)
    return float((ranks[indicator == 1].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def _check_bootstrap_args(n_boot: int, alpha: float) -> tuple[int, float]:
    n_boot = check_int(n_boot, "n_boot", 1)
    alpha = check_number(alpha, "alpha", 0.0, 1.0, low_open=True, high_open=True)
    return n_boot, alpha


def bootstrap_ci(
    statistic: Callable[..., float],
    *arrays: ArrayLike,
    n_boot: int = 1000,
    alpha: float = 0.05,
    random_state: int | None = 0,
) -> tuple[float, float, float]:
    r"""Point estimate and percentile bootstrap interval of a statistic of paired arrays.

    The point estimate is :math:`\hat\theta = s(A_1, \dots, A_m)` on the full data. Each of the
    ``n_boot`` resamples draws ``n`` row indices with replacement, the SAME indices for every
    array (rows stay paired), and evaluates :math:`\hat\theta^{*b}`. The interval is the
    percentile interval (Efron & Tibshirani 1993, *An Introduction to the Bootstrap*, ch. 13):

    .. math:: [\,q_{\alpha/2}(\hat\theta^{*}),\; q_{1-\alpha/2}(\hat\theta^{*})\,]

    with :math:`q` the empirical quantiles (linear interpolation) of the successful resamples.
    A resample on which ``statistic`` raises :class:`ValueError` (e.g. an AUC on a resample
    holding a single class) or returns a non-finite value is skipped; if more than half of the
    resamples fail, the interval is not trusted and a ``ValueError`` says so.

    Args:
        statistic: function of the arrays (as numpy arrays, in order) returning a number.
        *arrays: one or more arrays with the same number of rows (1-d or 2-d).
        n_boot: number of resamples (at least 1).
        alpha: the interval has nominal coverage ``1 - alpha``.
        random_state: seed of the resampling (same seed, same interval).

    Returns:
        ``(estimate, lower, upper)``.
    """
    if not callable(statistic):
        raise ValueError(f"statistic must be callable, got {statistic!r}")
    if not arrays:
        raise ValueError("bootstrap_ci needs at least one array to resample")
    n_boot, alpha = _check_bootstrap_args(n_boot, alpha)
    data = []
    for i, values in enumerate(arrays):
        if values is None:
            raise ValueError(f"array {i} is None")
        arr = np.asarray(values)
        if arr.ndim == 0:
            raise ValueError(f"array {i} is a scalar; bootstrap_ci resamples rows of arrays")
        data.append(arr)
    n = check_same_length(**{f"array {i}": arr for i, arr in enumerate(data)})
    if n < 2:
        raise ValueError(f"bootstrap_ci needs at least 2 rows, got {n}")
    estimate = float(statistic(*data))
    if not math.isfinite(estimate):
        raise ValueError(f"statistic is not finite on the full data (got {estimate})")
    rng = np.random.default_rng(check_seed(random_state))
    draws = np.empty(n_boot, dtype=float)
    ok = np.zeros(n_boot, dtype=bool)
    for b in range(n_boot):
        idx = rng.integers(0, n, size=n)
        try:
            value = float(statistic(*(arr[idx] for arr in data)))
        except ValueError:
            continue
        if math.isfinite(value):
            draws[b] = value
            ok[b] = True
    n_failed = int(n_boot - ok.sum())
    if n_failed > n_boot / 2:
        raise ValueError(
            f"{n_failed} of {n_boot} bootstrap resamples failed (the statistic raised ValueError "
            "or was not finite); more than half failed, so no interval is given"
        )
    lower, upper = np.quantile(draws[ok], [alpha / 2.0, 1.0 - alpha / 2.0])
    return estimate, float(lower), float(upper)


def auc_by_class_ci(
    y_true: ArrayLike,
    proba: ArrayLike,
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    random_state: int | None = 0,
) -> pd.DataFrame:
    r"""One-vs-rest AUC per class with percentile bootstrap intervals.

    For class :math:`c`, the AUC of ``proba[:, c]`` for :math:`1[y = c]` (as
    :func:`auc_by_class`) and its :func:`bootstrap_ci` interval; all classes use the same
    resampled rows for a given ``random_state``. This is the X-MultiTask report (Tamo et al.
    2025): the AUC of each arm's head on that arm's test patients, with a bootstrap interval.
    Resamples without both a unit of class ``c`` and one of another class are skipped. A
    class absent from ``y_true`` (or held by every unit) gets NaN in every column.

    Returns:
        DataFrame with columns ``class``, ``auc``, ``lower``, ``upper`` (one row per class).
    """
    p = as_2d(proba, "proba")
    n_classes = p.shape[1]
    y = _class_labels(y_true, n_classes)
    check_same_length(y_true=y, proba=p)
    _check_bootstrap_args(n_boot, alpha)
    rows = []
    for c in range(n_classes):
        indicator = (y == c).astype(int)
        if 0 < indicator.sum() < len(indicator):
            est, lower, upper = bootstrap_ci(
                _rank_auc,
                indicator,
                p[:, c],
                n_boot=n_boot,
                alpha=alpha,
                random_state=random_state,
            )
        else:
            est = lower = upper = float("nan")
        rows.append({"class": c, "auc": est, "lower": lower, "upper": upper})
    return pd.DataFrame(rows, columns=["class", "auc", "lower", "upper"])


def nn_pehe_ci(
    X: ArrayLike,
    T: ArrayLike,
    Y: ArrayLike,
    tau_hat: ArrayLike,
    *,
    squared: bool = False,
    standardize: bool = True,
    n_boot: int = 1000,
    alpha: float = 0.05,
    random_state: int | None = 0,
) -> tuple[float, float, float]:
    r"""NN-PEHE with a percentile bootstrap interval.

    The point estimate is :func:`nn_pehe` (Schwab, Linhardt & Karlen 2018, "Perfect Match",
    arXiv:1810.00656) in the X-MultiTask variant: every unit's pseudo-effect comes from its
    1-nearest neighbour in the other arm on standardised covariates, outcomes are one-hot
    classes, and the squared error is averaged over classes and units,

    .. math:: \text{NN-PEHE}^2 = \frac{1}{C}\sum_c \frac1n\sum_i
              (\hat\tau_{ic} - \tilde\tau_{ic})^2 .

    ``squared=True`` returns this mean squared error (the number the paper reports);
    the default returns its square root (the scale of :func:`pehe`). The interval comes from
    :func:`bootstrap_ci` over units: each resample re-standardises the covariates and re-matches
    neighbours among the resampled units (a resample missing an arm is skipped).

    Args:
        X: covariates ``(n, d)``.
        T: binary treatment ``(n,)``.
        Y: observed outcomes: ``(n,)`` numbers, one-hot ``(n, C)``, or integer class labels
            ``(n,)`` when ``tau_hat`` is ``(n, C)`` (they are one-hot encoded).
        tau_hat: estimated effects, ``(n,)`` or ``(n, C)``.
        squared, standardize: as in :func:`nn_pehe`.
        n_boot, alpha, random_state: as in :func:`bootstrap_ci`.

    Returns:
        ``(estimate, lower, upper)``.
    """
    x = as_2d(X, "X")
    t = check_treatment(T)
    est = _as_effect(tau_hat, "tau_hat")
    y_arr = np.asarray(Y) if Y is not None else None
    if est.ndim == 2 and y_arr is not None and y_arr.ndim == 1:
        y = np.eye(est.shape[1])[_class_labels(Y, est.shape[1], "Y")]
    else:
        y = _as_effect(Y, "Y")
    check_same_length(X=x, T=t, Y=y, tau_hat=est)
    _check_same_shape(y, est, "Y", "tau_hat")

    def statistic(xb: np.ndarray, tb: np.ndarray, yb: np.ndarray, eb: np.ndarray) -> float:
        return nn_pehe(xb, tb, yb, eb, squared=squared, standardize=standardize)

    return bootstrap_ci(
        statistic, x, t, y, est, n_boot=n_boot, alpha=alpha, random_state=random_state
    )


def rank_agreement(a: ArrayLike, b: ArrayLike) -> tuple[float, float]:
    r"""Kendall's rank correlation :math:`\tau_b` between two score vectors, and its p-value.

    .. math:: \tau_b = \frac{n_c - n_d}{\sqrt{(n_0 - n_1)(n_0 - n_2)}}

    with :math:`n_c`/:math:`n_d` the concordant/discordant pairs, :math:`n_0 = n(n-1)/2` and
    :math:`n_1, n_2` the pairs tied in ``a`` and in ``b`` (Kendall 1938, "A new measure of rank
    correlation", Biometrika 30; the tie correction of Kendall 1945), computed by
    :func:`scipy.stats.kendalltau` with its two-sided p-value for :math:`\tau_b = 0`. Use it to
    ask whether a truth-free criterion orders methods as the truth does, e.g. NN-PEHE against
    the true PEHE across methods and replicates: 1 is the same order, -1 the reverse.

    Returns:
        ``(tau_b, p_value)``.
    """
    x = as_1d(a, "a")
    y = as_1d(b, "b")
    n = check_same_length(a=x, b=y)
    if n < 3:
        raise ValueError(f"rank_agreement needs at least 3 pairs, got {n}")
    for name, v in (("a", x), ("b", y)):
        if np.all(v == v[0]):
            raise ValueError(f"{name} is constant; a rank correlation is undefined")
    result = kendalltau(x, y)
    return float(result.statistic), float(result.pvalue)
