"""A TopK sparse autoencoder: sparse, labelled neurons from dense note embeddings.

Gao et al. (2024, "Scaling and evaluating sparse autoencoders", Sec. 2.3): for an input
``x`` (an embedding, normalised as ``normalise`` says),

    z = TopK_k(ReLU(W_enc (x - b_dec) + b_enc)),    x_hat = W_dec z + b_dec,

where ``TopK_k`` keeps the ``k`` largest entries of each row and zeroes the rest, and the
columns of ``W_dec`` have unit norm (the decoder is parametrised as ``V / ||V||`` per column,
so a neuron's activation is its contribution's length). Training minimises the mean squared
reconstruction error ``mean ||x - x_hat||^2`` with Adam on the package's one training loop
(:func:`ehrcausal.learners.torch_scaffold.train_network`: seeded, early stopping on a
validation share). The encoder starts as the transpose of the decoder (Gao et al. Sec. 2.4).
Gao et al.'s auxiliary loss for dead latents is not used; :attr:`TopKSAE.dead_` counts the
neurons that never fire on the training rows. Cadei et al. (2026) train such an SAE on
foundation-model embeddings and read the effect modifiers among its neurons.

:func:`neuron_labels` names each neuron by the binary feature (a simulated concept, or a word
of the note) whose indicator correlates most with the neuron's activation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ..runtime import check_seed, resolve_device
from ..validation import as_2d, check_int, check_number
from .torch_scaffold import Standardiser, TorchParams, predict_chunked, train_network

__all__ = ["NORMALISATIONS", "TopKSAE", "neuron_labels"]

#: Input normalisations: ``"unit"`` (each row to unit Euclidean norm), ``"standardise"``
#: (columns to mean 0 and sd 1 over the training rows), ``"none"``.
NORMALISATIONS: tuple[str, ...] = ("unit", "standardise", "none")


class _TopK(nn.Module):
    def __init__(self, d_in: int, n_latents: int, k: int) -> None:
        super().__init__()
        self.k = k
        dec = torch.randn(d_in, n_latents)
        dec = dec / dec.norm(dim=0, keepdim=True)
        self.V = nn.Parameter(dec)
        self.W_enc = nn.Parameter(dec.t().clone())
        self.b_enc = nn.Parameter(torch.zeros(n_latents))
        self.b_dec = nn.Parameter(torch.zeros(d_in))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        pre = torch.relu((x - self.b_dec) @ self.W_enc.t() + self.b_enc)
        top = torch.topk(pre, self.k, dim=1)
        return torch.zeros_like(pre).scatter_(1, top.indices, top.values)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        W = self.V / self.V.norm(dim=0, keepdim=True).clamp_min(1e-8)
        return z @ W.t() + self.b_dec


def _loss(module: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    x = batch["x"]
    err = ((module.decode(module.encode(x)) - x) ** 2).sum(dim=1).mean()
    return err, err.detach()


class TopKSAE(TransformerMixin, BaseEstimator):
    """TopK sparse autoencoder (module docstring); ``transform`` gives the neuron activations.

    Parameters
    ----------
    n_latents : dictionary size (number of neurons). k : active neurons per row (1 <= k <=
        n_latents). normalise : one of :data:`NORMALISATIONS`.
    epochs, batch_size, lr, patience, val_fraction : the training loop's knobs.
    random_state : seed of the initialisation, the validation split and the batches.
    device : ``"auto"``, ``"cpu"`` or ``"cuda"``.
    """

    def __init__(
        self,
        n_latents: int = 512,
        k: int = 16,
        normalise: str = "unit",
        *,
        epochs: int = 60,
        batch_size: int = 256,
        lr: float = 1e-3,
        patience: int = 10,
        val_fraction: float = 0.1,
        random_state: int = 0,
        device: str = "auto",
    ) -> None:
        self.n_latents = n_latents
        self.k = k
        self.normalise = normalise
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.val_fraction = val_fraction
        self.random_state = random_state
        self.device = device

    def _normalised(self, X: np.ndarray) -> np.ndarray:
        if self.normalise == "unit":
            norms = np.linalg.norm(X, axis=1, keepdims=True)
            return X / np.where(norms > 0, norms, 1.0)
        if self.normalise == "standardise":
            return self.scaler_.transform(X)
        return X

    def fit(self, X: Any, y: Any = None) -> TopKSAE:
        """Train on the rows of ``X`` (n, d); returns self."""
        x = as_2d(X, "X")
        n_latents = check_int(self.n_latents, "n_latents", 1)
        k = check_int(self.k, "k", 1, n_latents)
        if self.normalise not in NORMALISATIONS:
            raise ValueError(f"normalise must be one of {NORMALISATIONS}, got {self.normalise!r}")
        params = TorchParams(
            hidden=n_latents, epochs=check_int(self.epochs, "epochs", 1),
            batch_size=check_int(self.batch_size, "batch_size", 1),
            patience=check_int(self.patience, "patience", 1),
            lr=check_number(self.lr, "lr", 0.0, low_open=True), weight_decay=0.0,
            val_fraction=check_number(self.val_fraction, "val_fraction", 0.0, 1.0,
                                      high_open=True),
        )
        seed = check_seed(self.random_state)
        device = resolve_device(self.device)
        n = x.shape[0]
        if n < 2:
            raise ValueError(f"X must have at least 2 rows to train on, got {n}")
        perm = np.random.default_rng(seed).permutation(n)
        n_val = int(round(params.val_fraction * n))
        val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        if self.normalise == "standardise":
            self.scaler_ = Standardiser.fit(x[train_idx])
        xs = self._normalised(x)
        data = {"x": torch.as_tensor(xs, dtype=torch.float32, device=device)}
        d_in = x.shape[1]
        net, hist = train_network(
            lambda: _TopK(d_in, n_latents, k), _loss, data, train_idx, val_idx,
            params=params, seed=seed, device=device, desc="topk-sae",
        )
        self.module_, self.history_, self.device_ = net, hist, device
        self.n_features_in_ = d_in
        act = self._encode(xs[train_idx])
        self.dead_ = int((act.max(axis=0) <= 0).sum())
        recon = predict_chunked(lambda xb: {"r": net.decode(net.encode(xb))}, xs, device=device,
                                modules=[net])["r"]
        resid = ((recon - xs) ** 2).sum(axis=1)
        self.explained_variance_ = float(1.0 - resid.sum() / ((xs - xs.mean(0)) ** 2).sum())
        return self

    def _encode(self, xs: np.ndarray) -> np.ndarray:
        net = self.module_
        return predict_chunked(lambda xb: {"z": net.encode(xb)}, xs, device=self.device_,
                               modules=[net])["z"]

    def transform(self, X: Any) -> np.ndarray:
        """Neuron activations (n, n_latents), non-negative, at most ``k`` non-zero per row."""
        check_is_fitted(self, "module_")
        x = as_2d(X, "X")
        if x.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {x.shape[1]} columns; the autoencoder was fitted on {self.n_features_in_}"
            )
        return self._encode(self._normalised(x))


def neuron_labels(activations: Any, features: pd.DataFrame, min_active: int = 5) -> pd.DataFrame:
    """Label each neuron by the binary feature most correlated with its activation.

    ``activations`` (n, m); ``features`` a DataFrame of n rows of 0/1 indicators (concepts, or
    the words of the notes). Returns one row per neuron: ``label`` (the column of
    ``features`` with the largest Pearson correlation with the activation; ``None`` for a
    neuron active in fewer than ``min_active`` rows or with no positive correlation),
    ``correlation`` and ``active`` (rows where the neuron is non-zero).
    """
    A = as_2d(activations, "activations")
    if not isinstance(features, pd.DataFrame) or len(features) != A.shape[0]:
        raise ValueError(f"features must be a DataFrame with {A.shape[0]} rows (one per row of "
                         "activations)")
    F = features.to_numpy(dtype=float)
    min_active = check_int(min_active, "min_active", 1)

    def _std(M: np.ndarray) -> np.ndarray:
        sd = M.std(axis=0)
        return (M - M.mean(axis=0)) / np.where(sd > 0, sd, 1.0)

    C = _std(A).T @ _std(F) / A.shape[0]
    best = C.argmax(axis=1)
    corr = C[np.arange(A.shape[1]), best]
    active = np.count_nonzero(A, axis=0)
    names = np.asarray(features.columns, dtype=object)[best]
    ok = (active >= min_active) & (corr > 0)
    return pd.DataFrame({"label": np.where(ok, names, None), "correlation": corr,
                         "active": active})
