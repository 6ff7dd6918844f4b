"""Tests of :mod:`ehrcausal.nuisance`: the model factory, P(T=1), cross-fitting and AIPW scores.

Hand-computed cases use mean models (DummyRegressor / prior DummyClassifier), whose out-of-fold
predictions are means over the training rows; property tests check what must hold for any
correct implementation (out-of-fold, stratification, weights, seeds, double robustness).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from ehrcausal import metrics, nuisance
from ehrcausal.nuisance import (
    MODEL_KINDS,
    aipw_scores,
    cross_fit,
    dr_scores,
    fit_weighted,
    make_model,
    predict_treated,
)


@pytest.fixture(autouse=True)
def _single_thread() -> Iterator[None]:
    with threadpool_limits(limits=1):
        yield


def _confounded(n: int, seed: int) -> dict[str, np.ndarray]:
    """logit e = x0; mu0 = x1; tau = 1 + x0 (ATE 1); Y = mu0 + T tau + N(0, 1)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    e = 1.0 / (1.0 + np.exp(-X[:, 0]))
    T = rng.binomial(1, e)
    mu0 = X[:, 1]
    tau = 1.0 + X[:, 0]
    Y = mu0 + T * tau + rng.normal(size=n)
    return {"X": X, "T": T, "Y": Y, "e": e, "mu0": mu0, "mu1": mu0 + tau, "tau": tau}


MEANS = (DummyRegressor(), DummyClassifier(strategy="prior"))


# ---------------------------------------------------------------------------------------------
# make_model
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_make_model_kinds_fit_and_are_seeded(kind: str) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = X[:, 0] + 0.1 * rng.normal(size=80)
    reg = make_model(kind, "regressor", 3)
    clf = make_model(kind, "classifier", 3)
    assert hasattr(clf, "predict_proba")
    assert reg.fit(X, y).predict(X).shape == (80,)
    proba = clf.fit(X, (y > 0).astype(int)).predict_proba(X)
    assert proba.shape == (80, 2)
    for model in (reg, clf):
        seeds = [v for k, v in model.get_params(deep=True).items() if k.endswith("random_state")]
        assert all(s == 3 for s in seeds)
    # the regressors fit the signal, the classifiers separate the classes
    assert np.corrcoef(reg.predict(X), y)[0, 1] > 0.8
    assert np.mean(proba[y > 0, 1]) > np.mean(proba[y <= 0, 1]) + 0.3


def test_make_model_kinds_are_as_documented() -> None:
    ridge = make_model("ridge", "regressor", 0)
    assert isinstance(ridge, Pipeline) and isinstance(ridge.steps[0][1], StandardScaler)
    np.testing.assert_allclose(ridge.steps[-1][1].alphas, np.logspace(-3, 3, 13))
    logistic = make_model("ridge", "classifier", 0).steps[-1][1]
    assert (logistic.C, logistic.max_iter) == (1.0, 2000)
    gbm = make_model("gbm", "classifier", 5)
    assert (gbm.max_iter, gbm.learning_rate, gbm.early_stopping, gbm.random_state) == (
        200, 0.05, False, 5,
    )
    # gbm_default is scikit-learn's default histogram boosting, seeded
    for task, cls in (("regressor", HistGradientBoostingRegressor),
                      ("classifier", HistGradientBoostingClassifier)):
        model = make_model("gbm_default", task, 4)
        assert type(model) is cls
        assert model.get_params() == cls(random_state=4).get_params()
    forest = make_model("forest", "regressor", 2)
    assert isinstance(forest, RandomForestRegressor)
    assert (forest.n_estimators, forest.min_samples_leaf, forest.random_state) == (100, 5, 2)
    assert isinstance(make_model("forest", "classifier", 2), RandomForestClassifier)
    assert make_model("linear", "classifier", None).C >= 1e4
    assert isinstance(make_model("linear", "regressor", None), LinearRegression)


