"""CFR with its hyperparameters chosen per data set by the factual validation error.

:class:`SelectedCFR` fits one CFR network (:class:`~ehrcausal.learners.neural.CFR`) for every
point of a grid over the representation width, the IPM weight alpha, the learning rate and the
weight decay, all from the same seed and on the same training and validation rows, and keeps
the network whose *factual* validation error is smallest: the mean squared error of the
observed outcomes of the validation units, at the epoch early stopping kept. That criterion
needs no counterfactual, so it is available on real data. Shalit, Johansson & Sontag (2017)
tuned their networks too, but chose the hyperparameters once for all realizations (on held-out
realizations of the simulation), not per realization by a factual criterion.

The grid trains in one batched pass per representation width
(:func:`~ehrcausal.learners.batched.fit_batched`: the networks of one width share their
architecture, and differ in learning rate, weight decay and alpha inside the pass), so a grid
of G points costs about what G networks cost trained side by side, not G sequential fits.

Fitted attributes: ``grid_`` (the points, as dictionaries), ``validation_errors_`` (the
factual validation error of each, on the standardised outcome scale, which every point shares),
``best_index_``, ``best_params_``, ``best_estimator_`` (the chosen CFR, which predicts) and
``history_`` (its training history).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..validation import check_int, check_number
from .base import CATELearner, store_params
from .batched import fit_batched
from .neural import CFR

__all__ = ["SelectedCFR"]


def _levels(value: Any, name: str, *, integer: bool = False) -> list[Any]:
    """A grid axis: a non-empty sequence of valid levels (a single value is one level)."""
    levels = list(value) if isinstance(value, (list, tuple)) else [value]
    if not levels:
        raise ValueError(f"{name} must list at least one value, got {value!r}")
    if integer:
        return [check_int(v, name, 1) for v in levels]
    low_open = name != "alpha" and name != "weight_decay"
    return [check_number(v, name, 0.0, low_open=low_open) for v in levels]


class SelectedCFR(CATELearner):
    """CFR whose width, alpha, learning rate and weight decay are chosen per data set.

    Parameters
    ----------
    hidden, alpha, lr, weight_decay : the grid's levels of the representation width, the IPM
        weight, Adam's learning rate and the heads' weight decay (sequences; every combination
        is one network).
    ipm : the CFR penalty ('wass', 'mmd' or 'mmd_lin'), fixed across the grid.
    epochs, patience, batch_size : training budget of every network (early stopping on the
        validation rows' factual error).
    val_fraction : share of rows held out when ``fit`` gets no ``val_mask``.
    device : "auto" (CUDA when present), "cpu" or "cuda[:N]".
    random_state : seed of every network (initialisation, shuffling, validation split), so
        the points differ only in their hyperparameters.

    Every other CFR setting is :class:`~ehrcausal.learners.neural.CFR`'s default.
    """

    models_outcomes = True

    def __init__(
        self,
        hidden: Sequence[int] = (100, 200),
        alpha: Sequence[float] = (0.1, 1.0),
        lr: Sequence[float] = (1e-3, 3e-4),
        weight_decay: Sequence[float] = (1e-4, 1e-3),
        ipm: str = "wass",
        epochs: int = 300,
        patience: int = 30,
        batch_size: int = 100,
        val_fraction: float = 0.3,
        device: str = "auto",
        random_state: int | None = None,
    ) -> None:
        store_params(self, locals())

    def _grid(self) -> list[dict[str, Any]]:
        axes = {
            "hidden": _levels(self.hidden, "hidden", integer=True),
            "alpha": _levels(self.alpha, "alpha"),
            "lr": _levels(self.lr, "lr"),
            "weight_decay": _levels(self.weight_decay, "weight_decay"),
        }
        return [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]

    def _fit(self, Y: np.ndarray, T: np.ndarray, X: np.ndarray, **fit_params: Any) -> None:
        self._reject_unknown(fit_params, ("val_mask",))
        self.grid_ = self._grid()
        mask = fit_params.get("val_mask")
        if (mask is not None and not np.asarray(mask).any()) or (
                mask is None and check_number(self.val_fraction, "val_fraction", 0.0, 1.0,
                                              high_open=True) == 0):
            raise ValueError(
                "SelectedCFR chooses by the validation rows' factual error and got no validation "
                "rows: give val_fraction > 0 or a val_mask with True rows"
            )
        estimators = [
            CFR(ipm=self.ipm, epochs=self.epochs, patience=self.patience,
                batch_size=self.batch_size, val_fraction=self.val_fraction, device=self.device,
                random_state=self.random_state, early_stopping="factual", **point)
            for point in self.grid_
        ]
        n = len(estimators)
        fit_batched(estimators, [Y] * n, [T] * n, [X] * n, [dict(fit_params)] * n)
        # early stopping monitors the factual error, so the kept epoch's value is the criterion
        self.validation_errors_ = np.array(
            [e.history_.val_loss[e.history_.best_epoch] for e in estimators])
        self.best_index_ = int(np.nanargmin(self.validation_errors_))
        self.best_params_ = dict(self.grid_[self.best_index_])
        self.best_estimator_ = estimators[self.best_index_]
        self.history_ = self.best_estimator_.history_

    def _predict_outcomes(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.best_estimator_.predict_outcomes(X)
