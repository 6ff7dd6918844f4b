"""EconML wrappers and the OLS-2 T-learner: accuracy, determinism, seeding, sklearn conventions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError

from ehrcausal.learners.econml_learners import (
    METHODS,
    CausalForest,
    DRLearner,
    EconMLLearner,
    RLearner,
    SLearner,
    TLearner,
    XLearner,
)
from ehrcausal.learners.linear import OLSTLearner

N_TREES = 50  # small forests keep the file fast
SEED = 123
CLASSES = {
    "s": SLearner,
    "t": TLearner,
    "x": XLearner,
    "dr": DRLearner,
    "r": RLearner,
    "causal_forest": CausalForest,
}
# sqrt(PEHE) on simulate(2000, seed=0) with 50 trees, random_state=123, measured with econml 0.17
# and scikit-learn 1.9: ols 0.043, s 0.315, t 0.305, x 0.178, dr 0.488, r 0.414,
# causal_forest 0.179 (seeds 1 and 2 of the simulator: within +0.07 of these). Tolerances are the
# measurement + 50%; OLS gets 0.2 because the linear model is correctly specified.
PEHE_TOL = {
    "ols": 0.2,
    "s": 0.47,
    "t": 0.46,
    "x": 0.27,
    "dr": 0.73,
    "r": 0.62,
    "causal_forest": 0.27,
}


def simulate(n: int, seed: int = 0, d: int = 5) -> tuple[np.ndarray, ...]:
    """X ~ N(0, I_d); e(x) = 0.1 + 0.8 sigmoid(x0 + x1); tau = 1 + x0; Y = x1 + T tau + noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    e = 0.1 + 0.8 / (1.0 + np.exp(-(X[:, 0] + X[:, 1])))
    T = rng.binomial(1, e)
    tau = 1.0 + X[:, 0]
    Y = X[:, 1] + T * tau + rng.normal(scale=0.5, size=n)
    return Y, T, X, tau


def make(name: str, **params: Any):
    if name == "ols":
        return OLSTLearner(**params)
    return CLASSES[name](n_estimators=N_TREES, **params)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, ...]:
    return simulate(2000, seed=0)


@pytest.fixture(scope="module")
def small() -> tuple[np.ndarray, ...]:
    return simulate(300, seed=1)


@pytest.fixture(scope="module")
def fitted(data) -> dict[str, Any]:
    Y, T, X, _ = data
    return {name: make(name, random_state=SEED).fit(Y, T, X=X) for name in PEHE_TOL}


@pytest.mark.parametrize("name", list(PEHE_TOL))
def test_sqrt_pehe_below_tolerance(name, data, fitted):
    _, _, X, tau = data
    tau_hat = fitted[name].effect(X)
    assert tau_hat.shape == tau.shape
    sqrt_pehe = np.sqrt(np.mean((tau_hat - tau) ** 2))
    assert sqrt_pehe < PEHE_TOL[name], f"{name}: sqrt(PEHE) {sqrt_pehe:.3f}"
    assert abs(fitted[name].ate(X) - tau.mean()) < PEHE_TOL[name]


@pytest.mark.parametrize("name", list(PEHE_TOL))
def test_same_random_state_same_effects(name, small):
    Y, T, X, _ = small
    first = make(name, random_state=7).fit(Y, T, X=X).effect(X)
    second = make(name, random_state=7).fit(Y, T, X=X).effect(X)
    np.testing.assert_array_equal(first, second)


def _sklearn_estimators(obj: Any) -> list[BaseEstimator]:
    """Flatten (nested) lists of fitted models into the scikit-learn estimators they hold."""
    if isinstance(obj, list | tuple):
        return [m for item in obj for m in _sklearn_estimators(item)]
    return [obj] if isinstance(obj, BaseEstimator) else []


MODEL_ATTRIBUTES = {
    "s": ["overall_model"],
    "t": ["models"],
    "x": ["models", "propensity_model", "cate_models"],
    "dr": ["models_propensity", "models_regression", "model_final_"],
    "r": ["models_y", "models_t", "model_final_"],
    "causal_forest": ["models_y", "models_t", "model_final_"],
}
# how many scikit-learn models each method holds (cv=3 cross-fitting folds)
N_MODELS = {"s": 1, "t": 2, "x": 5, "dr": 7, "r": 7, "causal_forest": 7}


@pytest.mark.parametrize("method", METHODS)
def test_random_state_reaches_every_model(method, fitted):
    est = fitted[method].estimator_
    models = [m for a in MODEL_ATTRIBUTES[method] for m in _sklearn_estimators(getattr(est, a))]
    assert len(models) == N_MODELS[method]
    seen = 0
    for model in models:
        for key, value in model.get_params(deep=True).items():
            if key == "random_state" or key.endswith("__random_state"):
                assert value == SEED, f"{method}: {type(model).__name__}.{key} = {value!r}"
                seen += 1
    assert seen >= len(models)
    if method in ("dr", "r", "causal_forest"):  # EconML's own (cross-fitting, forest) seed
        assert est.random_state == SEED


