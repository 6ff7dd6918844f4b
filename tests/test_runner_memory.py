"""Peak memory (the sampler of a process tree, the runner's record) and the cost-curve page."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from ehrcausal.runner import StudyPaths, read_manifest, run_chapters
from ehrcausal.runner.costs import write_costs_markdown
from ehrcausal.runner.memory import PeakMemory, tree_rss

from .test_runner import good_cells, repo, write_notebook

__all__ = ["repo"]  # the fixture, imported from test_runner

MIB = 2**20

# a child that holds 100 MiB and starts a grandchild holding 200 MiB, both for ~1.5 s
_TREE = textwrap.dedent("""
    import subprocess, sys, time
    held = b"x" * (100 * 2**20)
    grandchild = subprocess.Popen([sys.executable, "-c",
        "import time; held = b'x' * (200 * 2**20); time.sleep(1.5)"])
    time.sleep(1.5)
    grandchild.wait()
""")


def test_peak_memory_sums_the_process_tree() -> None:
    child = subprocess.Popen([sys.executable, "-c", _TREE])
    with PeakMemory(lambda: [child.pid], interval=0.05) as memory:
        child.wait()
    assert memory.samples > 0
    # both processes' blocks at once (plus two interpreters), never more than a few hundred MiB
    assert 300 * MIB <= memory.peak_bytes < 600 * MIB
    assert memory.peak_mib == pytest.approx(memory.peak_bytes / MIB, abs=0.1)
    assert tree_rss(child.pid) == 0  # gone


# a child that sleeps while its grandchild spends 0.6 s of CPU, then idles so a sample sees it
_BUSY = textwrap.dedent("""
    import subprocess, sys, time
    grandchild = subprocess.Popen([sys.executable, "-c",
        "import time\\nwhile time.process_time() < 0.6: pass\\ntime.sleep(0.4)"])
    grandchild.wait()
""")


def test_cpu_seconds_count_every_process_of_the_tree() -> None:
    child = subprocess.Popen([sys.executable, "-c", _BUSY])
    with PeakMemory(lambda: [child.pid], interval=0.05) as memory:
        child.wait()
    # the grandchild's 0.6 s, plus two interpreters' start-up; the idle child alone is ~0.05 s
    assert 0.6 <= memory.cpu_seconds < 3.0


def test_peak_memory_of_no_process_is_none() -> None:
    with PeakMemory(lambda: [], interval=0.05) as memory:
        memory.sample()
    assert memory.peak_mib is None and memory.samples == 0 and memory.cpu_seconds is None
    with pytest.raises(ValueError, match="interval"):
        PeakMemory(lambda: [], interval=0)


def test_runner_records_each_chapters_peak_memory(repo: StudyPaths) -> None:
    # the cell holds its block for four sampling intervals: a fast kernel may otherwise finish
    # and be stopped before the sampler's first look at it
    write_notebook(repo.notebooks / "alpha.ipynb",
                   good_cells(extra="held = b'x' * (250 * 2**20)\nimport time\ntime.sleep(1.0)\n"))
    (result,) = run_chapters(repo, profile="smoke", progress=False)
    assert result.status == "ok"
    assert result.peak_memory_mib is not None and result.peak_memory_mib >= 250
    entry = read_manifest(repo.manifest)["chapters"]["alpha"]
    assert entry["peak_memory_mib"] == result.peak_memory_mib
    assert "Peak memory (MiB)" in repo.manifest_md.read_text()
    record = json.loads(repo.chapter_output("alpha").read_text())["metadata"]["ehrcausal"]
    assert record["peak_memory_mib"] == result.peak_memory_mib
    # a cached chapter's record, rebuilt from its notebook, keeps the figure
    repo.manifest.unlink()
    (cached,) = run_chapters(repo, profile="smoke", progress=False)
    assert cached.status == "cached"
    assert read_manifest(repo.manifest)["chapters"]["alpha"]["peak_memory_mib"] == (
        result.peak_memory_mib)


def test_costs_page_shows_each_measured_chapter(tmp_path) -> None:
    paths = StudyPaths.from_root(tmp_path)
    assert "No cost measurements yet" in write_costs_markdown(paths).read_text()
    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    (results / "cost-broken-smoke.json").write_text("{not json")
    (results / "cost-ihdp_benchmark-smoke.json").write_text(json.dumps({
        "chapter": "ihdp_benchmark", "profile": "smoke", "param": "n_realizations",
        "overrides": {}, "cpus": 2, "machine": "x86_64", "measured": "2026-01-01",
        "rows": [
            {"n_realizations": 1, "seconds": 20.04, "cpu_seconds": 31.26, "peak_memory_mib": 900.2,
             "load_before": 1.0, "load_after": 1.5, "returncode": 0},
            {"n_realizations": 2, "seconds": 30.0, "peak_memory_mib": 1010.0,
             "load_before": 1.5, "load_after": 2.0, "returncode": 1},
        ],
        "paper_estimate": {"n_realizations": 50, "seconds": 510.0, "cpu_seconds": 1020.0,
                           "peak_memory_mib": 6400.0, "note": "a line in n_realizations"},
    }))
    text = write_costs_markdown(paths).read_text()
    assert text == (paths.generated / "costs.md").read_text()
    assert "`ihdp_benchmark` at the `smoke` profile, against `n_realizations`" in text
    assert "| 1 | 20.0 | 31.3 | 900 | 1.0, 1.5 |" in text
    assert "| 2 | 30.0 (failed) |  | 1,010 | 1.5, 2.0 |" in text
    assert "n_realizations = 50 (a line in n_realizations)" in text
    assert ("about 1,020 CPU seconds, so at least 510 s on 2 cores; the line through the wall "
            "times (under the loads shown) gives 510 s; peak memory about 6,400 MiB") in text
    assert "broken" not in text
    assert not any(line.startswith("#") for line in text.splitlines())


def test_costs_page_shows_the_xmultitask_size_benchmark(tmp_path) -> None:
    paths = StudyPaths.from_root(tmp_path)
    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    (results / "xmultitask-size-default.json").write_text(json.dumps({
        "profile": "default", "target": 100000, "replicates": 5,
        "rows": [{"learner": "xmultitask", "n": 4000, "seconds": 13.49, "cpu_seconds": 7.2,
                  "load": 2.0}],
        "estimates": {"xmultitask": 150.0, "mc_t_learner": 50.0},
        "sweep_cpu_seconds": 1000.0,
    }))
    text = write_costs_markdown(paths).read_text()
    assert "No cost measurements yet" in text  # no cost curve, the size table still shows
    assert "| xmultitask | 4,000 | 13.5 | 7.2 | 2.0 |" in text
    assert "at n = 100,000: xmultitask 150, mc_t_learner 50 CPU seconds per fit" in text
    # 1,000 CPU seconds on two cores: at least 500 s, 0.8 of ten minutes
    assert "with 5 replicates, about 1,000 CPU seconds, so at least 500 s on 2 cores" in text
    assert "(0.8 times a 10-minute chapter budget)" in text
