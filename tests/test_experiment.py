"""Replicate loops, seeds, summaries and the resumable result cache."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ehrcausal.cache import ResultCache, atomic_write_text, stable_hash
from ehrcausal.experiment import (
    fit_and_score,
    run_benchmark,
    run_replicates,
    summarise,
)
from ehrcausal.runtime import check_seed, child_seeds, resolve_device

from .conftest import simulate_simple


def test_child_seeds_reproducible_and_distinct():
    a, b = child_seeds(0, 5), child_seeds(0, 5)
    assert a == b and len(set(a)) == 5
    assert child_seeds(1, 5) != a


def test_check_seed():
    assert check_seed(3) == 3
    assert check_seed(np.random.default_rng(0)) == check_seed(np.random.default_rng(0))
    with pytest.raises(ValueError, match="non-negative"):
        check_seed(-1)
    with pytest.raises(ValueError, match="random_state"):
        check_seed("zero")


def test_resolve_device_rejects_unknown():
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("gpu0")


def test_summarise_mean_and_standard_error():
    df = pd.DataFrame({"learner": ["a"] * 3 + ["b"] * 2, "v": [1.0, 2.0, 3.0, 5.0, 5.0]})
    out = summarise(df, ["v"]).set_index("learner")
    # a: mean 2, sd 1, se 1/sqrt(3); b: mean 5, sd 0
    assert out.loc["a", "v_mean"] == 2.0
    assert out.loc["a", "v_se"] == pytest.approx(1 / np.sqrt(3))
    assert out.loc["b", "v_se"] == 0.0 and out.loc["b", "replicates"] == 2


def test_run_replicates_keeps_order_in_parallel():
    assert run_replicates(lambda x: x * x, range(6), n_jobs=2, progress=False) == [
        0, 1, 4, 9, 16, 25
    ]


def test_fit_and_score_uses_truth(simple):
    row = fit_and_score(simple, "ols")
    assert row["learner"] == "ols" and row["pehe_out"] < 0.15 and row["ate_out"] < 0.1
    no_truth = simple.take(np.arange(len(simple)))
    no_truth.tau = None
    with pytest.raises(ValueError, match="true effect"):
        fit_and_score(no_truth, "ols")


def _load(r: int):
    return simulate_simple(n=400, seed=r)


def test_run_benchmark_is_tidy_deterministic_and_resumes(tmp_path):
    learners = {"ols": "ols", "tarnet_small": "tarnet"}
    params = {"tarnet_small": {"epochs": 3, "hidden": 16, "head_hidden": 8, "device": "cpu"}}
    first = run_benchmark(_load, [1, 2], learners, params=params, cache_dir=tmp_path, progress=False)
    assert list(first.learner) == ["ols", "tarnet_small", "ols", "tarnet_small"]
    assert not first.cached.any()
    assert len(list((tmp_path / "benchmark").glob("*.json"))) == 4
    again = run_benchmark(_load, [1, 2], learners, params=params, cache_dir=tmp_path, progress=False)
    assert again.cached.all()
    cols = ["pehe_in", "pehe_out", "ate_in", "ate_out"]
    np.testing.assert_array_equal(first[cols].to_numpy(), again[cols].to_numpy())
    # a different seed is different work: not served from the cache
    other = run_benchmark(_load, [1], learners, params=params, seed=1, cache_dir=tmp_path,
                          progress=False)
    assert not other.cached.any()
    uncached = run_benchmark(_load, [1, 2], learners, params=params, progress=False)
    np.testing.assert_array_equal(first[cols].to_numpy(), uncached[cols].to_numpy())


def test_result_cache_ignores_damaged_records(tmp_path):
    cache = ResultCache(tmp_path)
    cache.put({"a": 1}, {"x": 2.5})
    assert cache.get({"a": 1}) == {"x": 2.5} and cache.get({"a": 2}) is None
    (path,) = list((tmp_path / "results").glob("*.json"))
    path.write_text("{not json")
    assert cache.get({"a": 1}) is None
    assert ResultCache(None).get({"a": 1}) is None


def test_atomic_write_and_stable_hash(tmp_path):
    target = tmp_path / "sub" / "f.json"
    atomic_write_text(target, json.dumps({"k": 1}))
    assert json.loads(target.read_text()) == {"k": 1}
    assert not [p for p in target.parent.iterdir() if p.name.endswith(".tmp")]
    assert stable_hash({"a": 1, "b": 2}) == stable_hash({"b": 2, "a": 1})
