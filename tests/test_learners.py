"""The learner protocol across the registry: recovery of a known effect, determinism, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from ehrcausal.learners import available, budget_params, check_family, make, spec
from ehrcausal.learners.ipm import mmd2_linear, mmd2_rbf, wasserstein_sinkhorn

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
             "cfr_mmd_lin": 0.45, "dragonnet": 0.45, "dragonnet_tr": 0.45}


# the ensemble, cfrnet's fixed 640 epochs and the selection grid (16 networks; its own test in
# test_selection.py) are too costly here
@pytest.mark.parametrize("name", sorted(set(NEURAL) - {"cfr_wass_ens", "cfr_wass_cfrnet",
                                                       "cfr_wass_selected"}))
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
    assert float(mmd2_rbf(a, shifted, sigma=1.0)) > 10 * abs(float(mmd2_rbf(a, b, sigma=1.0)))
    assert float(mmd2_linear(a, shifted)) > 10 * float(mmd2_linear(a, b))
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
    from ehrcausal.learners.aace import target_variants

    assert set(available("aace")) == {"aace", "aace_no_crossfit", "aace_weighted", "risk_based",
                                      "oracle", *target_variants().values()}
    with pytest.raises(ValueError, match="family"):
        available("images")


def test_registry_declares_budget_and_fit_inputs():
    assert NEURAL == ["tarnet", "cfr_wass", "cfr_mmd", "cfr_mmd_lin", "dragonnet", "dragonnet_tr",
                      "cfr_wass_ens", "cfr_wass_cfrnet", "cfr_wass_selected"]
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
    est = make(name, random_state=0,
               **{k: v for k, v in light.items() if k in make(name).get_params()})
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


# ---- the torch scaffold and the parameter checks of every torch learner ----------------------
# the treatment-effect families take fit(Y, T, X=X); the multitask family has its own protocol
# (fit(modalities, targets, tasks=...)) and its own protocol tests in tests/test_m3h.py
EFFECT_FAMILIES = ("cate", "aace", "multi_outcome")
TORCH = [n for n in available() if spec(n).torch and spec(n).family in EFFECT_FAMILIES]


def _torch_params(name: str, **extra) -> dict:
    p = {"epochs": 2, "hidden": 8, "batch_size": 16, "device": "cpu", **extra}
    if spec(name).family == "multi_outcome":
        p["outcome"] = "continuous"
    else:
        p.setdefault("n_ensemble", 1)
    # a learner without early stopping (the released X-MultiTask) has no patience to set
    return {k: v for k, v in p.items() if k in make(name).get_params()}


def test_torch_learners_are_the_expected_ones():
    assert set(NEURAL) < set(TORCH)
    assert {"xmultitask", "xmultitask_released", "dcn_pd", "mc_tarnet"} < set(TORCH)


BAD_TORCH_PARAMS = [
    ("epochs", 2.5, r"epochs must be an integer, got 2.5"),  # once truncated to 2 by TARNet
    ("epochs", 2.0, r"epochs must be an integer, got 2.0"),
    ("epochs", 0, r"epochs must be an integer >= 1, got 0"),
    ("epochs", True, r"epochs must be an integer, got True"),
    ("epochs", "3", r"epochs must be an integer, got '3'"),
    ("batch_size", 16.0, r"batch_size must be an integer, got 16.0"),
    ("patience", "5", r"patience must be an integer, got '5'"),
    ("batch_size", 0, r"batch_size must be an integer >= [12]"),  # 2 with BatchNorm
    ("hidden", 8.0, r"hidden must be an integer, got 8.0"),
    ("patience", 0, r"patience must be an integer >= 1"),
    ("lr", 0.0, r"lr must be a number in \(0, inf\), got 0.0"),
    ("weight_decay", -1e-4, r"weight_decay must be a number in \[0, inf\)"),
    ("val_fraction", 1.0, r"val_fraction must be a number in \[0, 1\), got 1.0"),
    ("val_fraction", float("nan"), r"val_fraction must be a number in \[0, 1\)"),
]


@pytest.mark.parametrize("name", TORCH)
@pytest.mark.parametrize(("param", "value", "match"), BAD_TORCH_PARAMS,
                         ids=[f"{p}={v}" for p, v, _ in BAD_TORCH_PARAMS])
def test_every_torch_learner_rejects_bad_training_parameters(small, name, param, value, match):
    Y, T, X = small
    if param not in make(name).get_params():  # e.g. no early stopping in the released code
        pytest.skip(f"{name} has no parameter {param}")
    est = make(name, random_state=0, **_torch_params(name, **{param: value}))
    with pytest.raises(ValueError, match=match):
        est.fit(Y, T, X=X)
    assert not hasattr(est, "fitted_")


@pytest.mark.parametrize("name", TORCH)
def test_every_torch_learner_takes_numpy_integers(small, name):
    Y, T, X = small
    p = _torch_params(name, epochs=np.int64(3), batch_size=np.int32(16), patience=np.int64(1))
    mask = {"val_mask": np.arange(len(Y)) % 4 == 0} if "val_mask" in spec(name).fit_inputs else {}
    est = make(name, random_state=0, **p).fit(Y, T, X=X, **mask)
    epochs_run = est.history_.n_epochs if hasattr(est, "history_") else len(est.train_loss_)
    assert epochs_run <= 3 and np.isfinite(est.effect(X)).all()


# which learners take a validation mask is the registry's knowledge; the AACE family
# (learners/aace.py) has its own protocol test in tests/test_aace.py
NON_AACE = [n for n in available() if spec(n).family not in ("aace", "multitask")]


def _light_params(name: str) -> dict:
    if spec(name).torch:
        return _torch_params(name, epochs=6, patience=1)
    if spec(name).family == "multi_outcome":
        return {"outcome": "continuous", "base": "ridge"}
    return {"n_estimators": 8} if "n_estimators" in spec(name).budget else {}


@pytest.mark.parametrize("name", NON_AACE)
def test_val_mask_is_used_by_who_declares_it_and_rejected_by_the_others(small, name):
    Y, T, X = small
    rows = np.arange(len(Y))
    p = _light_params(name)
    if "val_mask" not in spec(name).fit_inputs:
        est = make(name, random_state=0, **p)
        with pytest.raises(ValueError, match=r"unexpected fit argument\(s\) \['val_mask'\]"):
            est.fit(Y, T, X=X, val_mask=rows % 4 == 0)
        assert not hasattr(est, "fitted_")
        return
    a = make(name, random_state=0, **p).fit(Y, T, X=X, val_mask=rows % 4 == 0)
    b = make(name, random_state=0, **p).fit(Y, T, X=X, val_mask=rows % 4 == 1)
    # the masked rows are the early-stopping rows: monitored, and held out of training
    assert np.isfinite(a.history_.val_loss).all()
    assert not np.allclose(a.effect(X), b.effect(X))
    # an all-False mask: no validation rows, exactly as val_fraction=0 (train on every row);
    # a learner that chooses among networks by their validation error needs them
    if name == "cfr_wass_selected":
        with pytest.raises(ValueError, match="got no validation rows"):
            make(name, random_state=0, **p).fit(Y, T, X=X, val_mask=np.zeros(len(Y), bool))
        return
    none = make(name, random_state=0, **p).fit(Y, T, X=X, val_mask=np.zeros(len(Y), bool))
    zero = make(name, random_state=0, **{**p, "val_fraction": 0.0}).fit(Y, T, X=X)
    assert np.isnan(none.history_.val_loss).all() and none.history_.n_epochs == p["epochs"]
    np.testing.assert_array_equal(none.effect(X), zero.effect(X))


def test_standardiser_uses_the_training_rows_only():
    from ehrcausal.learners.torch_scaffold import Standardiser

    v = np.array([[1.0, 5.0], [3.0, 5.0], [100.0, -7.0]])
    s = Standardiser.fit(v, np.array([0, 1]))  # row 2 is a validation row
    np.testing.assert_array_equal(s.mean, [2.0, 5.0])
    np.testing.assert_array_equal(s.scale, [1.0, 1.0])  # sd 1; a constant column keeps scale 1
    np.testing.assert_array_equal(s.transform(v), [[-1.0, 0.0], [1.0, 0.0], [98.0, -12.0]])
    np.testing.assert_allclose(s.inverse_transform(s.transform(v)), v)
    np.testing.assert_array_equal(s.scale_difference(np.array([[2.0, 3.0]])), [[2.0, 3.0]])
    y = Standardiser.fit(np.array([0.0, 4.0, 8.0]))
    assert float(y.mean) == 4.0 and float(y.scale) == pytest.approx(np.sqrt(32 / 3))
    assert float(y.scale_difference(np.array([1.0]))[0]) == pytest.approx(np.sqrt(32 / 3))
    ident = Standardiser.identity(3)
    np.testing.assert_array_equal(ident.transform(v[:, :1] * np.ones(3)), v[:, :1] * np.ones(3))
    with pytest.raises(ValueError, match="zero training rows"):
        Standardiser.fit(v, np.array([], dtype=int))


def test_validation_split_is_stratified_seeded_and_checks_the_mask():
    from ehrcausal.learners.torch_scaffold import validation_split

    T = np.array([0] * 60 + [1] * 40)
    tr, va = validation_split(T, 0.25, seed=3)
    assert (T[va] == 0).sum() == 15 and (T[va] == 1).sum() == 10  # 25 % of each arm
    assert np.array_equal(np.sort(np.concatenate([tr, va])), np.arange(100))
    tr2, va2 = validation_split(T, 0.25, seed=3)
    np.testing.assert_array_equal(va, va2)
    assert not np.array_equal(va, validation_split(T, 0.25, seed=4)[1])
    mask = np.arange(100) % 5 == 0
    tr, va = validation_split(T, 0.25, seed=3, val_mask=mask)  # the mask wins over the fraction
    np.testing.assert_array_equal(va, np.flatnonzero(mask))
    with pytest.raises(ValueError, match="val_mask must be a boolean array of length 100"):
        validation_split(T, 0.25, 0, val_mask=mask.astype(int))
    with pytest.raises(ValueError, match="val_mask must be a boolean array of length 100"):
        validation_split(T, 0.25, 0, val_mask=mask[:50])
    with pytest.raises(ValueError, match="no unit with T=1"):
        validation_split(T, 0.25, 0, val_mask=T == 1)
    with pytest.raises(ValueError, match=r"val_fraction must be a number in \[0, 1\)"):
        validation_split(T, 1.0, 0)


def test_predict_chunked_matches_one_pass_in_eval_mode_without_gradients():
    from ehrcausal.learners.torch_scaffold import predict_chunked

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Dropout(0.5), torch.nn.Linear(4, 2))
    net.train()
    X = np.random.default_rng(0).normal(size=(10, 3))

    def forward(xb):
        out = net(xb)
        assert not out.requires_grad  # no graph is recorded
        return {"a": out, "b": out[:, 0]}

    chunked = predict_chunked(forward, X, device="cpu", modules=[net], chunk_size=3)
    assert not net.training  # put in evaluation mode: dropout is off, the result deterministic
    whole = predict_chunked(forward, X, device="cpu", modules=[net], chunk_size=100)
    assert chunked["a"].shape == (10, 2) and chunked["b"].shape == (10,)
    assert chunked["a"].dtype == np.float64
    np.testing.assert_allclose(chunked["a"], whole["a"], rtol=1e-6)
    with torch.no_grad():
        expected = net(torch.as_tensor(X, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(chunked["a"], expected, rtol=1e-6)
    with pytest.raises(ValueError, match="chunk_size must be an integer >= 1"):
        predict_chunked(forward, X, device="cpu", chunk_size=0)


def test_check_torch_params_returns_typed_values():
    from ehrcausal.learners.torch_scaffold import check_torch_params

    p = check_torch_params(make("tarnet", epochs=np.int64(5), lr=1, val_fraction=0))
    assert p.epochs == 5 and type(p.epochs) is int
    assert p.lr == 1.0 and type(p.lr) is float and p.val_fraction == 0.0
