"""The multitask family (M3H, hard sharing, single-task, HAIM trees): its protocol, masks for
missing labels and modalities, the task attention's balance, errors that name the problem, and
the task-interdependence score."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone

from ehrcausal.data import simulate_multimodal
from ehrcausal.learners import available, make, spec
from ehrcausal.learners.m3h import (
    SOURCE_PREFIX,
    M3HNet,
    TaskSpec,
    check_modalities,
    scarce_labels,
    spearman_offdiagonal,
    task_interdependence,
    tim_targets,
)

FAMILY = available("multitask")
TASKS = ["heart_failure", "atrial_fibrillation", "pneumonia", "severity", "los_days",
         "phenotype"]


def _light(name: str, **extra) -> dict:
    if spec(name).torch:
        return {"epochs": 3, "hidden": 8, "batch_size": 32, "device": "cpu", **extra}
    return {"n_estimators": 5, **extra}


@pytest.fixture(scope="module")
def data():
    ds = simulate_multimodal(160, seed=1)
    tasks = ds.tasks[ds.tasks.name.isin(TASKS)].reset_index(drop=True)
    return ds, tasks


def _fit(name, ds, tasks, **extra):
    return make(name, random_state=0, **_light(name, **extra)).fit(
        ds.modalities, ds.targets, tasks=tasks)


def test_the_family_is_registered_with_its_budget():
    assert set(FAMILY) == {"m3h", "m3h_no_attention", "single_task", "haim_gbt"}
    assert spec("m3h").budget == ("epochs", "device") and "val_mask" in spec("m3h").fit_inputs
    assert spec("haim_gbt").budget == ("n_estimators",) and spec("haim_gbt").fit_inputs == ()
    assert make("m3h_no_attention").attention is False and make("m3h").attention is True


@pytest.mark.parametrize("name", FAMILY)
def test_every_multitask_learner_follows_the_protocol(data, name):
    ds, tasks = data
    est = make(name, random_state=0, **_light(name))
    assert clone(est).get_params() == est.get_params()
    assert est.fit(ds.modalities, ds.targets, tasks=tasks) is est
    scores = est.predict_scores(ds.modalities)
    n = len(ds)
    assert list(scores) == TASKS
    assert scores["heart_failure"].shape == (n,)
    assert ((scores["heart_failure"] >= 0) & (scores["heart_failure"] <= 1)).all()
    assert scores["severity"].shape == (n, 3)
    np.testing.assert_allclose(scores["severity"].sum(axis=1), 1, atol=1e-6)
    assert np.isfinite(scores["los_days"]).all()
    assert set(np.unique(scores["phenotype"])) <= {0.0, 1.0, 2.0, 3.0}
    pred = est.predict(ds.modalities)
    assert list(pred.columns) == TASKS and set(pred["heart_failure"]) <= {0, 1}
    losses = est.task_losses(ds.modalities, ds.targets)
    assert list(losses.index) == TASKS[:-1] and np.isfinite(losses).all() and (losses > 0).all()
    again = make(name, random_state=0, **_light(name)).fit(ds.modalities, ds.targets,
                                                           tasks=tasks)
    np.testing.assert_array_equal(again.predict_scores(ds.modalities)["los_days"],
                                  scores["los_days"])


def test_m3h_learns_more_than_chance_and_masks_missing_labels():
    ds = simulate_multimodal(600, seed=2)
    tasks = ds.tasks[ds.tasks.problem_class == "binary"].head(6).reset_index(drop=True)
    tr, te = ds.subset("train"), ds.subset("test")
    est = make("m3h", random_state=0, epochs=15, device="cpu").fit(
        tr.modalities, tr.targets, tasks=tasks)
    from sklearn.metrics import roc_auc_score

    sc = est.predict_scores(te.modalities)
    aucs = [roc_auc_score(te.targets[t].dropna(), sc[t][te.targets[t].notna()])
            for t in tasks.name]
    assert np.mean(aucs) > 0.65
    # a label that is missing does not move the fit: changing it (while missing) changes nothing
    y2 = tr.targets.copy()
    miss = y2["heart_failure"].isna()
    assert miss.any()
    small = dict(epochs=2, hidden=8, device="cpu")
    a = make("m3h", random_state=0, **small).fit(tr.modalities, tr.targets, tasks=tasks)
    y3 = y2.copy()
    y3.loc[miss, "heart_failure"] = np.nan  # identical masks: identical fits
    b = make("m3h", random_state=0, **small).fit(tr.modalities, y3, tasks=tasks)
    np.testing.assert_array_equal(a.predict_scores(te.modalities)["heart_failure"],
                                  b.predict_scores(te.modalities)["heart_failure"])


def test_a_missing_modality_is_masked_not_imputed(data):
    ds, tasks = data
    est = _fit("m3h", ds, tasks)
    rows = np.flatnonzero(np.isnan(ds.modalities["image"]).all(axis=(1, 2)))
    assert len(rows)
    # whatever the missing picture holds (all NaN or anything else flagged missing), the
    # prediction is the same: only available modalities enter the fused representation
    net_in = est.inputs_.tensors(ds.modalities, "cpu")
    assert (net_in["avail"][rows, 3] == 0).all()
    bumped = {k: (v + 0 if k != "image" else v) for k, v in net_in.items()}
    bumped["image"] = bumped["image"].clone()
    bumped["image"][rows] = 0.9
    h0 = est.net_.shared(net_in).detach().numpy()[rows]
    h1 = est.net_.shared(bumped).detach().numpy()[rows]
    np.testing.assert_allclose(h0, h1, atol=1e-6)


def test_balance_one_is_pure_self_exploitation_and_learned_balance_moves():
    import torch

    net = M3HNet({"tabular": 3}, 8, [1, 1, 1], attention=True, balance=1.0)
    hs = torch.randn(5, 8)
    out, A = net.task_outputs(hs)
    # with beta = 1 each task reads only its own token
    x = torch.relu(net.tok(hs).unsqueeze(1) + net.task_emb.unsqueeze(0))
    own = torch.einsum("bth,thw->btw", net.Wv(x), net.head_w) + net.head_b
    torch.testing.assert_close(out, own)
    assert A.shape == (5, 3, 3)
    torch.testing.assert_close(A.sum(dim=2), torch.ones(5, 3))
    ds = simulate_multimodal(200, seed=4)
    tasks = ds.tasks.head(4)
    est = make("m3h", random_state=0, balance="learned", epochs=5, device="cpu").fit(
        ds.modalities, ds.targets, tasks=tasks)
    b = est.balances()
    assert len(b) == 4 and not np.allclose(b, 0.5)
    att = est.attention_matrix(ds.modalities)
    assert att.shape == (4, 4) and np.allclose(att.sum(axis=1), 1)
    fixed = make("m3h", random_state=0, balance=0.3, epochs=2, device="cpu").fit(
        ds.modalities, ds.targets, tasks=tasks)
    assert np.allclose(fixed.balances(), 0.3)


def test_ablation_fits_on_any_subset_of_modalities(data):
    ds, tasks = data
    sub = {k: ds.modalities[k] for k in ("tabular", "timeseries")}
    for name in FAMILY:
        est = make(name, random_state=0, **_light(name)).fit(sub, ds.targets, tasks=tasks)
        assert est.modalities_ == ("tabular", "timeseries")
        with pytest.raises(ValueError, match="fitted on"):
            est.predict_scores(ds.modalities)


def test_bad_input_is_named(data):
    ds, tasks = data
    est = make("m3h", random_state=0, **_light("m3h"))
    bad = tasks.copy()
    bad.loc[0, "problem_class"] = "ranking"
    with pytest.raises(ValueError, match="unknown problem class 'ranking'"):
        est.fit(ds.modalities, ds.targets, tasks=bad)
    y = ds.targets.copy()
    y["pneumonia"] = np.nan
    with pytest.raises(ValueError, match="'pneumonia' has no labels"):
        est.fit(ds.modalities, y, tasks=tasks)
    mods = dict(ds.modalities)
    mods["image"] = ds.modalities["image"][:, :32, :32]
    with pytest.raises(ValueError, match=r"image must have shape \(n, 64, 64\)"):
        est.fit(mods, ds.targets, tasks=tasks)
    with pytest.raises(ValueError, match="unknown modality"):
        est.fit({**ds.modalities, "audio": ds.modalities["image"]}, ds.targets, tasks=tasks)
    only = {"image": ds.modalities["image"]}
    with pytest.raises(ValueError, match="have every modality missing"):
        est.fit(only, ds.targets, tasks=tasks)
    y = ds.targets.copy()
    y.loc[0, "heart_failure"] = 2
    with pytest.raises(ValueError, match="binary task 'heart_failure' needs labels 0/1"):
        est.fit(ds.modalities, y, tasks=tasks)
    with pytest.raises(ValueError, match="same rows"):
        est.fit(ds.modalities, ds.targets.iloc[:10], tasks=tasks)
    with pytest.raises(ValueError, match="balance must be"):
        make("m3h", balance=1.5, **_light("m3h")).fit(ds.modalities, ds.targets, tasks=tasks)
    with pytest.raises(ValueError, match="balance must be"):
        make("m3h", balance="auto", **_light("m3h")).fit(ds.modalities, ds.targets, tasks=tasks)
    with pytest.raises(ValueError, match="unexpected fit argument"):
        make("haim_gbt", **_light("haim_gbt")).fit(ds.modalities, ds.targets, tasks=tasks,
                                                   val_mask=np.zeros(len(ds), bool))
    assert check_modalities({"tabular": ds.modalities["tabular"]})["tabular"].shape[0] == len(ds)


BAD = [("epochs", 2.5, "epochs must be an integer"), ("epochs", 0, "epochs must be an integer"),
       ("lr", 0.0, "lr must be a number"), ("batch_size", "8", "batch_size must be an integer"),
       ("val_fraction", 1.0, "val_fraction must be a number")]


@pytest.mark.parametrize("name", [n for n in FAMILY if spec(n).torch])
@pytest.mark.parametrize(("param", "value", "match"), BAD)
def test_torch_members_reject_bad_training_parameters(data, name, param, value, match):
    ds, tasks = data
    est = make(name, random_state=0, **_light(name, **{param: value}))
    with pytest.raises(ValueError, match=match):
        est.fit(ds.modalities, ds.targets, tasks=tasks)
    assert not hasattr(est, "fitted_")


@pytest.mark.parametrize("name", [n for n in FAMILY if spec(n).torch])
def test_torch_members_take_numpy_integers_and_a_val_mask(data, name):
    ds, tasks = data
    p = _light(name, epochs=np.int64(3), batch_size=np.int32(16))
    val = np.arange(len(ds)) % 4 == 0
    est = make(name, random_state=0, **p).fit(ds.modalities, ds.targets, tasks=tasks,
                                              val_mask=val)
    assert np.isfinite(est.predict_scores(ds.modalities)["los_days"]).all()
    with pytest.raises(ValueError, match="val_mask must be a boolean array"):
        make(name, **p).fit(ds.modalities, ds.targets, tasks=tasks, val_mask=val[:5])


def test_tim_is_a_relative_loss_change_and_rank_correlation_is_checked(data):
    ds, tasks = data
    fit = np.asarray(ds.split) != "test"
    kw = dict(sources=["heart_failure", "severity"],
              auxiliaries=["heart_failure", "atrial_fibrillation", "los_days"],
              eval_mask=~fit, fit_mask=fit)
    tim, seconds = task_interdependence(make("m3h", random_state=0, **_light("m3h", epochs=2)),
                                        ds.modalities, ds.targets, tasks, **kw)
    assert tim.shape == (2, 3) and seconds > 0
    assert np.isnan(tim.loc["heart_failure", "heart_failure"])
    assert np.isfinite(tim.drop(columns="heart_failure")).all().all()
    assert (tim.drop(columns="heart_failure").abs() > 1e-6).any().any()
    # common random numbers: with (almost) no learning, a fit with j and the fit alone start
    # and end at the same weights, so TIM is zero
    frozen, _ = task_interdependence(make("m3h", random_state=0,
                                          **_light("m3h", epochs=1, lr=1e-12)),
                                     ds.modalities, ds.targets, tasks, **kw)
    np.testing.assert_allclose(frozen.drop(columns="heart_failure"), 0.0, atol=1e-6)
    with pytest.raises(ValueError, match="clustering"):
        task_interdependence(make("m3h", **_light("m3h")), ds.modalities, ds.targets, tasks,
                             sources=["phenotype"], auxiliaries=["heart_failure"],
                             eval_mask=~fit, fit_mask=fit)
    truth = pd.DataFrame([[1, 0.9, 0.1], [0.2, 0.3, 1]], index=tim.index, columns=tim.columns)
    score = pd.DataFrame([[np.nan, 5, 1], [2, 3, np.nan]], index=tim.index, columns=tim.columns)
    assert spearman_offdiagonal(score, truth) == pytest.approx(1.0)
    assert spearman_offdiagonal(-score, truth) == pytest.approx(-1.0)


def test_label_scarce_sources_drop_their_own_labels_and_only_those():
    rng = np.random.default_rng(0)
    y = pd.DataFrame({"a": (rng.random(400) < 0.2).astype(float), "b": rng.normal(size=400),
                      "c": rng.integers(0, 3, 400).astype(float)})
    y.iloc[::7, 0] = np.nan
    specs = [TaskSpec("a", "binary", 2), TaskSpec("b", "regression", 0),
             TaskSpec("c", "multiclass", 3)]
    keep = np.zeros(400, dtype=bool)
    keep[300:] = True  # early-stopping rows: they keep every label
    out, out_specs = tim_targets(y, specs, ["a", "b"], fraction=0.25, keep_rows=keep, seed=3)
    assert [s.name for s in out_specs] == ["a", "b", "c", SOURCE_PREFIX + "a",
                                           SOURCE_PREFIX + "b"]
    # the tasks themselves (auxiliaries): unchanged on the training rows, unlabelled on the
    # early-stopping rows
    pd.testing.assert_frame_equal(out.loc[~keep, ["a", "b", "c"]], y.loc[~keep])
    assert out.loc[keep, ["a", "b", "c"]].isna().all().all()
    for t in ("a", "b"):
        src, full = out[SOURCE_PREFIX + t].to_numpy(), y[t].to_numpy()
        both = np.isfinite(src)
        np.testing.assert_array_equal(src[both], full[both])  # kept labels are the true ones
        np.testing.assert_array_equal(src[keep], full[keep])
        train = np.isfinite(full) & ~keep
        assert both[~keep].sum() == pytest.approx(0.25 * train.sum(), abs=2)
    # stratified: the kept labels of the binary source have its class frequencies
    kept = out[SOURCE_PREFIX + "a"].to_numpy()[~keep]
    frac = np.nanmean(kept)
    assert frac == pytest.approx(np.nanmean(y["a"].to_numpy()[~keep]), abs=0.03)
    again, _ = tim_targets(y, specs, ["a", "b"], fraction=0.25, keep_rows=keep, seed=3)
    pd.testing.assert_frame_equal(again, out)
    other, _ = tim_targets(y, specs, ["a", "b"], fraction=0.25, keep_rows=keep, seed=4)
    assert not other.equals(out)
    pd.testing.assert_frame_equal(scarce_labels(y, specs=specs, fraction=1.0, seed=0), y)


def test_label_scarce_tim_is_zero_without_learning_and_checks_its_fraction(data):
    ds, tasks = data
    fit = np.asarray(ds.split) != "test"
    kw = dict(sources=["heart_failure", "los_days"],
              auxiliaries=["atrial_fibrillation", "los_days"], eval_mask=~fit, fit_mask=fit,
              val_mask=np.asarray(ds.split) == "val", source_fraction=0.3)
    frozen, _ = task_interdependence(make("m3h", random_state=0,
                                          **_light("m3h", epochs=1, lr=1e-12, skip=False)),
                                     ds.modalities, ds.targets, tasks, **kw)
    np.testing.assert_allclose(frozen.loc["heart_failure"], 0.0, atol=1e-6)
    assert frozen.loc["los_days", "atrial_fibrillation"] == pytest.approx(0.0, abs=1e-6)
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="source_fraction"):
            task_interdependence(make("m3h", **_light("m3h")), ds.modalities, ds.targets,
                                 tasks, **{**kw, "source_fraction": bad})


def test_attention_options_reach_the_network_and_its_weight_decay(data):
    ds, tasks = data
    tasks = tasks[tasks.problem_class == "binary"]
    sharp = _fit("m3h", ds, tasks, attention_scale=4.0, attention_decay=False,
                 weight_decay=0.5, epochs=2)
    net = sharp.net_
    assert net.attention_scale == 4.0
    decayed = _fit("m3h", ds, tasks, weight_decay=0.5, epochs=2).net_
    # without decay on the query and key maps, they keep more of their size
    assert net.Wq.weight.norm() > decayed.Wq.weight.norm()
    for bad in ({"attention_scale": 0.0}, {"attention_decay": "no"}, {"token_maps": "own"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            _fit("m3h", ds, tasks, **bad)
    # per-task token maps are drawn last: the other parameters start as without them
    dims = {"tabular": 5}
    torch.manual_seed(0)
    shared = M3HNet(dims, 8, [1, 1, 1], True, 0.5)
    torch.manual_seed(0)
    own = M3HNet(dims, 8, [1, 1, 1], True, 0.5, token_maps="per_task")
    for k, v in shared.state_dict().items():
        torch.testing.assert_close(own.state_dict()[k], v)
    assert own.tok_w.shape == (3, 8, 8) and shared.tok_w is None
    b = {"tabular": torch.randn(4, 5), "avail": torch.ones(4, 4)}
    assert not torch.allclose(own(b), shared(b))  # the tokens come from the per-task maps


def test_single_task_networks_side_by_side_share_no_parameter(data):
    ds, tasks = data
    est = make("single_task", random_state=0, **_light("single_task")).fit(
        ds.modalities, ds.targets, tasks=tasks)
    nets = {id(m.net_): m for k, m in est.models_.items() if k != "phenotype"}
    assert len(nets) == 1  # one side-by-side module for the supervised tasks
    inner = next(iter(nets.values()))
    net = inner.net_
    assert net.members == len(inner.supervised_) == 5
    batch = inner.inputs_.tensors(ds.modalities, "cpu")
    for k in (0, 3):  # the gradient of task k's output reaches member k's parameters only
        net.zero_grad()
        net(batch)[:, k].pow(2).sum().backward()
        for p in net.stacked:
            if p.grad is None:
                continue
            other = torch.cat([p.grad[:k].flatten(), p.grad[k + 1:].flatten()])
            assert torch.all(other == 0)
        assert any(p.grad is not None and p.grad[k].abs().sum() > 0 for p in net.stacked)
    seq = make("single_task", random_state=0, side_by_side=False,
               **_light("single_task", epochs=1)).fit(ds.modalities, ds.targets, tasks=tasks)
    assert len({id(m) for m in seq.models_.values()}) == len(TASKS)
    assert np.isfinite(seq.predict_scores(ds.modalities)["los_days"]).all()
    with pytest.raises(ValueError, match="side_by_side must be"):
        make("single_task", side_by_side="yes", **_light("single_task")).fit(
            ds.modalities, ds.targets, tasks=tasks)


def test_the_linear_skip_starts_at_zero_and_learns(data):
    ds, tasks = data
    p = _light("m3h", epochs=2)
    plain = make("m3h", random_state=0, skip=False, **p)
    skip = make("m3h", random_state=0, skip=True, **p)
    for est in (plain, skip):
        est.fit(ds.modalities, ds.targets, tasks=tasks)
    w = skip.net_.skip_w
    inputs = skip.inputs_.tensors(ds.modalities, "cpu")
    assert w.shape == (5, skip.net_.skip_inputs(inputs).shape[1], 3)
    assert w.abs().sum() > 0 and plain.net_.skip_w is None
    nets = []
    for flag in (False, True):  # the skip adds a zero-initialised term and draws nothing
        torch.manual_seed(0)
        nets.append(M3HNet(skip.inputs_.dims, 8, [1, 1, 1, 3, 1], True, 0.5, skip=flag))
    assert set(nets[1].state_dict()) - set(nets[0].state_dict()) == {"skip_w"}
    with torch.no_grad():
        torch.testing.assert_close(nets[0](inputs), nets[1](inputs))
    with pytest.raises(ValueError, match="skip must be"):
        make("m3h", skip="yes", **p).fit(ds.modalities, ds.targets, tasks=tasks)


def test_normalised_task_weights_are_inverse_constant_prediction_losses():
    from ehrcausal.learners.m3h import TaskSpec, _task_weights

    specs = [TaskSpec("a", "binary", 2), TaskSpec("b", "multiclass", 3),
             TaskSpec("c", "regression", 0)]
    Y = np.array([[0, 0, 1.0], [0, 1, -1.0], [0, 2, 0.5], [1, 2, np.nan]])
    w = _task_weights(specs, Y)
    p = 0.25
    assert w[0] == pytest.approx(1 / -(p * np.log(p) + (1 - p) * np.log(1 - p)))
    f = np.array([1, 1, 2]) / 4
    assert w[1] == pytest.approx(1 / -(f * np.log(f)).sum())
    assert w[2] == 1.0


def test_per_task_early_stopping_predicts_each_task_with_its_own_best_weights(data):
    ds, tasks = data
    val = np.arange(len(ds)) % 4 == 0
    p = _light("m3h", epochs=8, lr=0.05)
    est = make("m3h", random_state=0, early_stopping="per_task", **p).fit(
        ds.modalities, ds.targets, tasks=tasks, val_mask=val)
    states = est.task_states_
    covered = np.sort(np.concatenate([idx for _, idx in states]))
    np.testing.assert_array_equal(covered, np.arange(len(est.supervised_)))
    # each task's prediction is that of the network at its own best epoch
    scores = est.predict_scores(ds.modalities)
    for state, idx in states:
        one = make("m3h", random_state=0, **p).fit(ds.modalities, ds.targets, tasks=tasks,
                                                   val_mask=val)
        one.net_.load_state_dict(state)
        sc = one.predict_scores(ds.modalities)
        for t in idx:
            name = est.supervised_[t].name
            np.testing.assert_allclose(sc[name], scores[name], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="early_stopping must be"):
        make("m3h", early_stopping="each", **p).fit(ds.modalities, ds.targets, tasks=tasks)
    with pytest.raises(ValueError, match="task_weighting must be"):
        make("m3h", task_weighting="gradnorm", **p).fit(ds.modalities, ds.targets, tasks=tasks)


def _blobs(rng, y, width, informative, sep=3.0):
    """``width`` noise columns; with ``informative``, the clusters of ``y`` (corners of a
    simplex) load on every column, each of the k - 1 directions on several columns, as a
    latent factor loads on several measurements."""
    X = rng.normal(size=(len(y), width))
    if informative:
        k = int(y.max()) + 1
        loading = np.tile(np.eye(k - 1), (1, -(-width // (k - 1))))[:, :width]
        X += sep * np.eye(k)[y][:, 1:] @ loading
    return X


def test_block_clusters_read_every_block_with_equal_weight():
    from sklearn.metrics import normalized_mutual_info_score as nmi

    from ehrcausal.learners.m3h import BlockClusters

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 100)
    signal, noise = _blobs(rng, y, 6, True), _blobs(rng, y, 40, False)
    for blocks, alone in (([signal, noise], [noise]), ([noise, signal], [noise])):
        # the clusters are found whichever block holds them, and not without that block
        assert nmi(y, BlockClusters(4, 0).fit(blocks).predict(blocks)) > 0.6
        assert nmi(y, BlockClusters(4, 0).fit(alone).predict(alone)) < 0.1
    # each block enters through its k - 1 leading components with total variance 1, so the
    # scale of a block does not change the partition
    bc = BlockClusters(4, 0).fit([signal, noise])
    big = BlockClusters(4, 0).fit([signal, 1000 * noise])
    np.testing.assert_array_equal(bc.predict([signal, noise]), big.predict([signal, 1000 * noise]))
    Z = bc.transform([signal, noise])
    assert Z.shape == (400, 6)
    np.testing.assert_allclose([Z[:, :3].var(axis=0).sum(), Z[:, 3:].var(axis=0).sum()], 1.0)
    with pytest.raises(ValueError, match="same rows"):
        BlockClusters(4, 0).fit([signal, noise[:10]])
    with pytest.raises(ValueError, match="finite"):
        BlockClusters(4, 0).fit([np.full((400, 2), np.nan)])
    with pytest.raises(ValueError, match="k"):
        BlockClusters(1, 0)
    with pytest.raises(ValueError, match="blocks: expected 2"):
        bc.predict([signal])


@pytest.mark.parametrize("name", ["m3h", "m3h_no_attention"])
def test_m3h_clusters_its_shared_representation_and_the_inputs_read_linearly(data, name):
    from ehrcausal.learners.m3h import BlockClusters, _val_rows, skip_width

    ds, tasks = data
    est = _fit(name, ds, tasks, cluster_loss="none")  # the rule: the read-out without the loss
    clusters = est.clusters_["phenotype"]
    blocks = est.cluster_blocks(ds.modalities)
    # both blocks are read: h (hidden width) and the skip's inputs (their width)
    assert [len(mu) for _, mu, *_ in clusters.parts_] == [8, skip_width(est.inputs_.dims)]
    assert blocks["s"].shape == (len(ds), skip_width(est.inputs_.dims))
    # the rule is k-means on the blocks of the training rows
    tr, _ = _val_rows(len(ds), est.val_fraction, 0, None)
    ref = BlockClusters(4, 0).fit([blocks["h"][tr], blocks["s"][tr]])
    np.testing.assert_array_equal(est.predict_scores(ds.modalities)["phenotype"],
                                  ref.predict([blocks["h"], blocks["s"]]))


def test_single_task_clusters_with_m3h_rule_on_the_inputs_alone(data):
    from ehrcausal.learners.m3h import BlockClusters, _val_rows, skip_width

    ds, tasks = data
    single = _fit("single_task", ds, tasks, cluster_loss="none")
    m3h = _fit("m3h", ds, tasks, cluster_loss="none")
    # what a network trained on one task alone has for the clustering task: the inputs read
    # linearly, the block "s" of M3H's rule, clustered by the same rule on the training rows
    s = m3h.cluster_blocks(ds.modalities)["s"]
    tr, _ = _val_rows(len(ds), m3h.val_fraction, 0, None)
    rule = single.models_["phenotype"].rule
    assert [len(mu) for _, mu, *_ in rule.parts_] == [skip_width(m3h.inputs_.dims)]
    np.testing.assert_array_equal(single.predict_scores(ds.modalities)["phenotype"],
                                  BlockClusters(4, 0).fit([s[tr]]).predict([s]))
    # the old single-task rule (k-means on all the summary features) partitions otherwise
    from ehrcausal.learners.m3h import _FeatureClusters

    old = _FeatureClusters(4, 0).fit(check_modalities(ds.modalities), tr)
    assert not np.array_equal(old.predict(check_modalities(ds.modalities)),
                              single.predict_scores(ds.modalities)["phenotype"])


def test_dec_assignment_and_target_match_a_hand_computation():
    from ehrcausal.learners.m3h import dec_assignments, dec_loss, dec_target

    h = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    mu = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    # row 0: distances^2 0 and 4 -> kernels 1 and 1/5 -> q = (5/6, 1/6); row 1: (1/6, 5/6);
    # row 2: distances^2 1 and 5 -> kernels 1/2 and 1/6 -> q = (3/4, 1/4)
    q = dec_assignments(h, mu)
    Q = np.array([[5 / 6, 1 / 6], [1 / 6, 5 / 6], [3 / 4, 1 / 4]])
    np.testing.assert_allclose(q.numpy(), Q, rtol=1e-6)
    # f = column sums; p_ik proportional to q_ik^2 / f_k, each row normalised
    f = Q.sum(axis=0)
    W = Q**2 / f
    P = W / W.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(dec_target(q).numpy(), P, rtol=1e-6)
    assert P[2, 0] > Q[2, 0]  # the target sharpens a row towards its confident cluster
    kl = float(np.mean((P * np.log(P / Q)).sum(axis=1)))
    assert float(dec_loss(q)) == pytest.approx(kl, rel=1e-6)
    # P is held fixed: the gradient of the loss is that of -(1/n) sum p log q
    qq = dec_assignments(h, mu.clone().requires_grad_(True))
    assert not dec_target(qq).requires_grad


def test_the_clustering_loss_reaches_the_shared_representation(data):
    from ehrcausal.learners.m3h import _Inputs, dec_loss

    ds, _ = data
    mods = check_modalities(ds.modalities)
    inputs = _Inputs(mods, np.arange(len(ds)), 0)
    torch.manual_seed(0)
    net = M3HNet(inputs.dims, 8, [1, 3], attention=True, balance=0.5, skip=True, clusters=[4])
    with torch.no_grad():
        net.centres[0].normal_()
    batch = inputs.tensors(mods, "cpu")
    dec_loss(net.outputs(batch)["q0"]).backward()  # the clustering term alone
    # the gradient reaches the centres, every encoder and the fusion (h), not the heads
    assert net.centres[0].grad.abs().sum() > 0
    for name, enc in net.encoders.items():
        assert sum(float(p.grad.abs().sum()) for p in enc.parameters()) > 0, name
    assert net.fuse[0].weight.grad.abs().sum() > 0
    assert net.head_w.grad is None and net.skip_w.grad is None


def test_the_clustering_loss_never_reads_the_phenotype_and_is_seeded(data):
    ds, tasks = data
    assert make("m3h").cluster_loss == "none" and make("single_task").cluster_loss == "none"
    est = _fit("m3h", ds, tasks, cluster_loss="dec")
    assert len(est.net_.centres) == 1
    scores = est.predict_scores(ds.modalities)
    # the read-out is the argmax of the soft assignment, k = 4 clusters
    res, _ = est._forward_all(est.inputs_.tensors(check_modalities(ds.modalities), "cpu"))
    np.testing.assert_array_equal(scores["phenotype"], res["q0"].argmax(axis=1))
    assert res["q0"].shape == (len(ds), 4)
    # the labels of the clustering task are not read: permuting them changes nothing
    Y = ds.targets.copy()
    Y["phenotype"] = np.random.default_rng(5).permutation(Y["phenotype"].to_numpy())
    other = make("m3h", random_state=0, **_light("m3h", cluster_loss="dec")).fit(
        ds.modalities, Y, tasks=tasks)
    for name, v in other.predict_scores(ds.modalities).items():
        np.testing.assert_array_equal(v, scores[name])
    # a seed fixes the fit; another seed gives other centres
    again = _fit("m3h", ds, tasks, cluster_loss="dec")
    np.testing.assert_array_equal(again.net_.centres[0].detach().numpy(),
                                  est.net_.centres[0].detach().numpy())
    seed1 = make("m3h", random_state=1, **_light("m3h", cluster_loss="dec")).fit(
        ds.modalities, ds.targets, tasks=tasks)
    assert not np.allclose(seed1.net_.centres[0].detach().numpy(),
                           est.net_.centres[0].detach().numpy())
    for name in ("m3h", "m3h_no_attention", "single_task"):
        with pytest.raises(ValueError, match="cluster_loss must be one of"):
            _fit(name, ds, tasks, cluster_loss="kmeans")


def test_single_task_trains_a_network_on_the_clustering_loss_alone(data):
    from ehrcausal.learners.m3h import M3H, _init_centres, _val_rows
    from ehrcausal.runtime import torch_seed

    ds, tasks = data
    single = _fit("single_task", ds, tasks, cluster_loss="dec")
    net = single.models_["phenotype"]
    # the same network with the clustering task alone: no supervised head, trained by the loss
    assert isinstance(net, M3H) and net.attention is False and net.supervised_ == []
    assert net.history_ is not None and net.history_.n_epochs >= 1
    data_t = net.inputs_.tensors(check_modalities(ds.modalities), "cpu")
    tr, _ = _val_rows(len(ds), 0.2, 0, None)
    with torch_seed(0):  # the network as built before training, its centres from k-means
        start = M3HNet(net.inputs_.dims, 8, [1], attention=False, balance=0.5, skip=True,
                       clusters=[4])
        _init_centres(start, data_t, tr, 0)
    before, after = start.state_dict(), net.net_.state_dict()
    assert set(before) == set(after)
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    # the loss moved the centres and the encoders, never the (unused) supervised head
    assert "centres.0" in moved and any(k.startswith("encoders.") for k in moved)
    assert "head_w" not in moved
    # its read-out is argmax q, as M3H's
    res, _ = net._forward_all(data_t)
    scores = single.predict_scores(ds.modalities)
    np.testing.assert_array_equal(scores["phenotype"], res["q0"].argmax(axis=1))
    # the supervised tasks' networks do not depend on the clustering loss
    none = _fit("single_task", ds, tasks).predict_scores(ds.modalities)
    for name in TASKS[:-1]:
        np.testing.assert_array_equal(none[name], scores[name])


def test_per_task_early_stopping_keeps_the_clustering_term_at_its_own_best_epoch(data):
    ds, tasks = data
    val = np.zeros(len(ds), dtype=bool)
    val[::5] = True
    est = make("m3h", random_state=0, **_light("m3h", cluster_loss="dec", epochs=4,
                                               early_stopping="per_task")).fit(
        ds.modalities, ds.targets, tasks=tasks, val_mask=val)
    # the clustering term is the last monitored column (after the supervised heads)
    assert est.n_out_ == len(est.supervised_)
    owned = sorted(int(i) for _, idx in est.task_states_ for i in idx)
    assert owned == list(range(est.n_out_ + 1))
    state, _ = next((st, idx) for st, idx in est.task_states_ if est.n_out_ in idx)
    one = make("m3h", random_state=0, **_light("m3h", cluster_loss="dec", epochs=4)).fit(
        ds.modalities, ds.targets, tasks=tasks, val_mask=val)
    one.net_.load_state_dict(state)
    np.testing.assert_array_equal(one.predict_scores(ds.modalities)["phenotype"],
                                  est.predict_scores(ds.modalities)["phenotype"])
