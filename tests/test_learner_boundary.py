"""The learners' boundary (issue 13): columns checked as scikit-learn does, errors that name
their cause, no silent degradation (standardisation overflow, lack of overlap), integer
parameters that refuse floats, strings and booleans."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

from ehrcausal.learners import available, make, spec
from ehrcausal.learners.torch_scaffold import Standardiser
from ehrcausal.learners.training import alternating_batches, permuted_batches, train_module
from ehrcausal.nuisance import cross_fit
from ehrcausal.validation import (
    OverlapWarning,
    check_feature_names,
    check_features,
    feature_names,
    warn_overlap,
)

COLUMNS = ["age", "sofa", "lactate"]


def _light(name: str) -> dict:
    """Small budgets: every learner fits in about a second."""
    s = spec(name)
    if s.torch:
        p = {"epochs": 2, "hidden": 8, "batch_size": 16, "device": "cpu"}
        if s.family == "multi_outcome":
            return {**p, "outcome": "continuous"}
        p = {**p, "head_hidden": 8, "n_ensemble": 1}
        return {k: v for k, v in p.items() if k in make(name).get_params()}
    if s.family == "multi_outcome":
        return {"outcome": "continuous", "base": "ridge"}
    if "n_estimators" in s.budget:
        return {"n_estimators": 8}
    return {}


def _data(n: int = 60, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    T = np.tile([0, 1], n // 2)
    Y = X[:, 0] + T * (1 + X[:, 1]) + rng.normal(scale=0.1, size=n)
    return Y, T, pd.DataFrame(X, columns=COLUMNS)


def _fit(name: str, Y, T, X, est=None):
    """Fit ``est`` (a new learner ``name`` when None) with the inputs its registry entry needs."""
    est = make(name, random_state=0, **_light(name)) if est is None else est
    extra = {}
    if "annotations" in spec(name).fit_inputs:
        extra["annotations"] = np.asarray(X)[:, :2]
    if "tau" in spec(name).fit_inputs:
        extra["tau"] = np.ones(len(Y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OverlapWarning)
        return est.fit(Y, T, X=X, **extra)


def _methods(est) -> dict:
    """Every method of ``est`` that takes X after fit, as callables of X."""
    out = {"effect": est.effect, "ate": est.ate}
    if est.models_outcomes:
        out["predict_outcomes"] = est.predict_outcomes
    for extra in ("risk", "propensity"):
        if hasattr(est, extra) and not (extra == "propensity" and getattr(est, "kind", "x") != "x"):
            out[extra] = getattr(est, extra)
    return out


BOUNDARY = available("cate") + ["aace", "risk_based", "oracle", "xmultitask", "mc_x_learner"]


# ---- 1. columns --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", BOUNDARY)
def test_every_method_checks_the_columns_seen_in_fit(name):
    Y, T, X = _data()
    est = _fit(name, Y, T, X)
    assert list(est.feature_names_in_) == COLUMNS
    reordered = X[["sofa", "age", "lactate"]]
    renamed = X.rename(columns={"lactate": "lactate_mmol"})
    for method_name, method in _methods(est).items():
        expected = method(X)
        # a plain array is accepted (scikit-learn's convention) and gives the same numbers
        np.testing.assert_array_equal(np.asarray(method(X.to_numpy()), dtype=float),
                                      np.asarray(expected, dtype=float), err_msg=method_name)
        with pytest.raises(ValueError, match=r"reordered \(position 0 holds 'sofa', fit had 'age'"):
            method(reordered)
        with pytest.raises(ValueError, match=r"unexpected column\(s\) \['lactate_mmol'\]; "
                                             r"missing column\(s\) \['lactate'\]"):
            method(renamed)
        with pytest.raises(ValueError, match=r"missing column\(s\) \['lactate'\]"):
            method(X[["age", "sofa"]])


@pytest.mark.parametrize("name", BOUNDARY)
def test_an_array_fit_forgets_the_names_and_accepts_any_frame(name):
    Y, T, X = _data()
    est = _fit(name, Y, T, X)
    assert hasattr(est, "feature_names_in_")
    assert _fit(name, Y, T, X.to_numpy(), est) is est  # refit on an array
    assert not hasattr(est, "feature_names_in_")
    frame = X.rename(columns=dict(zip(COLUMNS, "abc", strict=True)))
    for method in _methods(est).values():
        np.testing.assert_array_equal(np.asarray(method(frame), dtype=float),
                                      np.asarray(method(X.to_numpy()), dtype=float))


def test_multi_outcome_tasks_check_their_columns():
    Y, T, X = _data()
    est = make("mc_t_learner", outcome="continuous", base="ridge", random_state=0)
    est.fit_tasks({"a": (Y, T, X), "b": (Y[::-1], T, X)})
    assert list(est.feature_names_in_) == COLUMNS
    for method in (est.effect, est.predict_outcomes, est.ate):
        with pytest.raises(ValueError, match="reordered"):
            method(X[COLUMNS[::-1]], task="b")
        method(X.to_numpy(), task="b")  # an array is accepted
    # per-task X: every DataFrame task must have the first DataFrame task's columns
    with pytest.raises(ValueError, match=r"X of task 'b' \(against task 'a'\) does not have the "
                                         r"columns.*reordered"):
        est.fit_tasks({"a": (Y, T, X), "b": (Y, T, X[COLUMNS[::-1]])})
    with pytest.raises(ValueError, match=r"task 'c'.*unexpected column\(s\) \['x'\]"):
        est.fit_tasks({"a": (Y, T, X.to_numpy()), "b": (Y, T, X),
                       "c": (Y, T, X.rename(columns={"age": "x"}))})
    est.fit_tasks({"a": (Y, T, X.to_numpy()), "b": (Y, T, X.to_numpy())})
    assert not hasattr(est, "feature_names_in_")


def test_check_feature_names_as_scikit_learn():
    X = pd.DataFrame(np.zeros((2, 3)), columns=COLUMNS)
    assert list(feature_names(X)) == COLUMNS and feature_names(X.to_numpy()) is None
    assert list(feature_names(pd.DataFrame(np.zeros((1, 2))))) == ["0", "1"]
    check_feature_names(X, COLUMNS)
    check_feature_names(X.to_numpy(), COLUMNS)  # arrays are not checked
    check_feature_names(X, None)  # nor is a model fitted on an array
    with pytest.raises(ValueError, match=r"repeated"):
        check_feature_names(pd.DataFrame(np.zeros((1, 3)), columns=["a", "a", "b"]),
                            ["a", "b", "b"])
    with pytest.raises(ValueError, match=r"Z does not have.*expected 3 column\(s\) \['age', "):
        check_features(X.iloc[:, ::-1], 3, "Z", feature_names_in=COLUMNS)


# ---- 2. errors that name their cause --------------------------------------------------------
BATCHNORM = [n for n in available("multi_outcome") if spec(n).torch and n != "dcn_pd"]


@pytest.mark.parametrize("name", BATCHNORM)
def test_batchnorm_learners_reject_batches_of_one(name):
    Y, T, X = _data()
    est = make(name, random_state=0, **{**_light(name), "batch_size": 1})
    with pytest.raises(ValueError, match=r"batch_size must be an integer >= 2, got 1 \(the "
                                         r"shared trunk's BatchNorm"):
        est.fit(Y, T, X=X)
    assert not hasattr(est, "fitted_")


def test_dcn_pd_has_no_batchnorm_and_trains_on_batches_of_one():
    Y, T, X = _data(20)
    est = make("dcn_pd", random_state=0, **{**_light("dcn_pd"), "batch_size": 1, "epochs": 1})
    assert np.isfinite(est.fit(Y, T, X=X).effect(X)).all()


CROSSFITTED = ["dr_learner", "r_learner", "causal_forest"]


@pytest.mark.parametrize("name", CROSSFITTED)
def test_cross_fitted_learners_need_cv_units_per_arm(name):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 2))
    T = np.zeros(30, int)
    T[:2] = 1  # two treated units: fewer than the default cv = 3 folds
    Y = X[:, 0] + T
    est = make(name, n_estimators=5, random_state=0)
    with pytest.raises(ValueError, match=r"treated \(T=1\) arm has 2 unit\(s\); at least 3 are "
                                         r"needed in each arm \(cv = 3 cross-fitting folds"):
        est.fit(Y, T, X=X)
    with warnings.catch_warnings():
        # two folds fit, and scikit-learn's splitter has nothing to warn about
        warnings.filterwarnings("error", message="The least populated class")
        warnings.simplefilter("ignore", OverlapWarning)
        assert np.isfinite(make(name, n_estimators=5, cv=2, random_state=0)
                           .fit(Y, T, X=X).effect(X)).all()
    # methods without cross-fitting keep the minimum of two
    make("x_learner", n_estimators=5, random_state=0).fit(Y, T, X=X)


# ---- 3. no silent degradation ---------------------------------------------------------------
def test_tarnet_is_scale_invariant_up_to_1e300():
    Y, T, X = _data(200)
    X = X.to_numpy()
    p = {"epochs": 5, "hidden": 16, "head_hidden": 8, "device": "cpu", "random_state": 0}
    base = make("tarnet", **p).fit(Y, T, X=X).effect(X)
    for factor in (1e300, 1e-300):
        big = make("tarnet", **p).fit(Y, T, X=X * factor).effect(X * factor)
        assert len(np.unique(big)) > 100  # not one effect for every unit
        np.testing.assert_allclose(big, base, rtol=1e-4, atol=1e-5)


def test_standardiser_moments_do_not_overflow():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(50, 2))
    v[:, 1] = 3.0  # constant: only centred, at any scale
    ref = Standardiser.fit(v)
    for factor in (1e300, 1e-300, 1e200):
        s = Standardiser.fit(v * factor)
        assert np.isfinite(s.mean).all() and np.isfinite(s.scale).all()
        np.testing.assert_allclose(s.scale[0] / factor, ref.scale[0], rtol=1e-12)
        np.testing.assert_allclose(s.transform(v * factor), ref.transform(v), atol=1e-12)
    # the plain formulas (bit for bit) in the ordinary range
    np.testing.assert_array_equal(ref.mean, v.mean(axis=0))
    np.testing.assert_array_equal(ref.scale, [v[:, 0].std(), 1.0])
    # a difference that overflows float64 is taken the other way round
    s = Standardiser(np.array([-1e308]), np.array([1e308]))
    np.testing.assert_allclose(s.transform(np.array([[1e308]])), [[2.0]])
    with pytest.raises(ValueError, match="too many training standard deviations"):
        Standardiser(np.array([0.0]), np.array([1e-300])).transform(np.array([[1.0]]))


def _separated(n: int = 200, seed: int = 0):
    """Treatment decided by the sign of x0, which every covariate tracks closely: estimated
    propensities pile up at 0 and 1 (forests included, whatever feature they split on)."""
    rng = np.random.default_rng(seed)
    x0 = rng.normal(size=(n, 1))
    X = x0 + 0.05 * rng.normal(size=(n, 3))
    T = (x0[:, 0] > 0).astype(int)
    return X[:, 1] + T + rng.normal(scale=0.1, size=n), T, X


def _balanced(n: int = 200, seed: int = 0):
    """Randomised treatment (P = 1/2, independent of X)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    T = rng.permutation(np.tile([0, 1], n // 2))
    return X[:, 1] + T + rng.normal(scale=0.1, size=n), T, X


OVERLAP = {
    "x_learner": {"n_estimators": 30},
    "dr_learner": {"n_estimators": 30},
    "r_learner": {"n_estimators": 30},
    "causal_forest": {"n_estimators": 30},
    "dragonnet": {"epochs": 40, "lr": 1e-2, "hidden": 16, "head_hidden": 8, "device": "cpu"},
    "aace": {"nuisance": "linear"},
    "xmultitask": {**_light("xmultitask"), "epochs": 1},
    "dcn_pd": {**_light("dcn_pd"), "epochs": 1},
    "mc_x_learner": {"outcome": "continuous", "base": "ridge"},
}


def _overlap_warnings(name: str, data) -> list[str]:
    Y, T, X = data
    est = make(name, random_state=0, **OVERLAP[name])
    extra = {"annotations": X} if name == "aace" else {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(Y, T, X=X, **extra)
    return [str(w.message) for w in caught if issubclass(w.category, OverlapWarning)]


@pytest.mark.parametrize("name", list(OVERLAP))
def test_learners_that_estimate_a_propensity_warn_when_the_arms_do_not_overlap(name):
    found = _overlap_warnings(name, _separated())
    assert len(found) == 1, found
    assert re.search(r"\d+\.\d% of units \(\d+ of 200\) have an estimated propensity outside "
                     r"\[0.01, 0.99\]", found[0]), found[0]
    share = float(re.search(r"(\d+\.\d)%", found[0]).group(1))
    assert share >= 50, found[0]
    assert _overlap_warnings(name, _balanced()) == []


def test_warn_overlap_and_cross_fit():
    with pytest.warns(OverlapWarning, match=r"^m: 40.0% of units \(2 of 5\) have an estimated "
                                            r"propensity outside \[0.01, 0.99\]"):
        assert warn_overlap([0.005, 0.5, 0.995, 0.01, 0.99], "m") == pytest.approx(0.4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OverlapWarning)
        assert warn_overlap([0.01, 0.5, 0.99], "m") == 0.0
    Y, T, X = _separated()
    with pytest.warns(OverlapWarning, match=r"^cross_fit: "):
        fit = cross_fit(Y, T, X, nuisance="linear", cv=2, clip=0.05, random_state=0)
    assert fit.e.min() == 0.05 and fit.e.max() == 0.95  # clipped after the diagnostic
    with warnings.catch_warnings():
        warnings.simplefilter("error", OverlapWarning)
        cross_fit(Y, T, X, nuisance="linear", cv=2, random_state=0, overlap_name=None)
        cross_fit(*_balanced(), nuisance="linear", cv=2, random_state=0)


# ---- 4. integer parameters ------------------------------------------------------------------
@pytest.mark.parametrize("value", [2.5, "3", True, 2.0])
def test_integer_parameters_refuse_floats_strings_and_booleans(value):
    Y, T, X = _data()
    shown = repr(value).replace(".", r"\.")
    with pytest.raises(ValueError, match=rf"n_estimators must be an integer, got {shown}"):
        make("dr_learner", n_estimators=value).fit(Y, T, X=X)
    with pytest.raises(ValueError, match=rf"cv must be an integer, got {shown}"):
        make("aace", cv=value).fit(Y, T, X=X, annotations=X)
    with pytest.raises(ValueError, match=rf"n_classes must be an integer, got {shown}"):
        make("mc_t_learner", n_classes=value).fit(Y > 0, T, X=X)
    with pytest.raises(ValueError, match=rf"n_ensemble must be an integer, got {shown}"):
        make("tarnet", n_ensemble=value, epochs=1, device="cpu").fit(Y, T, X=X)


def test_training_loop_checks_its_integers():
    import torch

    net = torch.nn.Linear(1, 1)
    data = {"x": torch.zeros(4, 1)}

    def loss(m, b):
        out = m(b["x"]).mean()
        return out, out.detach()

    idx = np.arange(4)
    for key, value in (("epochs", 2.5), ("epochs", "3"), ("batch_size", True), ("seed", 1.0),
                       ("patience", "2")):
        kwargs = {"epochs": 1, "batch_size": 2, "lr": 0.1, key: value}
        with pytest.raises(ValueError, match=rf"{key} must be an integer, got {value!r}"):
            train_module(net, loss, data, idx, idx[:0], **kwargs)
    with pytest.raises(ValueError, match="batch_size must be an integer, got 2.0"):
        permuted_batches(2.0)
    with pytest.raises(ValueError, match="batch_size must be an integer, got '4'"):
        alternating_batches(np.array([0, 1]), "4")
