"""Tests for :mod:`ehrcausal.metrics`.

Unit tests compare against values worked out by hand on 2-5 units (the arithmetic is in the
comments); property tests check behaviour that must hold for any correct implementation.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from threadpoolctl import threadpool_limits

from ehrcausal import metrics
from ehrcausal.metrics import (
    ate_error,
    auc,
    auc_by_class,
    autoc,
    brier,
    calibration_table,
    dr_risk,
    dr_scores,
    nn_pehe,
    nuisance_estimates,
    pehe,
    policy_risk,
    policy_value,
    policy_value_curve,
    qini,
    r_loss,
    toc_curve,
)


@pytest.fixture(autouse=True)
def _single_thread() -> Iterator[None]:
    """Gradient boosting's OpenMP threads slow down badly on a busy machine; use one."""
    with threadpool_limits(limits=1):
        yield


def _simulate_rct(n: int, seed: int) -> dict[str, np.ndarray]:
    """Randomised trial: e = 0.5, mu0 = x1 + 0.5 x2, tau = 1 + x0 (true ATE = 1 in expectation)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    T = rng.integers(0, 2, size=n)
    tau = 1.0 + X[:, 0]
    mu0 = X[:, 1] + 0.5 * X[:, 2]
    Y = mu0 + T * tau + rng.normal(size=n)
    return {"X": X, "T": T, "Y": Y, "tau": tau, "mu0": mu0, "mu1": mu0 + tau}


# ---------------------------------------------------------------------------------------------
# PEHE and ATE error
# ---------------------------------------------------------------------------------------------


def test_pehe_1d_by_hand() -> None:
    # differences (1-1, 3-2, 5-3) = (0, 1, 2); squares 0, 1, 4; mean 5/3; root sqrt(5/3)
    assert pehe([1, 2, 3], [1, 3, 5]) == pytest.approx(math.sqrt(5 / 3))


def test_pehe_2d_mean_over_units_and_classes() -> None:
    # differences [[1, 0], [0, 2]]; squares 1, 0, 0, 4; mean over 4 entries 5/4
    tau = np.array([[0.0, 1.0], [1.0, 0.0]])
    est = np.array([[1.0, 1.0], [1.0, 2.0]])
    assert pehe(tau, est) == pytest.approx(math.sqrt(5 / 4))


def test_pehe_column_vector_is_1d() -> None:
    assert pehe(np.array([[1.0], [2.0], [3.0]]), [1, 3, 5]) == pytest.approx(math.sqrt(5 / 3))


def test_ate_error_by_hand() -> None:
    # mean tau = 2, mean tau_hat = (2 + 2 + 5) / 3 = 3 -> 1; and (0 + 1 + 2) / 3 = 1 -> 1
    assert ate_error([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)
    assert ate_error([1, 2, 3], [0, 1, 2]) == pytest.approx(1.0)
    # errors of opposite sign cancel in the ATE (PEHE would not): means both 2
    assert ate_error([1, 2, 3], [2, 2, 2]) == pytest.approx(0.0)


def test_ate_error_2d_per_class_average() -> None:
    # class means tau (0.5, 0.5), tau_hat (1, 1.5); abs errors (0.5, 1); average 0.75
    tau = np.array([[0.0, 1.0], [1.0, 0.0]])
    est = np.array([[1.0, 1.0], [1.0, 2.0]])
    assert ate_error(tau, est) == pytest.approx(0.75)


# ---------------------------------------------------------------------------------------------
# NN-PEHE
# ---------------------------------------------------------------------------------------------

# x = 0, 1, 10, 11 with T = 1, 0, 1, 0: neighbours across arms are 0<->1 and 10<->11
NN_X = np.array([0.0, 1.0, 10.0, 11.0])
NN_T = np.array([1, 0, 1, 0])


def test_nn_pehe_by_hand() -> None:
    Y = np.array([5.0, 2.0, 7.0, 1.0])
    # pseudo: unit0 (treated) 5 - 2 = 3; unit1 (control) 5 - 2 = 3;
    #         unit2 (treated) 7 - 1 = 6; unit3 (control) 7 - 1 = 6
    # tau_hat - pseudo = (0, 1, 0, -2); squares 0, 1, 0, 4; mean 5/4
    tau_hat = np.array([3.0, 4.0, 6.0, 4.0])
    assert nn_pehe(NN_X, NN_T, Y, tau_hat, standardize=False) == pytest.approx(math.sqrt(1.25))
    assert nn_pehe(NN_X, NN_T, Y, tau_hat, squared=True, standardize=False) == pytest.approx(1.25)
    # one column: standardising does not change the neighbours
    assert nn_pehe(NN_X, NN_T, Y, tau_hat) == pytest.approx(math.sqrt(1.25))


def test_nn_pehe_one_hot_classes_by_hand() -> None:
    # labels (1, 0, 2, 2) one-hot over 3 classes
    Y = np.eye(3)[[1, 0, 2, 2]]
    # pseudo: units 0 and 1 (pair 0<->1): y0 - y1 = (-1, 1, 0); units 2, 3: y2 - y3 = (0, 0, 0)
    # with tau_hat = 0: class MSEs (1+1+0+0)/4 = 0.5, 0.5, 0 -> averaged over classes 1/3
    tau_hat = np.zeros((4, 3))
    assert nn_pehe(NN_X, NN_T, Y, tau_hat, squared=True) == pytest.approx(1 / 3)
    assert nn_pehe(NN_X, NN_T, Y, tau_hat) == pytest.approx(math.sqrt(1 / 3))


def test_nn_pehe_standardize_is_scale_invariant() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 2))
    T = np.tile([0, 1], 20)
    Y = rng.normal(size=40)
    tau_hat = rng.normal(size=40)
    rescaled = X * np.array([1000.0, 1.0]) + np.array([5.0, -3.0])
    z = (X - X.mean(axis=0)) / X.std(axis=0)
    base = nn_pehe(X, T, Y, tau_hat)
    assert nn_pehe(rescaled, T, Y, tau_hat) == pytest.approx(base)
    assert nn_pehe(z, T, Y, tau_hat, standardize=False) == pytest.approx(base)
    # without standardisation the huge first column decides the neighbours: a different value
    assert nn_pehe(rescaled, T, Y, tau_hat, standardize=False) != pytest.approx(base)


def test_nn_pehe_needs_both_arms() -> None:
    with pytest.raises(ValueError, match="both"):
        nn_pehe(NN_X, [1, 1, 1, 1], np.ones(4), np.ones(4))


def test_nn_pehe_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="shape"):
        nn_pehe(NN_X, NN_T, np.eye(3)[[1, 0, 2, 2]], np.zeros(4))


# ---------------------------------------------------------------------------------------------
# policy value and policy risk
# ---------------------------------------------------------------------------------------------

PV_MU0 = np.array([1.0, 2.0, 3.0])
PV_MU1 = np.array([4.0, 1.0, 5.0])
PV_SCORE = np.array([0.5, 0.9, 0.1])  # order: unit1, unit0, unit2


def test_policy_value_curve_by_hand() -> None:
    # V(0) = (1 + 2 + 3)/3 = 2;  V(1) = (mu1[1] + mu0[0] + mu0[2])/3 = (1 + 1 + 3)/3 = 5/3
    # V(2) = (1 + 4 + 3)/3 = 8/3; V(3) = (1 + 4 + 5)/3 = 10/3
    curve = policy_value_curve(PV_MU0, PV_MU1, PV_SCORE)
    np.testing.assert_allclose(curve, [2.0, 5 / 3, 8 / 3, 10 / 3])


def test_policy_value_curve_ties_by_hand() -> None:
    # units 0 and 1 tie (mu1 = 1, 2): the first slot goes to either with probability 1/2, so
    # V(1) = (1 + 2)/2 / 3 = 1/2 (tie-breaking by index gave 1/3, by reversed index 2/3)
    curve = policy_value_curve([0, 0, 0], [1, 2, 0], [1.0, 1.0, 0.0])
    np.testing.assert_allclose(curve, [0.0, 0.5, 1.0, 1.0])
    curve = policy_value_curve([0, 0, 0], [2, 1, 0], [1.0, 1.0, 0.0])
    np.testing.assert_allclose(curve, [0.0, 0.5, 1.0, 1.0])


def test_policy_value_curve_ties_on_long_input() -> None:
    # 60 units, scores 0, 1, 0, 1, ...: the 30 odd units (score 1, mu1 = 1, 3, ..., 59, mean
    # 30) form one group, so V(k) = 30 k / 60 = k / 2 for k <= 30; then the even units (mean
    # 29) fill in: V(30 + j) = (900 + 29 j) / 60
    n = 60
    score = np.tile([0.0, 1.0], n // 2)
    curve = policy_value_curve(np.zeros(n), np.arange(n, dtype=float), score)
    k = np.arange(31)
    np.testing.assert_allclose(curve[:31], k / 2)
    np.testing.assert_allclose(curve[30:], (900 + 29 * k) / 60)


def test_policy_value_budgets_by_hand() -> None:
    # averaged over k = 1..3: (5/3 + 8/3 + 10/3)/3 = 23/9
    assert policy_value(PV_MU0, PV_MU1, PV_SCORE) == pytest.approx(23 / 9)
    assert policy_value(PV_MU0, PV_MU1, PV_SCORE, budget=0.0) == pytest.approx(2.0)
    assert policy_value(PV_MU0, PV_MU1, PV_SCORE, budget=1.0) == pytest.approx(10 / 3)
    # 0.4 * 3 = 1.2 -> k = 1; 2/3 * 3 = 2 -> k = 2; 0.5 * 3 = 1.5 -> k = 2 (halves round up)
    assert policy_value(PV_MU0, PV_MU1, PV_SCORE, budget=0.4) == pytest.approx(5 / 3)
    assert policy_value(PV_MU0, PV_MU1, PV_SCORE, budget=2 / 3) == pytest.approx(8 / 3)
    assert policy_value(PV_MU0, PV_MU1, PV_SCORE, budget=0.5) == pytest.approx(8 / 3)


@pytest.mark.parametrize("budget", [1.5, -0.1, float("nan"), "half", True])
def test_policy_value_bad_budget(budget: object) -> None:
    with pytest.raises(ValueError, match="budget"):
        policy_value(PV_MU0, PV_MU1, PV_SCORE, budget=budget)  # type: ignore[arg-type]


def test_policy_value_oracle_is_best() -> None:
    rng = np.random.default_rng(2)
    n = 60
    mu0 = rng.normal(size=n)
    mu1 = mu0 + rng.normal(size=n)
    oracle_curve = policy_value_curve(mu0, mu1, mu1 - mu0)
    oracle = policy_value(mu0, mu1, mu1 - mu0)
    for _ in range(20):
        score = rng.normal(size=n)
        # sorting by the true effect maximises V(k) for every k, hence also the average
        assert np.all(oracle_curve >= policy_value_curve(mu0, mu1, score) - 1e-12)
        assert oracle > policy_value(mu0, mu1, score)


def test_policy_risk_by_hand() -> None:
    tau_hat = np.array([1.0, -1.0, 2.0, -2.0, 0.5])
    Y = np.array([1.0, 0.0, 1.0, 1.0, 0.0])
    T = np.array([1, 1, 0, 0, 1])
    # pi = (1, 0, 1, 0, 1), P(pi=1) = 3/5
    # E[Y | T=1, pi=1]: units 0, 4 -> (1 + 0)/2 = 0.5; E[Y | T=0, pi=0]: unit 3 -> 1
    # R = 1 - (0.5 * 0.6 + 1 * 0.4) = 0.3
    assert policy_risk(tau_hat, Y, T) == pytest.approx(0.3)
    # threshold 1.5: pi = (0, 0, 1, 0, 0), P(pi=1) = 0.2; cell T=1, pi=1 empty -> 0
    # E[Y | T=0, pi=0]: unit 3 -> 1; R = 1 - (0 + 1 * 0.8) = 0.2
    assert policy_risk(tau_hat, Y, T, threshold=1.5) == pytest.approx(0.2)


def test_policy_risk_threshold_is_strict() -> None:
    # tau_hat = threshold is not treated: pi = (0, 1), P(pi=1) = 1/2
    # E[Y | T=1, pi=1] = Y1 = 1 (unit 1), E[Y | T=0, pi=0] = Y0 = 0.5 (unit 0)
    # R = 1 - (1 * 0.5 + 0.5 * 0.5) = 0.25 (with ">=" both are treated: R = 1 - 1 = 0)
    assert policy_risk([0.0, 1.0], [0.5, 1.0], [0, 1]) == pytest.approx(0.25)


def test_policy_risk_treat_everyone() -> None:
    # pi = 1 for all: R = 1 - E[Y | T=1] = 1 - (1 + 0 + 0)/3 = 2/3 (cell T=0, pi=0 empty)
    Y = np.array([1.0, 0.0, 1.0, 1.0, 0.0])
    T = np.array([1, 1, 0, 0, 1])
    assert policy_risk(np.ones(5), Y, T) == pytest.approx(2 / 3)


# ---------------------------------------------------------------------------------------------
# TOC, AUTOC, Qini
# ---------------------------------------------------------------------------------------------

TOC_TAU = np.array([4.0, 0.0, 2.0, -2.0])  # mean 1
TOC_SCORE = np.array([0.1, 0.4, 0.3, 0.2])  # order: unit1, unit2, unit3, unit0


def test_toc_curve_by_hand() -> None:
    # tau in score order: 0, 2, -2, 4; top-k means 0, 1, 0, 1; minus the mean 1
    q, toc = toc_curve(TOC_TAU, TOC_SCORE)
    np.testing.assert_allclose(q, [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(toc, [-1.0, 0.0, -1.0, 0.0])


def test_toc_curve_custom_grid_uses_ceiling() -> None:
    # q = 0.3: ceil(1.2) = 2 -> mean(0, 2) - 1 = 0; q = 0.6: ceil(2.4) = 3 -> 0 - 1 = -1
    q, toc = toc_curve(TOC_TAU, TOC_SCORE, q=[0.3, 0.6])
    np.testing.assert_allclose(q, [0.3, 0.6])
    np.testing.assert_allclose(toc, [0.0, -1.0])


def test_toc_curve_exact_fraction_not_rounded_up() -> None:
    # (7 / 25) * 25 is 7.000000000000001 in floating point; ceil must still select the top 7
    # (all tau = 1): TOC(7/25) = 1 - 7/25 = 0.72 (the top 8 would give 7/8 - 0.28 = 0.595)
    tau = np.array([1.0] * 7 + [0.0] * 18)
    q, toc = toc_curve(tau, -np.arange(25.0))
    assert q[6] == 7 / 25
    assert toc[6] == pytest.approx(0.72)


def test_autoc_and_qini_by_hand() -> None:
    # AUTOC = mean(-1, 0, -1, 0) = -0.5
    # Qini = mean(0.25 * -1, 0.5 * 0, 0.75 * -1, 1 * 0) = -1 / 4
    assert autoc(TOC_TAU, TOC_SCORE) == pytest.approx(-0.5)
    assert qini(TOC_TAU, TOC_SCORE) == pytest.approx(-0.25)


def test_autoc_oracle_beats_random_and_reverse_is_negative() -> None:
    rng = np.random.default_rng(3)
    tau = rng.normal(size=200)
    oracle = autoc(tau, tau)
    oracle_qini = qini(tau, tau)
    assert oracle > 0
    for _ in range(20):
        score = rng.normal(size=200)
        assert oracle > autoc(tau, score)
        assert oracle_qini > qini(tau, score)
    assert autoc(tau, -tau) < 0
    assert autoc(tau, -tau) == pytest.approx(-autoc(tau, tau), abs=0.05)


@pytest.mark.parametrize("q", [[0.0, 0.5], [0.5, 1.2], [float("nan")]])
def test_toc_curve_bad_grid(q: list[float]) -> None:
    with pytest.raises(ValueError, match="q"):
        toc_curve(TOC_TAU, TOC_SCORE, q=q)

# ---------------------------------------------------------------------------------------------
# ties in the ranking metrics: the expected value over uniformly random tie-breaking
# ---------------------------------------------------------------------------------------------


def _stable_sort_curve(mu0: np.ndarray, mu1: np.ndarray, score: np.ndarray) -> np.ndarray:
    """The policy-value curve with ties broken by row index (the formula before ties counted)."""
    order = np.argsort(-score, kind="stable")
    treated = np.concatenate(([0.0], np.cumsum(mu1[order])))
    control = np.concatenate(([0.0], np.cumsum(mu0[order])))
    return (treated + (control[-1] - control)) / len(score)


def _stable_sort_toc(tau: np.ndarray, score: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The TOC with ties broken by row index (the formula before ties counted)."""
    n = len(tau)
    k = np.clip(np.ceil(grid * n - 1e-9).astype(int), 1, n)
    top = np.cumsum(tau[np.argsort(-score, kind="stable")])
    return top[k - 1] / k - tau.mean()


