"""Representation learners for CATE in torch: TARNet, CFR (Wasserstein / MMD) and DragonNet.

All three share :class:`~ehrcausal.learners.nets.TwoHeadNet` (a representation Phi and one
outcome head per arm) and the training loop :func:`~ehrcausal.learners.training.train_module`;
they differ only in the loss:

- **TARNet** (Shalit et al. 2017): weighted factual loss
  (1/n) sum_i w_i (y_i - h_{t_i}(Phi(x_i)))^2 with w_i = t_i/(2u) + (1-t_i)/(2(1-u)),
  u = P(T=1) (``reweight=True``), plus weight decay on the heads.
- **CFR** (Shalit et al. 2017): TARNet's loss + alpha * IPM(Phi(x)|T=1, Phi(x)|T=0) with the
  Wasserstein (Sinkhorn) or MMD (RBF) distance, on unit-norm representations.
- **DragonNet** (Shi, Blei & Veitch 2019): factual squared loss + alpha * BCE(t, g(Phi(x))) with
  a propensity head g; with targeted regularisation, + beta * (1/n) sum_i (y_i - q~_i)^2 where
  q~_i = h_{t_i} + epsilon (t_i/g_i - (1-t_i)/(1-g_i)) and epsilon is learned.

With ``n_ensemble > 1`` the learner averages the heads of that many networks trained from
different seeds on the same data (a deep ensemble), which lowers the variance of tau(x).

Covariates and outcomes are standardised on the training rows; the effect is
tau(x) = sd(Y) [h_1(Phi(x)) - h_0(Phi(x))]. Early stopping monitors the factual squared error
on a validation split (``val_mask`` in ``fit``, else a seeded, treatment-stratified
``val_fraction`` of the rows).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..runtime import check_seed, child_seeds, resolve_device, torch_seed
from .base import CATELearner, store_params
from .ipm import IPMS
from .nets import TwoHeadNet
from .training import TrainingHistory, train_module

_PREDICT_CHUNK = 8192


def validation_split(
    T: np.ndarray, val_fraction: float, seed: int, val_mask: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation row indices: from ``val_mask`` or a stratified random split."""
    n = len(T)
    if val_mask is not None:
        mask = np.asarray(val_mask)
        if mask.dtype != bool or mask.shape != (n,):
            raise ValueError(f"val_mask must be a boolean array of length {n}, got {mask.shape}")
        tr, va = np.flatnonzero(~mask), np.flatnonzero(mask)
    else:
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
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