@pytest.mark.parametrize("name", ["ols", "s", "t"])
def test_predict_outcomes_consistent_with_effect(name, data, fitted):
    _, _, X, _ = data
    est = fitted[name]
    assert est.models_outcomes
    mu0, mu1 = est.predict_outcomes(X[:100])
    assert mu0.shape == mu1.shape == (100,)
    np.testing.assert_allclose(mu1 - mu0, est.effect(X[:100]), atol=1e-10)


@pytest.mark.parametrize("method", ["x", "dr", "r", "causal_forest"])
def test_predict_outcomes_unavailable(method, data, fitted):
    est = fitted[method]
    assert not est.models_outcomes
    with pytest.raises(NotImplementedError):
        est.predict_outcomes(data[2][:5])


ALL_UNFITTED = [OLSTLearner(random_state=1)] + [
    cls(n_estimators=10, cv=4, random_state=1) for cls in CLASSES.values()
]
ALL_UNFITTED += [EconMLLearner(method=m, min_samples_leaf=3) for m in METHODS]


@pytest.mark.parametrize("est", ALL_UNFITTED, ids=lambda e: repr(e))
def test_clone_and_get_params_round_trip(est):
    params = est.get_params()
    copy = clone(est)
    assert type(copy) is type(est)
    assert copy.get_params() == params
    assert type(est)(**params).get_params() == params
    assert copy.set_params(**params).get_params() == params


def test_named_subclasses_fix_method():
    for method, cls in CLASSES.items():
        est = cls()
        assert est.method == method
        assert "method" not in est.get_params()
        assert est.get_params() == {
            k: v for k, v in EconMLLearner(method=method).get_params().items() if k != "method"
        }
    assert EconMLLearner(method="t").set_params(method="s").models_outcomes


def test_clone_of_fitted_is_unfitted(small):
    Y, T, X, _ = small
    est = make("t", random_state=0).fit(Y, T, X=X)
    with pytest.raises(NotFittedError):
        clone(est).effect(X)


@pytest.mark.parametrize("name", list(PEHE_TOL))
def test_effect_before_fit_raises(name, small):
    with pytest.raises(NotFittedError):
        make(name).effect(small[2])


@pytest.mark.parametrize("name", list(PEHE_TOL))
def test_effect_wrong_columns_raises(name, data, fitted):
    X = data[2]
    with pytest.raises(ValueError, match="columns"):
        fitted[name].effect(X[:, :3])


@pytest.mark.parametrize("name", list(PEHE_TOL))
def test_unknown_fit_argument_raises(name, small):
    Y, T, X, _ = small
    with pytest.raises(ValueError, match="unexpected fit argument"):
        make(name).fit(Y, T, X=X, annotations=X)


@pytest.mark.parametrize("name", list(PEHE_TOL))
def test_val_mask_is_rejected(name, small):
    # no early stopping here: a validation mask would be silently ignored, so it is refused
    Y, T, X, _ = small
    val_mask = np.zeros(len(Y), dtype=bool)
    val_mask[::5] = True
    est = make(name, random_state=0)
    with pytest.raises(ValueError, match=r"unexpected fit argument\(s\) \['val_mask'\]; \w+ accepts none"):
        est.fit(Y, T, X=X, val_mask=val_mask)
    assert not hasattr(est, "fitted_")


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"cv": 1}, r"cv must be an integer >= 2, got 1"),
        ({"cv": 3.0}, r"cv must be an integer, got 3.0"),
        ({"cv": True}, r"cv must be an integer, got True"),
        ({"n_estimators": 0}, r"n_estimators must be an integer >= 1, got 0"),
        ({"n_estimators": 10.5}, r"n_estimators must be an integer, got 10.5"),
        ({"min_samples_leaf": 0}, r"min_samples_leaf must be an integer >= 1"),
        ({"max_depth": 0}, r"max_depth must be an integer >= 1"),
        ({"propensity_clip": 0.7}, r"propensity_clip must be a number in \[0, 0.5\), got 0.7"),
        ({"propensity_clip": 0.5}, r"propensity_clip must be a number in \[0, 0.5\)"),
        ({"propensity_clip": -0.1}, r"propensity_clip must be a number in \[0, 0.5\)"),
    ],
)
def test_bad_parameters_raise(small, params, match):
    Y, T, X, _ = small
    with pytest.raises(ValueError, match=match):
        DRLearner(**params).fit(Y, T, X=X)


def test_bad_method_raises(small):
    Y, T, X, _ = small
    with pytest.raises(ValueError, match="method must be one of"):
        EconMLLearner(method="bart").fit(Y, T, X=X)
    # the lower bound of cv is inclusive: two folds are valid
    assert DRLearner(cv=2, n_estimators=5, random_state=0).fit(Y, T, X=X).estimator_.cv == 2


def test_dataframe_input_records_feature_names(small):
    pd = pytest.importorskip("pandas")
    Y, T, X, _ = small
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    est = make("causal_forest", random_state=0).fit(Y, T, X=frame)
    assert list(est.feature_names_in_) == list(frame.columns)
    np.testing.assert_array_equal(est.effect(frame), est.effect(X))
