"""Batched training (``learners/batched.py``): K members in one pass, each as if alone.

Unvectorised, every member equals its sequential counterpart bit for bit (seeded
initialisation, its own shuffling, early stopping and best weights, finished members frozen);
vectorised, the batched matrix products round differently, and members stay close.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ehrcausal.data import load_ihdp
from ehrcausal.learners import available, make
from ehrcausal.learners.batched import fit_batched, train_batched
from ehrcausal.learners.nets import TwoHeadNet
from ehrcausal.learners.neural import TARNet
from ehrcausal.learners.registry import batched_learners, supports_batched
from ehrcausal.learners.torch_scaffold import check_torch_params, train_network, validation_split
from ehrcausal.metrics import pehe

D = 5


def _member(seed: int, n: int = 160):
    """A small simulated data set, its split, and a TARNet loss bound to its treated share."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, D))
    T = rng.binomial(1, 0.4, n)
    Y = X[:, 0] + T * (1 + X[:, 1]) + rng.normal(scale=0.5, size=n)
    tr, va = validation_split(T, 0.3, seed, None)
    data = {"x": torch.tensor(X, dtype=torch.float32), "y": torch.tensor(Y, dtype=torch.float32),
            "t": torch.tensor(T, dtype=torch.float32)}
    learner = TARNet(**ARCH, **TRAIN)
    learner.treated_share_ = float(T[tr].mean())
    return data, tr, va, learner._loss


ARCH = {"hidden": 16, "head_hidden": 8, "n_rep_layers": 2, "n_head_layers": 1}
TRAIN = {"epochs": 30, "patience": 3, "batch_size": 32, "lr": 1e-2}  # members stop apart
PARAMS = check_torch_params(TARNet(**ARCH, **TRAIN))
SEEDS = [11, 12, 13]


def _build() -> TwoHeadNet:
    return TwoHeadNet(D, hidden=16, n_rep_layers=2, head_hidden=8, n_head_layers=1,
                      normalize_rep=True)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: small networks train faster so, and the results do not depend on it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def members():
    return [_member(s) for s in SEEDS]


@pytest.fixture(scope="module")
def sequential(members):
    return [train_network(_build, loss, data, tr, va, params=PARAMS, seed=s, device="cpu",
                          desc="", decay=TwoHeadNet.head_parameters)
            for (data, tr, va, loss), s in zip(members, SEEDS, strict=True)]


def _batched(members, seeds, **kw):
    return train_batched(
        _build, [m[3] for m in members], [m[0] for m in members], [m[1] for m in members],
        [m[2] for m in members], params=PARAMS, seeds=seeds, device="cpu",
        decay=TwoHeadNet.head_parameters, **kw)


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in
               zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_one_member_is_the_sequential_path_exactly(members, sequential):
    (net,), (hist,) = _batched(members[:1], SEEDS[:1])
    seq_net, seq_hist = sequential[0]
    assert _same(net, seq_net)
    assert hist == seq_hist


def test_unvectorised_members_equal_their_sequential_runs(members, sequential):
    nets, hists = _batched(members, SEEDS, vectorize=False)
    # the members stop at different epochs, so freezing finished members is exercised
    assert len({h.n_epochs for _, h in sequential}) > 1
    for net, hist, (seq_net, seq_hist) in zip(nets, hists, sequential, strict=True):
        assert _same(net, seq_net)
        assert hist == seq_hist


def test_vectorised_members_follow_their_sequential_runs(members, sequential):
    nets, hists = _batched(members, SEEDS)
    x = torch.randn(50, D, generator=torch.Generator().manual_seed(0))
    for net, hist, (seq_net, seq_hist) in zip(nets, hists, sequential, strict=True):
        with torch.no_grad():
            tau = net(x)["mu1"] - net(x)["mu0"]
            seq_tau = seq_net(x)["mu1"] - seq_net(x)["mu0"]
        # rounding of batched products only: the same stopping epoch and nearly the same effect
        assert hist.best_epoch == seq_hist.best_epoch
        assert float((tau - seq_tau).abs().max()) < 1e-3


