"""Torch modules of the representation learners (TARNet/CFR and DragonNet).

Both share a representation ``phi = Phi(x)`` (fully connected ELU layers) and one outcome head
per arm, ``h_t(phi)`` (Shalit, Johansson & Sontag 2017). DragonNet (Shi, Blei & Veitch 2019)
adds a propensity head ``g(phi) = sigmoid(w'phi + b)`` and a scalar ``epsilon`` for targeted
regularisation.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..validation import check_int, check_number


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
    ``n_rep_layers`` and ``n_head_layers`` must be >= 1 (ValueError otherwise). ``weight_init``
    None keeps torch's default initialisation; a number ``s`` draws every weight from
    N(0, s^2 / fan_in) with zero biases (cfrnet's ``weight_init``, ``cfr/cfr_net.py`` line 101).
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
        weight_init: float | None = None,
    ) -> None:
        super().__init__()
        # zero layers would leave the heads' input width wrong: refuse them here, by name
        n_rep_layers = check_int(n_rep_layers, "n_rep_layers", 1)
        n_head_layers = check_int(n_head_layers, "n_head_layers", 1)
        self.normalize_rep = normalize_rep
        self.rep = mlp(in_dim, hidden, n_rep_layers, dropout)
        self.heads = nn.ModuleList(
            nn.Sequential(mlp(hidden, head_hidden, n_head_layers, dropout), nn.Linear(head_hidden, 1))
            for _ in range(2)
        )
        self.propensity = nn.Linear(hidden, 1) if propensity_head else None
        self.eps = nn.Parameter(torch.zeros(1)) if propensity_head else None
        if weight_init is not None:
            scale = check_number(weight_init, "weight_init", 0.0, low_open=True)
            with torch.no_grad():
                for layer in self.modules():
                    if isinstance(layer, nn.Linear):
                        layer.weight.normal_(0.0, scale / math.sqrt(layer.in_features))
                        layer.bias.zero_()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        phi = self.rep(x)
        if self.normalize_rep:
            phi = phi / phi.norm(dim=1, keepdim=True).clamp_min(1e-8)
        out = {"phi": phi, "mu0": self.heads[0](phi)[:, 0], "mu1": self.heads[1](phi)[:, 0]}
        if self.propensity is not None:
            out["e_logit"] = self.propensity(phi)[:, 0]
            out["eps"] = self.eps
        return out

    def head_parameters(self, biases: bool = True) -> list[nn.Parameter]:
        """Parameters of the outcome heads (the ones the weight decay penalises).

        With ``biases=False`` only the weight matrices, as cfrnet (``cfr/cfr_net.py`` lines
        229-249: weights of the output layers) and DragonNet's reference code (Keras
        ``kernel_regularizer`` on the head layers, ``src/experiment/models.py`` lines 127-138 of
        claudiashi57/dragonnet) penalise.
        """
        return [
            p for h in self.heads for name, p in h.named_parameters()
            if biases or not name.endswith("bias")
        ]
