"""The AACE chapter's experiment code: designs, scoring and one end-to-end cell."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ehrcausal.data import CausalDataset
from ehrcausal.experiment import parse_list
from ehrcausal.studies import aace as study


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


def test_replicate_seeds_are_stable_and_distinct():
    assert study.replicate_seeds(0, 3) == study.replicate_seeds(0, 3)
    assert len(set(study.replicate_seeds(0, 5))) == 5


def test_parse_list():
    assert parse_list("0.05, 0.5", float) == [0.05, 0.5]
    assert parse_list(["a", "b"]) == ["a", "b"]
    with pytest.raises(ValueError, match="fractions"):
        parse_list("0.1,abc", float, name="fractions")
    with pytest.raises(ValueError, match="empty"):
        parse_list(" , ", name="learners")


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