def _all_ranking_metrics(mu0: np.ndarray, mu1: np.ndarray, score: np.ndarray) -> dict:
    """Every ranking metric of the module on one data set (tau = mu1 - mu0)."""
    tau = mu1 - mu0
    grid = np.array([0.1, 0.3, 0.5, 0.7, 1.0])
    return {
        "curve": policy_value_curve(mu0, mu1, score),
        "value": policy_value(mu0, mu1, score),
        "value_0.3": policy_value(mu0, mu1, score, budget=0.3),
        "value_0.5": policy_value(mu0, mu1, score, budget=0.5),
        "toc": toc_curve(tau, score)[1],
        "toc_grid": toc_curve(tau, score, q=grid)[1],
        "autoc": autoc(tau, score),
        "autoc_grid": autoc(tau, score, q=grid),
        "qini": qini(tau, score),
        "qini_grid": qini(tau, score, q=grid),
    }


@pytest.mark.parametrize("n", [1, 2, 7, 100, 1001])
def test_untied_scores_give_the_stable_sort_results_bit_for_bit(n: int) -> None:
    # continuous scores have no ties: counting ties must not change a single bit of any metric
    rng = np.random.default_rng(n)
    mu0, mu1, score = rng.normal(size=(3, n))
    tau = mu1 - mu0
    assert len(np.unique(score)) == n
    grid = np.array([0.1, 0.3, 0.5, 0.7, 1.0])
    full = np.arange(1, n + 1) / n
    curve = _stable_sort_curve(mu0, mu1, score)
    toc, toc_grid = _stable_sort_toc(tau, score, full), _stable_sort_toc(tau, score, grid)
    got = _all_ranking_metrics(mu0, mu1, score)
    expected = {
        "curve": curve,
        "value": float(np.mean(curve[1:])),
        "value_0.3": float(curve[int(math.floor(0.3 * n + 0.5))]),
        "value_0.5": float(curve[int(math.floor(0.5 * n + 0.5))]),
        "toc": toc,
        "toc_grid": toc_grid,
        "autoc": float(np.mean(toc)),
        "autoc_grid": float(np.mean(toc_grid)),
        "qini": float(np.mean(full * toc)),
        "qini_grid": float(np.mean(grid * toc_grid)),
    }
    for name, value in expected.items():
        assert np.array_equal(got[name], value), name


