"""Integral probability metrics between treated and control representations (CFR penalties).

- :func:`mmd2_rbf`: squared maximum mean discrepancy with a Gaussian kernel (Gretton et al. 2012),
  MMD^2 = E k(a,a') + E k(b,b') - 2 E k(a,b), biased (V-statistic) estimate.
- :func:`wasserstein_sinkhorn`: entropy-regularised optimal transport cost (Cuturi 2013) with
  the Euclidean ground cost, computed by Sinkhorn iterations on a fixed plan; the gradient
  flows through the cost matrix, not through the iterations (as in Shalit et al. 2017).
Both return 0 when one of the groups is empty in the batch.
"""

from __future__ import annotations

import torch


def mmd2_rbf(a: torch.Tensor, b: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """Biased squared MMD between samples ``a`` (n, d) and ``b`` (m, d), RBF bandwidth sigma."""
    if len(a) == 0 or len(b) == 0:
        return a.new_zeros(())
    gamma = 1.0 / (2.0 * sigma**2)
    kaa = torch.exp(-gamma * torch.cdist(a, a).pow(2)).mean()
    kbb = torch.exp(-gamma * torch.cdist(b, b).pow(2)).mean()
    kab = torch.exp(-gamma * torch.cdist(a, b).pow(2)).mean()
    return kaa + kbb - 2.0 * kab


def wasserstein_sinkhorn(
    a: torch.Tensor, b: torch.Tensor, lam: float = 10.0, n_iter: int = 10
) -> torch.Tensor:
    """Entropic Wasserstein-1 distance between uniform empirical measures on ``a`` and ``b``.

    With cost M_ij = ||a_i - b_j||, kernel K = exp(-lam M / mean(M)), Sinkhorn scalings
    u <- p / (K v), v <- q / (K' u) give the plan P = diag(u) K diag(v); the distance is
    sum(P * M) with P held fixed for the gradient.
    """
    if len(a) == 0 or len(b) == 0:
        return a.new_zeros(())
    M = torch.cdist(a, b)
    with torch.no_grad():
        scale = M.mean().clamp_min(1e-8)
        K = torch.exp(-lam * M / scale).clamp_min(1e-30)
        p = torch.full((len(a),), 1.0 / len(a), device=a.device, dtype=a.dtype)
        q = torch.full((len(b),), 1.0 / len(b), device=a.device, dtype=a.dtype)
        v = torch.ones_like(q)
        for _ in range(n_iter):
            u = p / (K @ v).clamp_min(1e-30)
            v = q / (K.T @ u).clamp_min(1e-30)
        plan = u[:, None] * K * v[None, :]
    return (plan * M).sum()


IPMS = {"wass": wasserstein_sinkhorn, "mmd": mmd2_rbf}
