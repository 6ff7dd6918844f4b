"""The trust-without-truth chapter: real data loaders, DoWhy plumbing, Part B bookkeeping."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from ehrcausal.chapters import trust
from ehrcausal.validation import OverlapWarning


def confounded(n: int = 400, seed: int = 0, effect: float = 2.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    w1, w2 = rng.normal(size=n), rng.normal(size=n)
    t = rng.binomial(1, 1 / (1 + np.exp(-(w1 - 0.5 * w2))))
    y = effect * t + 1.5 * w1 + w2 + rng.normal(size=n)
    return pd.DataFrame({"t": t, "y": y, "w1": w1, "w2": w2})


def test_real_data_loaders_match_their_sources():
    lalonde, cov, benchmark = trust.load_lalonde()
    assert benchmark == pytest.approx(1794.34, abs=0.01)  # the NSW experimental estimate
    assert int(lalonde.treat.sum()) == 185 and int((lalonde.treat == 0).sum()) == 15992
    assert set(cov) <= set(lalonde.columns) and "re78" in lalonde
    nhefs, conf = trust.load_nhefs()
    assert len(nhefs) == 1566 and nhefs.qsmk.isin([0, 1]).all()
    assert {"sex", "race", "age", "age_sq", "wt71", "wt71_sq"} <= set(conf)
    assert any(c.startswith("education_") for c in conf) and not nhefs.isna().any().any()


def test_backdoor_graph_and_its_errors():
    df = confounded(50)
    graph = trust.backdoor_graph(df, "t", "y", ["w1", "w2"])
    assert set(graph.edges) == {("t", "y"), ("w1", "t"), ("w1", "y"), ("w2", "t"), ("w2", "y")}
    with pytest.raises(ValueError, match=r"\['smoker'\] that are not in the data"):
        trust.backdoor_graph(df, "t", "y", ["w1", "smoker"])
    with pytest.raises(ValueError, match="distinct"):
        trust.backdoor_graph(df, "t", "y", ["w1", "t"])


def test_overlap_warns_with_the_share_trimmed():
    rng = np.random.default_rng(1)
    x = rng.normal(size=600)
    df = pd.DataFrame({"t": (x + 0.05 * rng.normal(size=600) > 0).astype(int), "x": x})
    with pytest.warns(OverlapWarning, match=r"are trimmed: .*% of the treated"):
        e, keep = trust.overlap(df, "t", ["x"], name="toy")
    assert 0 < keep.mean() < 1 and np.all((e[keep] >= 0.01) & (e[keep] <= 0.99))
    balanced = confounded(300)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OverlapWarning)
        _, keep = trust.overlap(balanced, "t", ["w1", "w2"])
    assert keep.all()


def test_learners_plugged_into_dowhy_recover_a_known_effect():
    df = confounded(500)
    study = trust.dowhy_study(df, "t", "y", ["w1", "w2"], learners=["ols"], params={},
                              target="ate", refute_learner="ols", n_boot=3,
                              refute_simulations=2, random_state=0)
    est = study["estimates"].set_index("method")
    assert set(est.index) == {"DoWhy linear regression", "DoWhy IPW", "ols"}
    assert est.loc["ols", "estimate"] == pytest.approx(2.0, abs=0.25)
    assert est.loc["ols", "lower"] < est.loc["ols", "estimate"] < est.loc["ols", "upper"]
    assert study["adjustment"] == ["w1", "w2"]
    ref = study["refutations"].set_index("refuter")
    assert abs(ref.loc["placebo treatment", "new"]) < 0.5
    assert abs(ref.loc["dummy outcome", "new"]) < 0.5
    assert ref.loc["random common cause", "new"] == pytest.approx(est.loc["ols", "estimate"],
                                                                  abs=0.1)
    assert 0 < study["robustness_value"] < 1
    with pytest.raises(ValueError, match="refute_learner"):
        trust.dowhy_study(df, "t", "y", ["w1", "w2"], learners=["ols"], params={},
                          target="ate", refute_learner="dr_learner", n_boot=2,
                          refute_simulations=1)
    with pytest.raises(ValueError, match="target"):
        trust.dowhy_study(df, "t", "y", ["w1", "w2"], learners=["ols"], params={},
                          target="atc", refute_learner="ols", n_boot=2, refute_simulations=1)


def test_constant_effect_knob_removes_heterogeneity_only():
    d = trust.truth_data("ihdp", 0, 0, 0)
    c = trust.truth_data("ihdp", 0, 0, 0, constant=True)
    assert np.ptp(c["tau"]) == 0 and c["tau"][0] == pytest.approx(d["tau"].mean())
    np.testing.assert_array_equal(c["Y"][c["T"] == 0], d["Y"][d["T"] == 0])
    np.testing.assert_allclose(c["Y"] - d["Y"], -d["T"] * (d["tau"] - d["tau"].mean()))
    spine = trust.truth_data("spine", 200, 0, 0)
    assert set(np.unique(spine["Y"])) <= {0.0, 1.0} and np.all(np.abs(spine["tau"]) <= 1)
    with pytest.raises(ValueError, match="additive"):
        trust.truth_data("spine", 200, 0, 0, constant=True)
    with pytest.raises(ValueError, match="unknown data set"):
        trust.truth_data("jobs", 200, 0, 0)


def test_criterion_summary_by_hand():
    # one replicate, three learners: true PEHE 1, 2, 3; the DR-loss orders them right, the
    # R-loss picks the worst
    rows = pd.DataFrame({
        "dataset": "toy", "replicate": 0, "learner": ["a", "b", "c"], "pehe": [1.0, 2.0, 3.0],
        "dr_loss": [10.0, 11.0, 12.0], "r_loss": [3.0, 2.0, 1.0], "autoc": [0.3, 0.2, 0.1],
    })
    s = trust.criterion_summary(rows).set_index("criterion")
    assert s.loc["dr_loss", "tau_mean"] == pytest.approx(1.0)
    assert s.loc["r_loss", "tau_mean"] == pytest.approx(-1.0)
    assert s.loc["autoc", "tau_mean"] == pytest.approx(1.0)  # larger RATE means better
    assert (s.loc["dr_loss", "hit_mean"], s.loc["dr_loss", "regret_mean"]) == (1.0, 0.0)
    assert (s.loc["r_loss", "hit_mean"], s.loc["r_loss", "regret_mean"]) == (0.0, 2.0)
    assert s.loc["random pick", "regret_mean"] == pytest.approx(1.0)
    readings = trust.regret_readings(s.reset_index())
    assert readings["best_regret"] == 0.0 and readings["random_regret"] == pytest.approx(1.0)


def test_rate_summary_and_readings():
    rows = pd.DataFrame({"dataset": "toy", "constant": [True] * 4 + [False] * 4,
                         "reject": [False, False, False, True, True, True, True, False]})
    s = trust.rate_summary(rows)
    assert list(s.rejection_rate) == [0.25, 0.75] and list(s.replicates) == [4, 4]
    r = trust.rate_readings(s)
    assert (r["fpr"], r["power"]) == (0.25, 0.75)
    assert r["fpr_bound"] == pytest.approx(0.05 + 2 * np.sqrt(0.25 * 0.75 / 4))


def test_config_checks_its_parameters():
    base = dict(learners="ols", datasets="ihdp", n=200, nuisance="ridge", rate_nuisance="ridge",
                n_boot=10, ci_boot=2, rate_learner="ols", rate_datasets="ihdp",
                rate_replicates=1, rate_n=200, real_learners="ols", refute_learner="ols",
                refute_simulations=1)
    assert trust.Config(**base).datasets == ["ihdp"]
    with pytest.raises(ValueError, match="datasets"):
        trust.Config(**{**base, "datasets": "ihdp,jobs"})
    with pytest.raises(ValueError, match="rate_datasets"):
        trust.Config(**{**base, "rate_datasets": "spine"})
    with pytest.raises(ValueError, match="nuisance"):
        trust.Config(**{**base, "nuisance": "lasso"})
    with pytest.raises(ValueError, match="learners"):
        trust.Config(**{**base, "learners": "aace"})
