"""Benchmark: what one X-MultiTask size-experiment fit costs against the cohort size.

The X-MultiTask chapter's size experiment fits each of its ``size_learners`` on simulated
cohorts of growing size (``sizes``), once per replicate. This script times exactly those fits
(the chapter's own :func:`ehrcausal.chapters.xmultitask.design` cells and
:func:`~ehrcausal.chapters.xmultitask.run_cell`, at a profile's ``epochs`` and learners), one
replicate, in this process with one torch and BLAS thread: wall seconds, CPU seconds
(``time.process_time``, which depends much less on other work on the machine than wall time) and
the epochs each network trained (early stopping ends them at different points, so cost is not
exactly linear in n).

From the measured sizes it fits, per learner, a straight line of CPU seconds against n, and
evaluates what the chapter's size experiment would cost at a target size (default 100,000, the
``paper`` profile's largest): ``replicates x sum over learners`` CPU seconds, and its wall time on
``--cores`` cores with perfect parallelism over cells (a lower bound), against the chapter's
10-minute budget.

    python benchmarks/xmultitask_size.py --sizes 4000,16000,32000 \
        --out benchmarks/results/xmultitask-size-default.json
    python benchmarks/xmultitask_size.py --sizes 1017,4000 --profile smoke   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from chapter_cost import profile_params  # this folder's benchmark: the runner's resolved values


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="4000,16000,32000", help="approach-cohort sizes to time")
    ap.add_argument("--profile", default="default", help="whose epochs, learners and replicates")
    ap.add_argument("--target", type=int, default=100_000, help="the size to extrapolate to")
    ap.add_argument("--cores", type=int, default=2, help="cores of the machine to budget for")
    ap.add_argument("--budget", type=float, default=600.0, help="the chapter's budget, seconds")
    ap.add_argument("--out", type=Path, help="also write the table as JSON here")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if len(sizes) < 2 or min(sizes) < 60:
        ap.error("--sizes needs at least two sizes of at least 60")

    from ehrcausal.chapters import xmultitask as chapter
    from ehrcausal.runtime import limit_threads

    limit_threads()
    p = profile_params("xmultitask_surgery", args.profile)
    cfg = chapter.Config(n=p["n"], replicates=1, seed=p.get("seed", 0), learners=p["learners"],
                         sizes=args.sizes, size_learners=p["size_learners"],
                         epochs=p.get("epochs"), device="cpu")
    cells = chapter.design("size", learners={k: k for k in cfg.size_learners}, seeds=cfg.seeds,
                           sizes=sizes, params=cfg.params)
    print(f"profile {args.profile}: epochs {cfg.epochs}, size learners {cfg.size_learners}, "
          f"{len(cells)} fits, 1 thread, load {os.getloadavg()[0]:.1f}", flush=True)
    rows = []
    for cell in cells:
        wall, cpu = time.perf_counter(), time.process_time()
        out = chapter.run_cell(cell)
        row = {"learner": cell.learner, "n": cell.n,
               "seconds": round(time.perf_counter() - wall, 1),
               "cpu_seconds": round(time.process_time() - cpu, 1),
               "fit_seconds": round(out[0]["seconds"], 1),
               "pehe_approach": round(float(next(r["pehe"] for r in out
                                                 if r["task"] == "approach")), 4),
               "load": round(os.getloadavg()[0], 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)

    replicates = int(p.get("replicates", 1))
    total = 0.0
    print(f"\nCPU seconds per fit, straight line in n, at n = {args.target:,}:")
    estimates = {}
    for learner in cfg.size_learners:
        mine = [r for r in rows if r["learner"] == learner]
        slope, intercept = np.polyfit([r["n"] for r in mine], [r["cpu_seconds"] for r in mine], 1)
        estimates[learner] = float(intercept + slope * args.target)
        total += estimates[learner]
        print(f"  {learner:<22} {estimates[learner]:>10,.0f}")
    sweep = replicates * total
    wall = sweep / args.cores
    print(f"the size experiment at n = {args.target:,} alone, {replicates} replicates: "
          f"{sweep:,.0f} CPU seconds, at least {wall:,.0f} s on {args.cores} cores "
          f"({wall / args.budget:.1f}x the chapter's {args.budget:.0f} s budget)")
    if args.out:
        args.out.write_text(json.dumps({"profile": args.profile, "rows": rows,
                                        "estimates": estimates, "target": args.target,
                                        "replicates": replicates, "sweep_cpu_seconds": sweep},
                                       indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
