"""What every chapter shares (``chapters.base``) and the IHDP chapter (``chapters.ihdp``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from ehrcausal.chapters import ihdp
from ehrcausal.chapters.base import (
    ChapterConfig,
    fit_inputs,
    grid,
    learner_names,
    parse_list,
    replicate_seeds,
    run_cached,
    run_cached_batches,
)
from ehrcausal.learners import available, spec

from .conftest import simulate_simple


def test_parse_list():
    assert parse_list("0.05, 0.5", float) == [0.05, 0.5]
    assert parse_list(["a", "b"]) == ["a", "b"]
    with pytest.raises(ValueError, match="fractions"):
        parse_list("0.1,abc", float, name="fractions")
    with pytest.raises(ValueError, match="empty"):
        parse_list(" , ", name="learners")


def test_learner_names_checks_families_and_reads_all():
    assert learner_names("ols, tarnet", ["cate"]) == ["ols", "tarnet"]
    assert learner_names("all", ["cate"]) == available("cate")
    assert learner_names(["aace", "tarnet"], ["aace", "cate"]) == ["aace", "tarnet"]
    with pytest.raises(ValueError, match=r"not learners of \['cate'\]: \['aace'\]"):
        learner_names("ols,aace", ["cate"])


def test_replicate_seeds_are_stable_and_distinct():
    assert replicate_seeds(0, 3) == replicate_seeds(0, 3)
    assert len(set(replicate_seeds(0, 5))) == 5
    assert replicate_seeds(0, 5)[:3] == replicate_seeds(0, 3)  # more replicates keep the first
    with pytest.raises(ValueError, match="replicates"):
        replicate_seeds(0, 0)


def test_chapter_config_budget_follows_the_registry():
    cfg = ChapterConfig(seed=1, replicates=2, epochs=5, n_estimators=7, device="cpu")
    assert cfg.device_used == "cpu" and cfg.seeds == replicate_seeds(1, 2)
    params = cfg.budget({"net": "tarnet", "forest": "t_learner", "lin": "ols"})
    assert params == {"net": {"epochs": 5, "device": "cpu"}, "forest": {"n_estimators": 7},
                      "lin": {}}
    assert ChapterConfig(device="cpu").budget(["tarnet"]) == {"tarnet": {"device": "cpu"}}
    with pytest.raises(ValueError, match="epochs"):
        ChapterConfig(epochs=0, device="cpu")


def test_grid_is_the_product_with_the_first_factor_slowest():
    cells = grid(a=[1, 2], b="xy")
    assert cells == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"},
                     {"a": 2, "b": "y"}]
    assert grid(a=[1, 2], b=[]) == []
    assert len(grid(a=range(3), b=range(4), c=range(2))) == 24


def test_fit_inputs_routes_only_what_the_registry_declares():
    inputs = {"val_mask": np.array([True, False]), "annotations": pd.DataFrame({"f": [1, 0]}),
              "confounders": pd.DataFrame({"x": [0.0, 1.0]}), "tau": np.array([1.0, 2.0])}
    assert set(fit_inputs("tarnet", **inputs)) == {"val_mask"}
    assert set(fit_inputs("aace", **inputs)) == {"annotations", "confounders"}
    assert set(fit_inputs("oracle", **inputs)) == {"tau"}
    assert fit_inputs("t_learner", **inputs) == {}  # a forest learner takes none of them
    assert fit_inputs("risk_based", **inputs) == {}
    for name in available():
        assert set(fit_inputs(name, **inputs)) == set(spec(name).fit_inputs)
    with pytest.raises(ValueError, match=r"'aace' needs \['annotations'\]"):
        fit_inputs("aace", **{**inputs, "annotations": None})


def _double(cell: dict) -> dict:
    return {"value": 2 * cell["x"]}


def test_run_cached_resumes_and_reports_hits(tmp_path):
    cells = [{"x": 1}, {"x": 2}]
    first, hits = run_cached(_double, cells, cache_dir=tmp_path, namespace="t", progress=False,
                             return_hits=True)
    assert first == [{"value": 2}, {"value": 4}] and hits == [False, False]
    assert len(list((tmp_path / "t").glob("*.json"))) == 2
    again, hits = run_cached(_double, cells + [{"x": 3}], cache_dir=tmp_path, namespace="t",
                             progress=False, return_hits=True)
    assert again == [{"value": 2}, {"value": 4}, {"value": 6}] and hits == [True, True, False]
    assert run_cached(_double, cells, progress=False) == first  # no cache folder: recomputed


def _double_all(cells):
    return [{"value": 2 * c["x"], "batch": [d["x"] for d in cells]} for c in cells]


def test_run_cached_batches_groups_splits_caches_and_resumes(tmp_path, monkeypatch):
    cells = [{"x": x, "g": x % 2} for x in range(1, 6)]
    out, hits = run_cached_batches(_double_all, cells, group=lambda c: c["g"], n_jobs=1,
                                   cache_dir=tmp_path, namespace="b", progress=False)
    assert [o["value"] for o in out] == [2, 4, 6, 8, 10] and not any(hits)
    # one batch per group in one process: the odd cells together, the even ones together
    assert out[0]["batch"] == [1, 3, 5] and out[1]["batch"] == [2, 4]
    assert len(list((tmp_path / "b").glob("*.json"))) == 5  # each cell cached on its own
    more = cells + [{"x": 7, "g": 1}]
    again, hits = run_cached_batches(_double_all, more, group=lambda c: c["g"], n_jobs=1,
                                     cache_dir=tmp_path, namespace="b", progress=False)
    assert hits == [True] * 5 + [False] and again[:5] == out and again[5]["batch"] == [7]
    # two workers: each group is cut in two batches (run here in this process)
    from ehrcausal.chapters import base

    monkeypatch.setattr(base, "run_replicates", lambda fn, items, **kw: [fn(i) for i in items])
    split, _ = run_cached_batches(_double_all, cells, group=lambda c: c["g"], n_jobs=2,
                                  progress=False)
    assert split[0]["batch"] == [1, 3] and split[4]["batch"] == [5]
    assert run_cached(_double, [{"x": 1}], cache_dir=tmp_path, namespace="b",
                      progress=False) == [{"value": 2}]  # the same store and keys as run_cached


# ---------------------------------------------------------------------------------------------
# The IHDP chapter
# ---------------------------------------------------------------------------------------------


def test_fit_and_score_uses_truth(simple):
    row = ihdp.fit_and_score(simple, "ols")
    assert row["learner"] == "ols" and row["pehe_out"] < 0.15 and row["ate_out"] < 0.1
    no_truth = simple.take(np.arange(len(simple)))
    no_truth.tau = None
    with pytest.raises(ValueError, match="true effect"):
        ihdp.fit_and_score(no_truth, "ols")


def _load(r: int):
    return simulate_simple(n=400, seed=r)


def test_run_benchmark_is_tidy_deterministic_and_resumes(tmp_path):
    learners = {"ols": "ols", "tarnet_small": "tarnet"}
    params = {"tarnet_small": {"epochs": 3, "hidden": 16, "head_hidden": 8, "device": "cpu"}}
    first = ihdp.run_benchmark(_load, [1, 2], learners, params=params, cache_dir=tmp_path,
                               progress=False)
    assert list(first.learner) == ["ols", "tarnet_small", "ols", "tarnet_small"]
    assert list(first.replicate) == [1, 1, 2, 2]
    assert not first.cached.any()
    assert len(list((tmp_path / "benchmark").glob("*.json"))) == 4
    again = ihdp.run_benchmark(_load, [1, 2], learners, params=params, cache_dir=tmp_path,
                               progress=False)
    assert again.cached.all()
    cols = ["pehe_in", "pehe_out", "ate_in", "ate_out"]
    np.testing.assert_array_equal(first[cols].to_numpy(), again[cols].to_numpy())
    # a different seed is different work: not served from the cache
    other = ihdp.run_benchmark(_load, [1], learners, params=params, seed=1, cache_dir=tmp_path,
                               progress=False)
    assert not other.cached.any()
    uncached = ihdp.run_benchmark(_load, [1, 2], learners, params=params, progress=False)
    np.testing.assert_array_equal(first[cols].to_numpy(), uncached[cols].to_numpy())


def test_ihdp_config_checks_the_realizations_and_learners():
    cfg = ihdp.Config(n_realizations=3, learners="ols,tarnet", epochs=4, device="cpu")
    assert cfg.replicates == 3 and cfg.seeds == replicate_seeds(0, 3)
    assert cfg.budget(cfg.learners) == {"ols": {}, "tarnet": {"epochs": 4, "device": "cpu"}}
    with pytest.raises(ValueError, match="n_realizations"):
        ihdp.Config(n_realizations=51, learners="ols", device="cpu")
    with pytest.raises(ValueError, match="not learners"):
        ihdp.Config(n_realizations=1, learners="xmultitask", device="cpu")


def _results() -> pd.DataFrame:
    rows = []
    for r, (ols, net) in enumerate([(2.0, 0.9), (3.0, 1.1)], start=1):
        rows += [{"replicate": r, "learner": "ols", "pehe_in": ols, "pehe_out": ols,
                  "ate_in": 0.1, "ate_out": 0.2, "seconds": 0.01},
                 {"replicate": r, "learner": "tarnet", "pehe_in": net, "pehe_out": net,
                  "ate_in": 0.1, "ate_out": 0.3, "seconds": 2.0}]
    return pd.DataFrame(rows)


def test_results_table_sits_beside_the_published_numbers():
    summary = ihdp.summary_table(_results())
    assert list(summary.learner) == ["tarnet", "ols"]  # best out of sample first
    table = ihdp.results_table(summary)
    assert table.index.name == "learner"
    assert table.loc["tarnet", "√PEHE out-of-sample"] == "1.00\u00a0±\u00a00.10"
    assert table.loc["ols", "published √PEHE in\u00a0/\u00a0out"] == "2.40 / 2.50"
    assert "seconds per fit" not in table.columns  # run-to-run noise stays out of compared tables
    assert ihdp.fit_times(summary) == "tarnet 2.0\u00a0s, ols 0.0\u00a0s"
    ref = ihdp.SHALIT_2017.set_index("published method")
    assert ref.loc["CFR Wass", "ref_pehe_out"] == 0.76 and pd.isna(ref.loc["BART", "learner"])


def test_readings_state_the_comparison_from_the_numbers(ihdp_dir):
    results = _results()
    out = ihdp.readings(results, ihdp.summary_table(results), n_treated=139, data_dir=ihdp_dir)
    assert out["best_learner"] == "tarnet" and out["best_pehe_out"] == pytest.approx(1.0)
    assert out["best_pehe_out_se"] == pytest.approx(0.1)
    # TARNet 1.00 ± 0.10 against the published 0.95: within two standard errors, above
    assert "TARNet reaches 1.00 ± 0.10 out of sample, above but within two standard errors " \
           "of the published 0.95" in out["headline"]
    # OLS 2.50 ± 0.50 against 2.50: within; the causal forest was not run
    assert out["gap_notes"].startswith("Our OLS T-learner (2.50) agrees with the published")
    assert "not run" in out["ensemble_text"]
    assert "was not run at this profile" in out["selection_text"]


def test_selection_row_is_read_against_the_published_cfr_wass(ihdp_dir):
    rows = _results()
    sel = rows[rows.learner == "tarnet"].assign(learner="cfr_wass_selected",
                                                pehe_out=[0.70, 0.74])
    results = pd.concat([rows, sel], ignore_index=True)
    out = ihdp.readings(results, ihdp.summary_table(results), n_treated=139, data_dir=ihdp_dir)
    text = out["selection_text"]
    # 0.72 ± 0.02 against the published 0.76: below, by exactly two standard errors
    assert "gives 0.72 ± 0.02 out of sample" in text and "the published 0.76" in text
    assert "hidden 100 or 200; alpha 0.1 or 1; lr 0.001 or 0.0003" in text
    assert "not like for like" in text


def test_batched_benchmark_cells_match_the_sequential_ones(tmp_path, ihdp_dir):
    """The chapter's batched path (networks of every realization in one batch) gives the
    sequential path's out-of-sample PEHE on three IHDP realizations, and caches apart."""
    from functools import partial

    from ehrcausal.data import load_ihdp

    load = partial(load_ihdp, data_dir=ihdp_dir)
    params = {"cfr_wass": {"epochs": 5, "patience": 3, "hidden": 48, "head_hidden": 24,
                           "device": "cpu"}}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runs = {b: ihdp.run_benchmark(load, [1, 2, 3], ["cfr_wass", "ols"], params=params,
                                      cache_dir=tmp_path, progress=False, batched=b)
                for b in (True, False)}
    finally:
        torch.set_num_threads(threads)
    # batched results are not served as sequential ones (the OLS rows are the same work)
    assert list(runs[False].cached) == [False, True] * 3
    for col in ("pehe_out", "pehe_in"):
        np.testing.assert_allclose(runs[True][col], runs[False][col], rtol=1e-3)
    assert len(list((tmp_path / "benchmark").glob("*.json"))) == 3 * 2 + 3  # ols shared