def test_make_model_overrides_reach_the_model() -> None:
    forest = make_model("forest", "classifier", 7, n_estimators=10, max_depth=3, n_jobs=1)
    assert (forest.n_estimators, forest.max_depth, forest.n_jobs, forest.min_samples_leaf) == (
        10, 3, 1, 5,
    )
    # on a pipeline the overrides go to its last step (the model proper)
    ridge = make_model("ridge", "classifier", 0, C=0.1)
    assert ridge.steps[-1][1].C == 0.1
    with pytest.raises(ValueError, match="bogus"):
        make_model("forest", "regressor", 0, bogus=1)


def test_make_model_instance_is_cloned_and_seeded() -> None:
    proto = RandomForestRegressor(n_estimators=7)
    model = make_model(proto, "regressor", 11)
    assert model is not proto
    assert model.random_state == 11 and model.n_estimators == 7
    assert proto.random_state is None  # the caller's object is untouched
    nested = make_model(make_pipeline(StandardScaler(), LogisticRegression()), "classifier", 4)
    assert nested.steps[-1][1].random_state == 4
    # a numpy RandomState is passed through (EconML's convention), numpy ints become ints
    rs = np.random.RandomState(0)
    assert make_model("forest", "regressor", rs).random_state is rs
    assert type(make_model("forest", "regressor", np.int64(3)).random_state) is int


