"""The learner protocol across the registry: recovery of a known effect, determinism, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from ehrcausal.learners import available, budget_params, check_family, make, spec
from ehrcausal.learners.ipm import mmd2_rbf, wasserstein_sinkhorn

CATE_LEARNERS = available("cate")
NEURAL = [n for n in CATE_LEARNERS if spec(n).torch]
REQUIRED = {
    "ols", "s_learner", "t_learner", "x_learner", "dr_learner", "r_learner", "causal_forest",
    "tarnet", "cfr_wass", "cfr_mmd", "dragonnet",
}
FAST = {"n_estimators": 40}
NN = {"epochs": 150, "device": "cpu"}


def params_for(name: str) -> dict:
    if name in NEURAL:
        return NN
    return {} if name == "ols" else FAST


def pehe(a, b) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def test_registry_names():
    assert REQUIRED <= set(available())
    with pytest.raises(ValueError, match="unknown learner 'bart'.*available"):
        make("bart")


# Each learner must recover tau(x) = 1 + x0 on 1,500 confounded units. Tolerances are the
# measured sqrt(PEHE) with margin; a learner that ignored heterogeneity scores about 1.0
# (the standard deviation of tau), one that ignored confounding gets the ATE wrong.
TOLERANCE = {"ols": 0.15, "tarnet": 0.45, "cfr_wass": 0.45, "cfr_mmd": 0.45,
             "dragonnet": 0.45, "dragonnet_tr": 0.45}


@pytest.mark.parametrize("name", sorted(set(NEURAL) - {"cfr_wass_ens"}))
def test_neural_learner_recovers_known_effect(simple, name):
    train, test = simple.subset("train", "val"), simple.subset("test")
    est = make(name, random_state=0, **params_for(name))
    assert est.fit(train.Y, train.T, X=train.X, val_mask=train.split == "val") is est
    tau_hat = est.effect(test.X)
    assert tau_hat.shape == (len(test),)
    assert pehe(tau_hat, test.tau) < TOLERANCE[name]
    assert abs(est.ate(test.X) - test.tau.mean()) < 0.25
    mu0, mu1 = est.predict_outcomes(test.X)
    np.testing.assert_allclose(mu1 - mu0, tau_hat, rtol=1e-6, atol=1e-6)
    assert est.history_.n_epochs >= 1 and est.device_ == "cpu"


def test_ols_recovers_linear_effect(simple):
    est = make("ols").fit(simple.Y, simple.T, X=simple.X)
    assert pehe(est.effect(simple.X), simple.tau) < TOLERANCE["ols"]


@pytest.mark.parametrize("name", ["tarnet", "cfr_wass", "dragonnet_tr", "dr_learner"])
def test_same_seed_same_numbers(simple, name):
    p = {**params_for(name), "epochs": 20} if name in NEURAL else params_for(name)
    a = make(name, random_state=7, **p).fit(simple.Y, simple.T, X=simple.X).effect(simple.X)
    b = make(name, random_state=7, **p).fit(simple.Y, simple.T, X=simple.X).effect(simple.X)
    np.testing.assert_array_equal(a, b)
    c = make(name, random_state=8, **p).fit(simple.Y, simple.T, X=simple.X).effect(simple.X)
    assert not np.array_equal(a, c)


def test_neural_early_stopping_keeps_best_epoch(simple):
    est = make("tarnet", random_state=0, epochs=400, patience=5, device="cpu")
    est.fit(simple.Y, simple.T, X=simple.X)
    h = est.history_
    assert h.stopped_early and h.n_epochs < 400
    assert h.best_epoch == int(np.argmin(h.val_loss))
    assert h.n_epochs == h.best_epoch + 1 + 5


def test_targeted_regularisation_changes_the_fit(simple):
    a = make("dragonnet", random_state=0, epochs=20, device="cpu").fit(simple.Y, simple.T, X=simple.X)
    b = make("dragonnet_tr", random_state=0, epochs=20, device="cpu").fit(simple.Y, simple.T, X=simple.X)
    assert not np.allclose(a.effect(simple.X), b.effect(simple.X))
    e = b.propensity(simple.X)
    assert np.all((e > 0) & (e < 1))
    # the propensity head has learned the confounding direction (logit e = 0.8 x1)
    assert np.corrcoef(e, simple.X["x1"])[0, 1] > 0.5


def test_device_auto_resolves_at_fit_time(simple):
    est = make("tarnet", random_state=0, epochs=2, device="auto")
    assert est.get_params()["device"] == "auto"
    est.fit(simple.Y, simple.T, X=simple.X)
    assert est.device_ == ("cuda" if torch.cuda.is_available() else "cpu")


def test_clone_and_params_roundtrip():
    est = make("cfr_mmd", alpha=0.3, random_state=3)
    c = clone(est)
    assert c.get_params() == est.get_params() and c.ipm == "mmd" and c.alpha == 0.3


def test_ipm_distances_detect_imbalance():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(200, 3, generator=g)
    b = torch.randn(200, 3, generator=g)
    shifted = b + 2.0
    assert float(wasserstein_sinkhorn(a, shifted)) > 3 * float(wasserstein_sinkhorn(a, b))
    assert float(mmd2_rbf(a, shifted)) > 10 * float(mmd2_rbf(a, b))
    assert float(mmd2_rbf(a, a[:0])) == 0.0


# ---- bad input ------------------------------------------------------------------------------
@pytest.fixture
def small():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3))
    T = np.tile([0, 1], 20)
    return X[:, 0] + T, T, X


@pytest.mark.parametrize("name", ["ols", "tarnet", "t_learner"])
def test_nan_in_covariates(small, name):
    Y, T, X = small
    X = X.copy()
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="X contains 1 NaN"):
        make(name).fit(Y, T, X=X)


@pytest.mark.parametrize("name", ["ols", "tarnet", "dr_learner"])
def test_mismatched_lengths(small, name):
    Y, T, X = small
    with pytest.raises(ValueError, match="different numbers of rows.*Y has 39"):
        make(name).fit(Y[:-1], T, X=X)


@pytest.mark.parametrize("name", ["ols", "cfr_wass", "x_learner"])
def test_non_binary_treatment(small, name):
    Y, T, X = small
    with pytest.raises(ValueError, match="T must be binary"):
        make(name).fit(Y, np.where(T == 1, 2, 0), X=X)


@pytest.mark.parametrize("name", ["ols", "dragonnet", "causal_forest"])
def test_empty_arm(small, name):
    Y, _, X = small
    with pytest.raises(ValueError, match="treated \\(T=1\\) arm has 0"):
        make(name).fit(Y, np.zeros(len(Y)), X=X)


def test_inference_errors(small):
    Y, T, X = small
    est = make("tarnet", epochs=2, device="cpu", random_state=0)
    with pytest.raises(NotFittedError):
        est.effect(X)
    est.fit(Y, T, X=X)
    with pytest.raises(ValueError, match="2 columns; the model was fitted on 3"):
        est.effect(X[:, :2])
    with pytest.raises(ValueError, match="inf"):
        est.effect(np.full((2, 3), np.inf))
    with pytest.raises(ValueError, match="unexpected fit argument"):
        make("tarnet", epochs=2).fit(Y, T, X=X, annotations=X)
    with pytest.raises(ValueError, match="val_mask must be a boolean"):
        make("tarnet", epochs=2).fit(Y, T, X=X, val_mask=np.ones(3, bool))
    with pytest.raises(ValueError, match="ipm must be one of"):
        make("cfr_wass", ipm="kl", epochs=2).fit(Y, T, X=X)
    with pytest.raises(ValueError, match="device"):
        make("tarnet", device="tpu", epochs=2).fit(Y, T, X=X)


def test_no_validation_rows_trains_all_epochs(simple):
    est = make("tarnet", random_state=0, epochs=7, val_fraction=0.0, device="cpu")
    est.fit(simple.Y, simple.T, X=simple.X)
    assert est.history_.n_epochs == 7 and est.history_.best_epoch == 6
    assert not est.history_.stopped_early


def test_ensemble_averages_independently_seeded_networks(simple):
    from ehrcausal.runtime import child_seeds

    p = {"epochs": 5, "hidden": 32, "head_hidden": 16, "device": "cpu"}
    val = simple.split == "val"  # members share the validation split; fix it for the singles too
    ens = make("tarnet", random_state=4, n_ensemble=3, **p).fit(
        simple.Y, simple.T, X=simple.X, val_mask=val
    )
    seeds = [4, *child_seeds(4, 2)]
    singles = [
        make("tarnet", random_state=s, **p)
        .fit(simple.Y, simple.T, X=simple.X, val_mask=val)
        .effect(simple.X)
        for s in seeds
    ]
    assert len(ens.networks_) == 3 and len(ens.histories_) == 3
    np.testing.assert_allclose(ens.effect(simple.X), np.mean(singles, axis=0), rtol=1e-5, atol=1e-5)
    one = make("tarnet", random_state=4, **p).fit(simple.Y, simple.T, X=simple.X, val_mask=val)
    np.testing.assert_array_equal(one.effect(simple.X), singles[0])
    assert not np.allclose(singles[0], singles[1])
    with pytest.raises(ValueError, match="n_ensemble"):
        make("tarnet", n_ensemble=0, **p).fit(simple.Y, simple.T, X=simple.X)


def test_every_registered_learner_belongs_to_one_family():
    # each family has its own protocol test (here, tests/test_aace.py, tests/test_multitask.py)
    from ehrcausal.learners import FAMILIES

    families = [set(available(f)) for f in FAMILIES]
    assert sorted(available()) == sorted(set().union(*families))
    assert sum(len(f) for f in families) == len(available())
    assert set(available("aace")) == {"aace", "aace_no_crossfit", "aace_weighted", "risk_based",
                                      "oracle"}
    with pytest.raises(ValueError, match="family"):
        available("images")


def test_registry_declares_budget_and_fit_inputs():
    assert NEURAL == ["tarnet", "cfr_wass", "cfr_mmd", "dragonnet", "dragonnet_tr", "cfr_wass_ens"]
    assert spec("xmultitask").budget == ("epochs", "device") and spec("xmultitask").torch
    assert spec("causal_forest").budget == ("n_estimators",)
    assert "annotations" in spec("aace").fit_inputs and "val_mask" not in spec("aace").fit_inputs
    assert "val_mask" in spec("tarnet").fit_inputs and spec("ols").fit_inputs == ()
    p = budget_params({"a": "tarnet", "b": "dr_learner", "c": "aace", "d": "mc_tarnet"},
                      epochs=5, n_estimators=7, device="cpu")
    assert p == {"a": {"epochs": 5, "device": "cpu"}, "b": {"n_estimators": 7}, "c": {},
                 "d": {"epochs": 5, "device": "cpu"}}
    assert budget_params(["tarnet"], device="cpu") == {"tarnet": {"device": "cpu"}}
    assert check_family(["aace", "oracle"], "aace") == ["aace", "oracle"]
    with pytest.raises(ValueError, match="not 'aace' learners.*tarnet"):
        check_family(["aace", "tarnet"], "aace")
    with pytest.raises(ValueError, match="unknown learner 'nope'"):
        spec("nope")
    with pytest.raises(ValueError, match="budget knob"):
        from ehrcausal.learners import register
        register("bogus", object, family="cate", budget=("lr",))


@pytest.mark.parametrize("name", CATE_LEARNERS)
def test_every_cate_learner_follows_the_protocol(small, name):
    Y, T, X = small
    light = {"epochs": 2, "hidden": 8, "head_hidden": 8, "n_ensemble": 2} if name in NEURAL else (
        {} if name == "ols" else {"n_estimators": 8}
    )
    est = make(name, random_state=0, **light)
    assert clone(est).get_params() == est.get_params()
    assert est.fit(Y, T, X=X) is est
    tau = est.effect(X)
    assert tau.shape == (len(Y),) and np.isfinite(tau).all()
    assert isinstance(est.ate(X), float) and est.ate(X) == pytest.approx(tau.mean())
    if est.models_outcomes:
        mu0, mu1 = est.predict_outcomes(X)
        np.testing.assert_allclose(mu1 - mu0, tau, atol=1e-6)
    else:
        with pytest.raises(NotImplementedError):
            est.predict_outcomes(X)
