"""X-MultiTask as its public code computes it, against hand-traced pieces of that computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ehrcausal.learners import XMultiTaskReleased, make
from ehrcausal.learners.xmultitask_released import (
    paired_arm_batches,
    released_combination,
    released_stage2_targets,
)

from .test_multitask import class_data, continuous_data

TINY = {"epochs": 3, "hidden": 8, "batch_size": 32, "device": "cpu", "random_state": 0}


def test_stage2_targets_are_probability_minus_class_index():
    # the other arm's probabilities at two patients with classes 2 and 0
    p_other = np.array([[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25]])
    labels = np.array([2, 0])
    # controls: p[i, y_i] - y_i; treated: y_i - p[i, y_i] (an integer index, not one-hot)
    np.testing.assert_allclose(released_stage2_targets(p_other, labels, treated=False),
                               [0.3 - 2, 0.25])
    np.testing.assert_allclose(released_stage2_targets(p_other, labels, treated=True),
                               [2 - 0.3, -0.25])


def test_combination_reduces_to_propensity_times_difference():
    e = np.array([0.2, 0.9])
    mu0 = np.array([[0.5, 0.5], [0.2, 0.8]])
    mu1 = np.array([[0.7, 0.3], [0.1, 0.9]])
    # D1 = D0 = mu1 - mu0 = [[.2, -.2], [-.1, .1]]; e D1 + (1-e) D0 = D; the single-output
    # softmax makes tau1 - tau0 = 1 - 1 = 0 whatever the stage-2 outputs: e * D
    out = released_combination(e, mu0, mu1, np.array([[3.0], [-1.0]]), np.array([[-7.0], [2.0]]))
    np.testing.assert_allclose(out, [[0.04, -0.04], [-0.09, 0.09]], atol=1e-12)


def test_paired_arm_batches_zip_full_batches_of_each_arm():
    steps = paired_arm_batches(10, 25, 4, torch.Generator().manual_seed(0))
    assert len(steps) == 2  # min(10 // 4, 25 // 4): the smaller arm ends the epoch
    for bc, bt in steps:
        assert len(bc) == len(bt) == 4 and bc.max() < 10 and bt.max() < 25
    assert len(set(torch.cat([bc for bc, _ in steps]).tolist())) == 8  # no repeats


def test_fit_computes_the_released_effect_one_network_per_decision():
    Y, T, X, _ = class_data(n=300, seed=5)
    est = XMultiTaskReleased(**TINY).fit(Y, T, X=X)
    mu0, mu1 = est.predict_outcomes(X)
    e = est.propensity(X)
    np.testing.assert_allclose(est.effect(X), e[:, None] * (mu1 - mu0), atol=1e-6)
    # the stage-2 targets as the released code forms them, from the fitted heads
    c, t = T == 0, T == 1
    np.testing.assert_allclose(est.stage2_targets_["control"],
                               mu1[c][np.arange(c.sum()), Y[c]] - Y[c], atol=1e-6)
    np.testing.assert_allclose(est.stage2_targets_["treated"],
                               Y[t] - mu0[t][np.arange(t.sum()), Y[t]], atol=1e-6)
    assert len(est.train_loss_) == 3 and len(est.effect_loss_) == 3
    # two decisions: an independent network each, no shared trunk
    Y2, T2, X2, _ = class_data(n=300, seed=6)
    two = XMultiTaskReleased(**TINY).fit_tasks({"a": (Y, T, X), "b": (Y2, T2, X2)})
    nets = [two.task_estimators_[k].outcome_net_ for k in ("a", "b")]
    assert nets[0] is not nets[1] and len(nets[0].heads) == 2
    assert two.effect(X, task="a").shape == (300, 4)
    Yc, Tc, Xc, _ = continuous_data(n=300, seed=2)
    cont = XMultiTaskReleased(outcome="continuous", **TINY).fit(Yc, Tc, X=Xc)
    m0, m1 = cont.predict_outcomes(Xc)
    assert cont.effect_net_ is None
    np.testing.assert_allclose(cont.effect(Xc), cont.propensity(Xc)[:, None] * (m1 - m0),
                               atol=1e-6)


def test_released_needs_full_batches_and_takes_no_validation_rows():
    Y, T, X, _ = class_data(n=120, seed=1)
    with pytest.raises(ValueError, match="batch_size must be at most the smaller arm"):
        XMultiTaskReleased(**{**TINY, "batch_size": 100}).fit(Y, T, X=X)
    with pytest.raises(ValueError, match="unexpected fit argument"):
        make("xmultitask_released", **TINY).fit(Y, T, X=X, val_mask=np.zeros(120, bool))
