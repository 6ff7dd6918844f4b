"""The NEXIS search and its baselines (ehrcausal.discovery)."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.multitest import multipletests

from ehrcausal import discovery
from ehrcausal.discovery import (
    distinct_columns,
    forest_importance,
    interaction_tests,
    lasso_interactions,
    marginal,
    nexis,
    selection_metrics,
    subgroup_effects,
)


def _proxies(seed: int = 0, n: int = 1500, m: int = 30):
    """Modifiers 0 and 2; columns 5 and 6 are proxies of them; column 1 is prognostic."""
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, m))
    T = rng.integers(0, 2, n)
    Z[:, 5] = 0.6 * Z[:, 0] + 0.8 * rng.normal(size=n)
    Z[:, 6] = 0.6 * Z[:, 2] + 0.8 * rng.normal(size=n)
    Y = Z[:, 1] + T * (1 + 0.5 * Z[:, 0] - 0.4 * Z[:, 2]) + rng.normal(size=n)
    return Y, T, Z


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC1", "cluster"])
def test_the_vectorised_test_equals_the_full_regression(cov_type):
    Y, T, Z = _proxies(1, n=400, m=12)
    Y = Y * (1 + 0.5 * np.abs(Z[:, 3]))  # heteroskedastic
    groups = np.random.default_rng(2).integers(0, 30, len(Y))
    cl = groups if cov_type == "cluster" else None
    tv, pv = interaction_tests(Y, T, Z, [0, 2], cov_type=cov_type, clusters=cl,
                               small_sample=False)
    assert np.isnan(tv[[0, 2]]).all()
    for j in (1, 5, 9):
        X = np.column_stack([np.ones(len(Y)), T, Z[:, [0, 2]], T[:, None] * Z[:, [0, 2]],
                             Z[:, j], T * Z[:, j]])
        ols = sm.OLS(Y, X)
        fit = (ols.fit(cov_type="cluster", cov_kwds={"groups": groups}) if cl is not None
               else ols.fit(cov_type=cov_type))
        assert tv[j] == pytest.approx(fit.tvalues[-1], rel=1e-8)
        if cov_type == "nonrobust":
            assert pv[j] == pytest.approx(fit.pvalues[-1], rel=1e-8)


def test_small_sample_tests_are_hc2_with_satterthwaite_degrees_of_freedom():
    Y, T, Z = _proxies(3, n=300, m=8)
    Y = Y * (1 + 0.5 * np.abs(Z[:, 3]))
    rng = np.random.default_rng(4)
    sparse_col = np.zeros(len(Y))
    sparse_col[rng.choice(len(Y), 6, replace=False)] = rng.exponential(size=6)
    Z = np.column_stack([Z, sparse_col])
    tv, pv = interaction_tests(Y, T, Z, [0], cov_type="HC1")
    tv1, pv1 = interaction_tests(Y, T, Z, [0], cov_type="HC1", small_sample=False)
    for j in (4, 8):
        X = np.column_stack([np.ones(len(Y)), T, Z[:, 0], T * Z[:, 0], Z[:, j], T * Z[:, j]])
        fit = sm.OLS(Y, X).fit(cov_type="HC2")
        assert tv[j] == pytest.approx(fit.tvalues[-1], rel=1e-8)
        # Satterthwaite: nu = (sum c^2)^2 / sum c^4 for the weights c of y in the coefficient
        c = np.linalg.pinv(X)[-1]
        nu = min(len(Y) - 6, (c**2).sum() ** 2 / (c**4).sum())
        assert pv[j] == pytest.approx(2 * stats.t.sf(abs(tv[j]), nu), rel=1e-6)
    # a dense column keeps about n - q - 2 degrees of freedom, a sparse one very few
    assert pv[4] == pytest.approx(pv1[4], rel=0.2)
    assert pv[8] > 2 * pv1[8]


def test_small_sample_cluster_tests_tame_a_sparse_null_column():
    rng = np.random.default_rng(5)
    n, G = 400, 20
    site = rng.integers(0, G, n)
    T = np.isin(site, rng.permutation(G)[:10]).astype(int)
    Y = rng.normal(size=n) + rng.normal(0, 0.5, G)[site]
    Z = np.zeros((n, 40))
    for j in range(40):  # null candidates active in 5-8 participants each
        idx = rng.choice(n, rng.integers(5, 9), replace=False)
        Z[idx, j] = rng.exponential(size=idx.size)
    _, p_default = interaction_tests(Y, T, Z, cov_type="cluster", clusters=site,
                                     small_sample=False)
    _, p_small = interaction_tests(Y, T, Z, cov_type="cluster", clusters=site)
    assert np.median(p_small / p_default) > 1.5
    assert np.nanmin(p_small) > np.nanmin(p_default)


def test_nexis_finds_the_direct_modifiers_where_marginal_tests_take_proxies():
    Y, T, Z = _proxies()
    res = nexis(Y, T, Z)
    assert sorted(res.selected.tolist()) == [0, 2]
    marg = marginal(Y, T, Z)
    assert {0, 2, 5, 6} <= set(marg.selected.tolist())
    assert res.rounds[0].added == 0 and res.rounds[-1].selected == tuple(res.selected)
    # a selected column's p-value is its test given the other selected one
    _, p = interaction_tests(Y, T, Z, [2])
    assert res.pvalues[0] == pytest.approx(p[0])
    assert selection_metrics(res.selected, [0, 2])["iou"] == 1.0
    assert selection_metrics(marg.selected, [0, 2])["iou"] <= 0.5


def test_the_rho_gate_stops_a_weak_candidate():
    rng = np.random.default_rng(3)
    n = 3000
    Z = rng.normal(size=(n, 10))
    T = rng.integers(0, 2, n)
    Y = T * (2.0 * Z[:, 0] + 0.25 * Z[:, 1]) + rng.normal(size=n)
    gated = nexis(Y, T, Z, rho=0.5)
    assert gated.selected.tolist() == [0] and gated.rounds[-1].gate_stop
    assert gated.rounds[-1].candidate == 1
    assert sorted(nexis(Y, T, Z, rho=0.0).selected.tolist()) == [0, 1]


def test_the_stale_gate_keeps_a_removed_neurons_statistic(monkeypatch):
    """Scripted tests: neuron 2 enters with the smallest |t| (3.5) and is later removed; the
    released gate still compares with 3.5 and admits neuron 4 (|t| = 1.9 >= 0.5 * 3.5), the
    fixed gate compares with min(10, 6, 4) = 4 and stops (1.9 < 2)."""
    forward = {
        (): {0: 10, 1: 5, 2: 2, 3: 1, 4: 1},
        (0,): {1: 6, 2: 2, 3: 1, 4: 1},
        (0, 1): {2: 3.5, 3: 1, 4: 1},
        (0, 1, 2): {3: 4, 4: 1},
        (0, 1, 3): {2: 1, 4: 1.9},
    }

    def scripted(pb, S, cand):
        cand = np.asarray(cand)
        if cand.size == 1:  # backward: j given S \ {j}
            drop = cand[0] == 2 and sorted(S) == [0, 1, 3]
            return np.array([3.0]), np.array([0.5 if drop else 1e-6])
        table = forward.get(tuple(sorted(S)), {})
        t = np.array([float(table.get(int(j), 0.1)) for j in cand])
        return t, np.where(t >= 1.5, 1e-6, 0.5)

    monkeypatch.setattr(discovery, "_tests", scripted)
    Y, T, Z = _proxies(n=200, m=8)
    Z = Z[:, :6]
    fixed = nexis(Y, T, Z)
    stale = nexis(Y, T, Z, released=True)
    assert [r.removed for r in fixed.rounds][3] == (2,)
    assert fixed.selected.tolist() == [0, 1, 3]
    assert fixed.rounds[-1].gate_stop and fixed.rounds[-1].candidate == 4
    assert stale.selected.tolist() == [0, 1, 3, 4]
    assert not any(r.gate_stop for r in stale.rounds[:5])


def test_rarely_active_columns_are_dropped_first():
    Y, T, Z = _proxies(n=600, m=8)
    Z[:, 4] = 0.0
    Z[:4, 4] = 1.0  # active in 4 units
    res = nexis(Y, T, Z)
    assert not res.tested[4] and np.isnan(res.pvalues[4])
    assert nexis(Y, T, Z, min_active=3).tested[4]


def test_bh_and_bonferroni_on_the_marginal_pvalues():
    Y, T, Z = _proxies(4, n=500)
    bonf, bh = marginal(Y, T, Z), marginal(Y, T, Z, correction="bh")
    ref = multipletests(bh.pvalues, alpha=0.05, method="fdr_bh")[0]
    assert bh.selected.tolist() == np.flatnonzero(ref).tolist()
    assert bonf.selected.tolist() == np.flatnonzero(bonf.pvalues <= 0.05 / Z.shape[1]).tolist()
    assert set(bonf.selected) <= set(bh.selected)


def test_lasso_and_forest_have_the_same_call_shape_and_are_deterministic():
    Y, T, Z = _proxies(n=600, m=10)
    las = lasso_interactions(Y, T, Z, random_state=1)
    assert 0 in las.selected and np.isnan(las.pvalues).all() and las.scores.shape == (10,)
    assert las.selected.tolist() == lasso_interactions(Y, T, Z, random_state=1).selected.tolist()
    fo = forest_importance(Y, T, Z, k=2, n_estimators=40, random_state=0)
    assert len(fo.selected) == 2 and 0 in fo.selected
    again = forest_importance(Y, T, Z, k=2, n_estimators=40, random_state=0)
    np.testing.assert_array_equal(fo.scores, again.scores)


def test_subgroup_effects_match_hc1_regressions():
    rng = np.random.default_rng(5)
    n = 800
    z = (rng.random(n) < 0.3) * rng.exponential(size=n)
    T = rng.integers(0, 2, n)
    Y = T * (1 + 2 * (z > 0)) + rng.normal(size=n)
    out = subgroup_effects(Y, T, z)
    for name, mask in (("active", z != 0), ("inactive", z == 0)):
        fit = sm.OLS(Y[mask], sm.add_constant(T[mask].astype(float))).fit(cov_type="HC1")
        assert out[f"{name}_effect"] == pytest.approx(fit.params[1])
        assert out[f"{name}_se"] == pytest.approx(fit.bse[1])
    assert out["difference"] == pytest.approx(2.0, abs=0.4)


def test_selection_metric_conventions():
    assert selection_metrics([], []) == {"iou": 1.0, "precision": 1.0, "recall": 1.0,
                                         "n_selected": 0.0}
    assert selection_metrics([], [1])["precision"] == 0.0
    m = selection_metrics([1, 2, 3], [2, 3, 4, 5])
    assert (m["iou"], m["precision"], m["recall"]) == (2 / 5, 2 / 3, 2 / 4)


def test_distinct_columns_keeps_one_of_each_affine_group():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50), rng.normal(size=50)
    Z = np.column_stack([a, 3 - 2 * a, b, np.ones(50), b])
    assert distinct_columns(Z).tolist() == [0, 2]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda Y, T, Z: (Y, T + 1, Z, {}), "T must be binary"),
        (lambda Y, T, Z: (Y, T, np.column_stack([Z, np.full(len(Y), 2.0)]), {}), "constant"),
        (lambda Y, T, Z: (Y, T, np.column_stack([Z, 1 - 3 * Z[:, 2]]), {}), "collinear"),
        (lambda Y, T, Z: (Y[:20], T[:20], Z[:20], {"min_active": 0}), "fewer candidates than"),
        (lambda Y, T, Z: (Y, T, Z, {"cov_type": "cluster", "clusters": np.arange(5)}),
         "clusters must hold one id per unit"),
        (lambda Y, T, Z: (Y, T, Z, {"cov_type": "cluster"}), "clusters is required"),
        (lambda Y, T, Z: (Y, T, Z, {"cov_type": "HC3"}), "cov_type must be one of"),
        (lambda Y, T, Z: (Y, T, Z, {"alpha": 1.5}), "alpha must be"),
        (lambda Y, T, Z: (Y, T, Z, {"rho": -0.1}), "rho must be"),
        (lambda Y, T, Z: (Y[:-1], T, Z, {}), "different numbers of rows"),
    ],
)
def test_bad_input_gets_a_clear_error(change, match):
    Y, T, Z, kw = change(*_proxies(n=200, m=30))
    with pytest.raises(ValueError, match=match):
        nexis(Y, T, Z, **kw)