def test_constant_score_autoc_is_zero_whatever_the_row_order() -> None:
    # the example: a constant score used to get AUTOC +2.25 or -2.25 from the row order
    # (top-k means of 9, 8, ... or of 0, 1, ... against the mean 4.5)
    assert autoc(np.arange(10.0)[::-1], np.zeros(10)) == pytest.approx(0.0, abs=1e-12)
    assert autoc(np.arange(10.0), np.zeros(10)) == pytest.approx(0.0, abs=1e-12)
    assert qini(np.arange(10.0)[::-1], np.zeros(10)) == pytest.approx(0.0, abs=1e-12)
    assert qini(np.arange(10.0), np.zeros(10)) == pytest.approx(0.0, abs=1e-12)
    tau = np.random.default_rng(4).normal(size=50)
    for constant in (0.0, -3.5):
        score = np.full(50, constant)
        np.testing.assert_allclose(toc_curve(tau, score)[1], 0.0, atol=1e-12)
        assert autoc(tau, score) == pytest.approx(0.0, abs=1e-12)
        assert qini(tau, score) == pytest.approx(0.0, abs=1e-12)


def test_constant_score_policy_value_is_a_random_share() -> None:
    # a constant score treats a uniformly random share: every unit with probability k / n, so
    # V(k) = mean(mu0) + (k / n) mean(tau); at budget q (q n whole) mean(mu0) + q mean(tau);
    # averaged over k = 1..n: mean(mu0) + (n + 1) / (2 n) mean(tau)
    rng = np.random.default_rng(5)
    n = 40
    mu0 = rng.normal(size=n)
    mu1 = mu0 + 1.0 + rng.normal(size=n)
    tau = mu1 - mu0
    score = np.ones(n)
    k = np.arange(n + 1)
    np.testing.assert_allclose(
        policy_value_curve(mu0, mu1, score), mu0.mean() + k / n * tau.mean(), rtol=0, atol=1e-12
    )
    for q in (0.0, 0.25, 0.5, 0.75, 1.0):
        assert policy_value(mu0, mu1, score, budget=q) == pytest.approx(
            mu0.mean() + q * tau.mean(), abs=1e-12
        )
    assert policy_value(mu0, mu1, score) == pytest.approx(
        mu0.mean() + (n + 1) / (2 * n) * tau.mean(), abs=1e-12
    )


