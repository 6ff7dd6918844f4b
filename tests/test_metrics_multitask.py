"""Tests of the X-MultiTask evaluation metrics: bootstrap intervals, NN-PEHE CI, rank agreement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ehrcausal.metrics import (
    ate_error,
    auc_by_class,
    auc_by_class_ci,
    bootstrap_ci,
    nn_pehe,
    nn_pehe_ci,
    pehe,
    rank_agreement,
)


def _class_problem(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels 0..3 and informative (noisy) class probabilities."""
    rng = np.random.default_rng(seed)
    y = rng.choice(4, size=n, p=[0.5, 0.25, 0.15, 0.1])
    logits = 1.5 * np.eye(4)[y] + rng.normal(size=(n, 4))
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba


def _multitask_problem(n: int = 300, seed: int = 1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    T = (rng.random(n) < 0.5).astype(int)
    Y = rng.choice(4, size=n)
    tau_hat = rng.normal(scale=0.2, size=(n, 4))
    tau_hat -= tau_hat.mean(axis=1, keepdims=True)
    return X, T, Y, tau_hat


# --- bootstrap_ci -----------------------------------------------------------------------------


def test_bootstrap_ci_of_a_mean_has_the_normal_width():
    rng = np.random.default_rng(11)
    sd, n = 2.0, 400
    x = rng.normal(3.0, sd, size=n)
    est, lower, upper = bootstrap_ci(np.mean, x, n_boot=2000, random_state=0)
    assert est == pytest.approx(x.mean())
    assert lower < 3.0 < upper
    assert lower < est < upper
    assert upper - lower == pytest.approx(2 * 1.96 * sd / np.sqrt(n), rel=0.15)
    _, lo90, up90 = bootstrap_ci(np.mean, x, n_boot=2000, alpha=0.10, random_state=0)
    assert up90 - lo90 < upper - lower  # a lower level gives a narrower interval


def test_bootstrap_ci_is_deterministic_for_a_seed():
    x = np.random.default_rng(0).exponential(size=150)
    first = bootstrap_ci(np.median, x, n_boot=300, random_state=7)
    assert first == bootstrap_ci(np.median, x, n_boot=300, random_state=7)
    assert first != bootstrap_ci(np.median, x, n_boot=300, random_state=8)


def test_bootstrap_ci_resamples_rows_jointly():
    rng = np.random.default_rng(1)
    a = rng.normal(size=200)
    b = np.column_stack([a, 2 * a])  # 2-d arrays are resampled by rows

    def gap(u: np.ndarray, v: np.ndarray) -> float:
        return float(np.mean(v[:, 1] - 2 * u))

    assert bootstrap_ci(gap, a, b, n_boot=200) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="different numbers of rows"):
        bootstrap_ci(gap, a, b[:-1])


def test_bootstrap_ci_skips_failing_resamples():
    n, n_boot, seed = 50, 400, 3
    x = np.arange(n, dtype=float)

    def mean_unless_zero_repeated(v: np.ndarray) -> float:
        if np.sum(v == 0) >= 2:  # about a quarter of the resamples
            raise ValueError("row 0 drawn twice")
        return float(v.mean())

    def nan_unless_ok(v: np.ndarray) -> float:
        return float("nan") if np.sum(v == 0) >= 2 else float(v.mean())

    # the same draws by hand: integer row indices, one resample after the other
    rng = np.random.default_rng(seed)
    kept = []
    for _ in range(n_boot):
        v = x[rng.integers(0, n, size=n)]
        if np.sum(v == 0) < 2:
            kept.append(v.mean())
    assert 0.1 * n_boot < n_boot - len(kept) < 0.5 * n_boot
    expected = (x.mean(), *np.quantile(kept, [0.025, 0.975]))
    got = bootstrap_ci(mean_unless_zero_repeated, x, n_boot=n_boot, random_state=seed)
    np.testing.assert_allclose(got, expected)
    np.testing.assert_allclose(
        bootstrap_ci(nan_unless_ok, x, n_boot=n_boot, random_state=seed), expected
    )


def test_bootstrap_ci_refuses_when_most_resamples_fail():
    x = np.arange(50, dtype=float)

    def needs_row_zero_once(v: np.ndarray) -> float:
        if np.sum(v == 0) != 1:  # fine on the full data, fails on about 63 % of the resamples
            raise ValueError("row 0 not drawn exactly once")
        return float(v.mean())

    with pytest.raises(ValueError, match="more than half"):
        bootstrap_ci(needs_row_zero_once, x, n_boot=200)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_boot": 0}, "n_boot"),
        ({"n_boot": 10.5}, "n_boot"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.5}, "alpha"),
        ({"random_state": -2}, "random_state"),
    ],
)
def test_bootstrap_ci_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bootstrap_ci(np.mean, np.arange(10.0), **kwargs)


