"""Tests of the spine-surgery cohort simulator (two decisions as two tasks)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ehrcausal.data.dataset import CausalDataset
from ehrcausal.data.spine import PRO_DOMAINS, SPINE_COLUMNS, simulate_spine

BIG = 100_000


@pytest.fixture(scope="module")
def cohort() -> dict[str, CausalDataset]:
    return simulate_spine()


@pytest.fixture(scope="module")
def big() -> dict[str, CausalDataset]:
    return simulate_spine(BIG, seed=3)


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1.0 - p))


def test_shapes_columns_and_meta(cohort):
    approach, surgery = cohort["approach"], cohort["surgery"]
    assert len(approach) == 1017 and len(surgery) == 368  # the paper's cohort sizes
    assert list(approach.X.columns) == list(SPINE_COLUMNS) == list(surgery.X.columns)
    assert len(SPINE_COLUMNS) == 40
    assert approach.Y.shape == (1017,) and np.issubdtype(approach.Y.dtype, np.integer)
    assert set(np.unique(approach.Y)) <= {0, 1, 2, 3}
    assert surgery.Y.shape == (368, 4) and surgery.Y.dtype == float
    for name in ("mu0", "mu1", "tau"):
        assert getattr(approach, name).shape == (1017, 4)
        assert getattr(surgery, name).shape == (368, 4)
    assert approach.meta["outcome"] == "class" and approach.meta["classes"] == [0, 1, 2, 3]
    assert surgery.meta["outcome"] == "continuous"
    assert surgery.meta["domains"] == list(PRO_DOMAINS)
    for task, ds in cohort.items():
        assert ds.meta["task"] == task
        assert ds.meta["source"] == "simulated: spine surgery cohort"
        assert ds.meta["seed"] == 0
        assert ds.meta["knobs"]["confounding"] == 1.0
        assert ds.meta["knobs"]["shared_effect"] == 1.0


def test_covariates_have_plausible_ranges_and_correlations(big):
    X = big["approach"].X
    assert X["age_years"].between(18, 90).all()
    assert set(X["asa_class"].unique()) == {1, 2, 3, 4}
    assert set(X["n_levels"].unique()) == {1, 2, 3, 4}
    binary = ["male", "smoker", "diabetes", "hypertension", "cad", "copd", "osteoporosis"]
    binary += ["depression", "prior_spine_surgery", "cervical", "myelopathy"]
    for col in binary:
        assert set(X[col].unique()) == {0, 1}, col
    assert 12.5 < X["hemoglobin_g_dl"].mean() < 15.0
    assert 0.7 < X["creatinine_mg_dl"].median() < 1.1
    assert X["baseline_function_srs"].between(1, 5).all()
    corr = X.corr()
    # shared latent factors: renal (bun, creatinine), anaemia (hemoglobin, hematocrit)
    assert corr.loc["bun_mg_dl", "creatinine_mg_dl"] > 0.2
    assert corr.loc["hemoglobin_g_dl", "hematocrit_pct"] > 0.8
    assert corr.loc["age_years", "osteoporosis"] > 0.1
    assert X.groupby("cervical")["myelopathy"].mean().loc[1] > 0.3  # myelopathy is cervical


def test_true_effects_and_class_probabilities(big):
    approach, surgery = big["approach"], big["surgery"]
    for ds in (approach, surgery):
        np.testing.assert_allclose(ds.tau, ds.mu1 - ds.mu0, atol=1e-12)
    for mu in (approach.mu0, approach.mu1):
        assert (mu >= 0).all()
        np.testing.assert_allclose(mu.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(approach.tau.sum(axis=1), 0.0, atol=1e-12)
    assert np.abs(approach.tau).max() > 0.05  # the approach matters for some patients


def test_ordered_logit_has_proportional_odds(cohort):
    """logit P(Y<=c | x, 1) - logit P(Y<=c | x, 0) = -delta_a(x), the same for every c."""
    ds = cohort["approach"]
    shift = _logit(np.cumsum(ds.mu1, axis=1)[:, :3]) - _logit(np.cumsum(ds.mu0, axis=1)[:, :3])
    np.testing.assert_allclose(shift - shift[:, :1], 0.0, atol=1e-8)
    assert shift[:, 0].std() > 0.1  # the effect is heterogeneous


def test_observed_classes_match_the_model(big):
    ds = big["approach"]
    for t in (0, 1):
        arm = ds.T == t
        mu = (ds.mu1 if t else ds.mu0)[arm]
        observed = np.bincount(ds.Y[arm], minlength=4) / arm.sum()
        expected = mu.mean(axis=0)
        se = np.sqrt(np.mean(mu * (1 - mu), axis=0) / arm.sum())
        assert np.all(np.abs(observed - expected) < 4 * se), (t, observed, expected)
        # the other arm's probabilities do not fit (Y follows the factual arm)
        other = (ds.mu0 if t else ds.mu1)[arm].mean(axis=0)
        assert np.max(np.abs(observed - other)) > 6 * se.max()
    shares = np.bincount(ds.Y, minlength=4) / len(ds)
    np.testing.assert_allclose(shares, [0.55, 0.25, 0.13, 0.07], atol=0.03)


def test_surgery_outcomes_are_mu_plus_gaussian_noise(big):
    ds = big["surgery"]
    factual = np.where(ds.T[:, None] == 1, ds.mu1, ds.mu0)
    resid = ds.Y - factual
    n = len(ds)
    assert np.all(np.abs(resid.mean(axis=0)) < 4 * 0.45 / np.sqrt(n))
    np.testing.assert_allclose(resid.std(axis=0), 0.45, rtol=0.02)
    assert abs(np.corrcoef(resid[:, 0], resid[:, 1])[0, 1]) < 0.03  # independent per domain
    assert (ds.tau.mean(axis=0) > 0).all()  # surgery helps on average in every domain


def test_same_seed_identical_other_seed_differs(cohort):
    again = simulate_spine()
    other = simulate_spine(seed=1)
    for task, ds in cohort.items():
        pd.testing.assert_frame_equal(ds.X, again[task].X)
        for name in ("T", "Y", "mu0", "mu1", "tau", "split"):
            np.testing.assert_array_equal(getattr(ds, name), getattr(again[task], name))
        np.testing.assert_array_equal(ds.modalities["ids"], again[task].modalities["ids"])
        assert not ds.X.equals(other[task].X)
    assert not np.array_equal(cohort["approach"].Y, other["approach"].Y)


def test_no_confounding_gives_constant_propensity():
    data = simulate_spine(3000, seed=2, confounding=0.0)
    for ds in data.values():
        np.testing.assert_array_equal(ds.modalities["propensity"], 0.5)
        assert abs(ds.T.mean() - 0.5) < 0.06


def test_confounding_changes_treatment_not_covariates_or_truth():
    base = simulate_spine(3000, seed=4, confounding=1.0)
    strong = simulate_spine(3000, seed=4, confounding=2.5)
    for task in ("approach", "surgery"):
        a, b = base[task], strong[task]
        pd.testing.assert_frame_equal(a.X, b.X)
        np.testing.assert_array_equal(a.tau, b.tau)
        np.testing.assert_array_equal(a.split, b.split)
        assert not np.array_equal(a.T, b.T)
        e = b.modalities["propensity"]
        assert e.min() >= 0.05 and e.max() <= 0.95 and e.std() > 0.1
    # clinically sensible direction: cervical disease favours the anterior approach ...
    ap = base["approach"]
    e_a = ap.modalities["propensity"]
    assert e_a[ap.X["cervical"] == 1].mean() > e_a[ap.X["cervical"] == 0].mean() + 0.3
    # ... and worse baseline function favours surgery
    su = base["surgery"]
    assert np.corrcoef(su.modalities["propensity"], su.X["baseline_function_srs"])[0, 1] < -0.5


def _effect_correlation(shared_effect: float) -> float:
    data = simulate_spine(20_000, seed=5, n_surgery=20_000, shared_effect=shared_effect)
    approach, surgery = data["approach"], data["surgery"]
    severity_effect = approach.tau @ np.arange(4)  # change in expected complication severity
    aligned = severity_effect[surgery.modalities["ids"]]
    return float(np.corrcoef(aligned, surgery.tau[:, 0])[0, 1])


def test_shared_effect_controls_the_link_between_tasks():
    assert abs(_effect_correlation(0.0)) < 0.04
    assert _effect_correlation(1.0) < -0.4  # the frail gain less and suffer more


def test_shared_effect_changes_truth_not_data_inputs():
    a = simulate_spine(500, seed=6, shared_effect=0.0)
    b = simulate_spine(500, seed=6, shared_effect=2.0)
    for task in ("approach", "surgery"):
        pd.testing.assert_frame_equal(a[task].X, b[task].X)
        np.testing.assert_array_equal(a[task].T, b[task].T)
        np.testing.assert_array_equal(a[task].mu0, b[task].mu0)
        assert not np.allclose(a[task].tau, b[task].tau)


def test_surgery_patients_are_a_subset_of_approach_patients(cohort):
    approach, surgery = cohort["approach"], cohort["surgery"]
    ids_a = approach.modalities["ids"]
    ids_s = surgery.modalities["ids"]
    np.testing.assert_array_equal(ids_a, np.arange(len(approach)))
    assert len(np.unique(ids_s)) == len(ids_s)
    assert np.isin(ids_s, ids_a).all()
    pd.testing.assert_frame_equal(approach.X.iloc[ids_s].reset_index(drop=True), surgery.X)
    assert len(simulate_spine(200, seed=0, n_surgery=50)["surgery"]) == 50


def test_large_cohort_and_split(big):
    approach, surgery = big["approach"], big["surgery"]
    assert len(approach) == BIG and len(surgery) == round(BIG * 368 / 1017)
    for ds in (approach, surgery):
        shares = pd.Series(ds.split).value_counts(normalize=True)
        np.testing.assert_allclose(shares[["train", "val", "test"]], [0.6, 0.2, 0.2], atol=0.01)
    custom = simulate_spine(1000, seed=0, split=(0.5, 0.25, 0.25))["approach"]
    assert (custom.split == "train").sum() == 500


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 19}, "n must be"),
        ({"n": 100.0}, "n must be an integer"),
        ({"seed": -1}, "seed"),
        ({"n": 100, "n_surgery": 9}, "n_surgery"),
        ({"n": 100, "n_surgery": 101}, "n_surgery"),
        ({"confounding": -0.5}, "confounding"),
        ({"confounding": float("nan")}, "confounding"),
        ({"shared_effect": -1.0}, "shared_effect"),
        ({"shared_effect": "high"}, "shared_effect"),
        ({"split": (0.5, 0.5)}, "split"),
        ({"split": (0.5, 0.4, 0.3)}, "split"),
        ({"split": (1.2, -0.1, -0.1)}, "split"),
        ({"split": (0.8, 0.2, 0.0)}, "split"),
        ({"split": "train"}, "split"),
    ],
)
def test_bad_knobs_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate_spine(**kwargs)


def test_to_frame_with_two_dimensional_outcome(cohort):
    surgery, approach = cohort["surgery"], cohort["approach"]
    frame = surgery.to_frame()
    assert "Y" not in frame.columns
    for j in range(4):
        np.testing.assert_array_equal(frame[f"Y_{j}"].to_numpy(), surgery.Y[:, j])
        np.testing.assert_array_equal(frame[f"tau_{j}"].to_numpy(), surgery.tau[:, j])
    assert len(frame) == len(surgery)
    flat = approach.to_frame()
    np.testing.assert_array_equal(flat["Y"].to_numpy(), approach.Y)
    assert "Y_0" not in flat.columns
