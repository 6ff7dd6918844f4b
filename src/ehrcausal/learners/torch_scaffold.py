"""The scaffold every torch learner of the package is built on, around the one training loop.

A torch learner's ``fit`` is always the same sequence; each step has one implementation here:

1. :func:`check_torch_params` -- the shared training parameters (``hidden``, ``epochs``,
   ``batch_size``, ``patience`` positive integers; ``lr > 0``; ``weight_decay >= 0``;
   ``val_fraction`` in ``[0, 1)``), checked with :func:`~ehrcausal.validation.check_int` and
   :func:`~ehrcausal.validation.check_number`. A float ``epochs`` is rejected, never truncated.
2. :func:`validation_split` -- the early-stopping rows: a caller's ``val_mask`` or a seeded,
   treatment-stratified ``val_fraction`` of each arm.
3. :class:`Standardiser` -- ``z = (v - m) / s`` with ``m``, ``s`` the mean and standard
   deviation over the training rows only (``s = 1`` for a constant column), so the validation
   rows never inform the scaling; the moments do not overflow at any finite scale. Covariates
   are standardised; continuous outcomes are too, and predictions go back with ``v = z s + m``
   and effects (differences, where ``m`` cancels) with ``tau = dz * s``.
4. :func:`train_network` -- build a network and train it with
   :func:`~ehrcausal.learners.training.train_module` under one seed
   (:func:`~ehrcausal.runtime.torch_seed`), so initialisation, dropout and shuffling are
   reproducible.
5. :func:`predict_chunked` -- inference in evaluation mode, without gradients, in chunks of
   rows (bounded memory on large cohorts), returned as float64 NumPy arrays.

The learners differ only in their network, their loss and how they combine the heads' outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..runtime import torch_seed
from ..validation import check_int, check_number
from .training import BatchSampler, LossFn, TrainingHistory, train_module

__all__ = [
    "PREDICT_CHUNK",
    "TorchParams",
    "check_torch_params",
    "validation_split",
    "Standardiser",
    "train_network",
    "predict_chunked",
]

#: rows per forward pass at inference
PREDICT_CHUNK = 8192


@dataclass(frozen=True)
class TorchParams:
    """The checked training parameters shared by every torch learner."""

    hidden: int
    epochs: int
    batch_size: int
    patience: int
    lr: float
    weight_decay: float
    val_fraction: float


def check_torch_params(
    est: Any, *, min_batch_size: int = 1, batch_reason: str | None = None
) -> TorchParams:
    """Check the shared training parameters of the torch learner ``est``; return them typed.

    ``hidden``, ``epochs`` and ``patience`` must be integers >= 1 and ``batch_size`` an integer
    >= ``min_batch_size`` (a float such as ``epochs=2.5``, a string or a boolean is an error,
    never converted); ``lr`` must be > 0, ``weight_decay`` >= 0 and ``val_fraction`` in
    ``[0, 1)``. Each failure is a ``ValueError`` naming the parameter; ``batch_reason`` says why
    a network needs larger batches (e.g. BatchNorm, which cannot train on one sample).
    """
    hidden = check_int(est.hidden, "hidden", 1)
    epochs = check_int(est.epochs, "epochs", 1)
    try:
        batch_size = check_int(est.batch_size, "batch_size", min_batch_size)
    except ValueError as exc:
        if batch_reason is None:
            raise
        raise ValueError(f"{exc} ({batch_reason})") from None
    return TorchParams(
        hidden=hidden,
        epochs=epochs,
        batch_size=batch_size,
        patience=check_int(est.patience, "patience", 1),
        lr=check_number(est.lr, "lr", 0.0, low_open=True),
        weight_decay=check_number(est.weight_decay, "weight_decay", 0.0),
        val_fraction=check_number(est.val_fraction, "val_fraction", 0.0, 1.0, high_open=True),
    )


def validation_split(
    T: np.ndarray, val_fraction: float, seed: int, val_mask: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted training and validation row indices for early stopping.

    With ``val_mask`` (a boolean array of length n) its True rows are the validation part.
    Otherwise ``round(val_fraction * n_a)`` rows of each arm ``a`` are drawn without replacement
    by ``numpy.random.default_rng(seed)`` (stratified by treatment, so both parts keep the
    treated share). The training part must keep at least one unit of each arm.
    """
    n = len(T)
    if val_mask is not None:
        mask = np.asarray(val_mask)
        if mask.dtype != bool or mask.shape != (n,):
            raise ValueError(
                f"val_mask must be a boolean array of length {n}, got dtype {mask.dtype} and "
                f"shape {mask.shape}"
            )
        tr, va = np.flatnonzero(~mask), np.flatnonzero(mask)
    else:
        val_fraction = check_number(val_fraction, "val_fraction", 0.0, 1.0, high_open=True)
        rng = np.random.default_rng(seed)
        va_parts = []
        for arm in (0, 1):
            rows = np.flatnonzero(T == arm)
            k = int(round(val_fraction * len(rows)))
            va_parts.append(rng.choice(rows, size=k, replace=False))
        va = np.sort(np.concatenate(va_parts))
        tr = np.setdiff1d(np.arange(n), va)
    for arm in (0, 1):
        if (T[tr] == arm).sum() < 1:
            raise ValueError(f"the training part has no unit with T={arm}; use a smaller validation")
    return tr, va


