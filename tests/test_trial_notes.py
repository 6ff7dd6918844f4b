"""The randomised-trial simulator with enrolment notes and its note renderer."""

from __future__ import annotations

import numpy as np
import pytest

from ehrcausal.data import simulate_trial_notes
from ehrcausal.text.notes import (
    CARDIAC_FORBIDDEN_TERMS,
    TRIAL_CONCEPTS,
    contains_forbidden_term,
    phrase_tables,
    render_trial_notes,
)


def test_truth_proxies_and_randomisation():
    ds = simulate_trial_notes(4000, 1, effect=1.0, n_modifiers=3, proxy_correlation=0.7)
    rec = ds.modalities["records"]
    assert ds.meta["modifiers"] == ["ckd", "heart_failure", "diabetes"]
    assert ds.meta["proxies"] == ["nephrology", "loop_diuretic", "metformin"]
    for c, p in zip(ds.meta["modifiers"], ds.meta["proxies"], strict=True):
        assert np.corrcoef(rec[c], rec[p])[0, 1] == pytest.approx(0.7, abs=0.05)
    # tau depends on the modifiers only: constant given them
    key = rec[ds.meta["modifiers"]].astype(str).agg("".join, axis=1)
    assert max(np.ptp(ds.tau[key == k]) for k in key.unique()) == 0.0
    assert ds.T.mean() == pytest.approx(0.5, abs=0.03)
    np.testing.assert_allclose(ds.mu1 - ds.mu0, ds.tau)


def test_effect_changes_the_outcome_but_not_the_notes():
    a = simulate_trial_notes(300, 4, effect=0.5)
    b = simulate_trial_notes(300, 4, effect=2.0)
    assert a.text == b.text and np.array_equal(a.T, b.T)
    assert not np.allclose(a.Y, b.Y)
    assert simulate_trial_notes(300, 4, effect=0.5).text == a.text


def test_cluster_randomisation_assigns_whole_sites():
    ds = simulate_trial_notes(1000, 2, clusters=10)
    site = ds.modalities["site"]
    for s in np.unique(site):
        assert np.ptp(ds.T[site == s]) == 0
    assert len(np.unique(site[ds.T == 1])) == 5


def test_notes_mention_present_concepts():
    ds = simulate_trial_notes(500, 0, misspelling_rate=0.0)
    rec = ds.modalities["records"]
    clear = phrase_tables("trial")["normal"]["concepts"]["gout"]["present"]
    mentioned = np.array([any(p in t for p in clear) for t in ds.text])
    assert mentioned[rec["gout"] == 1].mean() > 0.7
    assert mentioned[rec["gout"] == 0].mean() == 0.0
    assert not any(contains_forbidden_term(t, CARDIAC_FORBIDDEN_TERMS) for t in ds.text)


@pytest.mark.parametrize(
    ("kw", "match"),
    [({"n_modifiers": 7}, "n_modifiers"), ({"proxy_correlation": 1.5}, "proxy_correlation"),
     ({"clusters": 2}, "clusters"), ({"effect": -1.0}, "effect"), ({"style": "terse"}, "style")],
)
def test_bad_knobs(kw, match):
    with pytest.raises(ValueError, match=match):
        simulate_trial_notes(100, 0, **kw)


def test_renderer_needs_the_concept_columns():
    ds = simulate_trial_notes(20, 0)
    rec = ds.modalities["records"].drop(columns=["gout"])
    with pytest.raises(ValueError, match="gout"):
        render_trial_notes(rec, seed=0)
    assert len(TRIAL_CONCEPTS) == 24