def test_members_of_other_sizes_train_in_their_own_group(members, sequential):
    small = _member(14, n=100)
    nets, hists = _batched([members[0], small, members[1]], [SEEDS[0], 14, SEEDS[1]],
                           vectorize=False)
    assert _same(nets[0], sequential[0][0]) and _same(nets[2], sequential[1][0])
    alone, _ = train_network(_build, small[3], small[0], small[1], small[2], params=PARAMS,
                             seed=14, device="cpu", desc="", decay=TwoHeadNet.head_parameters)
    assert _same(nets[1], alone)


def test_bad_members_are_refused(members):
    with pytest.raises(ValueError, match="at least one member"):
        _batched([], [])
    with pytest.raises(ValueError, match="data has 1 entries for 2 seeds"):
        train_batched(_build, [members[0][3]] * 2, [members[0][0]], [members[0][1]] * 2,
                      [members[0][2]] * 2, params=PARAMS, seeds=[1, 2], device="cpu")


# ------------------------------------------------------------------------------------------
# Estimators: fit_batched against fit, and the registry's word on who supports it
# ------------------------------------------------------------------------------------------
SMALL = {"hidden": 16, "head_hidden": 8, "n_rep_layers": 2, "n_head_layers": 1, "epochs": 20,
         "patience": 3, "batch_size": 32, "lr": 1e-2, "device": "cpu"}


def _data(seed: int, n: int = 160):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, D))
    T = rng.binomial(1, 0.4, n)
    return X[:, 0] + T * (1 + X[:, 1]) + rng.normal(scale=0.5, size=n), T, X


def test_fit_batched_equals_fit(one_thread):
    sets = [_data(s) for s in (21, 22, 23)]
    specs = [("tarnet", {"random_state": 1}), ("dragonnet", {"random_state": 2}),
             ("cfr_wass", {"random_state": 3, "n_ensemble": 2})]
    alone = [make(name, **SMALL, **kw).fit(y, t, X=x)
             for (name, kw), (y, t, x) in zip(specs, sets, strict=True)]
    together = fit_batched([make(name, **SMALL, **kw) for name, kw in specs],
                           *zip(*sets, strict=True), vectorize=False)
    x_new = _data(99)[2]
    for a, b in zip(alone, together, strict=True):
        np.testing.assert_array_equal(a.effect(x_new), b.effect(x_new))
        assert [h.n_epochs for h in a.histories_] == [h.n_epochs for h in b.histories_]
    # one estimator alone is its sequential fit even vectorised
    (single,) = fit_batched([make("tarnet", **SMALL, random_state=1)], [sets[0][0]],
                            [sets[0][1]], [sets[0][2]])
    np.testing.assert_array_equal(single.effect(x_new), alone[0].effect(x_new))


def test_batched_ihdp_networks_match_their_sequential_pehe(one_thread, ihdp_dir):
    """Out-of-sample PEHE of CFR-Wass on three IHDP realizations, batched and sequential."""
    params = {"epochs": 15, "patience": 5, "device": "cpu"}
    fits, tests = [], []
    for r in (1, 2, 3):
        ds = load_ihdp(r, data_dir=ihdp_dir)
        fits.append(ds.subset("train", "val"))
        tests.append(ds.subset("test"))
    seq = [pehe(te.tau, make("cfr_wass", random_state=r, **params)
                .fit(f.Y, f.T, X=f.X, val_mask=f.split == "val").effect(te.X))
           for r, f, te in zip((1, 2, 3), fits, tests, strict=True)]
    ests = fit_batched([make("cfr_wass", random_state=r, **params) for r in (1, 2, 3)],
                       [f.Y for f in fits], [f.T for f in fits], [f.X for f in fits],
                       [{"val_mask": f.split == "val"} for f in fits])
    bat = [pehe(te.tau, e.effect(te.X)) for e, te in zip(ests, tests, strict=True)]
    # vectorised products round differently in the last bits; after 15 epochs each network's
    # PEHE differs from its sequential one by about 1e-5 relative (measured), far below the
    # spread between realizations
    np.testing.assert_allclose(bat, seq, rtol=1e-3)