@dataclass(frozen=True)
class Standardiser:
    """Column-wise affine scaling ``z = (v - mean) / scale`` fitted on training rows.

    ``mean`` and ``scale`` have the shape of one row of the fitted values (a 0-d array for a
    1-d outcome). ``scale`` is the population standard deviation, replaced by 1 for a column
    that is constant up to rounding (standard deviation at most 1e-12 times the column's largest
    absolute value; such a column is only centred).

    The moments do not overflow or underflow at any finite scale: a column whose largest
    absolute value ``M`` lies outside ``[1e-100, 1e100]`` is divided by ``M`` first
    (``mean = M * mean(v / M)``, ``sd = M * sd(v / M)``), so covariates multiplied by 1e300
    standardise to the same ``z`` as the originals (up to rounding) instead of to zeros. Other
    columns use the plain formulas, so ordinary data give bit-identical results.
    """

    mean: np.ndarray
    scale: np.ndarray

    #: columns whose largest absolute value lies outside this range are rescaled first
    SAFE_RANGE = (1e-100, 1e100)

    @classmethod
    def fit(cls, values: np.ndarray, rows: np.ndarray | None = None) -> Standardiser:
        """Mean and standard deviation of ``values[rows]`` (all rows when ``rows`` is None)."""
        v = np.asarray(values, dtype=float)
        if rows is not None:
            v = v[rows]
        if len(v) == 0:
            raise ValueError("cannot standardise on zero training rows")
        peak = np.abs(v).max(axis=0)
        low, high = cls.SAFE_RANGE
        extreme = (peak > high) | ((peak > 0) & (peak < low))
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            mean, sd = v.mean(axis=0), v.std(axis=0)
        if np.any(extreme):
            unit = v / np.where(extreme, peak, 1.0)
            mean = np.where(extreme, unit.mean(axis=0) * peak, mean)
            sd = np.where(extreme, unit.std(axis=0) * peak, sd)
        return cls(mean, np.where(sd > 1e-12 * peak, sd, 1.0))

    @classmethod
    def identity(cls, width: int) -> Standardiser:
        """No scaling: mean 0 and scale 1 for ``width`` columns (class outcomes)."""
        return cls(np.zeros(width), np.ones(width))

    def transform(self, values: np.ndarray) -> np.ndarray:
        """``(v - mean) / scale``, as ``v / scale - mean / scale`` where the difference overflows.

        A ``ValueError`` when a standardised value exceeds the float32 range of the networks
        (values astronomically far from the training rows).
        """
        with np.errstate(over="ignore", invalid="ignore"):
            z = (values - self.mean) / self.scale
            if not np.isfinite(z).all():
                z = values / self.scale - self.mean / self.scale
        limit = float(np.finfo(np.float32).max)
        if not np.isfinite(z).all() or (z.size and float(np.abs(z).max()) > limit):
            raise ValueError(
                "values lie too many training standard deviations from the training mean to "
                f"standardise (more than {limit:.3g}, the float32 range of the networks); check "
                "the scale of the inputs against the rows the learner was fitted on"
            )
        return z

    def inverse_transform(self, values: np.ndarray) -> np.ndarray:
        """``z * scale + mean``: standardised predictions back to the original units."""
        return values * self.scale + self.mean

    def scale_difference(self, diff: np.ndarray) -> np.ndarray:
        """``dz * scale``: a difference of standardised values (an effect) in original units."""
        return diff * self.scale