def test_toc_straddling_tie_by_hand() -> None:
    # tau = (3, 1, 2, 0), score = (1, .5, .5, 0): units 1 and 2 tie; mean tau 1.5
    # top-1: 3; top-2: (3 + (1 + 2)/2)/2 = 2.25; top-3: 6/3 = 2; top-4: 1.5
    # TOC = (1.5, 0.75, 0.5, 0); AUTOC = 2.75/4; Qini = (1.5/4 + 0.75/2 + 0.5*3/4)/4 = 0.28125
    # (ties by index would give top-2 = 2, TOC(1/2) = 0.5, AUTOC = 0.625)
    tau, score = np.array([3.0, 1.0, 2.0, 0.0]), np.array([1.0, 0.5, 0.5, 0.0])
    np.testing.assert_allclose(toc_curve(tau, score)[1], [1.5, 0.75, 0.5, 0.0])
    assert autoc(tau, score) == pytest.approx(0.6875)
    assert qini(tau, score) == pytest.approx(0.28125)
    assert autoc(tau, score) == pytest.approx(autoc(tau[[0, 2, 1, 3]], score))


def test_ranking_metrics_do_not_depend_on_row_order_with_ties() -> None:
    rng = np.random.default_rng(6)
    n = 90
    mu0 = rng.normal(size=n)
    mu1 = mu0 + rng.normal(size=n)
    score = np.round(mu1 - mu0 + rng.normal(size=n), 0)  # a handful of levels, many ties
    assert len(np.unique(score)) < n / 5
    reference = _all_ranking_metrics(mu0, mu1, score)
    for _ in range(20):
        perm = rng.permutation(n)
        got = _all_ranking_metrics(mu0[perm], mu1[perm], score[perm])
        for name, value in reference.items():
            np.testing.assert_allclose(got[name], value, rtol=0, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("n_singles", [0, 3])
def test_ranking_metrics_with_two_tied_groups_match_brute_force(n_singles: int) -> None:
    # a group of 3 and a group of 2 tied units (plus untied ones): the metrics must equal the
    # average over every way of breaking the ties (3! * 2! = 12 strict orders, all equally likely)
    rng = np.random.default_rng(7 + n_singles)
    levels = [2.0] * 3 + [1.0] * 2 + [2.5, 1.5, 0.0][:n_singles]
    perm = rng.permutation(len(levels))
    score = np.array(levels)[perm]
    n = len(score)
    mu0 = rng.normal(size=n)
    mu1 = mu0 + rng.normal(size=n)
    got = _all_ranking_metrics(mu0, mu1, score)
    groups = [np.flatnonzero(score == level) for level in (2.0, 1.0)]
    totals: dict[str, np.ndarray] = {}
    count = 0
    for first in itertools.permutations(groups[0]):
        for second in itertools.permutations(groups[1]):
            strict = score.copy()
            # break the ties by small steps that keep every unit inside its level's slot
            strict[list(first)] += np.array([3e-3, 2e-3, 1e-3])
            strict[list(second)] += np.array([2e-3, 1e-3])
            for name, value in _all_ranking_metrics(mu0, mu1, strict).items():
                totals[name] = totals.get(name, 0.0) + np.asarray(value)
            count += 1
    assert count == 12
    for name, total in totals.items():
        np.testing.assert_allclose(got[name], total / count, rtol=0, atol=1e-12, err_msg=name)


# ---------------------------------------------------------------------------------------------
# DR scores, nuisances, R-loss, DR risk
# ---------------------------------------------------------------------------------------------

# Leave-one-out cross-fitting (cv = n) with mean models is computable by hand.
LOO_Y = np.array([3.0, 1.0, 2.0, 0.0])
LOO_T = np.array([1, 1, 0, 0])
LOO_X = np.arange(4.0)


def test_dr_scores_leave_one_out_by_hand() -> None:
    # unit0 (T=1, Y=3): mu1 = Y1 = 1, mu0 = (2 + 0)/2 = 1, e = 1/3 -> 0 + (3 - 1)/(1/3) = 6
    # unit1 (T=1, Y=1): mu1 = 3, mu0 = 1, e = 1/3 -> 2 + (1 - 3)/(1/3) = -4
    # unit2 (T=0, Y=2): mu1 = 2, mu0 = Y3 = 0, e = 2/3 -> 2 - (2 - 0)/(1/3) = -4
    # unit3 (T=0, Y=0): mu1 = 2, mu0 = 2, e = 2/3 -> 0 - (0 - 2)/(1/3) = 6
    psi = dr_scores(
        LOO_Y,
        LOO_T,
        LOO_X,
        cv=4,
        nuisance=(DummyRegressor(), DummyClassifier(strategy="prior")),
    )
    np.testing.assert_allclose(psi, [6.0, -4.0, -4.0, 6.0])


def test_dr_scores_clip_by_hand() -> None:
    # clip = 0.4: e = 1/3 -> 0.4 and e = 2/3 -> 0.6, so 1/e and 1/(1-e) become 2.5
    # unit0: 0 + 2 * 2.5 = 5; unit1: 2 - 2 * 2.5 = -3; unit2: 2 - 2 * 2.5 = -3; unit3: 0 + 5
    psi = dr_scores(
        LOO_Y,
        LOO_T,
        LOO_X,
        cv=4,
        nuisance=(DummyRegressor(), DummyClassifier(strategy="prior")),
        clip=0.4,
    )
    np.testing.assert_allclose(psi, [5.0, -3.0, -3.0, 5.0])


def test_dr_scores_mean_close_to_ate_in_rct() -> None:
    d = _simulate_rct(4000, seed=11)
    psi = dr_scores(d["Y"], d["T"], d["X"], cv=3, random_state=0)
    assert psi.shape == (4000,)
    assert abs(psi.mean() - d["tau"].mean()) < 0.1
    # the scores also rank: the DR-estimated AUTOC of the true effect is clearly positive
    assert autoc(psi, d["tau"]) > 0.3


class _SeedRecorder(BaseEstimator, RegressorMixin):
    """Mean regressor that records the random_state it was fitted with."""

    seen: list[int | None] = []

    def __init__(self, random_state: int | None = None) -> None:
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> _SeedRecorder:
        type(self).seen.append(self.random_state)
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.full(len(X), self.mean_)


def test_dr_scores_random_state_reaches_models_and_folds() -> None:
    _SeedRecorder.seen = []
    d = _simulate_rct(120, seed=5)
    user_model = _SeedRecorder(random_state=None)
    dr_scores(d["Y"], d["T"], d["X"], cv=3, nuisance=(user_model, "gbm_default"), random_state=42)
    assert _SeedRecorder.seen == [42] * 6  # two arms x three folds
    assert user_model.random_state is None  # the user's model is cloned, not modified
    # the folds follow random_state: out-of-fold means differ between splits
    models = {"nuisance": (DummyRegressor(), DummyClassifier(strategy="prior"))}
    a = dr_scores(d["Y"], d["T"], d["X"], cv=3, random_state=1, **models)
    b = dr_scores(d["Y"], d["T"], d["X"], cv=3, random_state=1, **models)
    c = dr_scores(d["Y"], d["T"], d["X"], cv=3, random_state=2, **models)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_nuisance_estimates_match_dr_scores() -> None:
    d = _simulate_rct(300, seed=6)
    models = {"nuisance": (LinearRegression(), LogisticRegression())}
    nuis = nuisance_estimates(d["Y"], d["T"], d["X"], cv=3, random_state=3, **models)
    assert set(nuis) == {"m", "e", "mu0", "mu1"}
    for value in nuis.values():
        assert value.shape == (300,)
    assert nuis["e"].min() >= 0.01 and nuis["e"].max() <= 0.99
    # same folds and models as dr_scores: the AIPW formula on them gives the same scores
    e, mu0, mu1, y, t = nuis["e"], nuis["mu0"], nuis["mu1"], d["Y"], d["T"]
    psi = mu1 - mu0 + t * (y - mu1) / e - (1 - t) * (y - mu0) / (1 - e)
    expected = dr_scores(y, t, d["X"], cv=3, random_state=3, **models)
    np.testing.assert_allclose(psi, expected)
    # m estimates E[Y | X] = mu0 + 0.5 tau out of fold: closer to it than the constant mean
    target = d["mu0"] + 0.5 * d["tau"]
    assert np.mean((nuis["m"] - target) ** 2) < np.var(target)


def test_nuisance_estimates_clip_extreme_propensity() -> None:
    # default (gradient boosting) models
    rng = np.random.default_rng(8)
    X = rng.normal(size=(200, 1))
    T = (X[:, 0] > 0).astype(int)  # deterministic assignment: raw propensities near 0 and 1
    Y = X[:, 0] + T
    e = nuisance_estimates(Y, T, X, cv=2)["e"]
    assert e.min() == pytest.approx(0.01) and e.max() == pytest.approx(0.99)


def test_r_loss_by_hand() -> None:
    # unit0: (3 - 2) - (1 - 0.5) * 2 = 0;  unit1: (1 - 1) - (0 - 0.5) * 1 = 0.5
    # unit2: (2 - 1) - (1 - 0.25) * 0 = 1; mean of squares (0 + 0.25 + 1)/3 = 5/12
    value = r_loss([3, 1, 2], [1, 0, 1], [2, 1, 0], [2, 1, 1], [0.5, 0.5, 0.25])
    assert value == pytest.approx(5 / 12)


def test_dr_risk_by_hand() -> None:
    # unit0 (T=1): psi = 1 - 0 + (2 - 1)/0.25 = 5; unit1 (T=0): psi = 2 - 1 - (0 - 1)/0.25 = 5
    # tau_hat (1, 2): squares 16, 9; mean 12.5
    value = dr_risk([2, 0], [1, 0], [1, 2], [0, 1], [1, 2], [0.25, 0.75])
    assert value == pytest.approx(12.5)


def test_r_loss_and_dr_risk_prefer_true_effect() -> None:
    d = _simulate_rct(1500, seed=9)
    y, t, tau = d["Y"], d["T"], d["tau"]
    zero = np.zeros_like(tau)
    # oracle nuisances
    e = np.full(len(y), 0.5)
    m = d["mu0"] + e * tau
    assert r_loss(y, t, tau, m, e) < r_loss(y, t, zero, m, e)
    assert dr_risk(y, t, tau, d["mu0"], d["mu1"], e) < dr_risk(y, t, zero, d["mu0"], d["mu1"], e)
    # cross-fitted nuisances
    models = {"nuisance": (LinearRegression(), LogisticRegression())}
    nuis = nuisance_estimates(y, t, d["X"], cv=2, **models)
    assert r_loss(y, t, tau, nuis["m"], nuis["e"]) < r_loss(y, t, zero, nuis["m"], nuis["e"])
    assert dr_risk(y, t, tau, nuis["mu0"], nuis["mu1"], nuis["e"]) < dr_risk(
        y, t, zero, nuis["mu0"], nuis["mu1"], nuis["e"]
    )


@pytest.mark.parametrize("bad_e", [0.0, 1.0])
def test_r_loss_and_dr_risk_reject_propensity_0_or_1(bad_e: float) -> None:
    e = [0.5, bad_e, 0.5]
    with pytest.raises(ValueError, match="e_hat"):
        r_loss([1, 2, 3], [1, 0, 1], [0, 0, 0], [1, 1, 1], e)
    with pytest.raises(ValueError, match="e_hat"):
        dr_risk([1, 2, 3], [1, 0, 1], [0, 0, 0], [1, 1, 1], [1, 1, 1], e)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cv": 1}, "cv must be an integer >= 2"),
        ({"cv": 2.5}, "cv must be an integer"),
        ({"cv": 5}, "cv must be an integer in \\[1, 4\\]"),
        ({"clip": 0.0}, "clip"),
        ({"clip": 0.5}, "clip"),
        ({"cv": 2, "nuisance": "svm"}, "unknown model kind 'svm'"),
        ({"cv": 2, "nuisance": (DummyRegressor(), DummyRegressor())}, "predict_proba"),
    ],
)
def test_dr_scores_bad_options(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        dr_scores(LOO_Y, LOO_T, LOO_X, **kwargs)


def test_dr_scores_fold_without_an_arm() -> None:
    # one treated unit: leaving it out leaves a training set with no treated units
    with pytest.raises(ValueError, match="T=1"):
        dr_scores(
            [1.0, 2, 3, 4], [1, 0, 0, 0], LOO_X, cv=4, nuisance=(DummyRegressor(), "gbm_default")
        )


# ---------------------------------------------------------------------------------------------
# prediction metrics
# ---------------------------------------------------------------------------------------------


def test_auc_by_hand() -> None:
    # positives 0.35, 0.8 vs negatives 0.1, 0.4: pairs won (0.35>0.1), (0.8>0.1), (0.8>0.4) = 3/4
    assert auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    # a tie counts one half: (0.5>0.1), (0.5=0.5 -> 0.5), (0.8>0.1), (0.8>0.5) = 3.5/4
    assert auc([0, 0, 1, 1], [0.1, 0.5, 0.5, 0.8]) == pytest.approx(0.875)


def test_auc_one_class() -> None:
    with pytest.raises(ValueError, match="both classes"):
        auc([1, 1, 1], [0.1, 0.2, 0.3])


def test_auc_by_class_by_hand() -> None:
    y = [0, 1, 2, 2]  # class 3 absent
    proba = np.array(
        [
            [0.6, 0.2, 0.1, 0.1],
            [0.3, 0.4, 0.2, 0.1],
            [0.1, 0.5, 0.3, 0.1],
            [0.2, 0.1, 0.6, 0.1],
        ]
    )
    # class 0: positive 0.6 above negatives 0.3, 0.1, 0.2 -> 1
    # class 1: positive 0.4 vs 0.2 (win), 0.5 (loss), 0.1 (win) -> 2/3
    # class 2: positives 0.3, 0.6 vs negatives 0.1, 0.2 -> 1; class 3: NaN
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the absent class is skipped, not passed to sklearn
        result = auc_by_class(y, proba)
    np.testing.assert_allclose(result[:3], [1.0, 2 / 3, 1.0])
    assert np.isnan(result[3])


def test_auc_by_class_bad_labels() -> None:
    with pytest.raises(ValueError, match="y_true"):
        auc_by_class([0, 1, 3], np.full((3, 3), 1 / 3))


def test_brier_binary_by_hand() -> None:
    # (0.8-1)^2 + (0.3-0)^2 + (0.4-1)^2 = 0.04 + 0.09 + 0.36 = 0.49; / 3
    assert brier([1, 0, 1], [0.8, 0.3, 0.4]) == pytest.approx(0.49 / 3)


def test_brier_multiclass_by_hand() -> None:
    proba = np.array([[0.7, 0.2, 0.1], [0.2, 0.2, 0.6]])
    # unit0 (class 0): 0.3^2 + 0.2^2 + 0.1^2 = 0.14; unit1 (class 2): 0.04 + 0.04 + 0.16 = 0.24
    # mean over units 0.19
    assert brier([0, 2], proba) == pytest.approx(0.19)
    assert brier(np.eye(3)[[0, 2]], proba) == pytest.approx(0.19)


def test_brier_rejects_probabilities_outside_unit_interval() -> None:
    with pytest.raises(ValueError, match="proba"):
        brier([1, 0], [1.2, 0.1])


def test_calibration_table_by_hand() -> None:
    y = [0, 1, 1, 0, 1]
    p = [0.05, 0.15, 0.12, 0.95, 1.0]
    # bins of width 0.1: 0.05 -> 0; 0.15, 0.12 -> 1; 0.95 and 1.0 -> 9 (1.0 in the last bin)
    # bin 0: mean 0.05, rate 0, n 1; bin 1: mean 0.135, rate 1, n 2; bin 9: 0.975, 0.5, 2
    table = calibration_table(y, p, n_bins=10)
    assert isinstance(table, pd.DataFrame)
    assert table["bin"].tolist() == [0, 1, 9]
    np.testing.assert_allclose(table["mean_predicted"], [0.05, 0.135, 0.975])
    np.testing.assert_allclose(table["observed_rate"], [0.0, 1.0, 0.5])
    assert table["count"].tolist() == [1, 2, 2]
    np.testing.assert_allclose(table["lower"], [0.0, 0.1, 0.9])


def test_calibration_table_two_bins() -> None:
    # bins [0, 0.5) and [0.5, 1]: (0.2, 0.4) with y (0, 1); (0.5, 0.9) with y (1, 1)
    table = calibration_table([0, 1, 1, 1], [0.2, 0.4, 0.5, 0.9], n_bins=2)
    np.testing.assert_allclose(table["mean_predicted"], [0.3, 0.7])
    np.testing.assert_allclose(table["observed_rate"], [0.5, 1.0])
    with pytest.raises(ValueError, match="n_bins"):
        calibration_table([0, 1], [0.2, 0.4], n_bins=0)


# ---------------------------------------------------------------------------------------------
# input validation shared by all metrics
# ---------------------------------------------------------------------------------------------

_BINARY_T = [1, 0, 1]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: pehe([1.0, np.nan, 3.0], [1, 2, 3]), "tau_true.*NaN"),
        (lambda: pehe([1.0, 2.0, 3.0], [1, np.inf, 3]), "tau_hat.*infinite"),
        (lambda: pehe([1, 2, 3], [1, 2]), "different numbers of rows"),
        (lambda: pehe([], []), "empty"),
        (lambda: pehe(np.zeros((3, 2)), np.zeros((3, 3))), "shape"),
        (lambda: ate_error([1, 2], [1, 2, 3]), "different numbers of rows"),
        (lambda: nn_pehe([0, 1, 2], [1, 2, 0], [1, 2, 3], [0, 0, 0]), "T must be binary"),
        (lambda: nn_pehe([0, 1], _BINARY_T, [1, 2, 3], [0, 0, 0]), "different numbers"),
        (lambda: policy_value_curve([1, 2], [1, 2], [np.nan, 1]), "score.*NaN"),
        (lambda: policy_value([1, 2, 3], [1, 2], [0, 1, 2]), "different numbers"),
        (lambda: policy_risk([1, 2, 3], [1, 0, 1], [1, 0, 2]), "T must be binary"),
        (lambda: policy_risk([1, 2], [1, 0, 1], _BINARY_T), "different numbers"),
        (lambda: policy_risk([1, 2, 3], [1, 0, 1], _BINARY_T, np.nan), "threshold"),
        (lambda: toc_curve([1.0, np.nan], [1, 2]), "tau.*NaN"),
        (lambda: autoc([1, 2, 3], [1, 2]), "different numbers"),
        (lambda: qini([], []), "empty"),
        (lambda: dr_scores([1, 2, 3, np.nan], LOO_T, LOO_X), "Y.*NaN"),
        (lambda: dr_scores(LOO_Y, [0, 1, 2, 1], LOO_X), "T must be binary"),
        (lambda: dr_scores(LOO_Y, LOO_T, LOO_X[:3]), "different numbers"),
        (lambda: nuisance_estimates(LOO_Y, LOO_T, np.full(4, np.inf)), "X.*infinite"),
        (lambda: r_loss([1, 2], [1, 0], [0, 0], [1, 1], [0.5]), "different numbers"),
        (lambda: r_loss([1, 2], [1, 3], [0, 0], [1, 1], [0.5, 0.5]), "T must be binary"),
        (lambda: dr_risk([1, np.nan], [1, 0], [0, 0], [1, 1], [1, 1], [0.5, 0.5]), "Y.*NaN"),
        (lambda: auc([0, 1, 2], [0.1, 0.2, 0.3]), "y_true must be binary"),
        (lambda: auc([0, 1], [0.1, np.nan]), "score.*NaN"),
        (lambda: auc_by_class([0, 1], np.full((3, 2), 0.5)), "different numbers"),
        (lambda: brier([0, 1, 1], [0.1, 0.2]), "different numbers"),
        (lambda: brier([0, 2], [0.1, 0.2]), "y_true must be binary"),
        (lambda: calibration_table([0, 1], [0.1, np.nan]), "proba.*NaN"),
    ],
)
def test_bad_input_raises_value_error(call, match: str) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match=match):
        call()


def test_public_api_is_complete() -> None:
    expected = {
        "pehe",
        "ate_error",
        "nn_pehe",
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
    }
    assert expected <= set(metrics.__all__)
    for name in expected:
        assert callable(getattr(metrics, name))
