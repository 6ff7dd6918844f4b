"""The validation module: RATE, calibration, held-out losses and selection, where truth is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ehrcausal import metrics, nuisance, validate
from ehrcausal.learners import make
from ehrcausal.validate import (
    Nuisances,
    blp_test,
    dr_loss,
    effect_of,
    evaluate,
    fit_nuisances,
    r_loss,
    rate,
    select,
)


def rct(n: int, seed: int, heterogeneous: bool = True) -> dict[str, np.ndarray]:
    """A randomised trial (e = 0.5) with tau(x) = 1 + 2 x0 (or a constant 1)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    T = rng.binomial(1, 0.5, size=n)
    tau = 1.0 + (2.0 * X[:, 0] if heterogeneous else 0.0)
    mu0 = X[:, 1]
    Y = mu0 + T * tau + rng.normal(size=n)
    return {"X": X, "T": T, "Y": Y, "tau": tau, "mu0": mu0}


def oracle_scores(d: dict[str, np.ndarray]) -> np.ndarray:
    """AIPW scores with the true nuisances."""
    e = np.full(len(d["Y"]), 0.5)
    return nuisance.aipw_scores(d["Y"], d["T"], d["mu0"], d["mu0"] + d["tau"], e)


@pytest.fixture(scope="module")
def trial() -> dict[str, np.ndarray]:
    return rct(800, 0)


@pytest.fixture(scope="module")
def nuis(trial) -> Nuisances:
    return fit_nuisances(trial["Y"], trial["T"], trial["X"], nuisance="ridge", random_state=0)


# ---------------------------------------------------------------------------------------------
# RATE
# ---------------------------------------------------------------------------------------------


def test_rate_estimate_is_the_metric_and_detects_heterogeneity(trial):
    psi = oracle_scores(trial)
    res = rate(psi, trial["tau"], n_boot=100, random_state=1)
    assert res.estimate == pytest.approx(metrics.autoc(psi, trial["tau"]))
    assert res.ci[0] > 0 and res.p_value < 1e-3
    qres = rate(psi, trial["tau"], weight="qini", n_boot=100, random_state=1)
    assert qres.estimate == pytest.approx(metrics.qini(psi, trial["tau"]))
    assert qres.weight == "qini" and len(qres.toc) == 10 and np.all(qres.toc_stderr > 0)
    # the TOC of a good rule falls from its top decile to 0 at q = 1
    assert res.toc[0] > res.toc[4] > 0 and res.toc[-1] == pytest.approx(0.0, abs=1e-9)
    # same seed, same result
    again = rate(psi, trial["tau"], n_boot=100, random_state=1)
    assert (again.estimate, again.stderr) == (res.estimate, res.stderr)


def test_rate_half_sample_se_matches_the_spread_over_trials():
    # the bootstrap standard error is on the scale of the real sampling spread of the AUTOC
    estimates, ses = [], []
    for seed in range(30):
        d = rct(300, 100 + seed)
        res = rate(oracle_scores(d), d["X"][:, 0], n_boot=60, random_state=seed)
        estimates.append(res.estimate)
        ses.append(res.stderr)
    ratio = np.mean(ses) / np.std(estimates, ddof=1)
    assert 0.7 < ratio < 1.4


def test_rate_is_quiet_for_an_uninformative_rule():
    d = rct(600, 3, heterogeneous=False)
    rng = np.random.default_rng(9)
    rejections = 0
    for seed in range(20):
        res = rate(oracle_scores(d), rng.normal(size=600), n_boot=50, random_state=seed)
        rejections += res.p_value < 0.05
    assert rejections <= 4


def test_rate_paired_comparison(trial):
    psi = oracle_scores(trial)
    good, noisy = trial["tau"], trial["tau"] + 3 * np.random.default_rng(2).normal(size=800)
    diff = rate(psi, good, compare=noisy, n_boot=100, random_state=0)
    a = rate(psi, good, n_boot=100, random_state=0)
    b = rate(psi, noisy, n_boot=100, random_state=0)
    assert diff.estimate == pytest.approx(a.estimate - b.estimate)
    assert diff.ci[0] > 0
    # the paired s.e. is smaller than treating the two rules as independent
    assert diff.stderr < np.hypot(a.stderr, b.stderr)
    same = rate(psi, good, compare=good, n_boot=20, random_state=0)
    assert same.estimate == 0 and same.stderr == 0


def test_rate_rejects_bad_input(trial):
    psi = oracle_scores(trial)
    with pytest.raises(ValueError, match="scores has 799, priority has 800"):
        rate(psi[:-1], trial["tau"])
    with pytest.raises(ValueError, match="weight"):
        rate(psi, trial["tau"], weight="auc")
    with pytest.raises(ValueError, match="n_boot"):
        rate(psi, trial["tau"], n_boot=1)
    with pytest.raises(ValueError, match="priority"):
        rate(psi, np.full(800, np.nan))
    with pytest.raises(ValueError, match="at least 4"):
        rate(psi[:3], trial["tau"][:3])


# ---------------------------------------------------------------------------------------------
# calibration
# ---------------------------------------------------------------------------------------------