def train_network(
    build: Callable[[], nn.Module],
    loss_fn: LossFn,
    data: dict[str, torch.Tensor],
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    *,
    params: TorchParams,
    seed: int,
    device: str,
    desc: str,
    decay: Callable[[nn.Module], list[nn.Parameter]] | None = None,
    batch_sampler: BatchSampler | None = None,
    progress: bool = False,
    lr_decay: float = 1.0,
    lr_decay_steps: int = 100,
) -> tuple[nn.Module, TrainingHistory]:
    """Build ``build()`` on ``device`` and train it with :func:`train_module`, all under ``seed``.

    Torch's global generator is seeded with ``seed`` while the network is initialised and
    trained (and restored after), and the loop's shuffling generator gets the same seed, so a
    seed fixes the fitted weights. ``decay(net)`` names the parameters that get
    ``params.weight_decay`` (all of them when None); the other arguments (the batch sampler, the
    step decay of the learning rate) are passed to
    :func:`~ehrcausal.learners.training.train_module`. Returns the network (best weights, eval
    mode) and its history.
    """
    with torch_seed(seed):
        net = build().to(device)
        hist = train_module(
            net,
            loss_fn,
            data,
            train_idx,
            val_idx,
            epochs=params.epochs,
            batch_size=params.batch_size,
            lr=params.lr,
            weight_decay=params.weight_decay,
            decay_params=None if decay is None else decay(net),
            patience=params.patience,
            seed=seed,
            progress=progress,
            desc=desc,
            batch_sampler=batch_sampler,
            lr_decay=lr_decay,
            lr_decay_steps=lr_decay_steps,
        )
    return net, hist


def predict_chunked(
    forward: Callable[[torch.Tensor], Mapping[str, torch.Tensor]],
    X: np.ndarray,
    *,
    device: str,
    modules: Iterable[nn.Module] = (),
    chunk_size: int = PREDICT_CHUNK,
) -> dict[str, np.ndarray]:
    """Apply ``forward`` to ``X`` in chunks of rows; concatenate its outputs as float64 arrays.

    ``X`` is already standardised. The ``modules`` are put in evaluation mode (no dropout,
    BatchNorm running statistics) and no gradient is recorded. Each chunk is sent to ``device``
    as float32; ``forward`` returns a mapping name -> tensor whose first dimension is the
    chunk's rows, and the result maps each name to the ``(n, ...)`` array of all rows.
    """
    check_int(chunk_size, "chunk_size", 1)
    for module in modules:
        module.eval()
    outs: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for i in range(0, len(X), chunk_size):
            xb = torch.as_tensor(X[i : i + chunk_size], dtype=torch.float32).to(device)
            for key, value in forward(xb).items():
                outs.setdefault(key, []).append(value.cpu().numpy().astype(float))
    return {key: np.concatenate(parts) for key, parts in outs.items()}
