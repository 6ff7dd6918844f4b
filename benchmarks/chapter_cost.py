"""Benchmark: wall time, CPU time and peak memory of a chapter against its size, at one profile.

Runs the chapter through papermill as the study runner (``ehrcausal.runner``) does -- the
profile's parameters, the kernel working in the folder the executed notebook is written to -- in
a child process, once per value of a size parameter (``--param``, ``--values``), and samples the
resident memory of the whole process tree (papermill, kernel, joblib workers) every 0.25 s with
the runner's own measure (:class:`ehrcausal.runner.memory.PeakMemory`), with an empty result
and embedding cache (``EHRCAUSAL_CACHE`` set to a fresh folder). The 1-minute load
average before and after each run is recorded: on a shared machine a wall time is only read
together with the load it was measured under. The CPU time of the tree (user + system seconds of
every process, the larger of the sampled sum and the operating system's account of the waited-for
children; both are lower bounds) depends much less on the load, and is what the extrapolation of
a shared machine's runs should be read in.

A straight line ``seconds = a + b * size`` (and the same for CPU seconds and memory) is fitted by
least squares over the measured sizes and evaluated at the size of the ``paper`` profile: an
*extrapolation* that keeps this profile's other parameters (epochs, learners, ...), printed and
stored as such. ``--scale-by NAME`` (with ``--set NAME=small``) multiplies the time estimates by
the ``paper`` profile's ``NAME`` over the measured one, for a second parameter the cost is taken
to grow in proportion to (replicates), and the stored note says so.

Results are printed and written to ``benchmarks/results/cost-<chapter>-<profile>.json``; the
book's reproducibility page shows every such file (``python -m ehrcausal.runner build``).

    python benchmarks/chapter_cost.py ihdp_benchmark --profile smoke --values 1,2,4
    python benchmarks/chapter_cost.py aace_policies --profile smoke --param n --values 150,300
    python benchmarks/chapter_cost.py aace_policies --profile paper --values 500,1000 \
        --set replicates=1 --scale-by replicates
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import yaml

from ehrcausal.runner.memory import PeakMemory

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
#: each chapter's size parameter: what grows its cost
SIZE_PARAM = {"ihdp_benchmark": "n_realizations", "aace_policies": "n",
              "xmultitask_surgery": "replicates", "trust_without_truth": "replicates",
              "nexis_text_trials": "replicates", "m3h_multitask": "n"}


def profile_params(chapter: str, profile: str) -> dict:
    """The chapter's resolved parameters at ``profile`` (``python -m ehrcausal.runner params``)."""
    out = subprocess.run(
        [sys.executable, "-m", "ehrcausal.runner", "params", "--profile", profile, chapter],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    return yaml.safe_load(out) or {}


def _children_cpu() -> float:
    """User + system seconds of this process's waited-for children (and theirs), so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(chapter: str, params: dict) -> dict:
    """Execute the chapter once with ``params``: seconds, CPU seconds, peak memory, load, code."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "params.yml"
        path.write_text(yaml.safe_dump(params))
        cmd = [sys.executable, "-m", "papermill", "--no-progress-bar",
               str(ROOT / "notebooks" / f"{chapter}.ipynb"), str(Path(tmp) / "out.ipynb"),
               "-f", str(path), "--cwd", tmp]
        load_before = os.getloadavg()[0]
        cpu_before = _children_cpu()
        start = time.perf_counter()
        # a fresh result and embedding cache: the cost of computing, not of reading a cache
        env = {**os.environ, "EHRCAUSAL_CACHE": str(Path(tmp) / "cache")}
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        with PeakMemory(lambda: [proc.pid]) as memory:
            _, err = proc.communicate()
        seconds = time.perf_counter() - start
    cpu = max(_children_cpu() - cpu_before, memory.cpu_seconds or 0.0)
    row = {"seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1),
           "peak_memory_mib": memory.peak_mib,
           "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
           "returncode": proc.returncode}
    if proc.returncode:
        print(err.decode(errors="replace")[-3000:], file=sys.stderr)
    return row


def linear_estimate(sizes: list[float], values: list[float], at: float) -> float | None:
    """Least-squares line through (size, value) evaluated at ``at`` (None under two sizes)."""
    if len(set(sizes)) < 2:
        return None
    slope, intercept = np.polyfit(np.asarray(sizes, float), np.asarray(values, float), 1)
    return float(intercept + slope * at)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("chapter", choices=sorted(SIZE_PARAM))
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--param", help="the size parameter (default: the chapter's, see SIZE_PARAM)")
    ap.add_argument("--values", required=True, help="comma-separated sizes, e.g. 1,2,4")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=YAML",
                    help="another parameter to override for every run (repeatable)")
    ap.add_argument("--scale-by", metavar="NAME",
                    help="scale the time estimates by paper[NAME] / measured NAME (set by --set)")
    args = ap.parse_args(argv)
    param = args.param or SIZE_PARAM[args.chapter]
    sizes = [yaml.safe_load(v) for v in args.values.split(",") if v.strip()]
    if not sizes or not all(isinstance(v, int) and v > 0 for v in sizes):
        ap.error("--values must be positive integers")
    base = profile_params(args.chapter, args.profile)
    for item in args.set:
        name, _, value = item.partition("=")
        base[name] = yaml.safe_load(value)
    paper = profile_params(args.chapter, "paper")
    paper_size = paper.get(param)
    scale, scale_note = 1.0, ""
    if args.scale_by:
        measured, target = base.get(args.scale_by), paper.get(args.scale_by)
        if not (isinstance(measured, int) and isinstance(target, int) and measured > 0):
            ap.error(f"--scale-by {args.scale_by}: needs integer values at this profile "
                     f"({measured!r}) and at paper ({target!r})")
        scale = target / measured
        scale_note = (f", times {target}/{measured} for {args.scale_by} (cost taken as "
                      f"proportional to it)")

    rows = []
    for size in sizes:
        row = {param: size, **run_once(args.chapter, {**base, param: size})}
        print(json.dumps(row))
        rows.append(row)
    ok = [r for r in rows if r["returncode"] == 0]
    estimate = None
    if paper_size is not None and len(ok) >= 2:
        x = [r[param] for r in ok]
        seconds = linear_estimate(x, [r["seconds"] for r in ok], paper_size)
        cpu = linear_estimate(x, [r.get("cpu_seconds") or 0.0 for r in ok], paper_size)
        estimate = {
            param: paper_size,
            "seconds": seconds * scale,
            "cpu_seconds": cpu * scale,
            "peak_memory_mib": linear_estimate(x, [r["peak_memory_mib"] or 0.0 for r in ok],
                                               paper_size),
            "note": f"straight-line extrapolation in {param} with the {args.profile} profile's "
                    f"other parameters{scale_note}",
        }
        if args.scale_by:
            estimate[args.scale_by] = paper[args.scale_by]
    result = {
        "chapter": args.chapter, "profile": args.profile, "param": param,
        "overrides": {k: base[k] for k in (n.partition("=")[0] for n in args.set)},
        "rows": rows, "paper_estimate": estimate, "cpus": psutil.cpu_count(),
        "machine": platform.machine(), "device": "cpu",
        "measured": time.strftime("%Y-%m-%d", time.gmtime()),
    }
    print(json.dumps(result["paper_estimate"], indent=1))
    RESULTS.mkdir(parents=True, exist_ok=True)
    dest = RESULTS / f"cost-{args.chapter}-{args.profile}.json"
    dest.write_text(json.dumps(result, indent=1) + "\n")
    print(f"written {dest.relative_to(ROOT)}")
    return int(any(r["returncode"] for r in rows))


if __name__ == "__main__":
    raise SystemExit(main())
