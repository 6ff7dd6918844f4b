"""CFR with hyperparameters chosen per data set (``learners/selection.py``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ehrcausal.learners import SelectedCFR, make

SMALL = {"epochs": 25, "patience": 4, "batch_size": 32, "device": "cpu"}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _data(seed: int = 0, n: int = 300):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    T = rng.binomial(1, 0.4, n)
    return X[:, 0] + T * (1 + X[:, 1]) + rng.normal(scale=0.5, size=n), T, X


def test_the_smallest_factual_validation_error_predicts():
    y, t, x = _data()
    grid = {"hidden": [8, 16], "alpha": [0.0, 1.0], "lr": [1e-2, 1e-3], "weight_decay": [0.0]}
    est = SelectedCFR(**grid, **SMALL, random_state=3).fit(y, t, X=x)
    assert len(est.grid_) == 8 and est.validation_errors_.shape == (8,)
    assert est.best_index_ == int(np.argmin(est.validation_errors_))
    assert est.best_params_ == est.grid_[est.best_index_]
    np.testing.assert_array_equal(est.effect(x), est.best_estimator_.effect(x))
    # each point's error is what that CFR alone, with the same seed, stops at
    for i in (0, 5):
        alone = make("cfr_wass", **est.grid_[i], random_state=3, early_stopping="factual",
                     **SMALL).fit(y, t, X=x)
        hist = alone.history_
        assert est.validation_errors_[i] == pytest.approx(hist.val_loss[hist.best_epoch],
                                                          rel=1e-4)


def test_the_registered_learner_and_bad_grids():
    y, t, x = _data(1, n=120)
    est = make("cfr_wass_selected", random_state=0, epochs=2, device="cpu")
    assert est.fit(y, t, X=x) is est and len(est.grid_) == 16
    with pytest.raises(ValueError, match="alpha must list at least one value"):
        SelectedCFR(alpha=[], **SMALL).fit(y, t, X=x)
    with pytest.raises(ValueError, match="hidden must be an integer"):
        SelectedCFR(hidden=[8, 2.5], **SMALL).fit(y, t, X=x)
    with pytest.raises(ValueError, match="lr must be a number"):
        SelectedCFR(lr=(1e-3, 0.0), **SMALL).fit(y, t, X=x)
