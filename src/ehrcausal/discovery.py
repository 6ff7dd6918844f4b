"""Direct effect modifiers in a randomised trial: the NEXIS search and its baselines.

In a randomised experiment with outcome ``Y``, binary treatment ``T`` and many candidate
features ``Z`` (sparse-autoencoder neurons of a note embedding, or any numeric columns), a
feature *directly* modifies the effect when it stays associated with the effect once the other
modifiers are held fixed. Cadei et al. (2026, "From Tokens to Policy", arXiv 2606.17010, Sec. 3)
search for that Markov blanket of the effect with a forward-backward procedure built on one
test.

The test of candidate ``j`` given a set ``S``
    The working model is ``Y = b0 + bT T + Z_S b_S + T Z_S g_S + bj Z_j + gj T Z_j + e`` and the
    null is ``gj = 0``. By Frisch-Waugh-Lovell, with ``D = [1, T, Z_S, T Z_S]`` (``q`` columns,
    ``D = QR``) and ``~`` the residual on the column space of ``D`` (``v~ = v - Q Q'v``), ``gj``
    is the coefficient on ``x~ = (T Z_j)~`` in the two-regressor OLS of ``y~`` on
    ``[z~ = Z_j~, x~]``:

        gj = (zz xy - zx zy) / det,   det = zz xx - zx^2,

    where ``ab = a~' b~ = a'b - (Q'a)'(Q'b)``. Every inner product is formed for all candidates
    at once from ``Q'Z`` and ``Q'(T Z)`` (two matrix products over all columns), so the cost of
    one round is a few passes over ``Z``, not one regression per candidate. Variances:

    - ``"nonrobust"``: ``s^2 zz / det`` with ``s^2 = (yy - bj zy - gj xy) / (n - q - 2)``, a
      t-test with ``n - q - 2`` degrees of freedom (exact under homoskedastic Gaussian errors);
    - ``"HC1"``: the sandwich ``n / (n - q - 2) * (zz^2 S_xx - 2 zz zx S_zx + zx^2 S_zz) / det^2``
      with ``S_ab = sum_i a~_i b~_i e_i^2``;
    - ``"cluster"`` (CR1S): the same with ``S_ab = sum_g (sum_{i in g} a~_i e_i)(sum_{i in g}
      b~_i e_i)`` scaled by ``G / (G - 1) * (n - 1) / (n - q - 2)``, and ``G - 1`` degrees of
      freedom (G clusters).

    Small-sample corrections (``small_sample=True``, the default; robust variances only).
    ``gj = sum_i c_i y~_i`` with ``c = (zz x~ - zx z~) / det``, so a robust variance is a sum
    of squared contributions, one per cluster (per unit with HC1). For a candidate that is
    non-zero in a few units, those units have high leverage (their residuals are shrunk
    towards zero) and a few contributions carry all the weight, so the variance estimate is
    biased down and has far fewer degrees of freedom than ``G - 1``: referred to ``t_{G-1}``
    the t-statistic is heavy-tailed, which a Bonferroni level over many candidates exposes.
    Two corrections, after Bell & McCaffrey (2002) and Imbens & Kolesar (2016, Sec. 3-4):

    - residuals ``e_i / sqrt(1 - h_ii)`` in the meat, with ``h_ii`` the unit's leverage in the
      full design (``||Q_i||^2`` plus the candidate's share ``(xx z~_i^2 - 2 zx z~_i x~_i +
      zz x~_i^2) / det``) and no ``n / (n - q - 2)`` or ``G / (G - 1)`` factor: exactly HC2
      for ``"HC1"``; for ``"cluster"`` the diagonal part of CR2's ``(I - H_gg)^{-1/2}`` (the
      full block inverse square root per cluster and candidate is not computed);
    - Satterthwaite degrees of freedom: under independent homoskedastic errors the estimate
      is about ``sigma^2 sum_g w_g chi2_1`` with ``w_g = sum_{i in g} c_i^2``, so
      ``nu = (sum_g w_g)^2 / sum_g w_g^2``, and ``t`` is referred to ``t_{min(nu, G - 1)}``
      (``t_{min(nu, n - q - 2)}`` with HC1).

    ``small_sample=False`` gives HC1 and CR1S with the default degrees of freedom, as the
    released code.

    Each column of ``Z`` is centred and scaled first; this leaves every t-statistic unchanged
    (``T`` and the intercept are in ``D``) and keeps the inner products well conditioned. A
    candidate whose residual ``zz`` or ``xx`` is below ``1e-10`` times its raw sum of squares,
    or whose ``det`` is below ``1e-10 zz xx`` (it or its interaction is collinear with the
    current design), gets ``t = 0`` and ``p = 1``.

The search (:func:`nexis`)
    Neurons active (non-zero) in fewer than ``min_active`` units are dropped first (the released
    code keeps neurons active in at least 5 units, ``src/apps/ghana/interaction_regression.py``
    line 99). Then, in rounds (at most ``max_rounds``), until ``S`` stops changing:

    1. forward: among the remaining candidates with ``p <= alpha / |remaining|`` (Bonferroni),
       take the one with the largest ``|t|``; stop the search if ``|t_new| < rho min_{k in S}
       |t_k|`` (the "spectral gap" gate; ``rho = 0`` disables it);
    2. backward: for each ``j`` in ``S`` in turn, drop it when ``p(j | S \\ {j}) > alpha / |S|``.

    The gate's ``|t_k|`` is the statistic with which ``k`` entered ``S``. In the released code
    (``src/method/nexis.py`` of riccardocadei/NEXIS: ``t_selected`` is appended at line 635 and
    never pruned when line 684 removes a neuron) the gate keeps the values of neurons that the
    backward step removed: a stale gate. ``released=False`` (the default) keeps only the
    values of the neurons currently in ``S``; ``released=True`` reproduces the released gate.

Baselines with the same call shape: :func:`marginal` (the test with ``S`` empty, Bonferroni or
Benjamini-Hochberg), :func:`lasso_interactions` (LASSO on the ``T x Z`` interactions, with the
penalty chosen by cross-validation) and :func:`forest_importance` (the ``k`` most important
splitting features of a causal forest, Athey, Tibshirani & Wager 2019).

Each returns a :class:`Discovery`: ``selected`` (column indices of ``Z``), ``tvalues`` and
``pvalues`` (one per column; NaN for a column not tested), and for NEXIS the ``rounds``.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse, stats

from .runtime import check_seed
from .validation import as_1d, as_2d, check_int, check_number, check_same_length, check_treatment

__all__ = [
    "COV_TYPES",
    "CORRECTIONS",
    "SearchRound",
    "Discovery",
    "interaction_tests",
    "nexis",
    "marginal",
    "lasso_interactions",
    "forest_importance",
    "selection_metrics",
    "subgroup_effects",
    "distinct_columns",
]

#: Variance estimators of the interaction test.
COV_TYPES: tuple[str, ...] = ("nonrobust", "HC1", "cluster")
#: Multiple-testing corrections of :func:`marginal`.
CORRECTIONS: tuple[str, ...] = ("bonferroni", "bh")

_DET_TOL = 1e-10
_CHUNK_BYTES = 256 * 2**20


@dataclass(frozen=True)
class SearchRound:
    """One round of the NEXIS search.

    ``added`` is the neuron admitted by the forward step (``None`` if none was eligible or the
    gate stopped the search), with its ``t`` and ``p``; ``threshold`` the Bonferroni level
    ``alpha / |remaining|``; ``eligible`` how many candidates passed it; ``gate_stop`` whether
    the rho gate ended the search (``candidate`` is then the neuron it refused); ``removed`` the
    neurons the backward step dropped; ``selected`` the set at the end of the round.
    """

    number: int
    threshold: float
    eligible: int
    added: int | None
    t: float
    p: float
    gate_stop: bool
    candidate: int | None
    removed: tuple[int, ...]
    selected: tuple[int, ...]


@dataclass(frozen=True)
class Discovery:
    """The result of a modifier search.

    ``selected``: column indices of ``Z`` (for NEXIS in order of admission, otherwise
    ascending). ``tvalues``, ``pvalues``: per column, the test of the column given the final
    selection (for a selected column, given the others selected); NaN for a column not tested
    (dropped as rarely active) and for methods without a test (LASSO, forest), whose ranking is
    in ``scores``. ``tested``: the columns the method saw. ``rounds``: NEXIS only.
    """

    method: str
    selected: np.ndarray
    tvalues: np.ndarray
    pvalues: np.ndarray
    tested: np.ndarray
    alpha: float | None = None
    rounds: tuple[SearchRound, ...] = ()
    scores: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


@dataclass
class _Problem:
    """Validated inputs with the standardised columns and their raw inner products."""

    y: np.ndarray
    t: np.ndarray
    Zt: np.ndarray  # standardised kept columns, transposed (m_kept, n), C-ordered
    kept: np.ndarray  # column indices of the original Z
    m: int
    clusters: np.ndarray | None  # integer codes 0..G-1
    n_clusters: int
    cov_type: str
    small_sample: bool = True  # robust tests: Satterthwaite degrees of freedom
    zz: np.ndarray = field(init=False)
    tzz: np.ndarray = field(init=False)
    zy: np.ndarray = field(init=False)
    tzy: np.ndarray = field(init=False)
    yy: float = field(init=False)

    def __post_init__(self) -> None:
        Zt, t, y = self.Zt, self.t, self.y
        self.zz = np.einsum("ij,ij->i", Zt, Zt)
        self.tzz = np.einsum("ij,ij,j->i", Zt, Zt, t)
        self.zy = Zt @ y
        self.tzy = Zt @ (t * y)
        self.yy = float(y @ y)

    @property
    def Z(self) -> np.ndarray:
        """The standardised kept columns (n, m_kept), a Fortran-ordered view."""
        return self.Zt.T


def distinct_columns(Z: Any, decimals: int = 10) -> np.ndarray:
    """Indices of the first column of each group of affinely identical columns of ``Z``.

    Two columns are affinely identical when ``a = c b + d`` for constants ``c != 0`` and ``d``
    (compared after centring, scaling and fixing the sign, rounded to ``decimals``). Constant
    columns are left out. :func:`nexis` refuses such duplicates; pass ``Z[:, distinct_columns(Z)]``.
    """
    X = as_2d(Z, "Z")
    sd = X.std(axis=0)
    keep = []
    seen: set[bytes] = set()
    for j in np.flatnonzero(sd > 1e-12 * np.maximum(1.0, np.abs(X).max(axis=0))):
        key = _column_key(X[:, j], decimals)
        if key not in seen:
            seen.add(key)
            keep.append(int(j))
    return np.asarray(keep, dtype=int)


def _column_key(col: np.ndarray, decimals: int) -> bytes:
    z = (col - col.mean()) / col.std()
    nz = np.flatnonzero(np.abs(z) > 1e-8)
    if nz.size and z[nz[0]] < 0:
        z = -z
    z = np.round(z, decimals) + 0.0  # -0.0 -> 0.0
    return hashlib.sha256(z.tobytes()).digest()


def _affine_duplicate(Zt: np.ndarray) -> tuple[int, int] | None:
    """A pair of standardised rows equal up to sign (affinely identical columns), or None.

    Candidates are found with one product, the fingerprint ``|Zt r|`` for a fixed random
    ``r``, and confirmed by comparing the rows.
    """
    if Zt.shape[0] < 2:
        return None
    r = np.random.default_rng(0).standard_normal(Zt.shape[1])
    f = np.abs(Zt @ r)
    order = np.argsort(f, kind="stable")
    fs = f[order]
    close = np.flatnonzero(np.diff(fs) <= 1e-8 * (1.0 + fs[1:]))
    for i in close.tolist():
        a, b = sorted((int(order[i]), int(order[i + 1])))
        if np.allclose(Zt[a], Zt[b], atol=1e-8) or np.allclose(Zt[a], -Zt[b], atol=1e-8):
            return a, b
    return None


def _check_inputs(
    Y: Any, T: Any, Z: Any, *, cov_type: str, clusters: Any, min_active: Any,
    small_sample: Any = True,
) -> _Problem:
    y = as_1d(Y, "Y")
    t = check_treatment(T).astype(float)
    X = as_2d(Z, "Z")
    check_same_length(Y=y, T=t, Z=X)
    n, m = X.shape
    for arm, count in (("treated (T=1)", int(t.sum())), ("control (T=0)", int(n - t.sum()))):
        if count < 2:
            raise ValueError(f"T must have at least 2 units in each arm; the {arm} arm has {count}")
    if cov_type not in COV_TYPES:
        raise ValueError(f"cov_type must be one of {COV_TYPES}, got {cov_type!r}")
    codes, n_clusters = None, 0
    if cov_type == "cluster":
        if clusters is None:
            raise ValueError("clusters is required when cov_type='cluster' (one id per unit)")
        ids = np.asarray(clusters)
        if ids.ndim != 1 or ids.shape[0] != n:
            raise ValueError(
                f"clusters must hold one id per unit: length {n} (rows of Z), got shape "
                f"{ids.shape}"
            )
        _, codes = np.unique(ids, return_inverse=True)
        n_clusters = int(codes.max()) + 1
        if n_clusters < 2:
            raise ValueError(f"clusters must name at least 2 clusters, got {n_clusters}")
    elif clusters is not None:
        raise ValueError(f"clusters is used only with cov_type='cluster', got cov_type={cov_type!r}")
    min_active = check_int(min_active, "min_active", 0)
    if not isinstance(small_sample, bool):
        raise ValueError(f"small_sample must be True or False, got {small_sample!r}")

    active = np.count_nonzero(X, axis=0)
    kept = np.flatnonzero(active >= min_active)
    # work on the transpose: one contiguous row per candidate
    Xt = np.ascontiguousarray(X.T[kept]) if kept.size < m else np.ascontiguousarray(X.T)
    mean = Xt.mean(axis=1)
    Xt -= mean[:, None]
    sd = np.sqrt(np.einsum("ij,ij->i", Xt, Xt) / n)
    scale = np.maximum(1.0, np.abs(mean) + np.abs(Xt).max(axis=1)) if kept.size else np.ones(0)
    constant = kept[sd <= 1e-12 * scale]
    if constant.size:
        raise ValueError(
            f"Z has constant column(s) {constant[:6].tolist()}: a constant candidate cannot "
            "modify the effect; drop it"
        )
    if kept.size >= n:
        raise ValueError(
            f"Z has {kept.size} candidate columns (active in >= {min_active} units) for {n} "
            "units: the search needs fewer candidates than units; reduce the candidates (a "
            "smaller dictionary, a larger min_active) or add units"
        )
    Xt /= sd[:, None]
    pair = _affine_duplicate(Xt)
    if pair is not None:
        a, b = int(kept[pair[0]]), int(kept[pair[1]])
        raise ValueError(
            f"Z has collinear candidate columns {a} and {b} (one is an affine function of "
            "the other), so their interactions cannot be told apart; keep one "
            "(ehrcausal.discovery.distinct_columns)"
        )
    return _Problem(y=y - y.mean(), t=t, Zt=Xt, kept=kept, m=m,
                    clusters=codes, n_clusters=n_clusters, cov_type=cov_type,
                    small_sample=small_sample)


# ---------------------------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------------------------


def _tests(pb: _Problem, S: list[int], cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """t-statistics and p-values of ``gj = 0`` for kept-column positions ``cand`` given ``S``."""
    n = pb.y.shape[0]
    t = pb.t
    cand = np.asarray(cand, dtype=int)
    K = cand.size
    tstat, pval = np.zeros(K), np.ones(K)
    if K == 0:
        return tstat, pval
    cols = [np.ones(n), t] + [pb.Z[:, s] for s in S] + [t * pb.Z[:, s] for s in S]
    q = len(cols)
    dof = n - q - 2
    if dof <= 0:
        return tstat, pval
    Q, R = np.linalg.qr(np.column_stack(cols))
    if np.abs(np.diag(R)).min() <= 1e-10 * np.abs(np.diag(R)).max():
        raise ValueError("the design [1, T, Z_S, T Z_S] is rank deficient")
    QT = Q * t[:, None]
    full = K > pb.Z.shape[1] // 2
    Zc = pb.Z if full else pb.Zt[cand].T
    QZ, QTZ = Q.T @ Zc, QT.T @ Zc
    if full:
        QZ, QTZ = QZ[:, cand], QTZ[:, cand]
    Qy = Q.T @ pb.y
    zz = pb.zz[cand] - np.einsum("ij,ij->j", QZ, QZ)
    xx = pb.tzz[cand] - np.einsum("ij,ij->j", QTZ, QTZ)
    zx = pb.tzz[cand] - np.einsum("ij,ij->j", QZ, QTZ)
    zy = pb.zy[cand] - Qy @ QZ
    xy = pb.tzy[cand] - Qy @ QTZ
    yy = pb.yy - float(Qy @ Qy)
    det = zz * xx - zx * zx
    # a candidate (or its interaction) in the span of the design is untestable
    valid = ((zz > _DET_TOL * pb.zz[cand]) & (xx > _DET_TOL * pb.tzz[cand])
             & (det > _DET_TOL * np.abs(zz * xx)))
    d = np.where(valid, det, 1.0)
    bx = np.where(valid, (zz * xy - zx * zy) / d, 0.0)
    bz = np.where(valid, (xx * zy - zx * xy) / d, 0.0)
    if pb.cov_type == "nonrobust":
        rss = np.maximum(yy - bz * zy - bx * xy, 0.0)
        var = rss / dof * zz / d
        df = dof
    else:
        szz, sxx, szx, eff = _meat(pb, Q, QZ, QTZ, Qy, cand, bz, bx, zz, xx, zx, d)
        var = (zz**2 * sxx - 2 * zz * zx * szx + zx**2 * szz) / d**2
        df = dof if pb.cov_type == "HC1" else pb.n_clusters - 1
        if pb.small_sample:
            df = np.minimum(df, np.maximum(eff, 1.0))
        elif pb.cov_type == "HC1":
            var *= n / dof
        else:
            G = pb.n_clusters
            var *= G / (G - 1) * (n - 1) / dof
    ok = valid & np.isfinite(var) & (var > 0)
    tstat[ok] = bx[ok] / np.sqrt(var[ok])
    pval[ok] = 2.0 * stats.t.sf(np.abs(tstat[ok]), np.broadcast_to(df, (K,))[ok])
    return tstat, pval


def _meat(
    pb: _Problem, Q: np.ndarray, QZ: np.ndarray, QTZ: np.ndarray, Qy: np.ndarray,
    cand: np.ndarray, bz: np.ndarray, bx: np.ndarray, zz: np.ndarray, xx: np.ndarray,
    zx: np.ndarray, det: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The sandwich's middle terms S_zz, S_xx, S_zx, in chunks of candidates (residuals needed),
    and each candidate's effective number of independent contributions
    ``(sum_g w_g)^2 / sum_g w_g^2`` with ``w_g = sum_{i in g} c_i^2`` (module docstring)."""
    n = pb.y.shape[0]
    K = cand.size
    y_r = pb.y - Q @ Qy
    h_design = np.einsum("ij,ij->i", Q, Q)  # leverage of each unit in D
    out = np.zeros((4, K))
    width = max(1, _CHUNK_BYTES // (8 * n * 5))
    ind = None
    if pb.cov_type == "cluster":
        ind = sparse.csr_matrix(
            (np.ones(n), (pb.clusters, np.arange(n))), shape=(pb.n_clusters, n)
        )
    for a in range(0, K, width):
        sl = slice(a, min(K, a + width))
        Zc = pb.Z[:, cand[sl]]
        z_r = Zc - Q @ QZ[:, sl]
        x_r = pb.t[:, None] * Zc - Q @ QTZ[:, sl]
        e = y_r[:, None] - z_r * bz[sl] - x_r * bx[sl]
        c2 = ((zz[sl] * x_r - zx[sl] * z_r) / det[sl]) ** 2  # squared weights of y~ in gj
        if pb.small_sample:  # HC2-type residuals e_i / sqrt(1 - h_ii)
            h = h_design[:, None] + (xx[sl] * z_r**2 - 2 * zx[sl] * z_r * x_r
                                     + zz[sl] * x_r**2) / det[sl]
            e = e / np.sqrt(np.clip(1.0 - h, 1e-8, None))
        if ind is None:
            e2 = e * e
            out[0, sl] = np.einsum("ij,ij->j", z_r * z_r, e2)
            out[1, sl] = np.einsum("ij,ij->j", x_r * x_r, e2)
            out[2, sl] = np.einsum("ij,ij->j", z_r * x_r, e2)
            w = c2
        else:
            gz, gx = ind @ (z_r * e), ind @ (x_r * e)
            out[0, sl] = np.einsum("ij,ij->j", gz, gz)
            out[1, sl] = np.einsum("ij,ij->j", gx, gx)
            out[2, sl] = np.einsum("ij,ij->j", gz, gx)
            w = ind @ c2
        tot = w.sum(axis=0)
        out[3, sl] = tot**2 / np.maximum(np.einsum("ij,ij->j", w, w), 1e-300)
    return out[0], out[1], out[2], out[3]


def _full(pb: _Problem, values: np.ndarray) -> np.ndarray:
    out = np.full(pb.m, np.nan)
    out[pb.kept] = values
    return out


def interaction_tests(
    Y: Any,
    T: Any,
    Z: Any,
    S: Any = (),
    *,
    cov_type: str = "nonrobust",
    clusters: Any = None,
    min_active: int = 5,
    small_sample: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """The test of every column ``j`` not in ``S`` given the columns ``S`` (module docstring).

    Returns ``(tvalues, pvalues)`` with one entry per column of ``Z``: NaN for the columns of
    ``S`` and for the columns dropped as active in fewer than ``min_active`` units.
    """
    pb = _check_inputs(Y, T, Z, cov_type=cov_type, clusters=clusters, min_active=min_active,
                      small_sample=small_sample)
    pos = {int(c): i for i, c in enumerate(pb.kept)}
    S_pos = []
    for s in np.atleast_1d(np.asarray(S, dtype=int)).tolist() if len(S) else []:
        if s not in pos:
            raise ValueError(f"S holds column {s}, which is not a tested column of Z")
        S_pos.append(pos[s])
    cand = np.array([i for i in range(pb.kept.size) if i not in set(S_pos)], dtype=int)
    t, p = _tests(pb, S_pos, cand)
    tv, pv = np.full(pb.kept.size, np.nan), np.full(pb.kept.size, np.nan)
    tv[cand], pv[cand] = t, p
    return _full(pb, tv), _full(pb, pv)


# ---------------------------------------------------------------------------------------------
# NEXIS
# ---------------------------------------------------------------------------------------------


def nexis(
    Y: Any,
    T: Any,
    Z: Any,
    *,
    alpha: float = 0.05,
    rho: float = 0.5,
    cov_type: str = "nonrobust",
    clusters: Any = None,
    released: bool = False,
    max_rounds: int = 20,
    min_active: int = 5,
    small_sample: bool = True,
) -> Discovery:
    """The NEXIS forward-backward search for the direct effect modifiers among the columns of Z.

    Parameters
    ----------
    Y : (n,) outcome. T : (n,) binary treatment (randomised). Z : (n, m) candidates.
    alpha : level in (0, 1) of the Bonferroni gates (forward ``alpha / |remaining|``, backward
        ``alpha / |S|``).
    rho : the gate in [0, 1]: a forward step whose ``|t|`` is below ``rho`` times the smallest
        ``|t|`` in ``S`` ends the search; 0 disables it.
    cov_type : ``"nonrobust"``, ``"HC1"`` or ``"cluster"`` (cluster-robust, with ``clusters``;
        HC1 and CR1S as released, or their small-sample versions: ``small_sample``).
    clusters : (n,) cluster ids (cluster randomisation), only with ``cov_type="cluster"``.
    released : reproduce the released code's stale gate (see the module docstring).
    max_rounds : at most this many forward-backward rounds (the released default, 20).
    min_active : columns non-zero in fewer units are dropped before the search.
    small_sample : with ``"HC1"`` or ``"cluster"``, leverage-corrected residuals (HC2, or
        CR2's diagonal) and each candidate's Satterthwaite degrees of freedom (module
        docstring); ``False`` gives HC1 or CR1S with ``n - q - 2`` or ``G - 1`` degrees of
        freedom, as the released code.

    Returns a :class:`Discovery` with the rounds. Cadei et al. (2026), Sec. 3.
    """
    alpha = check_number(alpha, "alpha", 0.0, 1.0, low_open=True, high_open=True)
    rho = check_number(rho, "rho", 0.0, 1.0)
    if not isinstance(released, bool):
        raise ValueError(f"released must be True or False, got {released!r}")
    max_rounds = check_int(max_rounds, "max_rounds", 1)
    pb = _check_inputs(Y, T, Z, cov_type=cov_type, clusters=clusters, min_active=min_active,
                      small_sample=small_sample)
    m_k = pb.kept.size
    selected: list[int] = []
    gate_t: list[tuple[int, float]] = []  # (neuron, |t| at admission)
    rounds: list[SearchRound] = []
    previous: list[int] | None = None
    for number in range(1, max_rounds + 1):
        if previous is not None and selected == previous:
            break
        previous = list(selected)
        in_s = set(selected)
        remaining = np.array([j for j in range(m_k) if j not in in_s], dtype=int)
        threshold, eligible, added, cand_j = math.nan, 0, None, None
        t_new = p_new = math.nan
        stop = False
        if remaining.size:
            tv, pv = _tests(pb, selected, remaining)
            threshold = alpha / remaining.size
            ok = np.flatnonzero(pv <= threshold)
            eligible = int(ok.size)
            if eligible:
                best = ok[np.argmax(np.abs(tv[ok]))]
                cand_j = int(remaining[best])
                t_new, p_new = float(abs(tv[best])), float(pv[best])
                if rho > 0 and gate_t and t_new < rho * min(v for _, v in gate_t):
                    stop = True
                else:
                    selected.append(cand_j)
                    gate_t.append((cand_j, t_new))
                    added = cand_j
        removed: list[int] = []
        if not stop:
            for j in list(selected):
                rest = [s for s in selected if s != j]
                _, pj = _tests(pb, rest, np.array([j]))
                if pj[0] > alpha / len(selected):
                    selected.remove(j)
                    removed.append(j)
                    if not released:
                        gate_t = [(k, v) for k, v in gate_t if k != j]
        rounds.append(SearchRound(
            number=number, threshold=threshold, eligible=eligible,
            added=None if added is None else int(pb.kept[added]), t=t_new, p=p_new,
            gate_stop=stop, candidate=None if cand_j is None else int(pb.kept[cand_j]),
            removed=tuple(int(pb.kept[j]) for j in removed),
            selected=tuple(int(pb.kept[j]) for j in selected),
        ))
        if stop:
            break
    tv_all, pv_all = np.zeros(m_k), np.ones(m_k)
    rest = np.array([j for j in range(m_k) if j not in set(selected)], dtype=int)
    tv_all[rest], pv_all[rest] = _tests(pb, selected, rest)
    for j in selected:
        tj, pj = _tests(pb, [s for s in selected if s != j], np.array([j]))
        tv_all[j], pv_all[j] = tj[0], pj[0]
    tested = np.zeros(pb.m, dtype=bool)
    tested[pb.kept] = True
    return Discovery(
        method="nexis (released gate)" if released else "nexis",
        selected=pb.kept[np.asarray(selected, dtype=int)], tvalues=_full(pb, tv_all),
        pvalues=_full(pb, pv_all), tested=tested, alpha=alpha, rounds=tuple(rounds),
        info={"rho": rho, "cov_type": cov_type, "released": released, "min_active": min_active,
              "small_sample": small_sample},
    )


# ---------------------------------------------------------------------------------------------
# Baselines
# ---------------------------------------------------------------------------------------------


def marginal(
    Y: Any,
    T: Any,
    Z: Any,
    *,
    alpha: float = 0.05,
    correction: str = "bonferroni",
    cov_type: str = "nonrobust",
    clusters: Any = None,
    min_active: int = 5,
    small_sample: bool = True,
) -> Discovery:
    """Marginal interaction tests: the test of each column with ``S`` empty, then a correction.

    ``correction="bonferroni"`` selects ``p_j <= alpha / m``; ``"bh"`` is the
    Benjamini-Hochberg step-up at level ``alpha`` (largest ``k`` with ``p_(k) <= k alpha / m``).
    ``m`` counts the tested columns. A column that modifies the effect only through a
    correlated modifier (a proxy) is declared a modifier by these tests. ``cov_type``,
    ``clusters``, ``min_active`` and ``small_sample`` as in :func:`nexis`.
    """
    alpha = check_number(alpha, "alpha", 0.0, 1.0, low_open=True, high_open=True)
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
    pb = _check_inputs(Y, T, Z, cov_type=cov_type, clusters=clusters, min_active=min_active,
                      small_sample=small_sample)
    m_k = pb.kept.size
    tv, pv = _tests(pb, [], np.arange(m_k))
    if correction == "bonferroni":
        sel = np.flatnonzero(pv <= alpha / max(m_k, 1))
    else:
        order = np.argsort(pv, kind="stable")
        below = np.flatnonzero(pv[order] <= alpha * np.arange(1, m_k + 1) / max(m_k, 1))
        sel = np.sort(order[: below.max() + 1]) if below.size else np.zeros(0, dtype=int)
    tested = np.zeros(pb.m, dtype=bool)
    tested[pb.kept] = True
    return Discovery(
        method=f"marginal ({correction})", selected=pb.kept[sel], tvalues=_full(pb, tv),
        pvalues=_full(pb, pv), tested=tested, alpha=alpha,
        info={"cov_type": cov_type, "min_active": min_active},
    )


def lasso_interactions(
    Y: Any,
    T: Any,
    Z: Any,
    *,
    cv: int = 5,
    random_state: int = 0,
    min_active: int = 5,
) -> Discovery:
    """LASSO on ``[Z, T Z]``: columns whose interaction coefficient is non-zero are selected.

    ``Y`` and the standardised columns ``[Z, T Z]`` are first residualised on ``[1, T]`` (the
    unpenalised part, by Frisch-Waugh-Lovell), then ``sklearn.linear_model.LassoCV`` picks the
    penalty by ``cv``-fold cross-validation (shuffled folds seeded by ``random_state``).
    ``scores`` holds ``|coefficient|`` of each interaction; there is no test (t, p are NaN).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LassoCV
    from sklearn.model_selection import KFold

    cv = check_int(cv, "cv", 2)
    seed = check_seed(random_state)
    pb = _check_inputs(Y, T, Z, cov_type="nonrobust", clusters=None, min_active=min_active)
    n = pb.y.shape[0]
    Q, _ = np.linalg.qr(np.column_stack([np.ones(n), pb.t]))
    F = np.hstack([pb.Z, pb.t[:, None] * pb.Z])
    F = F - Q @ (Q.T @ F)
    F /= np.maximum(F.std(axis=0), 1e-12)
    y = pb.y - Q @ (Q.T @ pb.y)
    folds = KFold(cv, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # the weakest penalties of the path may stop before convergence; the chosen one is
        # scored on held-out folds, so that is a cost in accuracy, not in validity
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LassoCV(cv=folds, alphas=50, max_iter=5000, random_state=seed).fit(F, y)
    coef = np.abs(model.coef_[pb.kept.size:])
    sel = np.flatnonzero(coef > 0)
    tested = np.zeros(pb.m, dtype=bool)
    tested[pb.kept] = True
    nan = np.full(pb.m, np.nan)
    return Discovery(
        method="lasso interactions", selected=pb.kept[sel], tvalues=nan, pvalues=nan.copy(),
        tested=tested, scores=_full(pb, coef),
        info={"penalty": float(model.alpha_), "cv": cv, "min_active": min_active},
    )


def forest_importance(
    Y: Any,
    T: Any,
    Z: Any,
    *,
    k: int = 5,
    n_estimators: int = 200,
    min_samples_leaf: int = 10,
    random_state: int = 0,
    min_active: int = 5,
) -> Discovery:
    """The ``k`` columns with the largest split importance in a causal forest.

    ``econml.grf.CausalForest`` (generalized random forest, Athey, Tibshirani & Wager 2019)
    fitted on ``(Z, T, Y)``: in a randomised trial its local moment estimates the conditional
    effect without nuisance models. ``scores`` holds ``feature_importances_`` (the share of
    heterogeneity-weighted split gain); the top ``k`` are selected. There is no test; ``k``
    must be chosen (the chapter gives it the true number of modifiers, an advantage).
    """
    from econml.grf import CausalForest

    k = check_int(k, "k", 1)
    n_estimators = check_int(n_estimators, "n_estimators", 4)
    min_samples_leaf = check_int(min_samples_leaf, "min_samples_leaf", 1)
    seed = check_seed(random_state)
    pb = _check_inputs(Y, T, Z, cov_type="nonrobust", clusters=None, min_active=min_active)
    n_est = n_estimators - n_estimators % 4  # subforests of 4 trees for its variance estimate
    forest = CausalForest(
        n_estimators=n_est, min_samples_leaf=min_samples_leaf, random_state=seed, n_jobs=1,
    ).fit(pb.Z, pb.t, pb.y)
    imp = np.asarray(forest.feature_importances_, dtype=float)
    sel = np.sort(np.argsort(-imp, kind="stable")[: min(k, imp.size)])
    tested = np.zeros(pb.m, dtype=bool)
    tested[pb.kept] = True
    nan = np.full(pb.m, np.nan)
    return Discovery(
        method="causal forest importance", selected=pb.kept[sel], tvalues=nan,
        pvalues=nan.copy(), tested=tested, scores=_full(pb, imp),
        info={"k": k, "n_estimators": n_est, "min_active": min_active},
    )


# ---------------------------------------------------------------------------------------------
# Evaluation and read-out
# ---------------------------------------------------------------------------------------------


def selection_metrics(selected: Any, truth: Any) -> dict[str, float]:
    """IoU, precision and recall of a selected set against the true modifiers.

    ``selected`` and ``truth`` hold column indices or labels (compared as sets).

    Conventions of the released evaluation (``evaluate_methods_on_dataset`` in
    ``src/method/nexis.py``): IoU of two empty sets is 1; precision of an empty selection is 1
    when the truth is empty and 0 otherwise; recall with an empty truth is 1.
    """
    S = set(np.asarray(selected).ravel().tolist())
    G = set(np.asarray(truth).ravel().tolist())
    tp = len(S & G)
    union = len(S | G)
    return {
        "iou": tp / union if union else 1.0,
        "precision": tp / len(S) if S else (1.0 if not G else 0.0),
        "recall": tp / len(G) if G else 1.0,
        "n_selected": float(len(S)),
    }


def subgroup_effects(Y: Any, T: Any, z: Any) -> dict[str, float]:
    """Effect among units where ``z`` is active (non-zero) and where it is not, with HC1 errors.

    In each group the OLS of ``Y`` on ``[1, T]``; its slope is the difference in means and its
    HC1 variance ``m/(m-2) * sum_i x_i^2 e_i^2 / (sum_i x_i^2)^2`` (``x`` = centred ``T``, ``m``
    the group size). Returns the two effects, their standard errors, the group sizes and the
    difference (active minus inactive) with its standard error (independent groups).
    """
    y = as_1d(Y, "Y")
    t = check_treatment(T).astype(float)
    zz = as_1d(z, "z")
    check_same_length(Y=y, T=t, z=zz)
    out: dict[str, float] = {}
    for name, mask in (("active", zz != 0), ("inactive", zz == 0)):
        yy, tt = y[mask], t[mask]
        m = int(mask.sum())
        n1 = int(tt.sum())
        if m < 4 or n1 < 2 or m - n1 < 2:
            est = se = math.nan
        else:
            x = tt - tt.mean()
            est = float(x @ (yy - yy.mean()) / (x @ x))
            e = yy - yy.mean() - est * x
            se = float(math.sqrt(m / (m - 2) * np.sum(x**2 * e**2) / (x @ x) ** 2))
        out[f"{name}_effect"], out[f"{name}_se"], out[f"{name}_n"] = est, se, float(m)
    out["difference"] = out["active_effect"] - out["inactive_effect"]
    out["difference_se"] = math.hypot(out["active_se"], out["inactive_se"])
    return out
