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


def test_several_proxies_per_modifier_correlate_with_it_and_leave_the_rest_unchanged():
    one = simulate_trial_notes(4000, 2, n_modifiers=3)
    three = simulate_trial_notes(4000, 2, n_modifiers=3, proxies_per_modifier=3)
    rec1, rec3 = one.modalities["records"], three.modalities["records"]
    extra = [p for p in three.meta["proxies"] if p not in one.meta["proxies"]]
    assert three.meta["proxies"][:3] == one.meta["proxies"] and len(extra) == 6
    for k, c in enumerate(three.meta["modifiers"]):
        for p in extra[2 * k:2 * k + 2]:
            assert np.corrcoef(rec3[c], rec3[p])[0, 1] == pytest.approx(0.8, abs=0.04)
    unchanged = [c for c in TRIAL_CONCEPTS if c not in extra]
    assert rec1[unchanged].equals(rec3[unchanged])
    np.testing.assert_array_equal(one.tau, three.tau)  # proxies modify nothing
    with pytest.raises(ValueError, match="proxies_per_modifier"):
        simulate_trial_notes(50, 0, n_modifiers=6, proxies_per_modifier=3)


def test_canonical_wording_writes_one_phrase_per_concept_and_mode():
    table = phrase_tables("trial")["normal"]["concepts"]
    varied = simulate_trial_notes(600, 3, misspelling_rate=0.0)
    canon = simulate_trial_notes(600, 3, misspelling_rate=0.0, wording="canonical")
    np.testing.assert_array_equal(varied.Y, canon.Y)
    second = table["ckd"]["present"][2].lower()  # "known CKD"
    assert any(second in t.lower() for t in varied.text)
    assert not any(second in t.lower() for t in canon.text)
    first = table["ckd"]["present"][0].lower()
    has_ckd = varied.modalities["records"]["ckd"].to_numpy() == 1
    share = np.mean([first in t.lower() for t, h in zip(canon.text, has_ckd, strict=True) if h])
    assert share > 0.75  # stated (not omitted or hedged) for about 84 % of those with CKD
    with pytest.raises(ValueError, match="wording"):
        simulate_trial_notes(50, 0, wording="plain")


def test_mention_noise_scales_omissions_hedges_and_spurious_mentions():
    noisy = simulate_trial_notes(600, 4, misspelling_rate=0.0)
    assert simulate_trial_notes(600, 4, misspelling_rate=0.0, mention_noise=1.0).text == noisy.text
    faithful = simulate_trial_notes(600, 4, misspelling_rate=0.0, mention_noise=0.0)
    np.testing.assert_array_equal(noisy.Y, faithful.Y)
    rec = faithful.modalities["records"]
    table = phrase_tables("trial")["normal"]["concepts"]
    for c in ("ckd", "gout", "depression"):
        have = rec[c].to_numpy() == 1
        stated = np.array([any(p.split("{k}")[0].lower() in t.lower()
                               for p in table[c]["present"]) for t in faithful.text])
        hedged = np.array([any(p.lower() in t.lower() for p in table[c]["hedge"])
                           for t in faithful.text])
        assert stated[have].all() and not hedged.any()  # every present concept stated
        noisy_hedged = np.array([any(p.lower() in t.lower() for p in table[c]["hedge"])
                                 for t in noisy.text])
        assert noisy_hedged.any()  # the default notes do hedge
    assert faithful.meta["knobs"]["mention_noise"] == 0.0
    with pytest.raises(ValueError, match="mention_noise"):
        simulate_trial_notes(50, 0, mention_noise=1.5)