def test_blp_test_calibrated_uninformative_and_scaled(trial):
    n = len(trial["Y"])
    m = trial["mu0"] + 0.5 * trial["tau"]  # E[Y | X] in the trial
    e = np.full(n, 0.5)
    exact = blp_test(trial["Y"], trial["T"], trial["tau"], m_hat=m, e_hat=e)
    assert abs(exact.mean.estimate - 1) < 0.15 and abs(exact.differential.estimate - 1) < 0.15
    assert exact.differential.p_value < 1e-6
    # a forecast twice as spread out gets a differential coefficient of about 1/2
    spread = trial["tau"].mean() + 2 * (trial["tau"] - trial["tau"].mean())
    assert blp_test(trial["Y"], trial["T"], spread, m_hat=m, e_hat=e).differential.estimate \
        == pytest.approx(0.5, abs=0.08)
    noise = 1 + np.random.default_rng(0).normal(size=n)
    flat = blp_test(trial["Y"], trial["T"], noise, m_hat=m, e_hat=e)
    assert abs(flat.differential.estimate) < 0.2 and flat.differential.p_value > 0.01
    with pytest.raises(ValueError, match="constant"):
        blp_test(trial["Y"], trial["T"], np.ones(n), m_hat=m, e_hat=e)
    with pytest.raises(ValueError, match="e_hat"):
        blp_test(trial["Y"], trial["T"], trial["tau"], m_hat=m, e_hat=np.ones(n))


# ---------------------------------------------------------------------------------------------
# losses, nuisances, selection
# ---------------------------------------------------------------------------------------------


def test_fit_nuisances_are_cross_fitted_aipw(trial, nuis):
    assert nuis.scores.shape == (800,) and nuis.selection == {}
    np.testing.assert_allclose(
        nuis.scores, nuisance.aipw_scores(nuis.Y, nuis.T, nuis.mu0, nuis.mu1, nuis.e)
    )
    assert abs(nuis.scores.mean() - trial["tau"].mean()) < 0.2
    auto = fit_nuisances(trial["Y"][:300], trial["T"][:300], trial["X"][:300],
                         nuisance=nuisance.Auto(candidates=("ridge", "forest")), random_state=0)
    assert set(auto.selection) == {"outcome", "propensity"}
    assert auto.selection["outcome"] in {"ridge", "forest"}


def test_losses_prefer_the_truth(trial, nuis):
    tau = trial["tau"]
    constant = np.full(800, tau.mean())
    for loss in (r_loss, dr_loss):
        truth, flat = loss(tau, nuis), loss(constant, nuis)
        assert truth.estimate < flat.estimate
        assert truth.ci[0] < truth.estimate < truth.ci[1] and truth.stderr > 0
    # the DR-loss difference estimates the difference of the true squared errors
    gap = dr_loss(constant, nuis).estimate - dr_loss(tau, nuis).estimate
    assert gap == pytest.approx(np.mean((constant - tau) ** 2), rel=0.25)


def test_losses_reject_bad_input(trial, nuis):
    with pytest.raises(ValueError, match="rows"):
        r_loss(trial["tau"][:-1], nuis)
    with pytest.raises(ValueError, match="fit_nuisances"):
        dr_loss(trial["tau"], {"scores": trial["tau"]})
    with pytest.raises(ValueError, match="effect"):
        r_loss(object(), nuis)
    risk = make("risk_based", random_state=0).fit(trial["Y"], trial["T"], X=trial["X"])
    with pytest.raises(ValueError, match="ranking score"):
        effect_of(risk, trial["X"])
    with pytest.raises(ValueError, match="X is needed"):
        effect_of(make("ols").fit(trial["Y"], trial["T"], X=trial["X"]))


def test_evaluate_and_select_with_registry_learners():
    train, test = rct(600, 11), rct(600, 12)
    learners = {
        "ols": make("ols").fit(train["Y"], train["T"], X=train["X"]),
        "s_learner": make("s_learner", random_state=0, n_estimators=20).fit(
            train["Y"], train["T"], X=train["X"]),
        "constant": np.full(600, 1.0),
    }
    nuis = fit_nuisances(test["Y"], test["T"], test["X"], nuisance="ridge", random_state=0)
    table = evaluate(learners, nuis, n_boot=30)
    assert list(table.learner) == list(learners)
    assert {"r_loss", "dr_loss", "nn_pehe", "autoc", "qini", "blp_differential"} <= set(table)
    # the linear truth: OLS per arm is the best learner, and the losses and RATE say so
    for criterion in ("r_loss", "dr_loss", "autoc"):
        assert select(table, criterion) == "ols"
    assert np.isnan(table.set_index("learner").loc["constant", "blp_differential"])
    # a ranking-only learner gets its RATE but no loss
    risk = make("risk_based", random_state=0).fit(train["Y"], train["T"], X=train["X"])
    row = evaluate({"risk": risk}, nuis, criteria=["dr_loss", "autoc"], n_boot=20).iloc[0]
    assert np.isnan(row.dr_loss) and np.isfinite(row.autoc)
    with pytest.raises(ValueError, match="unknown criteria"):
        evaluate(learners, nuis, criteria=["pehe"])
    with pytest.raises(ValueError, match="unknown criterion"):
        select(table, "pehe")
    with pytest.raises(ValueError, match="finite"):
        select(pd.DataFrame({"learner": ["a"], "dr_loss": [np.nan]}), "dr_loss")


def test_dr_scores_are_the_engines():
    assert validate.dr_scores is nuisance.dr_scores