def test_bootstrap_ci_bad_inputs():
    with pytest.raises(ValueError, match="callable"):
        bootstrap_ci("mean", np.arange(10.0))
    with pytest.raises(ValueError, match="at least one array"):
        bootstrap_ci(np.mean)
    with pytest.raises(ValueError, match="at least 2 rows"):
        bootstrap_ci(np.mean, np.array([1.0]))
    with pytest.raises(ValueError, match="not finite"):
        bootstrap_ci(np.mean, np.array([1.0, np.nan, 2.0]))


# --- auc_by_class_ci --------------------------------------------------------------------------


def test_auc_by_class_ci_matches_point_auc_and_brackets_it():
    y, proba = _class_problem()
    table = auc_by_class_ci(y, proba, n_boot=200, random_state=0)
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == ["class", "auc", "lower", "upper"]
    assert table["class"].tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(table["auc"], auc_by_class(y, proba), rtol=1e-12)
    assert (table["lower"] <= table["auc"]).all() and (table["auc"] <= table["upper"]).all()
    assert (table["upper"] - table["lower"] > 0.01).all()
    assert (table["auc"] > 0.7).all()  # the probabilities are informative
    again = auc_by_class_ci(y, proba, n_boot=200, random_state=0)
    pd.testing.assert_frame_equal(table, again)


def test_auc_by_class_ci_absent_class_is_nan_and_rare_class_survives():
    y, proba = _class_problem(n=300, seed=2)
    y = np.where(y == 3, 0, y)  # class 3 absent
    y[:3] = 2  # make class 2 rare but present
    y[3:] = np.where(y[3:] == 2, 1, y[3:])
    table = auc_by_class_ci(y, proba, n_boot=100, random_state=1)
    assert table.loc[3, ["auc", "lower", "upper"]].isna().all()
    assert np.isfinite(table.loc[2, ["auc", "lower", "upper"]].to_numpy(dtype=float)).all()


def test_auc_by_class_ci_bad_input():
    y, proba = _class_problem(n=50)
    with pytest.raises(ValueError, match="y_true"):
        auc_by_class_ci(np.full(50, 7), proba, n_boot=10)
    with pytest.raises(ValueError, match="different numbers of rows"):
        auc_by_class_ci(y[:-1], proba, n_boot=10)
    with pytest.raises(ValueError, match="n_boot"):
        auc_by_class_ci(y, proba, n_boot=0)


# --- nn_pehe_ci -------------------------------------------------------------------------------


def test_nn_pehe_ci_point_equals_nn_pehe():
    X, T, Y, tau_hat = _multitask_problem()
    onehot = np.eye(4)[Y]
    est, lower, upper = nn_pehe_ci(X, T, onehot, tau_hat, n_boot=100, random_state=0)
    assert est == pytest.approx(nn_pehe(X, T, onehot, tau_hat))
    assert lower < est < upper
    # integer labels are one-hot encoded when tau_hat has one column per class
    assert nn_pehe_ci(X, T, Y, tau_hat, n_boot=100) == (est, lower, upper)
    # with 81 resamples the 2.5 % and 97.5 % quantiles are order statistics (no
    # interpolation), so squaring commutes with the interval
    _, lower, upper = nn_pehe_ci(X, T, Y, tau_hat, n_boot=81)
    sq, sq_lower, sq_upper = nn_pehe_ci(X, T, Y, tau_hat, squared=True, n_boot=81)
    assert sq == pytest.approx(est**2)
    assert sq_lower == pytest.approx(lower**2) and sq_upper == pytest.approx(upper**2)


def test_nn_pehe_ci_continuous_outcome():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(200, 2))
    T = np.tile([0, 1], 100)
    Y = X[:, 0] + T + rng.normal(scale=0.1, size=200)
    good, _, _ = nn_pehe_ci(X, T, Y, np.ones(200), n_boot=50)
    bad, _, _ = nn_pehe_ci(X, T, Y, np.full(200, -1.0), n_boot=50)
    assert good == pytest.approx(nn_pehe(X, T, Y, np.ones(200)))
    assert good < bad