def test_registry_names_the_batched_learners():
    names = batched_learners()
    assert {"tarnet", "cfr_wass", "dragonnet"} <= set(names)
    assert "ols" not in names and supports_batched("cfr_mmd") and not supports_batched("ols")
    assert set(names) <= set(available("cate"))
    with pytest.raises(ValueError, match="does not support batched training"):
        fit_batched([make("ols")], [np.zeros(4)], [np.array([0, 1, 0, 1])], [np.eye(4)])


# ------------------------------------------------------------------------------------------
# The stacked path: all members' losses in one call, member-wise Adam, finished members leave
# ------------------------------------------------------------------------------------------
def _stacked_inputs(k: int = 4, b: int = 30, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    phi = torch.randn(k, b, 6, generator=g)
    phi = phi / phi.norm(dim=2, keepdim=True)
    t = (torch.rand(k, b, generator=g) < 0.3).float()
    t[-1] = 0.0
    t[-1, 0] = 1.0  # one treated unit: the unbiased MMD's treated average is undefined
    return phi, t


@pytest.mark.parametrize("name,kw", [("wass", {"lam": 10.0}), ("mmd", {"sigma": 0.5}),
                                     ("mmd_lin", {})])
def test_stacked_ipms_equal_the_member_ipms(name, kw):
    from ehrcausal.learners.ipm import IPMS, STACKED_IPMS

    phi, t = _stacked_inputs()
    p1, p2 = phi.clone().requires_grad_(), phi.clone().requires_grad_()
    stacked = STACKED_IPMS[name](p1, t, **kw)
    alone = torch.stack([IPMS[name](p2[k][t[k] > 0.5], p2[k][t[k] <= 0.5], **kw)
                         for k in range(len(t))])
    torch.testing.assert_close(stacked, alone, rtol=1e-5, atol=1e-6)
    stacked.sum().backward()
    alone.sum().backward()
    torch.testing.assert_close(p1.grad, p2.grad, rtol=1e-4, atol=1e-6)
    if name == "mmd":
        assert float(stacked[-1].detach()) == 0.0  # too few treated units: 0, as the member function


@pytest.mark.parametrize("name,kw", [("tarnet", {}), ("cfr_wass", {"alpha": 0.7}),
                                     ("cfr_mmd", {"early_stopping": "objective"}),
                                     ("cfr_mmd_lin", {"reweight": False}),
                                     ("dragonnet_tr", {"beta": 0.5})])
def test_stacked_losses_equal_the_member_losses(name, kw):
    """Each learner's loss of K members at once equals its loss on each member's rows."""
    phi, t = _stacked_inputs(k=3)
    g = torch.Generator().manual_seed(1)
    out = {"phi": phi, "mu0": torch.randn(3, 30, generator=g),
           "mu1": torch.randn(3, 30, generator=g), "e_logit": torch.randn(3, 30, generator=g),
           "eps": torch.randn(3, 1, generator=g)}
    batch = {"t": t, "y": torch.randn(3, 30, generator=g), "x": torch.zeros(3, 30, 1)}
    ests = []
    for share in (0.2, 0.3, 0.45):
        est = make(name, **kw)
        est.treated_share_ = share
        ests.append(est)
    const = {c: torch.tensor([e._loss_constants()[c] for e in ests]) for c in
             ests[0]._loss_constants()}
    loss, monitored = ests[0]._stacked_loss(out, batch, const)
    for k, est in enumerate(ests):
        member = {key: v[k] for key, v in out.items()}
        one_loss, one_mon = est._loss(lambda x, m=member: m, {key: v[k] for key, v in
                                                              batch.items()})
        torch.testing.assert_close(loss[k], one_loss, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(monitored[k], one_mon, rtol=1e-5, atol=1e-6)


def test_a_grid_in_one_stacked_pass_follows_each_setting_alone(members):
    """Members with their own learning rates and weight decays, trained in one stacked pass,
    follow their own sequential runs; members stop at different epochs and leave the batch."""
    data, tr, va, _ = members[0]
    est = TARNet(**ARCH, **TRAIN)
    est.treated_share_ = float(data["t"][torch.as_tensor(tr)].mean())
    grid = [(1e-2, 1e-4), (3e-3, 0.0), (1e-2, 1e-2)]
    nets, hists = train_batched(
        _build, [est._loss] * 3, [data] * 3, [tr] * 3, [va] * 3, params=PARAMS, seeds=[5, 5, 6],
        device="cpu", decay=TwoHeadNet.head_parameters, stacked_loss=est._stacked_loss,
        constants=[est._loss_constants()] * 3, lrs=[g[0] for g in grid],
        weight_decays=[g[1] for g in grid])
    assert len({h.n_epochs for h in hists}) > 1  # finished members left the batch
    x = torch.randn(50, D, generator=torch.Generator().manual_seed(0))
    for net, hist, (lr, wd), seed in zip(nets, hists, grid, (5, 5, 6), strict=True):
        params = check_torch_params(TARNet(**ARCH, **{**TRAIN, "lr": lr, "weight_decay": wd}))
        alone, alone_hist = train_network(_build, est._loss, data, tr, va, params=params,
                                          seed=seed, device="cpu", desc="",
                                          decay=TwoHeadNet.head_parameters)
        assert hist.best_epoch == alone_hist.best_epoch
        assert hist.n_epochs == alone_hist.n_epochs
        np.testing.assert_allclose(hist.val_loss, alone_hist.val_loss, rtol=1e-4)
        with torch.no_grad():
            tau, alone_tau = (n(x)["mu1"] - n(x)["mu0"] for n in (net, alone))
        assert float((tau - alone_tau).abs().max()) < 1e-3


def test_different_settings_need_the_stacked_path(members):
    data, tr, va, loss = members[0]
    with pytest.raises(ValueError, match="need the stacked path"):
        train_batched(_build, [loss] * 2, [data] * 2, [tr] * 2, [va] * 2, params=PARAMS,
                      seeds=[1, 2], device="cpu", lrs=[1e-2, 1e-3])


def test_fit_batched_stacks_estimators_with_different_learning_rates(one_thread):
    """A grid of estimators that differ only in lr and alpha is one stacked pass; each member
    follows its own fit."""
    y, t, x = _data(31)
    kws = [{"lr": 1e-2, "alpha": 1.0}, {"lr": 3e-3, "alpha": 0.1}]
    alone = [make("cfr_wass", **{**SMALL, **kw}, random_state=4).fit(y, t, X=x) for kw in kws]
    together = fit_batched([make("cfr_wass", **{**SMALL, **kw}, random_state=4) for kw in kws],
                           [y, y], [t, t], [x, x])
    x_new = _data(98)[2]
    for a, b in zip(alone, together, strict=True):
        assert a.history_.best_epoch == b.history_.best_epoch
        np.testing.assert_allclose(b.effect(x_new), a.effect(x_new), atol=1e-3)


def test_the_stacked_path_decays_the_learning_rate_as_the_sequential_loop(members):
    """A step decay with many boundaries (halved every 3 steps): the stacked members' validation
    losses follow the sequential loop's to rounding, epoch by epoch."""
    data, tr, va, loss = members[0]
    est = TARNet(**ARCH, **TRAIN)
    est.treated_share_ = float(data["t"][torch.as_tensor(tr)].mean())
    decay = {"lr_decay": 0.5, "lr_decay_steps": 3}
    _, hists = train_batched(
        _build, [loss] * 2, [data] * 2, [tr] * 2, [va] * 2, params=PARAMS, seeds=[11, 11],
        device="cpu", decay=TwoHeadNet.head_parameters, stacked_loss=est._stacked_loss,
        constants=[est._loss_constants()] * 2, **decay)
    _, alone = train_network(_build, loss, data, tr, va, params=PARAMS, seed=11, device="cpu",
                             desc="", decay=TwoHeadNet.head_parameters, **decay)
    assert hists[0].n_epochs == alone.n_epochs > 6  # several decay boundaries crossed
    np.testing.assert_allclose(hists[0].val_loss, alone.val_loss, rtol=1e-5)
