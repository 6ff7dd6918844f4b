"""Torch modules of the representation learners (TARNet/CFR and DragonNet).

Both share a representation ``phi = Phi(x)`` (fully connected ELU layers) and one outcome head
per arm, ``h_t(phi)`` (Shalit, Johansson & Sontag 2017). DragonNet (Shi, Blei & Veitch 2019)
adds a propensity head ``g(phi) = sigmoid(w'phi + b)`` and a scalar ``epsilon`` for targeted
regularisation.
"""

from __future__ import annotations

import torch
from torch import nn


def mlp(in_dim: int, width: int, n_layers: int, dropout: float = 0.0) -> nn.Sequential:
    """``n_layers`` blocks of Linear -> ELU (-> Dropout); the output width is ``width``."""
    layers: list[nn.Module] = []
    d = in_dim
    for _ in range(n_layers):
        layers += [nn.Linear(d, width), nn.ELU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        d = width
    return nn.Sequential(*layers)


class TwoHeadNet(nn.Module):
    """Shared representation and two outcome heads; optional propensity head and epsilon.

    forward(x) returns a dict with ``phi`` (representation), ``mu0``, ``mu1`` (head outputs on
    the standardised outcome scale) and, with ``propensity_head``, ``e_logit`` and ``eps``.
    """

    def __init__(
        self,
        in_dim: int,
        hidden: int = 200,
        n_rep_layers: int = 3,
        head_hidden: int = 100,
        n_head_layers: int = 2,
        dropout: float = 0.0,
        normalize_rep: bool = False,
        propensity_head: bool = False,
    ) -> None:
        super().__init__()
        self.normalize_rep = normalize_rep
        self.rep = mlp(in_dim, hidden, n_rep_layers, dropout)
        self.heads = nn.ModuleList(
            nn.Sequential(mlp(hidden, head_hidden, n_head_layers, dropout), nn.Linear(head_hidden, 1))
            for _ in range(2)
        )
        self.propensity = nn.Linear(hidden, 1) if propensity_head else None
        self.eps = nn.Parameter(torch.zeros(1)) if propensity_head else None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        phi = self.rep(x)
        if self.normalize_rep:
            phi = phi / phi.norm(dim=1, keepdim=True).clamp_min(1e-8)
        out = {"phi": phi, "mu0": self.heads[0](phi)[:, 0], "mu1": self.heads[1](phi)[:, 0]}
        if self.propensity is not None:
            out["e_logit"] = self.propensity(phi)[:, 0]
            out["eps"] = self.eps
        return out

    def head_parameters(self) -> list[nn.Parameter]:
        """Parameters of the outcome heads (those Shalit et al. penalise with weight decay)."""
        return [p for h in self.heads for p in h.parameters()]