def test_nn_pehe_ci_bad_input():
    X, T, Y, tau_hat = _multitask_problem(n=60)
    with pytest.raises(ValueError, match="shape"):
        nn_pehe_ci(X, T, np.eye(3)[Y % 3], tau_hat, n_boot=10)
    with pytest.raises(ValueError, match="binary"):
        nn_pehe_ci(X, T + 1, Y, tau_hat, n_boot=10)
    with pytest.raises(ValueError, match="class labels"):
        nn_pehe_ci(X, T, Y + 4, tau_hat, n_boot=10)
    with pytest.raises(ValueError, match="both treated"):
        nn_pehe_ci(X, np.zeros(60, dtype=int), Y, tau_hat, n_boot=10)


# --- pehe / ate_error on class effects ---------------------------------------------------------


def test_pehe_and_ate_error_average_over_classes():
    rng = np.random.default_rng(5)
    tau = rng.normal(size=(100, 4))
    est = tau + rng.normal(scale=[0.1, 0.2, 0.3, 0.4], size=(100, 4))
    per_class_mse = ((est - tau) ** 2).mean(axis=0)
    assert pehe(tau, est) == pytest.approx(np.sqrt(per_class_mse.mean()))
    assert ate_error(tau, est) == pytest.approx(np.abs(est.mean(0) - tau.mean(0)).mean())
    # 1-d unchanged
    assert pehe(tau[:, 0], est[:, 0]) == pytest.approx(np.sqrt(per_class_mse[0]))


# --- rank_agreement ---------------------------------------------------------------------------


def test_rank_agreement_orderings():
    a = np.array([0.31, 0.12, 0.55, 0.27, 0.48, 0.09, 0.6, 0.2])
    tau, p = rank_agreement(a, a)
    assert tau == pytest.approx(1.0) and p < 0.001
    assert rank_agreement(a, np.exp(3 * a))[0] == pytest.approx(1.0)  # only ranks matter
    tau_rev, p_rev = rank_agreement(a, -a)
    assert tau_rev == pytest.approx(-1.0) and p_rev < 0.001
    swapped = a.copy()
    swapped[[0, 3]] = swapped[[3, 0]]  # one discordant pair out of 28
    assert rank_agreement(a, swapped)[0] == pytest.approx(1 - 2 / 28)


@pytest.mark.parametrize(
    ("a", "b", "match"),
    [
        ([1.0, 2.0, 3.0], [1.0, 2.0], "different numbers of rows"),
        ([1.0, 2.0], [2.0, 1.0], "at least 3"),
        ([1.0, np.nan, 3.0], [1.0, 2.0, 3.0], "NaN"),
        ([1.0, 1.0, 1.0], [1.0, 2.0, 3.0], "a is constant"),
        ([1.0, 2.0, 3.0], [4.0, 4.0, 4.0], "b is constant"),
    ],
)
def test_rank_agreement_bad_input(a, b, match):
    with pytest.raises(ValueError, match=match):
        rank_agreement(a, b)


def test_ate_error_nn_matches_a_hand_computation():
    from ehrcausal.metrics import ate_error_nn

    # treated at x = 0 and 10, controls at x = 1 and 9: each unit's neighbour across arms is the
    # closest one, so the pseudo-effects are 5 - 1 = 4, 2 - 4 = -2 (treated) and 5 - 1 = 4,
    # 2 - 4 = -2 (controls): mean 1. The estimate's mean is 2.5, so the error is 1.5.
    X = np.array([[0.0], [10.0], [1.0], [9.0]])
    T = np.array([1, 1, 0, 0])
    Y = np.array([5.0, 2.0, 1.0, 4.0])
    tau_hat = np.array([1.0, 2.0, 3.0, 4.0])
    assert ate_error_nn(X, T, Y, tau_hat, standardize=False) == pytest.approx(1.5)
    # two outcome columns: the second is the first negated (pseudo mean -1) and estimated by 0,
    # an error of 1; the columns are averaged
    Y2 = np.column_stack([Y, -Y])
    est2 = np.column_stack([tau_hat, np.zeros(4)])
    assert ate_error_nn(X, T, Y2, est2, standardize=False) == pytest.approx(1.25)
    # an estimate whose mean is the pseudo-effects' mean scores 0 (standardising one column
    # does not change the neighbours)
    assert ate_error_nn(X, T, Y, np.ones(4)) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="both treated"):
        ate_error_nn(X, np.ones(4, int), Y, tau_hat)
