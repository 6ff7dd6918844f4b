"""The neural learners against their reference code: cfrnet's MMD penalties and IHDP
configuration, DragonNet's ensemble propensity, stopping rule and weight decay, and the training
loop's edge cases (all-NaN validation loss, a final batch of one, zero hidden layers)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ehrcausal.learners import make, spec
from ehrcausal.learners.ipm import mmd2_linear, mmd2_rbf
from ehrcausal.learners.nets import TwoHeadNet
from ehrcausal.learners.training import permuted_batches, train_module

# two treated points {0, 1} and two control points {0, 2} on a line
A = torch.tensor([[0.0], [1.0]])
B = torch.tensor([[0.0], [2.0]])


def test_cfrnet_rbf_mmd_matches_a_hand_computation():
    # kernel exp(-d^2 / sigma^2), sigma = 1, p = 1/2:
    # within treated (off-diagonal): 2 e^-1 over n(n-1) = 2; within control: 2 e^-4 over 2;
    # across: 1 + e^-4 + 2 e^-1 over 4. 4 [1/4 e^-1 + 1/4 e^-4 - 1/8 (1 + e^-4 + 2 e^-1)]
    # = e^-4 / 2 - 1/2 (negative: the unbiased estimate can be).
    assert float(mmd2_rbf(A, B, sigma=1.0)) == pytest.approx(math.exp(-4) / 2 - 0.5, rel=1e-6)
    # p weights the arms: 4 [p^2 e^-1 + (1-p)^2 e^-4 - p(1-p)/2 (1 + e^-4 + 2 e^-1)], p = 0.3
    p = 0.3
    hand = 4 * (p**2 * math.exp(-1) + (1 - p) ** 2 * math.exp(-4)
                - p * (1 - p) / 2 * (1 + math.exp(-4) + 2 * math.exp(-1)))
    assert float(mmd2_rbf(A, B, sigma=1.0, p=p)) == pytest.approx(hand, rel=1e-6)
    # the bandwidth enters as d^2 / sigma^2: at sigma = 2 the same sum is e^-1 / 2 - 1/2
    assert float(mmd2_rbf(A, B, sigma=2.0)) == pytest.approx(math.exp(-1) / 2 - 0.5, rel=1e-6)
    assert float(mmd2_rbf(A, B[:1])) == 0.0  # a group of one has no within-group pairs
    with pytest.raises(ValueError, match="sigma must be a number in \\(0, inf\\)"):
        mmd2_rbf(A, B, sigma=0.0)


def test_cfrnet_linear_mmd_matches_a_hand_computation():
    # means 0.5 (treated) and 1 (control): ||2p 0.5 - 2(1-p) 1||^2
    assert float(mmd2_linear(A, B)) == pytest.approx(0.25)
    assert float(mmd2_linear(A, B, p=0.3)) == pytest.approx((0.3 - 1.4) ** 2)
    assert float(mmd2_linear(A, B[:0])) == 0.0


def test_cfr_uses_the_chosen_penalty_with_its_parameter():
    phi = torch.cat([A, B])
    t = torch.tensor([1.0, 1.0, 0.0, 0.0])
    rbf = make("cfr_mmd", alpha=2.0, ipm_param=1.0)
    assert float(rbf._ipm_term(phi, t)) == pytest.approx(2 * (math.exp(-4) / 2 - 0.5), rel=1e-6)
    assert float(make("cfr_mmd")._ipm_term(phi, t)) == pytest.approx(
        float(mmd2_rbf(A, B, sigma=0.1)))  # cfrnet's default bandwidth
    assert float(make("cfr_mmd_lin", alpha=0.5)._ipm_term(phi, t)) == pytest.approx(0.125)
    X, T = np.random.default_rng(0).normal(size=(30, 2)), np.tile([0, 1], 15)
    with pytest.raises(ValueError, match="ipm_param must be None for ipm='mmd_lin'"):
        make("cfr_mmd_lin", ipm_param=1.0, epochs=1).fit(X[:, 0], T, X=X)


def test_cfrnet_preset_is_the_published_configuration():
    s = spec("cfr_wass_cfrnet")
    assert s.torch and "epochs" not in s.budget  # its length is part of the configuration
    p = make("cfr_wass_cfrnet").get_params()
    expected = {"ipm": "wass", "alpha": 0.3, "hidden": 200, "n_rep_layers": 3, "head_hidden": 100,
                "n_head_layers": 3, "lr": 1e-3, "lr_decay": 0.97, "batch_size": 100,
                "weight_decay": 1e-4, "head_bias_decay": False, "early_stopping": "objective",
                "standardize": False, "weight_init": 0.1, "normalize_rep": True,
                "reweight": True, "val_fraction": 0.3, "epochs": 640, "patience": 640}
    assert {k: p[k] for k in expected} == expected


def test_objective_stopping_and_raw_outcomes():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    T = np.tile([0, 1], 60)
    Y = 50 + 10 * X[:, 0] + T
    val = np.arange(120) >= 90
    est = make("cfr_wass", early_stopping="objective", standardize=False, epochs=4, hidden=16,
               head_hidden=8, device="cpu", random_state=0).fit(Y, T, X=X, val_mask=val)
    assert float(est.y_scaler_.scale) == 1.0 and float(est.y_scaler_.mean) == 0.0
    # the kept weights score the recorded best validation objective (loss incl. the IPM term)
    net = est.networks_[0]
    va = {"x": torch.as_tensor(X[val], dtype=torch.float32),
          "y": torch.as_tensor(Y[val], dtype=torch.float32),
          "t": torch.as_tensor(T[val], dtype=torch.float32)}
    with torch.no_grad():
        loss, monitored = est._loss(net, va)
    assert float(monitored) == pytest.approx(float(loss))
    assert est.history_.val_loss[est.history_.best_epoch] == pytest.approx(float(loss), rel=1e-5)
    with pytest.raises(ValueError, match="early_stopping must be one of"):
        make("tarnet", early_stopping="auc", epochs=1).fit(Y, T, X=X)


def test_dragonnet_follows_the_reference_code():
    d = make("dragonnet")
    assert d.weight_decay == pytest.approx(0.02 / 64) and d.early_stopping == "objective"
    assert d.head_bias_decay is False
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    T = (rng.random(200) < 1 / (1 + np.exp(-2 * X[:, 0]))).astype(int)
    Y = X[:, 0] + T
    ens = make("dragonnet", n_ensemble=2, epochs=3, hidden=16, head_hidden=8, device="cpu",
               random_state=0).fit(Y, T, X=X)
    # the ensemble's propensity is the mean of the members' probabilities, not of their logits
    xs = torch.as_tensor(ens.x_scaler_.transform(X), dtype=torch.float32)
    with torch.no_grad():
        logits = [net(xs)["e_logit"].numpy().astype(float) for net in ens.networks_]
    probs = np.mean([1 / (1 + np.exp(-z)) for z in logits], axis=0)
    np.testing.assert_allclose(ens.propensity(X), probs, rtol=1e-5)
    assert not np.allclose(probs, 1 / (1 + np.exp(-np.mean(logits, axis=0))), rtol=1e-7, atol=0)


def test_head_weight_decay_can_spare_the_biases():
    net = TwoHeadNet(4, hidden=8, head_hidden=6, n_head_layers=2)
    every, weights = net.head_parameters(), net.head_parameters(biases=False)
    assert len(every) == 12 and len(weights) == 6 and all(w.dim() == 2 for w in weights)


@pytest.mark.parametrize("param", ["n_rep_layers", "n_head_layers"])
def test_zero_hidden_layers_are_rejected(param):
    with pytest.raises(ValueError, match=f"{param} must be an integer >= 1, got 0"):
        TwoHeadNet(4, **{param: 0})
    X, T = np.random.default_rng(0).normal(size=(30, 2)), np.tile([0, 1], 15)
    with pytest.raises(ValueError, match=f"{param} must be an integer >= 1, got 0"):
        make("dragonnet", epochs=1, **{param: 0}).fit(X[:, 0], T, X=X)


def _toy(n: int = 21):
    torch.manual_seed(0)
    x = torch.randn(n, 2)
    return torch.nn.Linear(2, 1), {"x": x, "y": x[:, 0]}


def test_a_final_batch_of_one_is_merged():
    sizes = [len(b) for b in permuted_batches(10)(21, torch.Generator().manual_seed(0))]
    assert sizes == [10, 11]
    assert [len(b) for b in permuted_batches(10, min_size=1)(21, torch.Generator())] == [10, 10, 1]
    seen = []

    def loss(m, batch):
        if m.training:
            seen.append(len(batch["x"]))
        err = ((m(batch["x"])[:, 0] - batch["y"]) ** 2).mean()
        return err, err

    module, data = _toy()
    train_module(module, loss, data, np.arange(21), np.array([], int), epochs=2, batch_size=10,
                 lr=0.01)
    assert seen == [10, 11, 10, 11]


def test_a_validation_loss_that_is_always_nan_raises():
    def loss(m, batch):
        err = ((m(batch["x"])[:, 0] - batch["y"]) ** 2).mean()
        return err, err if m.training else err * float("nan")

    module, data = _toy(30)
    with pytest.raises(FloatingPointError, match="validation loss was not finite"):
        train_module(module, loss, data, np.arange(20), np.arange(20, 30), epochs=5,
                     batch_size=10, lr=0.01, patience=2)


def test_learning_rate_decays_in_steps():
    rates = []

    def loss(m, batch):
        err = ((m(batch["x"])[:, 0] - batch["y"]) ** 2).mean()
        return err, err

    module, data = _toy(40)
    original = torch.optim.Adam.step

    def spy(self, *a, **k):
        rates.append(self.param_groups[0]["lr"])
        return original(self, *a, **k)

    torch.optim.Adam.step = spy
    try:
        train_module(module, loss, data, np.arange(40), np.array([], int), epochs=6,
                     batch_size=10, lr=0.1, lr_decay=0.5, lr_decay_steps=10)
    finally:
        torch.optim.Adam.step = original
    assert rates == pytest.approx([0.1] * 10 + [0.05] * 10 + [0.025] * 4)
    with pytest.raises(ValueError, match="lr_decay must be a number in \\(0, 1\\]"):
        train_module(module, loss, data, np.arange(40), np.array([], int), epochs=1,
                     batch_size=10, lr=0.1, lr_decay=1.5)
