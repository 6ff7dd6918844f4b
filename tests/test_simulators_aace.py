"""The two AACE simulators: network marginals, the equations, knobs, annotations, seeding."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from ehrcausal.data._simulate import select_annotated
from ehrcausal.data.cardiac import (
    cardiac_age_distribution,
    cardiac_marginals,
    cardiac_mu0,
    cardiac_propensity,
    cardiac_tau,
    sample_cardiac_records,
    simulate_cardiac,
)
from ehrcausal.data.respiratory import (
    CONFOUNDERS,
    network_marginals,
    respiratory_mu0,
    respiratory_propensity,
    respiratory_tau,
    sample_respiratory_records,
    simulate_respiratory,
)
from ehrcausal.data.spine import simulate_spine
from ehrcausal.runtime import seed_streams, stream_seed

N_BIG = 200_000
SYMPTOM_COLUMNS = ["dyspnoea", "cough", "fever_low", "fever_high", "pain", "nasal"]


@pytest.fixture(scope="module")
def resp() -> object:
    return simulate_respiratory(4000, seed=3)


@pytest.fixture(scope="module")
def card() -> object:
    return simulate_cardiac(4000, seed=3)


def _within_4se(p_hat: float, p: float, n: int) -> bool:
    return abs(p_hat - p) <= 4 * np.sqrt(p * (1 - p) / n)


# --- respiratory network ---------------------------------------------------------------------


def test_network_marginals_match_hand_computed_values():
    m = network_marginals()
    assert m["copd"] == pytest.approx(0.25 * 0.25 + 0.75 * 0.03)
    assert m["upper_airway_infection"] == pytest.approx(0.4 * 0.45 + 0.6 * 0.15)
    assert m["fever_none"] + m["fever_low"] + m["fever_high"] == pytest.approx(1.0)
    # Every symptom (and each fever level) between about 8% and 50%.
    for k in ("dyspnoea", "cough", "pain", "nasal", "fever_low", "fever_high"):
        assert 0.08 <= m[k] <= 0.5, (k, m[k])


def test_sampled_records_match_exact_marginals():
    rec = sample_respiratory_records(N_BIG, np.random.default_rng(2024))
    m = network_marginals()
    observed = {k: float(rec[k].mean()) for k in m if k in rec.columns}
    observed["fever_none"] = float((rec["fever"] == 0).mean())
    observed["female"] = float((rec["sex"] == "F").mean())
    assert set(observed) == set(m)
    bad = {k: (observed[k], m[k]) for k in m if not _within_4se(observed[k], m[k], N_BIG)}
    assert not bad
    assert rec["age"].between(18, 95).all() and rec["age"].dtype.kind == "i"


def test_equations_on_hand_computed_rows():
    rows = pd.DataFrame(
        {  # all present with high fever / nasal + low fever / nothing
            "policy": [1, 0, 0], "self_employed": [1, 0, 0], "dyspnoea": [1, 0, 0],
            "cough": [1, 0, 0], "pain": [1, 0, 0], "nasal": [1, 1, 0],
            "fever_low": [0, 1, 0], "fever_high": [1, 0, 0],
        }
    )
    np.testing.assert_allclose(respiratory_mu0(rows), [11.2, 0.1, 0.0], atol=1e-12)
    np.testing.assert_allclose(respiratory_tau(rows), [-1.7, 0.7, -1.0], atol=1e-12)
    np.testing.assert_allclose(
        respiratory_propensity(rows), [0.95, expit(-2.7), expit(-2.2)], atol=1e-12
    )
    np.testing.assert_allclose(
        respiratory_propensity(rows, confounding=0.5),
        [expit(-2.2 + 0.5 * 8.1), expit(-2.45), expit(-2.2)],
    )


def test_dataset_equations_noise_and_propensity(resp):
    rec = resp.modalities["records"]
    assert np.array_equal(resp.tau, resp.mu1 - resp.mu0)
    np.testing.assert_allclose(resp.mu0, respiratory_mu0(rec))
    np.testing.assert_allclose(resp.tau, respiratory_tau(rec))
    resid = resp.Y - np.where(resp.T == 1, resp.mu1, resp.mu0)
    assert abs(resid.mean()) < 4 * 0.8 / np.sqrt(len(resid))
    assert resid.std() == pytest.approx(0.8, abs=0.04)
    e = resp.modalities["propensity"]
    assert e.min() >= 0.05 and e.max() <= 0.95 and e.std() > 0.1
    assert abs(resp.T.mean() - e.mean()) < 4 * np.sqrt(e.mean() * (1 - e.mean()) / len(e))
    # Confounded: treated patients are sicker (higher untreated outcome).
    assert resp.mu0[resp.T == 1].mean() > resp.mu0[resp.T == 0].mean() + 0.5


def test_noise_sd_scales_the_residuals():
    ds = simulate_respiratory(2000, seed=1, noise_sd=0.0)
    np.testing.assert_array_equal(ds.Y, np.where(ds.T == 1, ds.mu1, ds.mu0))
    ds2 = simulate_respiratory(2000, seed=1, noise_sd=2.0)
    assert (ds2.Y - np.where(ds2.T == 1, ds2.mu1, ds2.mu0)).std() == pytest.approx(2.0, abs=0.1)


def test_no_confounding_gives_constant_propensity():
    ds = simulate_respiratory(3000, seed=4, confounding=0.0)
    e = ds.modalities["propensity"]
    np.testing.assert_allclose(e, expit(-2.2))
    assert _within_4se(ds.T.mean(), expit(-2.2), len(ds))


def test_text_only_moves_confounders_between_x_and_annotations(resp):
    default_x = list(resp.X.columns)
    assert default_x[:2] == ["policy", "self_employed"]
    assert not set(SYMPTOM_COLUMNS) & set(default_x)
    assert list(resp.annotations.columns) == SYMPTOM_COLUMNS
    assert resp.meta["text_only"] == list(CONFOUNDERS[:5])
    assert resp.meta["tabular"] == ["policy", "self_employed"]

    all_tab = simulate_respiratory(200, seed=3, text_only=0.0)
    assert set(SYMPTOM_COLUMNS + ["policy", "self_employed"]) <= set(all_tab.X.columns)
    assert all_tab.annotations.shape == (200, 0)
    none_tab = simulate_respiratory(200, seed=3, text_only=1.0)
    assert not set(SYMPTOM_COLUMNS + ["policy", "self_employed"]) & set(none_tab.X.columns)
    assert list(none_tab.annotations.columns) == SYMPTOM_COLUMNS + ["policy", "self_employed"]
    three = simulate_respiratory(200, seed=3, text_only=3 / 7)
    assert list(three.annotations.columns) == ["dyspnoea", "cough", "fever_low", "fever_high"]
    assert {"pain", "nasal", "policy"} <= set(three.X.columns)
    for ds in (resp, all_tab, none_tab, three):
        assert {"asthma", "smoking", "hay_fever", "winter", "age", "male"} <= set(ds.X.columns)
        assert not {"copd", "pneumonia", "upper_airway_infection"} & set(ds.X.columns)
        assert all(pd.api.types.is_numeric_dtype(ds.X[c]) for c in ds.X.columns)


@pytest.mark.parametrize("simulate", [simulate_respiratory, simulate_cardiac])
@pytest.mark.parametrize("selection", ["uniform", "covariates"])
def test_annotation_fraction_and_whole_row_missingness(simulate, selection):
    n, frac = 5000, 0.3
    ds = simulate(n, seed=7, annotated=frac, annotation_selection=selection)
    ann, mask = ds.annotations, ds.modalities["annotated"]
    prob = ds.modalities["annotation_propensity"]
    row_nan = ann.isna().all(axis=1).to_numpy()
    assert np.array_equal(row_nan, ann.isna().any(axis=1).to_numpy())  # whole rows
    assert np.array_equal(row_nan, ~mask)
    assert _within_4se(row_nan.mean(), 1 - frac, n)
    assert prob.mean() == pytest.approx(frac, abs=1e-9)
    rec = ds.modalities["records"]
    if simulate is simulate_respiratory:
        truth = rec[SYMPTOM_COLUMNS].to_numpy(float)
    else:
        truth = rec[["htn", "cad", "af", "chf"]].to_numpy(float)
    np.testing.assert_array_equal(ann.to_numpy()[mask], truth[mask])
    corr_t = np.corrcoef(mask.astype(float), ds.T)[0, 1]
    if selection == "uniform":
        assert np.ptp(prob) == 0 and abs(corr_t) < 0.06
    else:
        assert np.ptp(prob) > 0.2 and corr_t > 0.1


def test_full_annotation(resp):
    assert resp.modalities["annotated"].all()
    assert not resp.annotations.isna().any().any()
    ds = simulate_respiratory(300, seed=3, annotation_selection="covariates")
    assert ds.modalities["annotated"].all()


def test_same_seed_same_dataset_other_seed_other(resp):
    again = simulate_respiratory(4000, seed=3)
    pd.testing.assert_frame_equal(again.X, resp.X)
    pd.testing.assert_frame_equal(again.annotations, resp.annotations)
    for k in ("T", "Y", "mu0", "tau", "split"):
        assert np.array_equal(getattr(again, k), getattr(resp, k))
    assert again.text == resp.text
    other = simulate_respiratory(4000, seed=4)
    assert not np.array_equal(other.Y, resp.Y)
    assert not other.X.equals(resp.X)
    assert other.text != resp.text


@pytest.mark.parametrize(
    "knobs",
    [
        {"confounding": 0.3},
        {"annotated": 0.4},
        {"annotated": 0.4, "annotation_selection": "covariates"},
        {"noise_sd": 2.0},
        {"text_only": 0.0},
    ],
)
def test_knobs_leave_records_and_notes_unchanged(knobs):
    base = simulate_respiratory(400, seed=5)
    other = simulate_respiratory(400, seed=5, **knobs)
    assert other.text == base.text
    pd.testing.assert_frame_equal(other.modalities["records"], base.modalities["records"])
    assert np.array_equal(other.split, base.split)
    np.testing.assert_array_equal(other.tau, base.tau)


def test_style_changes_only_the_notes():
    base = simulate_respiratory(300, seed=5)
    compact = simulate_respiratory(300, seed=5, style="compact", misspelling_rate=0.0)
    assert all(a != b for a, b in zip(base.text, compact.text, strict=True))
    np.testing.assert_array_equal(compact.Y, base.Y)


def test_split_and_meta(resp):
    counts = pd.Series(resp.split).value_counts()
    assert counts["train"] == 2400 and counts["val"] == 800 and counts["test"] == 800
    assert resp.meta["source"] == "simulated: respiratory encounters (AACE equations)"
    assert resp.meta["seed"] == 3 and resp.meta["knobs"]["confounding"] == 1.0
    assert len(resp.modalities["records"]) == len(resp) == len(resp.text)
    rec_cols = set(resp.modalities["records"].columns)
    assert {"copd", "pneumonia", "upper_airway_infection", "age", "sex", "fever"} <= rec_cols
    sub = resp.subset("test")
    assert len(sub) == 800 and len(sub.modalities["records"]) == 800


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n": 5}, "n"),
        ({"n": 100.0}, "n"),
        ({"seed": -1}, "seed"),
        ({"confounding": -0.1}, "confounding"),
        ({"annotated": 0.0}, "annotated"),
        ({"annotated": 1.5}, "annotated"),
        ({"text_only": 1.2}, "text_only"),
        ({"annotation_selection": "random"}, "annotation_selection"),
        ({"style": "fancy"}, "style"),
        ({"misspelling_rate": 0.6}, "misspelling_rate"),
        ({"noise_sd": -1.0}, "noise_sd"),
        ({"split": (0.5, 0.5, 0.5)}, "split"),
        ({"split": (0.8, 0.2, 0.0)}, "split"),
        ({"split": (0.5, 0.5)}, "split"),
    ],
)
def test_bad_knobs_raise_naming_the_knob(kwargs, name):
    args = {"n": 50, **kwargs}
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        simulate_respiratory(**args)
    if name != "text_only":
        with pytest.raises(ValueError, match=rf"\b{name}\b"):
            simulate_cardiac(**args)


# --- cardiac -----------------------------------------------------------------------------------


def test_cardiac_marginals_and_documented_prevalences():
    ages, p = cardiac_age_distribution()
    assert p.sum() == pytest.approx(1.0) and ages[0] == 18 and ages[-1] == 95
    m = cardiac_marginals()
    assert 0.50 <= m["htn"] <= 0.60
    assert 0.25 <= m["cad"] <= 0.35
    assert 0.20 <= m["af"] <= 0.30
    assert 0.20 <= m["chf"] <= 0.30
    rec = sample_cardiac_records(N_BIG, np.random.default_rng(99))
    for k in ("male", "htn", "cad", "af", "chf"):
        assert _within_4se(float(rec[k].mean()), m[k], N_BIG), k
    assert _within_4se(float((rec["age"] > 75).mean()), m["age_over_75"], N_BIG)
    assert rec["age"].mean() == pytest.approx(m["age_mean"], abs=4 * 15 / np.sqrt(N_BIG))
    # Conditions correlate (CHF with CAD and AF).
    assert rec.loc[rec.cad == 1, "chf"].mean() > rec.loc[rec.cad == 0, "chf"].mean() + 0.1


def test_cardiac_equations_on_hand_computed_rows():
    rows = pd.DataFrame(
        {"age": [80, 50, 70], "male": [1, 0, 1], "htn": [1, 0, 1], "cad": [1, 0, 0],
         "af": [1, 0, 1], "chf": [1, 0, 0]}
    )
    np.testing.assert_allclose(cardiac_tau(rows), [-1.225, -1.0, -1.1], atol=1e-12)
    np.testing.assert_allclose(cardiac_mu0(rows), [13.375, 4.0, 8.225], atol=1e-12)
    e = cardiac_propensity(rows)
    # row 1: bracket = -0.8 + 1.2 + 0.65 + 0.5 + 0.6 + 0.4 + 0.7 + 0.25 + 0.25 = 3.75, not
    # clipped to 0.95 (the released code's expit(0.9 logit_e) has no clip)
    np.testing.assert_allclose(e[:2], [expit(0.9 * 3.75), expit(-1.8)], atol=1e-12)
    assert e[0] > 0.95
    # row 3: bracket = -0.8 + 0.4 + 0.65 + 0.5 + 0.4 = 1.15
    assert e[2] == pytest.approx(expit(0.9 * 1.15))
    np.testing.assert_allclose(cardiac_propensity(rows, confounding=0.0), expit(-0.72))


def test_cardiac_dataset(card):
    assert list(card.X.columns) == ["age", "male"]
    assert list(card.annotations.columns) == ["htn", "cad", "af", "chf"]
    assert np.array_equal(card.tau, card.mu1 - card.mu0)
    rec = card.modalities["records"]
    np.testing.assert_allclose(card.tau, cardiac_tau(rec))
    resid = card.Y - np.where(card.T == 1, card.mu1, card.mu0)
    assert resid.std() == pytest.approx(1.0, abs=0.05)
    assert abs(resid.mean()) < 4 / np.sqrt(len(resid))
    e = card.modalities["propensity"]
    np.testing.assert_allclose(e, cardiac_propensity(rec))  # unclipped, as the released code
    assert 0 < e.min() < 0.05 and 0.95 < e.max() < 1
    assert 0.01 < np.mean((e < 0.05) | (e > 0.95)) < 0.15
    assert card.meta["source"] == "simulated: cardiac ICU (AACE MIMIC semi-synthetic equations)"
    again = simulate_cardiac(4000, seed=3)
    assert again.text == card.text and np.array_equal(again.Y, card.Y)
    knobbed = simulate_cardiac(4000, seed=3, confounding=0.0, noise_sd=0.5, annotated=0.5)
    assert knobbed.text == card.text
    np.testing.assert_allclose(knobbed.modalities["propensity"], expit(-0.72))
    assert simulate_cardiac(4000, seed=8).text != card.text


# --- shared machinery and frozen outputs ----------------------------------------------------


def test_simulators_share_annotation_and_split_streams():
    """One machinery: the annotation draw and the split come from the same seed streams, so two
    simulators with the same seed, size and uniform annotation share them exactly."""
    r = simulate_respiratory(600, seed=4, annotated=0.4)
    c = simulate_cardiac(600, seed=4, annotated=0.4)
    np.testing.assert_array_equal(r.modalities["annotated"], c.modalities["annotated"])
    np.testing.assert_array_equal(r.split, c.split)
    assert 0.3 < r.modalities["annotated"].mean() < 0.5
    assert set(r.meta["knobs"]) - set(c.meta["knobs"]) == {"text_only"}


def test_covariate_annotation_hits_the_target_fraction():
    score = np.random.default_rng(0).normal(size=5000) * 2.0
    stream = seed_streams(1, ("annotation",))["annotation"]
    prob, mask = select_annotated("covariates", 0.3, score, stream)
    assert prob.mean() == pytest.approx(0.3, abs=1e-9)
    assert np.all(np.diff(prob[np.argsort(score)]) >= 0)  # increasing in the score
    prob2, mask2 = select_annotated("covariates", 0.3, score, stream)
    np.testing.assert_array_equal(mask, mask2)


def test_seed_streams_are_the_spawned_children():
    ss = seed_streams(7, ("a", "b", "c"))
    children = np.random.SeedSequence(7).spawn(3)
    assert [stream_seed(s) for s in ss.values()] == [int(c.generate_state(1)[0]) for c in children]
    with pytest.raises(ValueError, match="distinct"):
        seed_streams(7, ("a", "a"))
    with pytest.raises(ValueError, match="seed"):
        seed_streams(-1, ("a",))


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def test_simulated_numbers_are_frozen():
    """The book quotes these simulators' numbers: a refactoring must not change any of them.

    Digests of Y (rounded to 1e-8), the notes, the split and X for fixed seeds and knobs,
    recorded before the simulators were moved onto their shared machinery."""
    r = simulate_respiratory(300, seed=1, annotated=0.6, annotation_selection="covariates")
    c = simulate_cardiac(300, seed=1, annotated=0.6, style="compact")
    s = simulate_spine(200, seed=1)
    expected = {
        "resp": ("e42a6fafff6b51d97a6a46c0e02046ea", "04b43f9d2dbca131c141d2a3a86dad2e",
                 "73a9dea5ca26a59c90f87afd95bee02a", "54cf613337529e8145289d27d29eb787"),
        "card": ("156e2e71aa53fdc051c192237fbbde5b", "f5ce8cefbab9c5516769129b4641003b",
                 "73a9dea5ca26a59c90f87afd95bee02a", "dbc45eaaa6e94e823a2349d5601cdd24"),
        "approach": ("7820f9346c91f26b8496e30b1a88796f", None,
                     "d9d8a610603f742d1568462052f2c894", "eb26510523637f68aa70277554b05187"),
        "surgery": ("8bd59171a004ac3fc2b5f8dcfe77e5fc", None,
                    "ec52ac561fcaf5030aafefec13fcb1bf", "3205f438d61404f301a3821e0846db11"),
    }
    for name, ds in (("resp", r), ("card", c), ("approach", s["approach"]),
                     ("surgery", s["surgery"])):
        got = (
            _digest(np.round(ds.Y, 8).tobytes()),
            _digest("\x00".join(ds.text).encode()) if ds.text else None,
            _digest(np.asarray(ds.split, dtype=str).tobytes()),
            _digest(np.round(np.asarray(ds.X, dtype=float), 8).tobytes()),
        )
        assert got == expected[name], name
