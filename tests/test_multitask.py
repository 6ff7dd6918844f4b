"""X-MultiTask (described and released), TARNet, DCN-PD and S/T/X learners for class and
vector outcomes: IPW weighting, the released defects, shapes, multitask fits, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone

import ehrcausal.learners.metalearners_mc  # noqa: F401  (registers the mc_* names)
import ehrcausal.learners.multitask  # noqa: F401  (registers the torch names)
from ehrcausal.data.dataset import CausalDataset
from ehrcausal.learners.metalearners_mc import MetaLearnerMC
from ehrcausal.learners.multioutcome import check_class_labels
from ehrcausal.learners.multitask import (
    DCNPD,
    MultiOutcomeTARNet,
    XMultiTask,
    binary_entropy_bits,
    ipw_loss,
    ipw_weights,
    propensity_dropout_rate,
)
from ehrcausal.learners.registry import make
from ehrcausal.learners.training import alternating_batches, train_module

NAMES = (
    "xmultitask",
    "xmultitask_released",
    "dcn_pd",
    "mc_tarnet",
    "mc_s_learner",
    "mc_t_learner",
    "mc_x_learner",
)
TINY = {"epochs": 4, "hidden": 8, "batch_size": 32, "device": "cpu"}


def light(name: str) -> dict:
    return {"base": "ridge"} if name.startswith("mc_") and name != "mc_tarnet" else TINY


def class_data(n: int = 400, seed: int = 0, C: int = 4):
    """Confounded multinomial-logit outcome; treatment moves mass from class C-1 to class 0.

    logit P(T=1|x) = 0.8 x1; class logits l_c(x) = b_c(x) + T * delta_c with delta_0 = +1.5,
    delta_{C-1} = -1.5 and 0 otherwise. Returns Y, T, X, the true per-class effect (n, C).
    """
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    T = rng.binomial(1, 1.0 / (1.0 + np.exp(-0.8 * X[:, 1])))
    base = np.column_stack([X[:, 0], 0.5 * X[:, 2], np.zeros(n), -X[:, 0]])[:, :C]
    delta = np.zeros(C)
    delta[0], delta[-1] = 1.5, -1.5
    p0 = np.exp(base) / np.exp(base).sum(1, keepdims=True)
    p1 = np.exp(base + delta) / np.exp(base + delta).sum(1, keepdims=True)
    p = np.where(T[:, None] == 1, p1, p0)
    Y = (p.cumsum(1) > rng.uniform(size=(n, 1))).argmax(1)
    return Y, T, X, p1 - p0


def continuous_data(n: int = 400, seed: int = 1, D: int = 2):
    """Y (n, D): Y_d = x1 + T (1 + x0) * (-1)^d + noise; returns Y, T, X, tau (n, D)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    T = rng.binomial(1, 1.0 / (1.0 + np.exp(-0.8 * X[:, 1])))
    sign = np.array([(-1.0) ** d for d in range(D)])
    tau = (1.0 + X[:, [0]]) * sign
    Y = X[:, [1]] + T[:, None] * tau + rng.normal(scale=0.3, size=(n, D))
    return Y, T, X, tau


@pytest.fixture(scope="module")
def cls():
    return class_data()


@pytest.fixture(scope="module")
def cont():
    return continuous_data()


# ---- IPW weighting ------------------------------------------------------------------------
def test_ipw_loss_is_the_weighted_mean():
    losses = torch.tensor([1.0, 2.0, 3.0, 4.0])
    weights = torch.tensor([1.0, 2.0, 0.5, 1.5])
    # (1*1 + 2*2 + 0.5*3 + 1.5*4) / (1 + 2 + 0.5 + 1.5) = 12.5 / 5
    assert float(ipw_loss(losses, weights)) == pytest.approx(2.5)
    assert float(ipw_loss(losses, torch.ones(4))) == pytest.approx(2.5)  # plain mean
    assert float(ipw_loss(losses, torch.tensor([0.0, 0.0, 0.0, 1.0]))) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="same length"):
        ipw_loss(losses, weights[:3])
    with pytest.raises(ValueError, match="positive sum"):
        ipw_loss(losses, torch.zeros(4))
    np.testing.assert_allclose(ipw_weights([1, 0, 1], [0.25, 0.25, 0.8]), [4.0, 4 / 3, 1.25])
    with pytest.raises(ValueError, match="strictly"):
        ipw_weights([1, 0], [0.0, 0.5])


