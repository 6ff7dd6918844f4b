"""Integral probability metrics between treated and control representations (CFR penalties).

Each function takes the treated representations ``a`` (n, d) and the control ones ``b`` (m, d).

- :func:`mmd2_rbf`: the squared maximum mean discrepancy with a Gaussian kernel as cfrnet
  computes it (``mmd2_rbf`` in ``cfr/util.py``, lines 119-140, of clinicalml/cfrnet): kernel
  k(x, y) = exp(-||x - y||^2 / sigma^2), the unbiased (U-statistic) estimate with the diagonal
  terms left out and the arms weighted by p (Gretton et al. 2012),

      MMD^2 = 4 [ (1-p)^2/(m(m-1)) sum_{j!=j'} k(b_j, b_j') + p^2/(n(n-1)) sum_{i!=i'} k(a_i, a_i')
                  - 2 p(1-p)/(nm) sum_{i,j} k(a_i, b_j) ],

  which is the usual unbiased MMD^2 at p = 1/2 (cfrnet's IHDP configuration sets
  ``use_p_correction=0``, i.e. p = 1/2, ``cfr/cfr_net.py`` lines 168-171) and can be negative.
  cfrnet's default bandwidth is sigma = 0.1 (``rbf_sigma``, ``cfr_net_train.py`` line 30), on
  unit-norm representations.
- :func:`mmd2_linear`: cfrnet's squared linear MMD (``mmd2_lin``, ``cfr/util.py`` lines
  103-117), ||2p mean(a) - 2(1-p) mean(b)||^2, i.e. ||mean(a) - mean(b)||^2 at p = 1/2.
- :func:`wasserstein_sinkhorn`: entropy-regularised optimal transport cost (Cuturi 2013) with
  the Euclidean ground cost, computed by Sinkhorn iterations on a fixed plan; the gradient
  flows through the cost matrix, not through the iterations. (cfrnet's function can do either;
  its IHDP configuration back-propagates through the plan, ``wass_bpt=1`` in
  ``configs/example_ihdp.txt``, and adds a mass-p dummy row and column to the cost matrix,
  ``cfr/util.py`` lines 166-218.)

All return 0 when a group is too small for the estimate (empty; fewer than two rows for the
unbiased MMD, whose within-group averages need two).
"""

from __future__ import annotations

import torch

from ..validation import check_number


def mmd2_rbf(
    a: torch.Tensor, b: torch.Tensor, sigma: float = 0.1, p: float = 0.5
) -> torch.Tensor:
    """cfrnet's unbiased, p-weighted RBF MMD^2 between ``a`` (treated) and ``b`` (control).

    Kernel exp(-||x - y||^2 / sigma^2); see the module docstring for the formula. ``sigma > 0``
    is the bandwidth, ``p`` in (0, 1) the treated share used to weight the arms (1/2 in
    cfrnet's IHDP configuration).
    """
    sigma = check_number(sigma, "sigma", 0.0, low_open=True)
    p = check_number(p, "p", 0.0, 1.0, low_open=True, high_open=True)
    n, m = len(a), len(b)
    if n < 2 or m < 2:
        return a.new_zeros(())
    inv = 1.0 / sigma**2
    ktt = torch.exp(-inv * torch.cdist(a, a).pow(2)).sum() - n
    kcc = torch.exp(-inv * torch.cdist(b, b).pow(2)).sum() - m
    kct = torch.exp(-inv * torch.cdist(b, a).pow(2)).sum()
    mmd = (1 - p) ** 2 / (m * (m - 1)) * kcc + p**2 / (n * (n - 1)) * ktt
    return 4.0 * (mmd - 2.0 * p * (1 - p) / (m * n) * kct)


def mmd2_linear(a: torch.Tensor, b: torch.Tensor, p: float = 0.5) -> torch.Tensor:
    """cfrnet's squared linear MMD ||2p mean(a) - 2(1-p) mean(b)||^2 (``a`` treated)."""
    p = check_number(p, "p", 0.0, 1.0, low_open=True, high_open=True)
    if len(a) == 0 or len(b) == 0:
        return a.new_zeros(())
    return (2 * p * a.mean(dim=0) - 2 * (1 - p) * b.mean(dim=0)).pow(2).sum()


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


#: the penalties CFR accepts, by its ``ipm`` name
IPMS = {"wass": wasserstein_sinkhorn, "mmd": mmd2_rbf, "mmd_lin": mmd2_linear}
#: default ``ipm_param`` of each penalty (Sinkhorn lambda; RBF bandwidth; none)
IPM_DEFAULT_PARAM = {"wass": 10.0, "mmd": 0.1, "mmd_lin": None}
