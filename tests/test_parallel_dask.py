"""The Dask back-end of the replicate loop, against a ``distributed.LocalCluster`` started here.

The same cells give the same results and the same cache records through Dask as through
joblib's local processes, and a worker killed while it writes a result leaves the result cache
readable: the record is absent (the scheduler reruns the task on the restarted worker), never
half-written.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

import ehrcausal.cache
from ehrcausal.cache import ResultCache
from ehrcausal.chapters.base import run_cached
from ehrcausal.chapters.ihdp import run_benchmark
from ehrcausal.data import load_ihdp
from ehrcausal.parallel import SCHEDULER_ENV, dask_scheduler, run_replicates

METRICS = ["replicate", "learner", "pehe_in", "pehe_out", "ate_in", "ate_out"]


def _records(folder: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


@pytest.mark.slow
def test_dask_gives_the_joblib_results_and_shares_their_cache(tmp_path, ihdp_dir):
    def load(r):
        return load_ihdp(r, data_dir=ihdp_dir)

    reps, learners = [1, 2, 3], ["ols"]
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=None) as cluster:
        on_dask = run_benchmark(load, reps, learners, scheduler=cluster.scheduler_address,
                                cache_dir=tmp_path / "dask", progress=False)
        local = run_benchmark(load, reps, learners, n_jobs=2, cache_dir=tmp_path / "joblib",
                              progress=False)
        assert not on_dask["cached"].any() and not local["cached"].any()
        assert on_dask[METRICS].equals(local[METRICS])
        # the same records under the same names: either back-end resumes the other's sweep
        dask_records = _records(tmp_path / "dask" / "benchmark")
        assert len(dask_records) == len(reps) * len(learners)
        joblib_records = _records(tmp_path / "joblib" / "benchmark")
        assert dask_records.keys() == joblib_records.keys()
        for name, rec in dask_records.items():
            assert rec["key"] == joblib_records[name]["key"]
            assert {k: rec["value"][k] for k in METRICS} == {
                k: joblib_records[name]["value"][k] for k in METRICS}
        again = run_benchmark(load, reps, learners, n_jobs=2, cache_dir=tmp_path / "dask",
                              progress=False)
        assert again["cached"].all() and again[METRICS].equals(local[METRICS])
        back = run_benchmark(load, reps, learners, scheduler=cluster.scheduler_address,
                             cache_dir=tmp_path / "joblib", progress=False)
        assert back["cached"].all() and back[METRICS].equals(on_dask[METRICS])


class _DieHalfwayThrough:
    """A file object that writes half of the bytes, flushes them, and kills its own process."""

    def __init__(self, path, mode):
        self._f = open(path, mode)  # noqa: SIM115 - closed by the kill, on purpose

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()

    def write(self, data):
        self._f.write(data[: len(data) // 2])
        self._f.flush()
        os.fsync(self._f.fileno())
        os.kill(os.getpid(), signal.SIGKILL)


def _square_killing_writer(cell: dict) -> float:
    """``x**2``; the first time the trapped cell runs, its worker dies while writing the result."""
    trap = Path(cell["trap"])
    if cell["x"] == 2 and not trap.exists():
        trap.write_text(str(os.getpid()))
        # this worker's next cache write (the result of this cell) dies halfway through
        ehrcausal.cache.open = _DieHalfwayThrough
    return float(cell["x"] ** 2)


@pytest.mark.slow
def test_a_worker_killed_while_writing_a_result_leaves_the_cache_readable(tmp_path):
    trap = tmp_path / "killed-worker-pid"
    cells = [{"x": x, "trap": str(trap)} for x in range(5)]
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        out = run_cached(_square_killing_writer, cells, scheduler=cluster.scheduler_address,
                         cache_dir=tmp_path, namespace="cells", progress=False)
        with Client(cluster.scheduler_address) as client:
            alive = set(client.run(os.getpid).values())
    # the worker did die mid-task: it wrote the trap, and a new process has taken its place
    assert trap.exists() and int(trap.read_text()) not in alive
    # the scheduler reran the task on the restarted worker: every result is right
    assert out == [float(c["x"] ** 2) for c in cells]
    folder = tmp_path / "cells"
    # the half-written bytes stay in a hidden temporary file, which is not valid JSON ...
    (partial,) = folder.glob(".*.tmp")
    with pytest.raises(json.JSONDecodeError):
        json.loads(partial.read_text())
    # ... and never under a record's name: every record parses and holds its cell's result
    records = _records(folder)
    assert len(records) == len(cells)
    cache = ResultCache(tmp_path, namespace="cells")
    assert [cache.get(c) for c in cells] == out
    # a rerun reads every result from the cache
    again, hits = run_cached(_square_killing_writer, cells, cache_dir=tmp_path,
                             namespace="cells", progress=False, return_hits=True)
    assert again == out and all(hits)


def test_scheduler_address_from_the_environment(monkeypatch):
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    assert dask_scheduler() is None
    monkeypatch.setenv(SCHEDULER_ENV, " tcp://10.0.0.5:8786 ")
    assert dask_scheduler() == "tcp://10.0.0.5:8786"
    assert dask_scheduler("tcp://other:8786") == "tcp://other:8786"
    monkeypatch.setenv(SCHEDULER_ENV, "")
    assert dask_scheduler() is None


@pytest.mark.parametrize("bad", ["", "   ", 8786, ["tcp://h:8786"]])
def test_bad_scheduler_is_refused(bad):
    with pytest.raises(ValueError, match="scheduler"):
        run_replicates(abs, [1], scheduler=bad, progress=False)


@pytest.mark.parametrize("bad", [0, -2, 1.5, True])
def test_bad_n_jobs_is_refused(bad):
    with pytest.raises(ValueError, match="n_jobs"):
        run_replicates(abs, [1], n_jobs=bad, progress=False)


def _worker_of(x: int) -> str:
    from distributed import get_worker  # raises ValueError outside a Dask worker

    return get_worker().address


def test_environment_scheduler_sends_the_work_to_the_cluster(monkeypatch):
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=None) as cluster:
        monkeypatch.setenv(SCHEDULER_ENV, cluster.scheduler_address)
        (worker,) = cluster.scheduler_info["workers"]
        assert run_replicates(_worker_of, [1, 2, 3], progress=False) == [worker] * 3
    monkeypatch.delenv(SCHEDULER_ENV)
    with pytest.raises(ValueError):
        run_replicates(_worker_of, [1], progress=False)