def test_constant_trained_with_ipw_loss_converges_to_weighted_mean():
    class Constant(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c = torch.nn.Parameter(torch.zeros(1))

    rng = np.random.default_rng(0)
    y = rng.normal(size=200)
    w = np.exp(1.5 * y)  # heavier weights on large y: weighted mean >> plain mean
    target = float((w * y).sum() / w.sum())
    assert target - y.mean() > 1.0
    data = {
        "y": torch.as_tensor(y, dtype=torch.float32),
        "w": torch.as_tensor(w, dtype=torch.float32),
    }

    def loss_fn(m, b):
        loss = ipw_loss((b["y"] - m.c) ** 2, b["w"])
        return loss, loss.detach()

    model = Constant()
    train_module(
        model, loss_fn, data, np.arange(200), np.arange(0), epochs=600, batch_size=200, lr=0.05
    )
    assert model.c.detach().item() == pytest.approx(target, abs=1e-2)


def test_described_stage1_weights_are_inverse_propensities_of_the_batch(cls):
    Y, T, X, _ = cls
    est = XMultiTask(random_state=0, **TINY).fit(Y, T, X=X)
    e = est.propensity(X)
    expected = np.where(T == 1, 1.0 / e, 1.0 / (1.0 - e))
    np.testing.assert_allclose(est.sample_weights_["default"], expected, rtol=1e-12)
    assert est.sample_weights_["default"].std() > 0.1
    fb = est.first_batch_
    rows = fb["row"]
    assert len(rows) == 32 and len(np.unique(rows)) == 32
    np.testing.assert_array_equal(fb["t"], T[rows])  # the batch's own rows
    np.testing.assert_allclose(fb["w"], expected[rows], rtol=1e-6)
    weighted = (fb["w"] * fb["losses"]).sum() / fb["w"].sum()
    assert float(fb["loss"]) == pytest.approx(weighted, rel=1e-5)
    assert abs(weighted - fb["losses"].mean()) > 1e-4  # the weights change the loss


def test_weights_are_aligned_per_task_in_a_two_task_fit(cls, cont):
    Y, T, X, _ = cls
    Yc, Tc, Xc, _ = continuous_data(n=250, seed=5)
    est = XMultiTask(random_state=1, **{**TINY, "batch_size": 100}).fit_tasks(
        {"a": (Y, T, X), "b": (Yc, Tc, Xc)}, outcomes={"b": "continuous"}
    )
    fb = est.first_batch_
    assert set(np.unique(fb["task"])) == {0, 1}  # batches mix the tasks
    for k, (name, t_all, x_all) in enumerate((("a", T, X), ("b", Tc, Xc))):
        sel = fb["task"] == k
        e = est.propensity(x_all, task=name)
        w = np.where(t_all == 1, 1.0 / e, 1.0 / (1.0 - e))
        np.testing.assert_allclose(fb["w"][sel], w[fb["row"][sel]], rtol=1e-6)
        np.testing.assert_array_equal(fb["t"][sel], t_all[fb["row"][sel]])


def test_released_and_ablation_weights_are_ones(cls):
    Y, T, X, _ = cls
    rel = XMultiTask(variant="two_defects", ipw=True, random_state=0, **TINY).fit(Y, T, X=X)
    abl = XMultiTask(ipw=False, random_state=0, **TINY).fit(Y, T, X=X)
    for est in (rel, abl):
        np.testing.assert_array_equal(est.sample_weights_["default"], 1.0)
        np.testing.assert_array_equal(est.first_batch_["w"], 1.0)
        assert float(est.first_batch_["loss"]) == pytest.approx(est.first_batch_["losses"].mean())


# ---- fit and predict ----------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["described", "two_defects"])
@pytest.mark.parametrize("outcome", ["class", "continuous"])
def test_xmultitask_single_and_two_tasks(cls, cont, variant, outcome):
    data = cls if outcome == "class" else cont
    Y, T, X, _ = data
    K = 4 if outcome == "class" else 2
    one = XMultiTask(outcome=outcome, variant=variant, random_state=0, **TINY).fit(Y, T, X=X)
    Y2, T2, X2, _ = class_data(n=300, seed=3) if outcome == "class" else continuous_data(300, 4)
    two = XMultiTask(outcome=outcome, variant=variant, random_state=0, **TINY).fit_tasks(
        {"anterior": (Y, T, X), "surgery": (Y2, T2, X2)}
    )
    assert len(two.outcome_net_.heads) == 4 and len(two.effect_net_.heads) == 4
    for est, task in ((one, None), (two, "anterior"), (two, "surgery")):
        tau = est.effect(X[:50], task=task)
        mu0, mu1 = est.predict_outcomes(X[:50], task=task)
        assert tau.shape == mu0.shape == mu1.shape == (50, K) and np.isfinite(tau).all()
        if outcome == "class":
            np.testing.assert_allclose(tau.sum(axis=1), 0.0, atol=1e-5)
            np.testing.assert_allclose(mu0.sum(axis=1), 1.0, atol=1e-5)
            assert (mu0 >= 0).all() and (mu1 >= 0).all()
        e = est.propensity(X[:50], task=task)[:, None]
        if variant == "two_defects":
            np.testing.assert_allclose(tau, e * (mu1 - mu0), atol=1e-6)
        else:
            assert not np.allclose(tau, e * (mu1 - mu0), atol=1e-3)
        ate = est.ate(X[:50], task=task)
        np.testing.assert_allclose(ate, tau.mean(axis=0))
    assert one.n_outputs_ == K and two.n_outputs_ == {"anterior": K, "surgery": K}
    assert one.n_classes_ == (4 if outcome == "class" else None)


def test_released_stage2_is_degenerate_and_described_recovers_effect(cls):
    Y, T, X, tau = class_data(n=600, seed=11)
    p = {"epochs": 40, "hidden": 16, "device": "cpu", "random_state": 0}
    rel = XMultiTask(variant="two_defects", **p).fit(Y, T, X=X)
    des = XMultiTask(**p).fit(Y, T, X=X)
    s0, s1 = rel._heads(rel.effect_net_, X, 0, 2)
    np.testing.assert_array_equal(s0, 1.0)  # softmax over one output
    np.testing.assert_array_equal(s1, 1.0)
    mu0, mu1 = rel.predict_outcomes(X)
    np.testing.assert_allclose(rel.effect(X), rel.propensity(X)[:, None] * (mu1 - mu0), atol=1e-6)
    # the released effect is shrunk by e(x) < 1; the described one is not
    true_ate = tau.mean(axis=0)
    assert abs(des.ate(X)[0] - true_ate[0]) < abs(rel.ate(X)[0] - true_ate[0])
    assert des.ate(X)[0] > 0.15 and des.ate(X)[-1] < -0.1


def test_single_continuous_outcome_is_one_dimensional(cont):
    Y, T, X, _ = cont
    for name in NAMES:
        est = make(name, outcome="continuous", random_state=0, **light(name))
        assert clone(est).get_params() == est.get_params()
        assert est.fit(Y[:, 0], T, X=X) is est
        tau = est.effect(X)
        assert tau.shape == (len(Y),) and np.isfinite(tau).all()
        assert isinstance(est.ate(X), float) and est.ate(X) == pytest.approx(tau.mean())
        mu0, mu1 = est.predict_outcomes(X)
        assert mu0.shape == mu1.shape == (len(Y),)


def test_tarnet_and_dcnpd_effects_are_outcome_differences(cls):
    Y, T, X, _ = cls
    for est in (
        MultiOutcomeTARNet(random_state=0, **TINY),
        DCNPD(random_state=0, **TINY),
    ):
        est.fit(Y, T, X=X)
        mu0, mu1 = est.predict_outcomes(X)
        np.testing.assert_allclose(est.effect(X), mu1 - mu0, atol=1e-12)
        np.testing.assert_allclose(est.effect(X).sum(axis=1), 0.0, atol=1e-6)


def test_multitask_sharing_and_per_task_copies(cls, cont):
    Y, T, X, _ = cls
    Yc, Tc, Xc, _ = cont
    tasks = {"a": (Y, T, X), "b": (Yc, Tc, Xc)}
    outcomes = {"b": "continuous"}
    tar = MultiOutcomeTARNet(random_state=0, **TINY).fit_tasks(tasks, outcomes=outcomes)
    assert len(tar.outcome_net_.heads) == 4  # one trunk, heads per (task, arm)
    assert tar.effect(X, task="a").shape == (len(X), 4)
    assert tar.effect(Xc, task="b").shape == (len(Xc), 2)
    dcn = DCNPD(random_state=0, **TINY).fit_tasks(tasks, outcomes=outcomes)
    assert set(dcn.task_estimators_) == {"a", "b"}  # one independent network per task
    assert dcn.task_estimators_["a"].network_ is not dcn.task_estimators_["b"].network_
    assert dcn.effect(Xc, task="b").shape == (len(Xc), 2)


def test_fit_tasks_takes_datasets_with_their_outcome_kind(cls, cont):
    Y, T, X, tau = cls
    Yc, Tc, Xc, tauc = cont
    cols = [f"x{i}" for i in range(5)]
    tasks = {
        "approach": CausalDataset(
            X=pd.DataFrame(X, columns=cols), T=T, Y=Y, tau=tau, meta={"outcome": "class"}
        ),
        "surgery": CausalDataset(
            X=pd.DataFrame(Xc, columns=cols), T=Tc, Y=Yc, tau=tauc, meta={"outcome": "continuous"}
        ),
    }
    est = make("xmultitask", random_state=0, **TINY).fit_tasks(tasks)
    assert est.tasks_["approach"].outcome == "class"
    assert est.tasks_["surgery"].outcome == "continuous"
    assert list(est.feature_names_in_) == cols
    assert est.effect(Xc, task="surgery").shape == (len(Xc), 2)
    mask = {"approach": np.arange(len(Y)) % 4 == 0, "surgery": np.arange(len(Yc)) % 4 == 0}
    est2 = make("mc_tarnet", random_state=0, **TINY).fit_tasks(tasks, val_mask=mask)
    assert est2.history_.n_epochs >= 1


def test_same_seed_same_numbers(cls):
    Y, T, X, _ = cls
    for name in NAMES:
        a = make(name, random_state=3, **light(name)).fit(Y, T, X=X).effect(X)
        b = make(name, random_state=3, **light(name)).fit(Y, T, X=X).effect(X)
        np.testing.assert_array_equal(a, b)
        if name not in ("mc_s_learner", "mc_t_learner", "mc_x_learner"):  # ridge: no randomness
            c = make(name, random_state=4, **light(name)).fit(Y, T, X=X).effect(X)
            assert not np.array_equal(a, c)


def test_registry_names_fit_with_default_base():
    Y, T, X, _ = class_data(n=300, seed=2)
    est = make("mc_t_learner", random_state=0).fit(Y, T, X=X)  # gbm base
    assert est.base == "gbm" and est.effect(X).shape == (300, 4)
    assert isinstance(make("xmultitask"), XMultiTask) and make("xmultitask").variant == "described"
    from ehrcausal.learners import XMultiTaskReleased

    assert isinstance(make("xmultitask_released"), XMultiTaskReleased)
    assert isinstance(make("dcn_pd"), DCNPD) and isinstance(make("mc_tarnet"), MultiOutcomeTARNet)
    assert make("mc_x_learner").kind == "x" and make("mc_s_learner").kind == "s"


def test_early_stopping_keeps_the_best_epoch(cls):
    Y, T, X, _ = cls
    est = XMultiTask(random_state=0, epochs=200, patience=3, hidden=8, device="cpu").fit(Y, T, X=X)
    h = est.history_
    assert h.stopped_early and h.n_epochs == h.best_epoch + 1 + 3
    assert h.best_epoch == int(np.argmin(h.val_loss))


# ---- DCN-PD -------------------------------------------------------------------------------
def test_propensity_dropout_rate():
    np.testing.assert_allclose(binary_entropy_bits([0.0, 0.5, 1.0]), [0.0, 1.0, 0.0])
    np.testing.assert_allclose(binary_entropy_bits([0.25]), [0.811278], atol=1e-6)
    np.testing.assert_allclose(propensity_dropout_rate([0.5, 0.0], gamma=1.0), [0.0, 0.5])
    np.testing.assert_allclose(propensity_dropout_rate([0.5], gamma=0.0), [0.5])
    p = propensity_dropout_rate(np.array([0.05, 0.2, 0.5, 0.8, 0.95]))
    assert p[0] > p[1] > p[2] and p[4] > p[3] > p[2]
    with pytest.raises(ValueError, match="gamma"):
        propensity_dropout_rate([0.5], gamma=1.5)


def test_dcnpd_uses_its_propensity_dropout_and_alternating_batches(cls):
    Y, T, X, _ = cls
    est = DCNPD(random_state=0, **TINY).fit(Y, T, X=X)
    e = np.clip(est.propensity_model_.predict_proba(X)[:, 1], 0.05, 0.95)
    np.testing.assert_allclose(est.dropout_rates_, 1 - 0.5 - binary_entropy_bits(e) / 2)
    t = np.array([1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 0])
    batches = alternating_batches(t, 2)(len(t), torch.Generator().manual_seed(0))
    arms = [set(t[b.numpy()]) for b in batches]
    assert all(len(a) == 1 for a in arms)
    assert [a.pop() for a in arms[:4]] == [1, 0, 1, 0]
    assert sorted(torch.cat(batches).tolist()) == list(range(len(t)))
    with pytest.raises(ValueError, match="gamma"):
        DCNPD(gamma=2.0, **TINY).fit(Y, T, X=X)


# ---- meta-learners ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["s", "t", "x"])
def test_metalearners_recover_the_sign_structure(kind):
    Y, T, X, tau = class_data(n=600, seed=7)
    est = MetaLearnerMC(kind=kind, base="ridge", random_state=0).fit(Y, T, X=X)
    tau_hat = est.effect(X)
    assert tau_hat.shape == (600, 4)
    np.testing.assert_allclose(tau_hat.sum(axis=1), 0.0, atol=1e-8)
    ate = tau_hat.mean(axis=0)
    assert ate[0] > 0.1 and ate[3] < -0.1  # mass moves from class 3 to class 0
    assert np.sign(ate[0]) == np.sign(tau.mean(0)[0]) and np.sign(ate[3]) == np.sign(tau.mean(0)[3])
    # per-unit effects on the class that loses mass track the truth (corr. 0.9 measured)
    assert np.corrcoef(tau_hat[:, 3], tau[:, 3])[0, 1] > 0.6


def test_metalearner_missing_class_in_an_arm(cls):
    Y, T, X, _ = cls
    Y = Y.copy()
    Y[(T == 0) & (Y == 3)] = 2  # class 3 never seen among controls
    for kind in "tx":
        est = MetaLearnerMC(kind=kind, base="ridge", random_state=0).fit(Y, T, X=X)
        mu0, mu1 = est.predict_outcomes(X)
        assert mu0.shape == mu1.shape == (len(Y), 4)
        np.testing.assert_array_equal(mu0[:, 3], 0.0)
        assert mu1[:, 3].mean() > 0.05
        np.testing.assert_allclose(mu0.sum(axis=1), 1.0)
    Y1 = np.where(T == 0, 0, Y)  # controls all in class 0: a single-class arm
    mu0, _ = MetaLearnerMC(kind="t", base="gbm", random_state=0).fit(Y1, T, X=X).predict_outcomes(X)
    np.testing.assert_array_equal(mu0, np.tile([1.0, 0, 0, 0], (len(Y), 1)))
    with pytest.raises(ValueError, match="kind must be one of"):
        MetaLearnerMC(kind="r").fit(Y, T, X=X)


def test_x_learner_combines_with_the_propensity(cls):
    Y, T, X, _ = cls
    est = MetaLearnerMC(kind="x", base="ridge", random_state=0).fit(Y, T, X=X)
    g = est.propensity(X)[:, None]
    tau0, tau1 = est.effect_models_[0].predict(X), est.effect_models_[1].predict(X)
    tau = g * tau0 + (1 - g) * tau1
    np.testing.assert_allclose(est.effect(X), tau - tau.mean(axis=1, keepdims=True))
    with pytest.raises(ValueError, match="kind='x'"):
        MetaLearnerMC(kind="t", base="ridge").fit(Y, T, X=X).propensity(X)


# ---- bad input ----------------------------------------------------------------------------
def test_class_label_checks():
    labels, C = check_class_labels(np.array([0, 2, 1]), None)
    assert C == 3 and labels.dtype.kind == "i"
    assert check_class_labels(np.zeros(4), None)[1] == 2  # at least two classes
    with pytest.raises(ValueError, match=r"label\(s\) \{3\} outside 0..2 \(C = 3\)"):
        check_class_labels([0, 1, 3], 3)


@pytest.mark.parametrize("name", ["xmultitask", "dcn_pd", "mc_t_learner"])
def test_bad_labels(cls, name):
    Y, T, X, _ = cls
    p = light(name)
    with pytest.raises(ValueError, match=r"\{4, 5\} outside 0..3 \(C = 4\)"):
        make(name, n_classes=4, **p).fit(np.where(Y == 0, 5, np.where(Y == 1, 4, Y)), T, X=X)
    with pytest.raises(ValueError, match=r"\{-1\} outside"):
        make(name, **p).fit(np.where(Y == 0, -1, Y), T, X=X)
    with pytest.raises(ValueError, match="non-integer value"):
        make(name, **p).fit(Y + 0.5, T, X=X)
    with pytest.raises(ValueError, match="one column of integer labels, got shape"):
        make(name, **p).fit(np.eye(4)[Y], T, X=X)
    with pytest.raises(ValueError, match="Y contains 1 NaN"):
        make(name, **p).fit(np.where(np.arange(len(Y)) == 3, np.nan, Y), T, X=X)


def test_bad_tasks_and_inference(cls, cont):
    Y, T, X, _ = cls
    Yc, Tc, Xc, _ = cont
    est = XMultiTask(**TINY)
    with pytest.raises(ValueError, match=r"task 'b': the control \(T=0\) arm has 0"):
        est.fit_tasks({"a": (Y, T, X), "b": (Y, np.ones_like(T), X)})
    with pytest.raises(ValueError, match=r"treated \(T=1\) arm has 0"):
        DCNPD(**TINY).fit(Y, np.zeros_like(T), X=X)
    with pytest.raises(ValueError, match="same covariate columns"):
        est.fit_tasks({"a": (Y, T, X), "b": (Y, T, X[:, :3])})
    with pytest.raises(ValueError, match="different numbers of rows"):
        est.fit(Y[:-1], T, X=X)
    with pytest.raises(ValueError, match="outcome must be one of"):
        XMultiTask(outcome="ordinal", **TINY).fit(Y, T, X=X)
    with pytest.raises(ValueError, match="variant must be one of"):
        XMultiTask(variant="paper", **TINY).fit(Y, T, X=X)
    with pytest.raises(ValueError, match="n_classes must be an integer >= 2, got 1"):
        XMultiTask(n_classes=1, **TINY).fit(Y, T, X=X)
    with pytest.raises(ValueError, match="shape \\(n,\\) or \\(n, D\\)"):
        XMultiTask(outcome="continuous", **TINY).fit(Yc[:, :, None], Tc, X=Xc)
    with pytest.raises(ValueError, match="unexpected fit argument"):
        XMultiTask(**TINY).fit(Y, T, X=X, annotations=X)
    with pytest.raises(ValueError, match="val_mask must be a mapping"):
        est.fit_tasks({"a": (Y, T, X), "b": (Y, T, X)}, val_mask=np.zeros(len(Y), bool))
    with pytest.raises(ValueError, match="outcomes names unknown task"):
        est.fit_tasks({"a": (Y, T, X)}, outcomes={"z": "class"})
    fitted = XMultiTask(random_state=0, **TINY).fit_tasks(
        {"a": (Y, T, X), "b": (Yc, Tc, Xc)}, outcomes={"b": "continuous"}
    )
    with pytest.raises(ValueError, match=r"unknown task 'c'; fitted tasks: \['a', 'b'\]"):
        fitted.effect(X, task="c")
    with pytest.raises(ValueError, match="several tasks were fitted"):
        fitted.predict_outcomes(X)
    with pytest.raises(ValueError, match="4 columns; the model was fitted on 5"):
        fitted.effect(X[:, :4], task="a")


@pytest.mark.parametrize(
    ("name", "param", "value", "match"),
    [
        ("xmultitask", "n_classes", 4.0, r"n_classes must be an integer, got 4.0"),
        ("xmultitask", "n_layers", 0, r"n_layers must be an integer >= 1, got 0"),
        ("xmultitask", "dropout", 1.0, r"dropout must be a number in \[0, 1\), got 1.0"),
        ("xmultitask", "propensity_clip", 0.5, r"propensity_clip must be a number in \[0, 0.5\)"),
        ("mc_tarnet", "n_head_layers", -1, r"n_head_layers must be an integer >= 0, got -1"),
        ("mc_tarnet", "n_head_layers", 1.5, r"n_head_layers must be an integer, got 1.5"),
        ("dcn_pd", "n_tower_layers", 0, r"n_tower_layers must be an integer >= 1, got 0"),
        ("dcn_pd", "n_shared_layers", 2.0, r"n_shared_layers must be an integer, got 2.0"),
        ("dcn_pd", "gamma", -0.1, r"gamma must be a number in \[0, 1\], got -0.1"),
        ("dcn_pd", "propensity_clip", -0.01, r"propensity_clip must be a number in \[0, 0.5\)"),
    ],
)
def test_network_parameters_are_checked(cls, name, param, value, match):
    Y, T, X, _ = cls
    est = make(name, **{**TINY, param: value})
    with pytest.raises(ValueError, match=match):
        est.fit(Y, T, X=X)
    assert not hasattr(est, "fitted_")
