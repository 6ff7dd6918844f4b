"""Benchmark: wall time and peak memory of one chapter at one profile.

Runs the chapter through papermill as the study runner (``ehrcausal.runner``) does -- the
profile's parameters, the kernel working in the folder the executed notebook is written to -- in
a child process, and samples the resident memory of the whole process tree (papermill, kernel,
joblib workers) every 0.2 s.
Results are printed and written to ``benchmarks/results/<chapter>-<profile>.json``.

    python benchmarks/chapter_cost.py ihdp_benchmark --profile default
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("chapter")
    ap.add_argument("--profile", default="default")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        params = Path(tmp) / "params.yml"
        out = subprocess.run(
            [sys.executable, "-m", "ehrcausal.runner", "params", "--profile", args.profile,
             args.chapter],
            cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout
        params.write_text(out)
        cmd = [sys.executable, "-m", "papermill", "--no-progress-bar",
               str(ROOT / "notebooks" / f"{args.chapter}.ipynb"), str(Path(tmp) / "out.ipynb"),
               "-f", str(params), "--cwd", tmp]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        ps = psutil.Process(proc.pid)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, tree_rss(ps))
            time.sleep(0.2)
        seconds = time.perf_counter() - start
        err = proc.stderr.read().decode() if proc.stderr else ""
    result = {
        "chapter": args.chapter,
        "profile": args.profile,
        "seconds": round(seconds, 1),
        "peak_rss_gib": round(peak / 2**30, 3),
        "returncode": proc.returncode,
        "cpus": psutil.cpu_count(),
        "machine": platform.machine(),
    }
    print(json.dumps(result, indent=1))
    if proc.returncode:
        print(err[-3000:], file=sys.stderr)
    dest = ROOT / "benchmarks" / "results" / f"{args.chapter}-{args.profile}.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(result, indent=1) + "\n")
    return int(proc.returncode != 0)


if __name__ == "__main__":
    raise SystemExit(main())
