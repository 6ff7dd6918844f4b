"""Mentions of a note: the splitting rule, the max pooling and the once-per-string encoder."""

from __future__ import annotations

import numpy as np
import pytest

from ehrcausal.chapters import nexis as chapter
from ehrcausal.data import simulate_trial_notes
from ehrcausal.text import mentions as M


def test_a_note_is_split_at_full_stops_semicolons_and_labels_only():
    note = ("Screening visit: 68-year-old man. History: no renal impairment; obese, BMI 24; "
            "takes 1.5 mg  daily;history of gout.  Consented and enrolled.")
    assert M.split_mentions(note) == [
        "Screening visit", "68-year-old man", "History", "no renal impairment",
        "obese, BMI 24",  # a comma stays inside a mention
        "takes 1.5 mg daily;history of gout",  # no space after the semicolon: one mention
        "Consented and enrolled"]
    assert M.split_mentions("Hsitory: gout") == ["Hsitory", "gout"]  # no header list is used
    assert M.split_mentions("   ") == [] and M.split_mentions("no gout") == ["no gout"]
    with pytest.raises(ValueError, match="note"):
        M.split_mentions(3)  # type: ignore[arg-type]


def test_faithful_trial_notes_state_each_present_concept_as_one_mention():
    ds = simulate_trial_notes(200, 4, mention_noise=0.0, misspelling_rate=0.0)
    flat, owners = M.split_notes(ds.text)
    assert np.all(np.diff(owners) >= 0) and owners[-1] == len(ds.text) - 1
    kinds = chapter.mention_kinds(flat)
    rec = ds.modalities["records"]
    stated = kinds.kind.to_numpy() == "stated"
    for i in (0, 7, 123):
        got = set(kinds.concept.to_numpy()[(owners == i) & stated])
        want = {c for c in ds.meta["concepts"] if rec[c].iloc[i] == 1}
        assert got == want  # every present concept, and nothing else, is a stated mention
    # the renderer's negations are mentions of their own, classified as such
    k = chapter.mention_kinds(["no gout", "history of gout", "histroy of gout"])
    assert k.kind.tolist()[:2] == ["negated", "stated"] and k.concept.iloc[0] == "gout"
    assert k.iloc[2].isna().all()  # a misspelt phrase is no phrase of the table


def test_a_mention_opening_with_a_negation_word_is_negated():
    for m in ("no gout", "No known drug allergies", "not on glucose-lowering drugs",
              "never smoked", "non-smoker", "denies chest pain", "negative for HIV"):
        assert M.is_negated(m), m
    for m in ("history of gout", "notable weight loss", "nonetheless well", "known CKD",
              "referred to nephrology, not yet seen", "thyroid function normal", ""):
        assert not M.is_negated(m), m
    # every phrase the renderer writes for a present or hedged concept is affirmed
    kinds = chapter.mention_kinds(M.split_notes(simulate_trial_notes(300, 1, misspelling_rate=0.0,
                                                                     mention_noise=1.0).text)[0])
    affirmed = kinds[kinds.kind.isin(["stated", "hedged"])].index
    assert len(affirmed) and not any(M.is_negated(m) for m in affirmed)
    with pytest.raises(ValueError, match="mention"):
        M.is_negated(None)  # type: ignore[arg-type]


def test_max_pool_is_the_largest_value_over_each_notes_mentions():
    rng = np.random.default_rng(0)
    V = rng.exponential(size=(9, 4)) * (rng.random((9, 4)) < 0.5)
    owners = np.array([2, 0, 2, 0, 3, 2, 0, 3, 3])  # any order; note 1 has no mention
    out = M.max_pool(V, owners, 5)
    for i in range(5):
        want = V[owners == i].max(axis=0) if (owners == i).any() else np.zeros(4)
        np.testing.assert_array_equal(out[i], want)
    assert M.max_pool(np.zeros((0, 4)), np.zeros(0, int), 2).shape == (2, 4)
    with pytest.raises(ValueError, match="non-negative"):
        M.max_pool(-V, owners, 5)
    with pytest.raises(ValueError, match="owners"):
        M.max_pool(V, owners, 3)


def test_encoder_embeds_each_distinct_string_once(monkeypatch):
    calls: list[list[str]] = []

    def fake_embed(texts, model, **kw):
        calls.append(list(texts))
        return np.array([[len(t), t.count("o"), 1.0] for t in texts], dtype=np.float32)

    monkeypatch.setattr(M, "embed", fake_embed)
    enc = M.MentionEncoder("minilm", cache_dir=False).fit(["ignored"])
    a = enc.transform(["no gout", "history of gout", "no gout"])
    b = enc.transform(["history of gout", "obese"])
    assert calls == [["history of gout", "no gout"], ["obese"]]  # sorted, each string once
    np.testing.assert_array_equal(a[0], a[2])
    np.testing.assert_array_equal(a[1], b[0])
    assert enc.n_embedded_ == 3
    tf = M.MentionEncoder("tfidf", n_components=2)
    with pytest.raises(ValueError, match="fit"):
        tf.transform(["gout"])
    tf.fit(["no gout", "history of gout", "obese, BMI 24", "gout attacks"] * 2)
    Z = tf.transform(["gout attacks", "no gout", "gout attacks"])
    assert Z.shape == (3, 2) and tf.n_embedded_ == 2
    with pytest.raises(ValueError, match="model"):
        M.MentionEncoder("bert")


def test_per_mention_neurons_are_the_max_of_the_mention_activations():
    cfg = chapter.Config(corpus=300, epochs=2, mention_dictionary="16,1", svd_components=8)
    rep = chapter.representation(cfg, unit="mention")
    assert rep.unit == "mention" and rep.sae.n_latents == 16 and rep.sae.k == 1
    assert rep.drop_negated  # the default
    notes = cfg.trial(40, 1.0, 3).text
    Z = rep.neurons(notes)
    for i in (0, 5, 39):
        affirmed = [m for m in M.split_mentions(notes[i]) if not M.is_negated(m)]
        A = rep.sae.transform(rep.mentions.transform(affirmed))
        np.testing.assert_allclose(Z[i], A.max(axis=0))
        assert np.count_nonzero(A, axis=1).max() <= 1  # k = 1: one neuron per mention
    # a negated mention adds nothing to its note
    Zn = rep.neurons(["History: no gout.", "History: history of gout.", "History."])
    np.testing.assert_allclose(Zn[0], Zn[2])
    np.testing.assert_allclose(Zn[0], rep.mention_activations(["History"])[0])
    assert not np.allclose(Zn[1], Zn[2])
    r = rep.readings
    assert r["mention_count"] > r["mention_distinct"] > 0 and r["sae_k"] == 1
    for kind in ("stated", "hedged", "negated", "other_concepts"):
        assert 0.0 <= r[f"mention_fire_{kind}"] <= 1.0
    with pytest.raises(ValueError, match="whole-note"):
        rep.embed(notes)
    with pytest.raises(ValueError, match="unit"):
        chapter.representation(cfg, unit="sentence")
