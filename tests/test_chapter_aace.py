"""The AACE chapter's experiment code: designs, scoring and one end-to-end cell."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ehrcausal.chapters import aace as study
from ehrcausal.data import CausalDataset


def _toy(tau: np.ndarray) -> CausalDataset:
    n = len(tau)
    mu0 = np.zeros(n)
    return CausalDataset(X=pd.DataFrame({"x": np.arange(n)}), T=np.arange(n) % 2, Y=mu0,
                         mu0=mu0, mu1=mu0 + tau)


def test_policy_scores_by_hand():
    # benefits b = -tau = [3, 1, 0, -2]; ranking by the true benefit treats 0, 1, 2, 3 in order
    ds = _toy(np.array([-3.0, -1.0, 0.0, 2.0]))
    best = study.policy_scores(ds, ds.tau, -ds.tau)
    # G(k) = cumulative benefit / n: 3/4, 4/4, 4/4, 2/4 -> mean over k = 1..4 is 13/16
    assert best["policy"] == pytest.approx(13 / 16)
    assert best["pehe"] == 0.0
    worst = study.policy_scores(ds, None, ds.tau)  # treats the most harmed first
    assert np.isnan(worst["pehe"])
    # G: -2/4, -2/4, -1/4, 2/4 -> mean -3/16
    assert worst["policy"] == pytest.approx(-3 / 16)
    assert best["autoc"] > 0 > worst["autoc"]
    assert best["curve"][0] == 0.0 and len(best["curve"]) == len(study.CURVE_BUDGETS)


def test_policy_scores_needs_truth():
    ds = _toy(np.array([1.0, 2.0]))
    ds.tau = None
    with pytest.raises(ValueError, match="true effect"):
        study.policy_scores(ds, None, np.array([0.0, 1.0]))


def test_design_crosses_settings_replicates_and_learners():
    cells = study.design("budget", simulator="respiratory", n=100, seeds=[11, 12],
                         learners={"a": "aace", "r": "risk_based"},
                         params={"a": {"cv": 3}},
                         settings=[{"annotated": 0.1}, {"annotated": 0.5}],
                         representations=("minilm", "tfidf"))
    assert len(cells) == 2 * 2 * 2 * 2
    assert {c.seed for c in cells} == {11, 12}
    assert all(c.random_state == c.seed for c in cells)
    assert [c.params for c in cells if c.learner == "a"][0] == {"cv": 3}
    assert {c.knobs["annotated"] for c in cells} == {0.1, 0.5}
    with pytest.raises(ValueError, match="unknown simulator"):
        study.design("x", simulator="dermatology", n=10, seeds=[0], learners={"a": "aace"})


def _config(**kw):
    base = {"n": 300, "replicates": 2, "learners": "aace,risk_based,tarnet,oracle",
            "stress_learners": "aace,oracle", "annotated": 1.0, "annotated_fractions": "0.25,1",
            "selection_fraction": 0.25, "confounding_levels": "0,2", "epochs": 3,
            "n_estimators": 5, "device": "cpu"}
    return study.Config(**{**base, **kw})


def test_config_parses_and_checks_the_parameters():
    cfg = _config()
    assert cfg.annotated_fractions == [0.25, 1.0] and cfg.confounding_levels == [0.0, 2.0]
    assert len(cfg.seeds) == 2
    # budgets from the registry: epochs for the network, nothing for AACE
    assert cfg.params["tarnet"] == {"epochs": 3, "device": "cpu"} and cfg.params["aace"] == {}
    with pytest.raises(ValueError, match="annotated_fractions"):
        _config(annotated_fractions="0.5,1.5")
    with pytest.raises(ValueError, match="not learners"):
        _config(learners="aace,xmultitask")


def test_chapter_cells_cover_every_experiment():
    cfg = _config()
    cells = study.chapter_cells(cfg)
    count = {e: sum(c.experiment == e for c in cells) for e in
             ("main", "budget", "selection", "confounding", "representation")}
    # main: 2 simulators x 2 replicates x 4 learners, + AACE without the instrument x 2;
    # budget: 2 fractions x 2 x AACE (respiratory) + 1 ceiling fraction x 2 (cardiac);
    # selection: 2 kinds x 2 x 2 variants; confounding: 2 levels x 2 x 2 (respiratory) + 1
    # ceiling level x 2 (cardiac); representation: 2 styles x 2 representations x 2 x 2
    assert count == {"main": 18, "budget": 6, "selection": 8, "confounding": 10,
                     "representation": 16}
    dropped = [c for c in cells if c.drop]
    assert [c.drop for c in dropped] == [("policy",)] * 2
    assert {c.learner for c in dropped} == {study.INSTRUMENT_LABEL}
    assert {c.simulator for c in cells if c.experiment == "budget"} == {"respiratory", "cardiac"}
    assert len(study.chapter_cells(_config(instrument=False))) == len(cells) - 2
    assert {c.seed for c in cells} == set(cfg.seeds)


def test_baselines_are_the_learners_without_annotations_or_truth():
    assert study.baselines(["aace", "aace_no_crossfit", "risk_based", "tarnet", "oracle"]) == [
        "risk_based", "tarnet"]


@pytest.mark.parametrize("representation", ["tfidf"])
def test_one_cell_end_to_end(representation, tmp_path):
    cells = study.design("main", simulator="respiratory", n=300, seeds=[3],
                         learners={"aace": "aace", "risk_based": "risk_based", "oracle": "oracle"},
                         settings=[{"annotated": 0.8}], representations=(representation,))
    df = study.run_cells(cells, cache_dir=tmp_path, progress=False)
    assert list(df.learner) == ["aace", "risk_based", "oracle"]
    assert np.isnan(df.set_index("learner").loc["risk_based", "pehe"])
    assert np.isfinite(df.set_index("learner").loc["aace", "pehe"])
    truth = pd.DataFrame(study.truth_rows(cells)).set_index("learner")
    # no ranking beats the true effect's
    assert (df.policy <= truth.loc["true effect", "policy"] + 1e-12).all()
    # the same cells again give identical numbers (every draw is seeded)
    again = study.run_cells(cells, cache_dir=tmp_path, progress=False)
    pd.testing.assert_frame_equal(df.drop(columns="seconds"), again.drop(columns="seconds"))


def test_random_baseline_is_the_exact_expectation_and_gain_share_uses_it():
    # b = [3, 1, 0, -2], mean 1/2: a random order's expected G(k) is (k/n) mean(b), so its mean
    # over k = 1..4 is (1 + 2 + 3 + 4) / 16 * 1/2 = 5/16, and its AUTOC is 0
    ds = _toy(np.array([-3.0, -1.0, 0.0, 2.0]))
    rand = study.policy_scores(ds, None, np.zeros(4))
    assert rand["policy"] == pytest.approx(5 / 16)
    assert rand["autoc"] == pytest.approx(0.0)
    k = np.floor(study.CURVE_BUDGETS * 4 + 0.5)  # the curve is kept at these budgets
    np.testing.assert_allclose(rand["curve"], k / 4 * 0.5, atol=1e-12)
    # share of the gain: (G - 5/16) / (13/16 - 5/16), per setting (here two replicates)
    rows = pd.DataFrame({
        "experiment": "main", "simulator": "respiratory", "representation": "minilm",
        "replicate": [0, 0, 0, 1, 1, 1],
        "learner": ["true effect", "random", "aace"] * 2,
        "policy": [13 / 16, 5 / 16, 9 / 16, 1.0, 0.5, 0.5],
    })
    np.testing.assert_allclose(study.gain_share(rows), [100, 0, 50, 100, 0, 0])


def test_budget_verdict_is_paired_over_replicates():
    risk = pd.DataFrame({"experiment": "main", "simulator": "respiratory",
                         "learner": "risk_based", "replicate": [0, 1, 2],
                         "policy": [1.0, 1.1, 0.9]})
    aace = pd.DataFrame({"experiment": "budget", "simulator": "respiratory", "learner": "aace",
                         "replicate": [0, 1, 2] * 2, "knob_annotated": [0.1] * 3 + [0.5] * 3,
                         "policy": [0.9, 1.2, 0.8, 1.5, 1.6, 1.45]})
    text = study.budget_verdict(pd.concat([risk, aace]), [0.1, 0.5])
    # at 10 %: differences -0.1, 0.1, -0.1 (not judged better); at 50 %: 0.5, 0.5, 0.55
    assert text.startswith("from 50 % of records annotated upwards, by more than two standard")
    assert "10 %: -0.033 ± 0.067" in text and "50 %: +0.517 ± 0.017" in text
    one = study.budget_verdict(pd.concat([risk[:1], aace[aace.replicate == 0]]), [0.1, 0.5])
    assert "one replicate" in one


def _rows(sim, rep, learner, policy, pehe=np.nan, experiment="main", **extra):
    return {"experiment": experiment, "simulator": sim, "replicate": rep, "learner": learner,
            "representation": "minilm", "knob_annotated": 1.0, "policy": policy, "pehe": pehe,
            "autoc": 0.0, "seconds": 1.0, **extra}


def test_target_rows_label_each_target_with_its_registered_variant():
    from ehrcausal.learners.aace import target_variants

    targets = {"dr": {"pehe": 0.9, "policy": 0.5, "autoc": 0.1, "target_noise": 5.0},
               "plugin": {"pehe": 0.7, "policy": 0.6, "autoc": 0.2, "target_noise": 1.0}}
    res = pd.DataFrame([
        _rows("respiratory", 0, "aace", 0.6, 0.7, targets=targets, chosen_target="plugin"),
        _rows("respiratory", 0, study.INSTRUMENT_LABEL, 0.55, 0.8, targets=targets,
              chosen_target="plugin", dropped="policy"),
        _rows("respiratory", 0, "risk_based", 0.4),
    ])
    rows = study.target_rows(res).set_index("learner")
    dr, plugin = target_variants()["dr"], target_variants()["plugin"]
    assert set(rows.index) == {dr, plugin, f"{dr}@{study.INSTRUMENT_LABEL}",
                               f"{plugin}@{study.INSTRUMENT_LABEL}"}
    assert rows.loc[dr, "pehe"] == 0.9 and rows.loc[plugin, "target_noise"] == 1.0
    assert rows.loc[f"{dr}@{study.INSTRUMENT_LABEL}", "dropped"] == "policy"
    assert "targets" not in rows.columns and "curve" not in rows.columns
    # a variant fitted as its own cell is not duplicated
    own = pd.concat([res, pd.DataFrame([_rows("respiratory", 0, dr, 0.5, 0.9)])],
                    ignore_index=True)
    assert (study.target_rows(own).learner == dr).sum() == 0
    assert study.target_rows(res.drop(columns=["targets"])).empty


def test_oracle_share_by_hand_and_the_instrument_pairing():
    # G_random 0.5 and G_oracle 0.7 (main experiment): G = 0.6 is half the oracle's gain, in
    # any experiment of the same simulator and replicate
    res = pd.DataFrame([
        _rows("cardiac", 0, "random", 0.5), _rows("cardiac", 0, "oracle", 0.7, 0.3),
        _rows("cardiac", 0, "aace", 0.6, 0.5),
        _rows("cardiac", 0, "aace", 0.75, 0.4, experiment="budget"),
        _rows("cardiac", 1, "aace", 0.6, 0.5),  # replicate without an oracle: NaN
    ])
    share = study.oracle_share(res)
    np.testing.assert_allclose(share.to_numpy()[2:4], [50.0, 125.0])
    assert np.isnan(share.iloc[4])
    # instrument: paired difference without - with, per replicate
    inst = pd.DataFrame([
        _rows("respiratory", r, name, p, e, gain_share=g)
        for r, (a, b) in enumerate([(0.70, 0.60), (0.80, 0.72), (0.75, 0.64)])
        for name, p, e, g in [("aace", 0.6, a, 40.0), (study.INSTRUMENT_LABEL, 0.6, b, 45.0)]])
    out = study.instrument_readings(inst)
    table = out["instrument_table"]
    assert table.loc["AACE (data-selected)", "√PEHE: without − with"].startswith("-0.097 ± 0.00")
    assert out["inst_aace"].startswith("lowers √PEHE by 0.097")
    assert "not run" in study.instrument_readings(inst[inst.learner == "aace"])["inst_verdict"]


def test_run_cell_refuses_to_drop_a_column_that_is_not_there(tmp_path):
    cell = study.design("main", simulator="cardiac", n=60, seeds=[1], learners={"o": "oracle"},
                        representations=("tfidf",))[0]
    from dataclasses import replace

    with pytest.raises(ValueError, match=r"drop names columns that are not in X: \['policy'\]"):
        study.run_cell(replace(cell, drop=("policy",)), cache_dir=tmp_path)


def _ceiling_results() -> pd.DataFrame:
    """Three replicates on both simulators: the DR target is noisy and inaccurate, the plug-in
    the quietest but biased (less accurate than R), R the most accurate; AACE chose R."""
    from ehrcausal.learners.aace import target_variants

    v = target_variants()
    rows = []
    for sim in study.SIMULATORS:
        for rep in range(3):
            jitter = 0.01 * rep
            for exp, knob in [("main", {}), ("budget", {"knob_annotated": 0.25}),
                              ("budget", {"knob_annotated": 0.5}),
                              ("confounding", {"knob_confounding": 2.0})]:
                common = {"experiment": exp, "simulator": sim, "replicate": rep,
                          "representation": "minilm", **knob}
                for name, pehe, policy, noise, extra in [
                    ("random", np.nan, 0.5, np.nan, {}), ("true effect", 0.0, 0.8, np.nan, {}),
                    ("oracle", 0.3, 0.7, np.nan, {}), (v["dr"], 1.0 + jitter, 0.55, 5.0, {}),
                    (v["plugin"], 0.8 + 2 * jitter, 0.6, 0.3, {}),
                    (v["r"], 0.5 + jitter, 0.65 + jitter, 0.6, {}),
                    ("aace", 0.5 + jitter, 0.65 + jitter, np.nan, {"chosen_target": "r"}),
                ]:
                    rows.append({**common, "learner": name, "pehe": pehe, "policy": policy,
                                 "gain_share": 100 * (policy - 0.5) / 0.3,
                                 "target_noise": noise, **extra})
    return pd.DataFrame(rows)


def test_ceiling_readings_compute_their_verdicts_from_the_numbers():
    cfg = _config(replicates=3)
    fig, out = study.ceiling_readings(_ceiling_results(), cfg)
    assert out["ceil_resp_best"] == "target: r" and out["ceil_card_best_pehe"] == pytest.approx(
        0.51)
    assert out["ceil_resp_regret"] == "0.000 ± 0.000"
    # G_random 0.5, G_oracle 0.7: AACE's 0.65, 0.66, 0.67 are 75, 80, 85 % of the oracle's gain
    assert out["ceil_resp_oracle_share_mean"] == pytest.approx(80.0)
    assert out["ceil_resp_dr_oracle_share"] == pytest.approx(25.0)
    assert out["ceil_resp_vs_dr"].startswith("lowers √PEHE by 0.500")
    assert out["ceil_resp_chosen"] == "r 3× (of 3 fits)"
    assert "the quietest (target: plugin) deviates by 0.30" in out["ceil_resp_biasvar"]
    assert "carries a bias" in out["ceil_resp_biasvar"]
    sweep = out["ceiling_sweep_table"]
    assert set(sweep["best target"]) == {"target: r"} and sweep["clear"].all()
    assert "respiratory, budget (0.25: target: r, 0.5: target: r): the same target wins " \
           "everywhere" in out["ceil_where"]
    assert "confounding (2: target: r): one setting" in out["ceil_where"]
    assert list(out["ceiling_table"].index) == ["target: dr", "target: plugin", "target: r",
                                                "AACE (data-selected)", "oracle E[τ | φ]"]
    import matplotlib.pyplot as plt

    plt.close(fig)