def test_make_model_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown model kind 'svm'; known kinds: ridge, linear"):
        make_model("svm", "regressor", 0)
    with pytest.raises(ValueError, match="task"):
        make_model("ridge", "transformer", 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a regressor"):
        make_model(LogisticRegression(), "regressor", 0)
    with pytest.raises(ValueError, match="predict_proba"):
        make_model(LinearRegression(), "classifier", 0)
    with pytest.raises(ValueError, match="scikit-learn estimator"):
        make_model(42, "regressor", 0)  # type: ignore[arg-type]
    for bad in (True, 1.5, "0"):
        with pytest.raises(ValueError, match="random_state"):
            make_model("ridge", "regressor", bad)  # type: ignore[arg-type]


def test_fit_weighted_routes_weights_through_pipeline() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = X @ [1.0, -2.0] + rng.normal(size=40)
    w = rng.integers(0, 4, size=40).astype(float)
    # integer weights == repeating rows, for OLS inside a pipeline (scaling does not matter)
    weighted = fit_weighted(make_pipeline(StandardScaler(), LinearRegression()), X, y, w)
    reps = np.repeat(np.arange(40), w.astype(int))
    repeated = make_pipeline(StandardScaler(), LinearRegression()).fit(X[reps], y[reps])
    unweighted = make_pipeline(StandardScaler(), LinearRegression()).fit(X, y)
    Xq = rng.normal(size=(10, 2))
    np.testing.assert_allclose(weighted.predict(Xq), repeated.predict(Xq), rtol=1e-8)
    assert not np.allclose(weighted.predict(Xq), unweighted.predict(Xq))
    nested = Pipeline([("outer", make_pipeline(StandardScaler(), LinearRegression()))])
    np.testing.assert_allclose(
        fit_weighted(nested, X, y, w).predict(Xq), repeated.predict(Xq), rtol=1e-8
    )
    with pytest.raises(ValueError, match="sample_weight must have shape"):
        fit_weighted(LinearRegression(), X, y, w[:-1])
    with pytest.raises(ValueError, match="non-negative"):
        fit_weighted(LinearRegression(), X, y, -w)
    with pytest.raises(ValueError, match="does not accept sample_weight"):
        fit_weighted(make_pipeline(StandardScaler(), _NoWeights()), X, y, w)


class _NoWeights(BaseEstimator):
    def fit(self, X: np.ndarray, y: np.ndarray) -> _NoWeights:
        return self


# ---------------------------------------------------------------------------------------------
# predict_treated
# ---------------------------------------------------------------------------------------------


class _FixedProba(ClassifierMixin, BaseEstimator):
    """A 'fitted' classifier with given classes_ whose probabilities are fixed columns."""

    def __init__(self, classes: tuple = (1, 0)) -> None:
        self.classes = classes

    def fit(self, X: np.ndarray, y: np.ndarray) -> _FixedProba:
        self.classes_ = np.asarray(self.classes)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        first = np.linspace(0.0, 0.3, len(X))
        return np.column_stack([first, 1.0 - first])


def test_predict_treated_takes_the_column_of_label_1() -> None:
    X = np.zeros((4, 1))
    # classes_ = (1, 0): the first column is P(T = 1)
    np.testing.assert_allclose(
        predict_treated(_FixedProba((1, 0)).fit(X, None), X), np.linspace(0.0, 0.3, 4)
    )
    np.testing.assert_allclose(
        predict_treated(_FixedProba((0, 1)).fit(X, None), X), 1.0 - np.linspace(0.0, 0.3, 4)
    )
    # a real classifier: the same as predict_proba[:, 1] for labels {0, 1}
    d = _confounded(200, 0)
    model = LogisticRegression().fit(d["X"], d["T"])
    np.testing.assert_array_equal(predict_treated(model, d["X"]), model.predict_proba(d["X"])[:, 1])


def test_predict_treated_clips() -> None:
    X = np.zeros((4, 1))
    model = _FixedProba((1, 0)).fit(X, None)  # P(T=1) = 0, 0.1, 0.2, 0.3
    np.testing.assert_allclose(predict_treated(model, X, clip=0.15), [0.15, 0.15, 0.2, 0.3])
    flipped = _FixedProba((0, 1)).fit(X, None)  # P(T=1) = 1, 0.9, 0.8, 0.7
    np.testing.assert_allclose(predict_treated(flipped, X, clip=0.15), [0.85, 0.85, 0.8, 0.7])
    np.testing.assert_allclose(predict_treated(model, X, clip=0.0), np.linspace(0.0, 0.3, 4))


def test_predict_treated_rejects_bad_input() -> None:
    X = np.zeros((4, 1))
    with pytest.raises(ValueError, match="predict_proba"):
        predict_treated(LinearRegression().fit(X, [0, 1, 0, 1]), X)
    with pytest.raises(ValueError, match="not fitted"):
        predict_treated(LogisticRegression(), X)
    with pytest.raises(ValueError, match="without the label 1"):
        predict_treated(_FixedProba((0, 2)).fit(X, None), X)
    for bad in (0.5, -0.1, "0.1", np.nan):
        with pytest.raises(ValueError, match="clip"):
            predict_treated(_FixedProba().fit(X, None), X, clip=bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# aipw_scores
# ---------------------------------------------------------------------------------------------


def test_aipw_scores_by_hand() -> None:
    # unit0 (T=1): 3 - 1 + (5 - 3) / 0.5 = 6; unit1 (T=0): 2 - 0 - (1 - 0) / (1 - 0.25) = 2 - 4/3
    psi = aipw_scores([5.0, 1.0], [1, 0], [1.0, 0.0], [3.0, 2.0], [0.5, 0.25])
    np.testing.assert_allclose(psi, [6.0, 2.0 - 4.0 / 3.0])


def test_aipw_scores_are_doubly_robust() -> None:
    d = _confounded(200_000, seed=1)
    y, t = d["Y"], d["T"]
    ate = d["tau"].mean()
    naive = y[t == 1].mean() - y[t == 0].mean()
    assert abs(naive - ate) > 0.3  # confounded: the difference of means is biased
    zeros = np.zeros_like(y)
    # right outcome models, wrong propensity; wrong outcome models, right propensity
    right_mu = aipw_scores(y, t, d["mu0"], d["mu1"], np.full_like(y, 0.5))
    right_e = aipw_scores(y, t, zeros, zeros, d["e"])
    assert abs(right_mu.mean() - ate) < 0.02
    assert abs(right_e.mean() - ate) < 0.05
    # both wrong: biased
    assert abs(aipw_scores(y, t, zeros, zeros, np.full_like(y, 0.5)).mean() - ate) > 0.3


def test_aipw_scores_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="e must lie strictly in"):
        aipw_scores([1.0, 2.0], [1, 0], [0.0, 0.0], [1.0, 1.0], [0.0, 0.5])
    with pytest.raises(ValueError, match="different numbers"):
        aipw_scores([1.0, 2.0], [1, 0], [0.0], [1.0, 1.0], [0.5, 0.5])
    with pytest.raises(ValueError, match="T must be binary"):
        aipw_scores([1.0, 2.0], [1, 2], [0.0, 0.0], [1.0, 1.0], [0.5, 0.5])


# ---------------------------------------------------------------------------------------------
# cross_fit
# ---------------------------------------------------------------------------------------------

LOO_Y = np.array([3.0, 1.0, 2.0, 0.0])
LOO_T = np.array([1, 1, 0, 0])
LOO_X = np.arange(4.0)[:, None]


def test_cross_fit_leave_one_out_by_hand() -> None:
    # leave-one-out with mean models: unit0 (T=1) sees treated Y {1} and controls {2, 0}
    fit = cross_fit(LOO_Y, LOO_T, LOO_X, nuisance=MEANS, cv=4, stratify=False, marginal=True)
    np.testing.assert_allclose(fit.mu1, [1.0, 3.0, 2.0, 2.0])
    np.testing.assert_allclose(fit.mu0, [1.0, 1.0, 0.0, 2.0])
    np.testing.assert_allclose(fit.e, [1 / 3, 1 / 3, 2 / 3, 2 / 3])
    np.testing.assert_allclose(fit.m, [1.0, 5 / 3, 4 / 3, 2.0])  # mean of the other three Y
    assert len(fit.folds) == len(fit.models) == 4
    assert set(fit.models[0]) == {"propensity", "mu0", "mu1", "m"}
    for train, test in fit.folds:
        assert len(test) == 1 and test[0] not in train


def test_cross_fit_one_fold_fits_and_predicts_on_the_same_rows() -> None:
    d = _confounded(300, seed=2)
    fit = cross_fit(d["Y"], d["T"], d["X"], nuisance="linear", cv=1, random_state=0)
    assert len(fit.folds) == 1
    train, test = fit.folds[0]
    np.testing.assert_array_equal(train, np.arange(300))
    np.testing.assert_array_equal(test, np.arange(300))
    t = d["T"]
    for arm, mu in ((0, fit.mu0), (1, fit.mu1)):
        ref = LinearRegression().fit(d["X"][t == arm], d["Y"][t == arm])
        np.testing.assert_allclose(mu, ref.predict(d["X"]))
    ref_e = LogisticRegression(C=1e6, max_iter=2000).fit(d["X"], t)
    np.testing.assert_allclose(fit.e, ref_e.predict_proba(d["X"])[:, 1], atol=1e-6)
    assert fit.m is None


def test_cross_fit_is_out_of_fold() -> None:
    # a unit's own outcome never enters its prediction: shifting one unit's Y leaves its
    # out-of-fold mu unchanged but moves the in-sample fit
    d = _confounded(200, seed=3)
    y2 = d["Y"].copy()
    i = int(np.flatnonzero(d["T"] == 1)[0])
    y2[i] += 100.0
    kw = {"nuisance": "linear", "random_state": 0}
    a, b = cross_fit(d["Y"], d["T"], d["X"], cv=5, **kw), cross_fit(y2, d["T"], d["X"], cv=5, **kw)
    assert a.mu1[i] == pytest.approx(b.mu1[i])
    c, e = cross_fit(d["Y"], d["T"], d["X"], cv=1, **kw), cross_fit(y2, d["T"], d["X"], cv=1, **kw)
    assert abs(c.mu1[i] - e.mu1[i]) > 0.1


def test_cross_fit_stratifies_by_treatment() -> None:
    d = _confounded(503, seed=4)
    t = d["T"]
    share = t.mean()
    strat = cross_fit(d["Y"], t, d["X"], nuisance=MEANS, cv=5, random_state=0)
    for _, test in strat.folds:
        assert abs(t[test].sum() - share * len(test)) <= 1.0
    plain = cross_fit(d["Y"], t, d["X"], nuisance=MEANS, cv=5, stratify=False, random_state=0)
    assert max(abs(t[test].sum() - share * len(test)) for _, test in plain.folds) > 1.0
    # every row is in exactly one test fold
    np.testing.assert_array_equal(np.sort(np.concatenate([te for _, te in strat.folds])),
                                  np.arange(503))


def test_cross_fit_sample_weight_reaches_every_model() -> None:
    d = _confounded(400, seed=5)
    w = np.random.default_rng(0).uniform(0.2, 3.0, size=400)
    fit = cross_fit(d["Y"], d["T"], d["X"], nuisance="linear", cv=2, sample_weight=w,
                    marginal=True, random_state=0)
    t, y, X = d["T"], d["Y"], d["X"]
    for (train, _), models in zip(fit.folds, fit.models, strict=True):
        for arm in (0, 1):
            rows = train[t[train] == arm]
            ref = LinearRegression().fit(X[rows], y[rows], sample_weight=w[rows])
            np.testing.assert_allclose(models[f"mu{arm}"].coef_, ref.coef_, atol=1e-10)
        ref_m = LinearRegression().fit(X[train], y[train], sample_weight=w[train])
        np.testing.assert_allclose(models["m"].coef_, ref_m.coef_, atol=1e-10)
        ref_e = LogisticRegression(C=1e6, max_iter=2000).fit(
            X[train], t[train], sample_weight=w[train]
        )
        np.testing.assert_allclose(models["propensity"].coef_, ref_e.coef_, atol=1e-3)
        plain = LinearRegression().fit(X[train], y[train])
        assert not np.allclose(models["m"].coef_, plain.coef_, atol=1e-3)


def test_cross_fit_seeds_folds_and_models() -> None:
    d = _confounded(300, seed=6)
    args = (d["Y"], d["T"], d["X"])
    kw = {"nuisance": ("gbm", "gbm"), "cv": 3}
    a = cross_fit(*args, random_state=1, **kw)
    b = cross_fit(*args, random_state=1, **kw)
    c = cross_fit(*args, random_state=2, **kw)
    for key in ("mu0", "mu1", "e"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    assert not np.allclose(a.mu0, c.mu0)
    # random_state seeds every model unless model_random_state is given
    seeds = {m.random_state for fold in a.models for m in fold.values()}
    assert seeds == {1}
    split = cross_fit(*args, random_state=1, model_random_state=9, **kw)
    for (_, te_a), (_, te_s) in zip(a.folds, split.folds, strict=True):
        np.testing.assert_array_equal(te_a, te_s)  # the folds follow random_state only
    assert {m.random_state for fold in split.models for m in fold.values()} == {9}


def test_cross_fit_clip() -> None:
    rng = np.random.default_rng(8)
    X = rng.normal(size=(200, 1))
    T = (X[:, 0] > 0).astype(int)  # deterministic assignment: propensities near 0 and 1
    Y = X[:, 0] + T
    raw = cross_fit(Y, T, X, nuisance="linear", cv=2, random_state=0)
    assert raw.e.min() < 0.01 and raw.e.max() > 0.99
    clipped = cross_fit(Y, T, X, nuisance="linear", cv=2, clip=0.05, random_state=0)
    np.testing.assert_allclose(clipped.e, np.clip(raw.e, 0.05, 0.95))


def test_cross_fit_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="cv must be an integer in \\[1, 4\\]"):
        cross_fit(LOO_Y, LOO_T, LOO_X, nuisance=MEANS, cv=5)
    with pytest.raises(ValueError, match="cv must be an integer"):
        cross_fit(LOO_Y, LOO_T, LOO_X, nuisance=MEANS, cv=2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sample_weight must have shape"):
        cross_fit(LOO_Y, LOO_T, LOO_X, nuisance=MEANS, cv=2, sample_weight=[1.0, 2.0])
    with pytest.raises(ValueError, match="clip"):
        cross_fit(LOO_Y, LOO_T, LOO_X, nuisance=MEANS, cv=2, clip=0.5)
    with pytest.raises(ValueError, match="pair"):
        cross_fit(LOO_Y, LOO_T, LOO_X, nuisance=("linear",) * 3, cv=2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a regressor"):
        cross_fit(LOO_Y, LOO_T, LOO_X, nuisance=LogisticRegression(), cv=2)
    with pytest.raises(ValueError, match="training rows of fold .* hold no treated \\(T=1\\)"):
        cross_fit(LOO_Y, [1, 0, 0, 0], LOO_X, nuisance=MEANS, cv=4, stratify=False)
    with pytest.raises(ValueError, match="at least cv = 3 units in each arm; the control .* has 1"):
        cross_fit(LOO_Y, [1, 1, 0, 1], LOO_X, nuisance=MEANS, cv=3)
    with pytest.raises(ValueError, match="hold no control \\(T=0\\)"):
        cross_fit(LOO_Y, [1, 1, 1, 1], LOO_X, nuisance=MEANS, cv=1)
    with pytest.raises(ValueError, match="T must be binary"):
        cross_fit(LOO_Y, [0, 1, 2, 1], LOO_X, nuisance=MEANS, cv=2)


# ---------------------------------------------------------------------------------------------
# dr_scores
# ---------------------------------------------------------------------------------------------


def test_dr_scores_are_aipw_on_cross_fitted_nuisances() -> None:
    d = _confounded(400, seed=9)
    args = (d["Y"], d["T"], d["X"])
    psi = dr_scores(*args, cv=3, nuisance="linear", clip=0.02, random_state=4)
    fit = cross_fit(*args, nuisance="linear", cv=3, stratify=False, clip=0.02, random_state=4)
    np.testing.assert_array_equal(psi, aipw_scores(d["Y"], d["T"], fit.mu0, fit.mu1, fit.e))
    strat = dr_scores(*args, cv=3, nuisance="linear", clip=0.02, stratify=True, random_state=4)
    assert not np.allclose(psi, strat)


def test_dr_scores_estimate_the_average_effect_under_confounding() -> None:
    d = _confounded(4000, seed=10)
    psi = dr_scores(d["Y"], d["T"], d["X"], cv=3, nuisance="linear", random_state=0)
    naive = d["Y"][d["T"] == 1].mean() - d["Y"][d["T"] == 0].mean()
    ate = d["tau"].mean()
    assert abs(naive - ate) > 0.3
    assert abs(psi.mean() - ate) < 0.1


def test_dr_scores_options() -> None:
    with pytest.raises(ValueError, match="cv must be an integer >= 2"):
        dr_scores(LOO_Y, LOO_T, LOO_X, cv=1)
    with pytest.raises(ValueError, match="clip"):
        dr_scores(LOO_Y, LOO_T, LOO_X, cv=2, clip=0.0)


def test_one_engine() -> None:
    # metrics re-exports the engine's dr_scores instead of keeping a second implementation
    assert metrics.dr_scores is nuisance.dr_scores
    assert set(nuisance.__all__) <= set(dir(nuisance))


# ---------------------------------------------------------------------------------------------
# data-chosen nuisances
# ---------------------------------------------------------------------------------------------


def _interaction_data(n: int = 400, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Binary covariates; the outcome and the propensity hinge on an interaction."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 2, size=(n, 4)).astype(float)
    e = np.where(X[:, 0] * X[:, 1] == 1, 0.8, 0.3)
    T = rng.binomial(1, e)
    Y = 3 * X[:, 0] * X[:, 1] + T + 0.3 * rng.normal(size=n)
    return X, T, Y


def test_select_model_finds_the_interaction_and_records_every_loss() -> None:
    X, T, Y = _interaction_data()
    auto = nuisance.Auto(candidates=("ridge", "poly", "forest"))
    sel = nuisance.select_model(X, Y, "regressor", candidates=auto, arms=T, random_state=0)
    assert sel.name != "ridge" and sel.by_arm and sel.loss == "squared error"
    assert list(sel.losses) == ["ridge", "poly", "forest"]
    assert sel.losses[sel.name] == min(sel.losses.values())
    assert sel.losses["ridge"] > 1.5 * sel.losses["poly"]  # a linear model misses x0 * x1
    clf = nuisance.select_model(X, T, "classifier", candidates=auto, random_state=0)
    assert clf.loss == "log loss" and clf.losses["poly"] < clf.losses["ridge"]
    # same seed, same choice and losses
    again = nuisance.select_model(X, Y, "regressor", candidates=auto, arms=T, random_state=0)
    assert again.losses == sel.losses


def test_auto_candidates_follow_the_dimension() -> None:
    rng = np.random.default_rng(0)
    wide = rng.normal(size=(60, nuisance.POLY_MAX_FEATURES + 1))
    narrow = wide[:, :3]
    y = rng.normal(size=60)
    few = nuisance.Auto(candidates=None, cv=2)
    # poly is offered for a small space only (the selection's record lists what was tried)
    small = nuisance.select_model(narrow, y, "regressor", candidates=nuisance.Auto(
        candidates=("ridge", "poly"), cv=2), random_state=0)
    assert set(small.losses) == {"ridge", "poly"}
    assert "poly" in nuisance.AUTO_CANDIDATES
    with threadpool_limits(1):
        big = nuisance.select_model(wide, y, "regressor", candidates=few, random_state=0)
    assert "poly" not in big.losses and set(big.losses) == set(nuisance.AUTO_CANDIDATES) - {"poly"}


def test_cross_fit_auto_records_the_choice_and_uses_it() -> None:
    X, T, Y = _interaction_data(300, 1)
    auto = nuisance.Auto(candidates=("ridge", "poly"))
    fitted = cross_fit(Y, T, X, nuisance=(auto, "ridge"), cv=3, random_state=0)
    assert set(fitted.selection) == {"outcome"}
    chosen = fitted.selection["outcome"].name
    assert chosen == "poly"
    assert all(isinstance(m["mu0"], Pipeline) and len(m["mu0"].steps) == 4 for m in fitted.models)
    named = cross_fit(Y, T, X, nuisance=("poly", "ridge"), cv=3, random_state=0)
    np.testing.assert_array_equal(fitted.mu1, named.mu1)  # the chosen kind, fitted as named
    both = cross_fit(Y, T, X, nuisance=auto, cv=3, random_state=0)
    assert set(both.selection) == {"outcome", "propensity"}


def test_select_model_rejects_bad_input() -> None:
    X, T, Y = _interaction_data(40, 2)
    with pytest.raises(ValueError, match="unknown model kind 'lasso'"):
        nuisance.select_model(X, Y, "regressor", candidates=nuisance.Auto(candidates=("lasso",)))
    with pytest.raises(ValueError, match="at least one"):
        nuisance.select_model(X, Y, "regressor", candidates=nuisance.Auto(candidates=()))
    with pytest.raises(ValueError, match="Auto.cv"):
        nuisance.select_model(X, Y, "regressor", candidates=nuisance.Auto(cv=1))
    with pytest.raises(ValueError, match="candidates must be 'auto'"):
        nuisance.select_model(X, Y, "regressor", candidates="ridge")
    with pytest.raises(ValueError, match="at least cv = 3 rows in every class"):
        nuisance.select_model(X, np.r_[1, 1, np.zeros(38)], "classifier")
    with pytest.raises(ValueError, match="unknown model kind"):
        cross_fit(Y, T, X, nuisance=(nuisance.Auto(candidates=("nope",)), "ridge"), cv=2)


def test_unit_weights_are_the_unweighted_fit_and_weights_leave_the_stack_out() -> None:
    X, T, Y = _interaction_data(120, 3)
    with threadpool_limits(1):
        stack = fit_weighted(make_model("stack", "regressor", 0), X, Y, np.ones(120))
        plain = make_model("stack", "regressor", 0).fit(X, Y)
    np.testing.assert_array_equal(stack.predict(X), plain.predict(X))
    w = np.where(T == 1, 2.0, 1.0)
    sel = nuisance.select_model(X, Y, "regressor", candidates=nuisance.Auto(cv=2), arms=T,
                                sample_weight=w, random_state=0)
    assert "stack" not in sel.losses and "ridge" in sel.losses
