"""The NEXIS chapter's experiment code, the TopK autoencoder and the CDISC pilot loader."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ehrcausal.chapters import nexis as chapter
from ehrcausal.data import load_cdisc_pilot
from ehrcausal.data.cdisc_pilot import pretreatment_before
from ehrcausal.learners.sae import TopKSAE, neuron_labels

BAD_KNOBS = [
    ({"methods": "nexis,oracle"}, "methods"),
    ({"embedding": "bert"}, "embedding"),
    ({"wording": "plain"}, "wording"),
    ({"mention_noise": 2}, "mention_noise"),
    ({"minilm_backend": "tpu"}, "minilm_backend"),
    ({"compare_minilm": "yes"}, "compare_minilm"),
    ({"mention_embedding": "bert"}, "mention_embedding"),
    ({"mention_dictionary": "64"}, "mention_dictionary"),
    ({"drop_negated": "yes"}, "drop_negated"),
    ({"mention_seeds": 0}, "mention_seeds"),
    ({"mention_dictionary": "64,65"}, "mention_dictionary k"),
    ({"fine_mention_dictionary": "256"}, "fine_mention_dictionary"),
    ({"ceiling_dictionary": "512,16"}, "ceiling_dictionary"),
    ({"n_modifiers": 6, "proxies_per_modifier": 3}, "proxies_per_modifier"),
]


@pytest.mark.parametrize(("knobs", "named"), BAD_KNOBS)
def test_config_names_a_bad_knob(knobs, named):
    with pytest.raises(ValueError, match=named):
        chapter.Config(**knobs)


def test_config_reads_its_knobs():
    cfg = chapter.Config(sizes="100,200", effects="0.5", methods="nexis,marginal_bh")
    assert cfg.sizes == [100, 200] and cfg.methods == ["nexis", "marginal_bh"]
    assert chapter.Config(mention_dictionary="32,2", svd_components=16).dictionary(
        "mention") == (32, 2, 16)
    assert chapter.Config(fine_mention_dictionary="256,1").dictionary("mention_fine")[:2] == (
        256, 1)
    with pytest.raises(ValueError, match="which"):
        chapter.Config().dictionary("huge")
    assert chapter.Config(ceiling_dictionary="512,16,256").dictionary("ceiling") == (512, 16, 256)
    assert chapter.Config(n_latents=64).dictionary("ceiling") == (64, 8, 64)  # as the main one


def test_phrase_dictionary_marks_the_phrases_of_each_note_by_concept():
    ds = chapter.Config(proxies_per_modifier=1).trial(400, 1.0, 2, misspelling_rate=0.0)
    Z, names = chapter.phrase_indicators(ds.text)
    rec = ds.modalities["records"]
    assert Z.shape == (400, len(names)) and set(np.unique(Z)) <= {0.0, 1.0}
    assert set(names) <= set(rec.columns)
    # a concept's phrases (stated, hedged or negated) appear only in notes that mention it
    for c in ("ckd", "diabetes"):
        cols = Z[:, names == c]
        mentioned = cols.max(axis=1) == 1
        assert mentioned.any() and (cols.sum(axis=1) <= 1).all()
        # stated mentions dominate among those who have the concept
        assert mentioned[rec[c].to_numpy() == 1].mean() > 0.8
    rows = chapter.run_trial(chapter.Config(n=400), None, n=400, effect=1.0, seed=2,
                             spaces=("phrases",), methods=["nexis"])
    assert rows[0]["space"] == "phrases" and 0.0 <= rows[0]["iou"] <= 1.0


def test_ceiling_readings_tabulate_every_note_setting_and_space_with_a_verdict():
    rows = []
    for setting, align in (("written", 0.5), ("canonical_faithful", 0.9)):
        for space in chapter.CEILING_SPACES:
            for method in ("nexis", "marginal_bonferroni"):
                for r in range(2):
                    rows.append({"setting": setting, "space": space, "method": method,
                                 "replicate": r, "alignment": align,
                                 "iou": 1.0 if method == "nexis" else 0.5 * r})
    out = chapter.ceiling_readings(pd.DataFrame(rows), chapter.Config())
    table = out["ceiling_table"]
    assert table.shape[0] == 2 * len(chapter.CEILING_SPACES)
    assert out["ceil_canonical_faithful_neurons_nexis"] == 1.0
    assert out["ceil_written_phrases_marginal_bonferroni"] == pytest.approx(0.25)
    assert out["ceil_target_written_neurons"] == "met"  # 1.0 against 0.25
    assert out["ceil_align_canonical_faithful"] == 0.9
    label = chapter.NOTE_SETTINGS["written"][0]
    assert table.loc[(label, "whole-note neurons"), "best neuron–modifier correlation"] == "0.50"
    assert out["ceil_malign_written"] == 0.5 and out["ceil_target_written_mention_neurons"] == "met"
    assert out["ceil_falign_canonical_faithful"] == 0.9 and out["ceil_fine_k"] == 1
    assert chapter.target_met(0.8, 0.29) == "met"
    assert chapter.target_met(0.79, 0.1) == chapter.target_met(0.9, 0.3) == "not met"


def test_mention_dictionary_is_the_concepts_when_notes_are_faithful():
    cfg = chapter.Config(mention_noise=0.0, misspelling_rate=0.0)
    ds = cfg.trial(300, 1.0, 5)
    Z, names = chapter.mention_indicators(ds.text)
    rec = ds.modalities["records"]
    for j, c in enumerate(names):
        np.testing.assert_array_equal(Z[:, j], rec[c].to_numpy(dtype=float))
    noisy = chapter.Config().trial(300, 1.0, 5)  # omissions, hedges, misspellings
    Zn, names_n = chapter.mention_indicators(noisy.text)
    agree = [np.mean(Zn[:, j] == rec[c]) for j, c in enumerate(names_n)]
    assert min(agree) < 1.0 and np.mean(agree) > 0.9
    # counting hedges adds mentions and removes none (same columns on these notes)
    Zh, names_h = chapter.mention_indicators(noisy.text, hedged=True)
    assert list(names_h) == list(names_n)
    assert (Zh >= Zn).all() and (Zh > Zn).any()
    with pytest.raises(ValueError, match="hedged"):
        chapter.mention_indicators(noisy.text, hedged="yes")


def test_embedding_readings_say_which_representations_did_not_run():
    cfg = chapter.Config()
    # no transformer unless asked for: TF-IDF of whole notes and of mentions
    assert chapter.comparisons(cfg) == ["tfidf", "mention_tfidf"]
    assert chapter.comparisons(chapter.Config(mention_embedding="minilm"))[-1] == "mention_minilm"
    assert chapter.comparisons(chapter.Config(compare_minilm=True)) == [
        "tfidf", "minilm", "mention_tfidf", "mention_minilm"]
    rows = [{"embedding": e, "embedding_label": e.upper(), "method": m, "replicate": r,
             "alignment": 0.7, "sae_r2": 0.9, "iou": iou, "precision": iou, "recall": iou}
            for e, (a, b) in (("tfidf", (0.5, 0.4)), ("mention_tfidf", (0.9, 0.2)))
            for m, iou in (("nexis", a), ("marginal_bonferroni", b)) for r in range(2)]
    out = chapter.embedding_readings(pd.DataFrame(rows), cfg)
    assert out["emb_target_mention_tfidf"] == "met" and out["emb_target_tfidf"] == "not met"
    assert out["embedding_table"].loc["MENTION_TFIDF", "target"] == "met"
    assert "Not run at this profile: whole-note MiniLM and per-mention MiniLM" in str(
        out["embedding_reading"])


def test_chapter_parts_are_cached_by_every_knob_and_reread_identically(tmp_path, monkeypatch):
    cfg = chapter.Config(cdisc_seeds=2)
    first = chapter.cached("cdisc_planted", cfg, tmp_path)
    assert len(list((tmp_path / "nexis_text_trials").glob("*.json"))) == 1

    def fail(part):
        raise AssertionError("recomputed a cached part")

    monkeypatch.setattr(chapter, "_compute_part", fail)
    again = chapter.cached("cdisc_planted", cfg, tmp_path)
    pd.testing.assert_frame_equal(first, again)  # identical numbers, from the cache
    with pytest.raises(AssertionError, match="recomputed"):  # another knob, another key
        chapter.cached("cdisc_planted", chapter.Config(cdisc_seeds=3), tmp_path)
    assert chapter.Part("sweep", cfg).key() != chapter.Part("sweep", chapter.Config(n=700)).key()
    for knob in ({"mention_dictionary": "32,1"}, {"mention_embedding": "minilm"}):
        assert chapter.Part("sweep", cfg).key() != chapter.Part(
            "sweep", chapter.Config(**knob)).key()
    assert "device" not in chapter.config_key(cfg) and "device_used" in chapter.config_key(cfg)
    with pytest.raises(ValueError, match="part"):
        chapter.cached("everything", cfg, tmp_path)


def test_mention_seed_readings_range_over_the_autoencoder_seeds():
    rows = [{"setting": setting, "sae_seed": s, "method": m, "replicate": r, "alignment": 0.5,
             "iou": (0.9 if s == 1 else 0.4) if m == "nexis" else 0.25}
            for setting in chapter.SEED_SETTINGS for s in range(3)
            for m in ("nexis", "marginal_bonferroni") for r in range(2)]
    out = chapter.mention_seed_readings(pd.DataFrame(rows))
    assert out["mseed_n"] == 3 and out["mseed_written_min"] == 0.4
    assert out["mseed_faithful_max"] == 0.9 and out["mseed_written_met"] == 1
    assert out["mention_seed_table"].shape[0] == 6


def test_concept_space_search_scores_labels_against_the_truth():
    cfg = chapter.Config(n=2000, methods="nexis,marginal_bonferroni")
    rows = chapter.run_trial(cfg, None, n=2000, effect=1.5, seed=3, spaces=("concepts",),
                             methods=cfg.methods)
    by = {r["method"]: r for r in rows}
    assert by["nexis"]["iou"] >= 0.99 and by["nexis"]["proxy_share"] == 0.0
    assert by["marginal_bonferroni"]["proxy_share"] > 0  # proxies pass marginal tests
    assert by["marginal_bonferroni"]["recall"] == 1.0


def test_score_counts_each_label_once_and_ignores_unlabelled_neurons():
    ds = chapter.Config().trial(50, 1.0, 0)
    names = np.array(["ckd", "ckd", None, "nephrology"], dtype=object)
    s = chapter.score(np.array([0, 1, 2, 3]), names, ds)
    assert s["n_columns"] == 4 and s["precision"] == 0.5 and s["proxy_share"] == 0.5


def test_null_table_is_the_share_of_trials_with_a_selection():
    null = pd.DataFrame({"clusters": 0, "space": "concepts", "method": "nexis",
                         "cov_type": "nonrobust", "seed": range(40),
                         "any": [1.0] * 4 + [0.0] * 36})
    table, readings = chapter.null_table(null)
    assert readings["fwer_ind_concepts_nexis_nonrobust"] == pytest.approx(0.1)
    assert table.loc[0, "within α + 2 s.e."] == "yes"  # 0.1 <= 0.05 + 2 sqrt(.05 .95 / 40)
    null["any"] = [1.0] * 8 + [0.0] * 32
    assert chapter.null_table(null)[0].loc[0, "within α + 2 s.e."] == "no"
    # robust variances under cluster randomisation are read out with their verdicts
    cl = pd.concat([null.assign(clusters=20, space="neurons", cov_type=v, any=a)
                    for v, a in (("CR1S", [1.0] * 39 + [0.0]), ("CR2", [1.0] * 2 + [0.0] * 38))])
    table, readings = chapter.null_table(cl)
    assert readings["fwer_cl_neurons_nexis_CR1S"] == pytest.approx(0.975)
    text = str(readings["robust_reading"])
    assert "0.97 with CR1S, t(G − 1) (above" in text and "0.05 with CR2" in text
    assert list(table["variance"]) == [chapter.VARIANCE_LABELS["CR1S"],
                                       chapter.VARIANCE_LABELS["CR2"]]


def test_gate_readings_compare_paired_runs():
    rows = []
    for seed in range(3):
        for method, sel in (("nexis", [1]), ("nexis_released", [1] if seed else [1, 2])):
            rows.append({"space": "neurons", "n": 10, "effect": 1.0, "seed": seed,
                         "method": method, "selected": sel, "iou": 1.0 if sel == [1] else 0.5})
    out = chapter.gate_readings(pd.DataFrame(rows))
    assert out["gate_runs"] == 3 and out["gate_differ"] == 1


def test_topk_autoencoder_is_sparse_deterministic_and_labels_a_planted_direction():
    rng = np.random.default_rng(0)
    n = 400
    F = (rng.random((n, 4)) < 0.3).astype(float)
    dirs = rng.normal(size=(4, 16))
    X = F @ dirs + 0.05 * rng.normal(size=(n, 16))
    kw = dict(n_latents=12, k=3, normalise="none", epochs=25, lr=1e-2, random_state=1,
              device="cpu")
    sae = TopKSAE(**kw).fit(X)
    A = sae.transform(X)
    assert A.shape == (n, 12) and (np.count_nonzero(A, axis=1) <= 3).all() and A.min() >= 0
    np.testing.assert_array_equal(A, TopKSAE(**kw).fit(X).transform(X))
    assert sae.explained_variance_ > 0.5
    labels = neuron_labels(A, pd.DataFrame(F, columns=list("abcd")))
    best = labels.groupby("label").correlation.max()
    assert set(best.index) == set("abcd") and best.min() > 0.5
    with pytest.raises(ValueError, match="k must be"):
        TopKSAE(n_latents=4, k=5).fit(X)
    with pytest.raises(ValueError, match="columns"):
        sae.transform(X[:, :5])


def test_partial_dates_count_as_before_only_when_surely_before():
    start = pd.Series(["2010", "2012", "2012-03", "2012-05-01", None, "2012-05-02"])
    first = pd.Series(["2012-05-02"] * 6)
    assert pretreatment_before(start, first).tolist() == [True, False, True, True, False, False]


def test_cdisc_pilot_text_is_pre_treatment_only():
    ds = load_cdisc_pilot()
    assert len(ds.Y) == 234 and set(np.unique(ds.T)) == {0, 1}
    terms = ds.modalities["terms"]
    assert (terms.sum(axis=0) >= 5).all()
    assert all(t.startswith("Medical history:") for t in ds.text)
    joined = " ".join(ds.text).lower()
    assert "xanomeline" not in joined and "alzheimer" not in joined
    assert ds.meta["arm"].count("Placebo") == int((ds.T == 0).sum())


def test_selected_policies_learn_the_planted_rule_and_handle_an_empty_selection():
    rng = np.random.default_rng(6)
    n = 1200
    Z = (rng.random((n, 2)) < 0.4).astype(float)
    T = rng.integers(0, 2, n)
    tau = 1.0 - 2.0 * Z[:, 0]  # harmful where column 0 is active
    Y = Z[:, 1] + T * tau + rng.normal(size=n)
    rule = chapter.SelectedPolicies(seed=0).fit(Y, T, Z)
    np.testing.assert_array_equal(rule.ols_treat(Z), Z[:, 0] == 0)
    assert (rule.tree_treat(Z) == (Z[:, 0] == 0)).mean() > 0.95
    worse = chapter.SelectedPolicies(seed=0, higher="worse").fit(Y, T, Z)
    np.testing.assert_array_equal(worse.ols_treat(Z), Z[:, 0] == 1)
    empty = chapter.SelectedPolicies().fit(Y, T, Z[:, :0])
    assert empty.tree_treat(Z[:, :0]).all() == (np.mean(tau) > 0)
    assert empty.ols_treat(Z[:, :0]).all() == (np.mean(tau) > 0)


def test_cdisc_policy_values_are_doubly_robust_and_cover_every_policy():
    ds = load_cdisc_pilot()
    vals = chapter.cdisc_policy(chapter.Config(cdisc_seeds=2), ds)
    assert set(vals.policy) == {"NEXIS terms", "NEXIS terms, depth-2 tree", "treat all",
                                "treat none"}
    assert len(vals) == 2 * 2 * 4
    # with e the evaluating half's treated share, treating all (none) is worth exactly that
    # half's treated (control) mean, whatever the learning half's arm means
    from ehrcausal.runtime import child_seeds

    s = child_seeds(3, 2)[0]
    ev = ~(np.random.default_rng(s).permutation(len(ds.Y)) < len(ds.Y) // 2)
    first = vals[(vals.seed == s) & (vals.part == 0)].set_index("policy")
    assert first.loc["treat all", "value"] == pytest.approx(ds.Y[ev & (ds.T == 1)].mean())
    assert first.loc["treat none", "value"] == pytest.approx(ds.Y[ev & (ds.T == 0)].mean())
    assert first.loc["treat all", "treated"] == 1.0
    out = chapter.cdisc_policy_readings(vals)
    assert out["cdisc_policy_splits"] == 2 and out["cdisc_policy_table"].shape == (4, 3)
    assert out["cdisc_policy_half"] == len(ds.Y) // 2  # the smaller half, glued in the prose