class NeuralCATELearner(CATELearner):
    """Shared machinery of the torch learners; subclasses define ``_loss`` and the network."""

    models_outcomes = True
    _propensity_head = False
    #: unit-norm representation; TARNet and CFR make it a parameter, DragonNet keeps it off
    normalize_rep = False

    # parameters every neural learner has (sklearn reads them from each subclass __init__)
    def _common(self) -> dict[str, Any]:
        return {
            k: getattr(self, k)
            for k in (
                "hidden",
                "n_rep_layers",
                "head_hidden",
                "n_head_layers",
                "dropout",
                "epochs",
                "batch_size",
                "lr",
                "weight_decay",
                "val_fraction",
                "patience",
                "n_ensemble",
                "device",
                "random_state",
                "verbose",
            )
        }

    def _fit(self, Y: np.ndarray, T: np.ndarray, X: np.ndarray, **fit_params: Any) -> None:
        self._reject_unknown(fit_params, ("val_mask",))
        p = self._common()
        for name in ("epochs", "batch_size", "hidden", "head_hidden", "patience"):
            if int(p[name]) < 1:
                raise ValueError(f"{name} must be a positive integer, got {p[name]}")
        seed = check_seed(p["random_state"])
        self.device_ = resolve_device(p["device"])
        tr, va = validation_split(T, p["val_fraction"], seed, fit_params.get("val_mask"))
        # standardise on the training rows
        self.x_mean_ = X[tr].mean(axis=0)
        sd = X[tr].std(axis=0)
        self.x_scale_ = np.where(sd > 1e-12, sd, 1.0)
        self.y_mean_ = float(Y[tr].mean())
        self.y_scale_ = float(Y[tr].std()) or 1.0
        self.treated_share_ = float(T[tr].mean())
        dev = torch.device(self.device_)
        data = {
            "x": torch.as_tensor(self._scale_x(X), dtype=torch.float32, device=dev),
            "y": torch.as_tensor((Y - self.y_mean_) / self.y_scale_, dtype=torch.float32, device=dev),
            "t": torch.as_tensor(T, dtype=torch.float32, device=dev),
        }
        n_members = int(p["n_ensemble"])
        if n_members < 1:
            raise ValueError(f"n_ensemble must be a positive integer, got {p['n_ensemble']}")
        # member 0 uses the seed itself, so n_ensemble=1 is exactly the single network
        seeds = [seed] + child_seeds(seed, n_members - 1)
        self.networks_, self.histories_ = [], []
        for k, member_seed in enumerate(seeds):
            with torch_seed(member_seed):
                net = TwoHeadNet(
                    X.shape[1],
                    hidden=int(p["hidden"]),
                    n_rep_layers=int(p["n_rep_layers"]),
                    head_hidden=int(p["head_hidden"]),
                    n_head_layers=int(p["n_head_layers"]),
                    dropout=float(p["dropout"]),
                    normalize_rep=bool(self.normalize_rep),
                    propensity_head=self._propensity_head,
                ).to(dev)
                hist = train_module(
                    net,
                    self._loss,
                    data,
                    tr,
                    va,
                    epochs=int(p["epochs"]),
                    batch_size=int(p["batch_size"]),
                    lr=float(p["lr"]),
                    weight_decay=float(p["weight_decay"]),
                    decay_params=net.head_parameters(),
                    patience=int(p["patience"]),
                    seed=member_seed,
                    progress=bool(p["verbose"]),
                    desc=f"{type(self).__name__} {k + 1}/{n_members}",
                )
            self.networks_.append(net)
            self.histories_.append(hist)
        self.history_: TrainingHistory = self.histories_[0]

    def _scale_x(self, X: np.ndarray) -> np.ndarray:
        return (X - self.x_mean_) / self.x_scale_

    def _forward(self, X: np.ndarray) -> dict[str, np.ndarray]:
        xs = self._scale_x(X)
        outs: dict[str, list[np.ndarray]] = {}
        with torch.no_grad():
            for i in range(0, len(xs), _PREDICT_CHUNK):
                xb = torch.as_tensor(xs[i : i + _PREDICT_CHUNK], dtype=torch.float32)
                members = [net(xb.to(self.device_)) for net in self.networks_]
                for k in ("mu0", "mu1", "e_logit"):
                    if k in members[0]:
                        mean = torch.stack([m[k] for m in members]).mean(dim=0)
                        outs.setdefault(k, []).append(mean.cpu().numpy().astype(float))
        return {k: np.concatenate(v) for k, v in outs.items()}

    def _predict_outcomes(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self._forward(X)
        return (
            out["mu0"] * self.y_scale_ + self.y_mean_,
            out["mu1"] * self.y_scale_ + self.y_mean_,
        )

    # --- loss pieces -------------------------------------------------------------------
    @staticmethod
    def _factual(out: dict[str, torch.Tensor], t: torch.Tensor) -> torch.Tensor:
        return torch.where(t > 0.5, out["mu1"], out["mu0"])

    def _loss(self, net: torch.nn.Module, batch: dict[str, torch.Tensor]):
        raise NotImplementedError


class _RepresentationBalancing(NeuralCATELearner):
    """TARNet/CFR loss: (re)weighted factual MSE + alpha * IPM between arms."""

    def _ipm_term(self, phi: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return phi.new_zeros(())

    def _loss(self, net, batch):
        out = net(batch["x"])
        t, y = batch["t"], batch["y"]
        err = (y - self._factual(out, t)) ** 2
        if self.reweight:
            u = self.treated_share_
            w = t / (2 * u) + (1 - t) / (2 * (1 - u))
            fact = (w * err).mean()
        else:
            fact = err.mean()
        loss = fact + self._ipm_term(out["phi"], t)
        return loss, err.mean()


_COMMON_DOC = """
    Parameters
    ----------
    hidden, n_rep_layers : width and depth of the representation (ELU layers).
    head_hidden, n_head_layers : width and depth of each outcome head.
    dropout : dropout rate in every hidden layer.
    epochs, batch_size, lr : Adam training budget; ``patience`` epochs without validation
        improvement stop training early and the best weights are kept.
    weight_decay : L2 penalty on the outcome heads.
    val_fraction : share of rows held out for early stopping when ``fit`` gets no ``val_mask``.
    n_ensemble : number of independently initialised networks whose outputs are averaged
        (a deep ensemble, Lakshminarayanan et al. 2017); 1 is the published single network.
    device : "auto" (CUDA when present), "cpu" or "cuda[:N]".
    random_state : seed of initialisation, shuffling and the validation split.
    verbose : show a per-epoch progress bar.
"""


class TARNet(_RepresentationBalancing):
    __doc__ = (
        "Treatment-agnostic representation network (Shalit, Johansson & Sontag 2017).\n"
        + _COMMON_DOC
        + "    reweight : weight units by their arm's share (w = t/2u + (1-t)/2(1-u)).\n"
        + "    normalize_rep : scale the representation to unit norm (as CFR; TARNet is CFR with\n"
        + "        alpha = 0, so both share this setting by default).\n"
    )

    def __init__(
        self,
        hidden: int = 200,
        n_rep_layers: int = 3,
        head_hidden: int = 100,
        n_head_layers: int = 2,
        dropout: float = 0.0,
        epochs: int = 300,
        batch_size: int = 100,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        val_fraction: float = 0.3,
        patience: int = 30,
        reweight: bool = True,
        normalize_rep: bool = True,
        n_ensemble: int = 1,
        device: str = "auto",
        random_state: int | None = None,
        verbose: bool = False,
    ) -> None:
        store_params(self, locals())


class CFR(_RepresentationBalancing):
    __doc__ = (
        "Counterfactual regression with an IPM penalty (Shalit, Johansson & Sontag 2017).\n"
        + _COMMON_DOC
        + "    reweight : weight units by their arm's share.\n"
        + "    normalize_rep : scale the representation to unit norm before the heads and the IPM.\n"
        + "    ipm : 'wass' (Sinkhorn Wasserstein, Cuturi 2013) or 'mmd' (RBF MMD^2).\n"
        + "    alpha : weight of the IPM penalty.\n"
        + "    ipm_param : Sinkhorn lambda for 'wass', RBF bandwidth sigma for 'mmd'.\n"
    )

    def __init__(
        self,
        ipm: str = "wass",
        alpha: float = 1.0,
        ipm_param: float | None = None,
        hidden: int = 200,
        n_rep_layers: int = 3,
        head_hidden: int = 100,
        n_head_layers: int = 2,
        dropout: float = 0.0,
        epochs: int = 300,
        batch_size: int = 100,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        val_fraction: float = 0.3,
        patience: int = 30,
        reweight: bool = True,
        normalize_rep: bool = True,
        n_ensemble: int = 1,
        device: str = "auto",
        random_state: int | None = None,
        verbose: bool = False,
    ) -> None:
        store_params(self, locals())

    def _fit(self, Y, T, X, **fit_params):
        if self.ipm not in IPMS:
            raise ValueError(f"ipm must be one of {sorted(IPMS)}, got {self.ipm!r}")
        if self.alpha < 0:
            raise ValueError(f"alpha must be non-negative, got {self.alpha}")
        super()._fit(Y, T, X, **fit_params)

    def _ipm_term(self, phi, t):
        if self.alpha == 0:
            return phi.new_zeros(())
        treated, control = phi[t > 0.5], phi[t <= 0.5]
        if self.ipm == "wass":
            lam = 10.0 if self.ipm_param is None else float(self.ipm_param)
            dist = IPMS["wass"](treated, control, lam=lam)
        else:
            sigma = 1.0 if self.ipm_param is None else float(self.ipm_param)
            dist = IPMS["mmd"](treated, control, sigma=sigma)
        return self.alpha * dist


class DragonNet(NeuralCATELearner):
    __doc__ = (
        "DragonNet with optional targeted regularisation (Shi, Blei & Veitch 2019).\n"
        + _COMMON_DOC
        + "    alpha : weight of the propensity cross-entropy.\n"
        + "    targeted_reg : add the targeted-regularisation term with weight ``beta``.\n"
    )
    _propensity_head = True

    def __init__(
        self,
        targeted_reg: bool = False,
        alpha: float = 1.0,
        beta: float = 1.0,
        hidden: int = 200,
        n_rep_layers: int = 3,
        head_hidden: int = 100,
        n_head_layers: int = 2,
        dropout: float = 0.0,
        epochs: int = 300,
        batch_size: int = 100,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        val_fraction: float = 0.3,
        patience: int = 30,
        n_ensemble: int = 1,
        device: str = "auto",
        random_state: int | None = None,
        verbose: bool = False,
    ) -> None:
        store_params(self, locals())

    def _loss(self, net, batch):
        out = net(batch["x"])
        t, y = batch["t"], batch["y"]
        pred = self._factual(out, t)
        err = ((y - pred) ** 2).mean()
        loss = err + self.alpha * F.binary_cross_entropy_with_logits(out["e_logit"], t)
        if self.targeted_reg:
            g = torch.sigmoid(out["e_logit"]).clamp(0.01, 0.99)
            h = t / g - (1 - t) / (1 - g)
            q_tilde = pred + out["eps"] * h
            loss = loss + self.beta * ((y - q_tilde) ** 2).mean()
        return loss, err

    def propensity(self, X: Any) -> np.ndarray:
        """Estimated propensity g(x) = P(T = 1 | x) from the propensity head."""
        from sklearn.utils.validation import check_is_fitted

        from ..validation import check_features

        check_is_fitted(self, "fitted_")
        x = check_features(X, self.n_features_in_)
        return 1.0 / (1.0 + np.exp(-self._forward(x)["e_logit"]))
