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

Each has a *stacked* form (:data:`STACKED_IPMS`) for batched training
(:mod:`~ehrcausal.learners.batched`): it takes the representations of K members' mini-batches
``phi`` (K, B, d) and their treatments ``t`` (K, B), and returns the K penalties (K,), each the
same quantity as the function above on that member's treated and control rows. The arms are
selected by masks instead of by indexing (members have different numbers of treated units), so
the sums run over all B x B pairs with the pairs outside the arms weighted by zero; the result
equals the per-member function up to rounding.
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


def _arm_masks(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Treated and control masks (K, B) of stacked treatments, and their counts (K,)."""
    a = (t > 0.5).to(t.dtype)
    c = 1.0 - a
    return a, c, a.sum(dim=1), c.sum(dim=1)


def mmd2_rbf_stacked(
    phi: torch.Tensor, t: torch.Tensor, sigma: float = 0.1, p: float = 0.5
) -> torch.Tensor:
    """:func:`mmd2_rbf` of each member k between ``phi[k][t[k] = 1]`` and ``phi[k][t[k] = 0]``."""
    sigma = check_number(sigma, "sigma", 0.0, low_open=True)
    p = check_number(p, "p", 0.0, 1.0, low_open=True, high_open=True)
    a, c, n, m = _arm_masks(t)
    kern = torch.exp(-(1.0 / sigma**2) * torch.cdist(phi, phi).pow(2))
    ktt = torch.einsum("ki,kij,kj->k", a, kern, a) - n
    kcc = torch.einsum("ki,kij,kj->k", c, kern, c) - m
    kct = torch.einsum("ki,kij,kj->k", c, kern, a)
    ok = (n >= 2) & (m >= 2)
    n2, m2 = n.clamp_min(2), m.clamp_min(2)
    mmd = (1 - p) ** 2 / (m2 * (m2 - 1)) * kcc + p**2 / (n2 * (n2 - 1)) * ktt
    out = 4.0 * (mmd - 2.0 * p * (1 - p) / (m2 * n2) * kct)
    return torch.where(ok, out, torch.zeros_like(out))


def mmd2_linear_stacked(phi: torch.Tensor, t: torch.Tensor, p: float = 0.5) -> torch.Tensor:
    """:func:`mmd2_linear` of each member k between its treated and control rows."""
    p = check_number(p, "p", 0.0, 1.0, low_open=True, high_open=True)
    a, c, n, m = _arm_masks(t)
    mean_a = torch.einsum("kb,kbd->kd", a, phi) / n.clamp_min(1)[:, None]
    mean_c = torch.einsum("kb,kbd->kd", c, phi) / m.clamp_min(1)[:, None]
    out = (2 * p * mean_a - 2 * (1 - p) * mean_c).pow(2).sum(dim=1)
    return torch.where((n > 0) & (m > 0), out, torch.zeros_like(out))


def wasserstein_sinkhorn_stacked(
    phi: torch.Tensor, t: torch.Tensor, lam: float = 10.0, n_iter: int = 10
) -> torch.Tensor:
    """:func:`wasserstein_sinkhorn` of each member k between its treated and control rows.

    The cost matrix is computed over all pairs and the kernel is zero outside treated x control
    pairs; the marginals put mass 1/n on each treated row and 1/m on each control column, so
    the Sinkhorn scalings of the other rows and columns are zero and the plan is the member's.
    """
    a, c, n, m = _arm_masks(t)
    M = torch.cdist(phi, phi)
    pair = a[:, :, None] * c[:, None, :]
    with torch.no_grad():
        scale = ((M * pair).sum(dim=(1, 2)) / (n * m).clamp_min(1)).clamp_min(1e-8)
        K = torch.exp(-lam * M / scale[:, None, None]).clamp_min(1e-30) * pair
        p = a / n.clamp_min(1)[:, None]
        q = c / m.clamp_min(1)[:, None]
        v = torch.ones_like(q)
        for _ in range(n_iter):
            u = p / torch.bmm(K, v[:, :, None])[:, :, 0].clamp_min(1e-30)
            v = q / torch.bmm(K.transpose(1, 2), u[:, :, None])[:, :, 0].clamp_min(1e-30)
        plan = u[:, :, None] * K * v[:, None, :]
    out = (plan * M).sum(dim=(1, 2))
    return torch.where((n > 0) & (m > 0), out, torch.zeros_like(out))


#: the penalties CFR accepts, by its ``ipm`` name
IPMS = {"wass": wasserstein_sinkhorn, "mmd": mmd2_rbf, "mmd_lin": mmd2_linear}
#: their stacked forms (K members at once), by the same names
STACKED_IPMS = {"wass": wasserstein_sinkhorn_stacked, "mmd": mmd2_rbf_stacked,
                "mmd_lin": mmd2_linear_stacked}
#: default ``ipm_param`` of each penalty (Sinkhorn lambda; RBF bandwidth; none)
IPM_DEFAULT_PARAM = {"wass": 10.0, "mmd": 0.1, "mmd_lin": None}
