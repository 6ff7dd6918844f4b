"""The X-MultiTask chapter's experiment code: designs, scoring and one end-to-end cell."""

from __future__ import annotations

import numpy as np
import pytest

from ehrcausal.chapters import xmultitask as study
from ehrcausal.data import simulate_spine
from ehrcausal.learners import make


class _Truth:
    """A 'learner' that predicts the simulator's own potential outcomes (for scoring tests)."""

    def __init__(self, ds):
        self.ds = ds

    def predict_outcomes(self, X, task=None):
        return self.ds.mu0, self.ds.mu1

    def effect(self, X, task=None):
        return self.ds.tau


def test_score_task_of_the_truth():
    cohort = simulate_spine(400, 5)
    for task in study.TASKS:
        ds = cohort[task]
        scores = study.score_task(_Truth(ds), ds, task)
        assert scores["pehe"] == 0.0 and scores["ate_error"] == 0.0
        # NN-PEHE of the true effects is not zero: it measures against noisy neighbour pairs
        assert scores["nn_pehe"] > 0.0
        assert scores["nn_pehe_root"] == pytest.approx(np.sqrt(scores["nn_pehe"]))
    appr = study.score_task(_Truth(cohort["approach"]), cohort["approach"], "approach")
    assert 0.5 < appr["auc_treated"] < 1.0 and "rmse_treated" not in appr
    surg = study.score_task(_Truth(cohort["surgery"]), cohort["surgery"], "surgery")
    # the residual sd of the PROs is the simulator's noise level
    assert 0.3 < surg["rmse_treated"] < 0.6 and "auc_treated" not in surg


def test_design_and_bad_tasks():
    cells = study.design("size", learners={"a": "xmultitask", "b": "mc_t_learner"},
                         seeds=[1, 2], sizes=[200, 400], tasks=[("approach",), study.TASKS],
                         params={"a": {"epochs": 3}})
    assert len(cells) == 2 * 2 * 2 * 2
    assert {c.n for c in cells} == {200, 400}
    assert [c.params for c in cells if c.learner == "a"][0] == {"epochs": 3}
    with pytest.raises(ValueError, match="unknown task"):
        study.design("x", learners={"a": "xmultitask"}, seeds=[0], tasks=[("spine",)])


def test_one_cell_end_to_end_is_reproducible(tmp_path):
    cells = study.design("main", learners={"xmultitask": "xmultitask", "t": "mc_t_learner"},
                         seeds=[7], sizes=[300], params={"xmultitask": {"epochs": 3}})
    df = study.run_cells(cells, cache_dir=tmp_path, progress=False)
    assert sorted(df.task.unique()) == sorted(study.TASKS)
    assert len(df) == 4 and np.isfinite(df.pehe).all()
    again = study.run_cells(cells, cache_dir=None, progress=False)
    np.testing.assert_allclose(df.pehe, again.pehe)
    # a fitted learner scores the same way the cell does
    est = make("mc_t_learner", random_state=7)
    ds = simulate_spine(300, 7)["approach"]
    est.fit_tasks({"approach": ds.subset("train", "val")})
    row = df[(df.learner == "t") & (df.task == "approach")].iloc[0]
    assert study.score_task(est, ds.subset("test"), "approach")["pehe"] == pytest.approx(row.pehe)


def _config(**kw):
    base = {"n": 300, "replicates": 2, "learners": "xmultitask,xmultitask_released,mc_t_learner",
            "sizes": "200,300", "size_learners": "xmultitask,mc_t_learner", "epochs": 3,
            "device": "cpu"}
    return study.Config(**{**base, **kw})


def test_config_and_chapter_cells():
    cfg = _config()
    assert cfg.sizes == [200, 300] and len(cfg.seeds) == 2
    assert cfg.params["xmultitask_no_ipw"] == {"epochs": 3, "device": "cpu", "ipw": False}
    assert cfg.params["mc_t_learner"] == {}  # gradient boosting: no budget knob
    cells = study.chapter_cells(cfg)
    count = {e: sum(c.experiment == e for c in cells)
             for e in ("main", "ipw", "single_task", "size")}
    # main 2 x 3 learners; ipw 2; single task 2 task sets x 2; size: only n=200 (300 is main)
    assert count == {"main": 6, "ipw": 2, "single_task": 4, "size": 4}
    assert {c.n for c in cells if c.experiment == "size"} == {200}
    with pytest.raises(ValueError, match="add 'xmultitask_released'"):
        _config(learners="xmultitask,mc_t_learner")
    with pytest.raises(ValueError, match="sizes"):
        _config(sizes="20,300")


def test_ablation_differences_from_the_described_model():
    import pandas as pd

    rows = []
    for experiment, learner, base in [("main", "xmultitask", 0.30), ("ipw", "xmultitask_no_ipw", 0.35),
                                      ("single_task", "xmultitask", 0.32),
                                      ("main", "xmultitask_released", 0.40)]:
        for task, shift in [("approach", 0.0), ("surgery", 0.1)]:
            for r, noise in enumerate([-0.01, 0.01]):
                rows.append({"experiment": experiment, "learner": learner, "task": task,
                             "replicate": r, "pehe": base + shift + noise})
    out = study.ablation_readings(pd.DataFrame(rows))
    assert out["abl_no_ipw_approach"] == pytest.approx(0.05)
    assert out["abl_single_surgery"] == pytest.approx(0.02)
    table = out["ablation_table"]
    assert list(table.index) == list(study.ABLATION) and list(table.columns) == list(study.TASKS)
    assert table.loc["without IPW", "approach"] == "0.350 ± 0.010"


def test_kendall_is_computed_within_each_replicate():
    import pandas as pd

    # replicate 0 ranks the learners alike (tau = 1), replicate 1 in reverse (tau = -1) and on a
    # harder cohort: pooled, the cohort shift alone would make the two metrics agree
    sub = pd.DataFrame({"replicate": [0, 0, 0, 1, 1, 1], "learner": list("abcabc"),
                        "nn_pehe": [1.0, 2.0, 3.0, 11.0, 12.0, 13.0],
                        "pehe": [1.0, 2.0, 3.0, 13.0, 12.0, 11.0]})
    taus = study.kendall_by_replicate(sub)
    assert list(taus) == pytest.approx([1.0, -1.0])
    from ehrcausal.metrics import rank_agreement

    assert rank_agreement(sub.nn_pehe, sub.pehe)[0] > 0.4  # what pooling would have said
    assert study.kendall_by_replicate(sub[sub.learner != "c"]).empty  # < 3 learners: none


def test_truth_row_scores_the_true_effects_on_the_paper_metrics():
    cfg = _config(replicates=1)
    truth = study.truth_rows(cfg)
    assert set(truth.task) == set(study.TASKS) and (truth.pehe == 0).all()
    assert (truth.nn_pehe > 0).all() and (truth.ate_error_nn > 0).all()  # a floor above zero
    rows = truth.assign(learner="xmultitask").assign(pehe=0.3, ate_error=0.01,
                                                     auc_treated=0.7, auc_control=0.7,
                                                     rmse_treated=1.0, rmse_control=1.0)
    tables = study.results_tables(rows, ["xmultitask"], truth)
    approach = tables["table_approach"]
    assert "true τ (floor of the NN metrics)" in approach.index
    assert approach.loc["X-MultiTask, paper (spinal-fusion cohort)", "ATE error (NN, paper's)"] \
        == "0.0763"
    assert approach.loc["X-MultiTask, paper (spinal-fusion cohort)", "ATE error (true τ)"] \
        == "not available"
