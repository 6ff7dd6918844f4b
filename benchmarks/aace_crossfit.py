"""Benchmark: cross-fitted against not-cross-fitted AACE, with fixed and data-chosen nuisances.

The AACE chapter's main comparison at its default profile (both simulators, n = 1,000 records,
every record annotated, 5 replicates from master seed 0, test split scored) for AACE with
``cv=5`` (cross-fitted) and ``cv=1`` (nuisances fitted and evaluated on the same rows), each
with the random-forest nuisances AACE used before (``nuisance="forest"``) and with nuisances
chosen by out-of-fold loss (``nuisance="auto"``). Prints sqrt(PEHE) mean and s.e. over
replicates, the paired difference cross-fitted minus not, the nuisances chosen, and writes
``benchmarks/results/aace_crossfit.json``.

    python benchmarks/aace_crossfit.py [--replicates 5] [--n 1000] [--n-jobs 1]
        [--simulators respiratory,cardiac]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from ehrcausal.cache import atomic_write_text
from ehrcausal.chapters.aace import SIMULATORS, represent, simulate
from ehrcausal.chapters.base import replicate_seeds
from ehrcausal.chapters.report import paired_difference, summarise
from ehrcausal.learners import make
from ehrcausal.metrics import pehe
from ehrcausal.validation import OverlapWarning

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {"cross-fitted": "aace_dr", "not cross-fitted": "aace_no_crossfit"}


def replicate(simulator: str, n: int, seed: int) -> list[dict]:
    """One replicate: the four AACE variants fitted on the training records, scored on test."""
    from ehrcausal.runtime import limit_threads

    limit_threads()
    ds = simulate(simulator, n, seed, annotated=1.0)
    phi = represent(ds, random_state=seed)
    rows = np.isin(ds.split, ("train", "val"))
    train, test = ds.take(rows), ds.take(ds.split == "test")
    out = []
    for nuisance in ("forest", "auto"):
        for variant, name in VARIANTS.items():
            est = make(name, random_state=seed, nuisance=nuisance)
            start = time.perf_counter()
            est.fit(train.Y, train.T, X=phi[rows], annotations=train.annotations,
                    confounders=train.X)
            seconds = time.perf_counter() - start
            chosen = {role: sel.name for role, sel in est.nuisance_selection_.items()}
            out.append({"simulator": simulator, "seed": seed, "nuisance": nuisance,
                        "variant": variant, "pehe": pehe(test.tau, est.effect(phi[~rows])),
                        "seconds": seconds, "chosen": str(chosen)})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--replicates", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("--simulators", default=",".join(SIMULATORS))
    args = ap.parse_args(argv)
    seeds = replicate_seeds(args.seed, args.replicates)
    simulators = [s for s in args.simulators.split(",") if s]
    tasks = [(sim, s) for sim in simulators for s in seeds]
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OverlapWarning)
        for sim, s in tasks:  # embeddings once, in this process (cached on disk)
            represent(simulate(sim, args.n, s, annotated=1.0), random_state=s)
        parts = Parallel(n_jobs=args.n_jobs)(
            delayed(replicate)(sim, args.n, s) for sim, s in tasks)
    seconds = time.perf_counter() - start
    results = pd.DataFrame([r for part in parts for r in part])
    results["replicate"] = results.seed.map({s: i for i, s in enumerate(seeds)})
    out: dict = {"n": args.n, "replicates": args.replicates, "seconds": round(seconds, 1),
                 "sqrt_pehe": {}, "difference": {}, "chosen": {}, "fit_seconds": {}}
    for simulator in simulators:
        sub = results[results.simulator == simulator]
        table = summarise(sub, ["pehe", "seconds"], by=["nuisance", "variant"])
        print(f"\n{simulator}\n{table.to_string()}")
        for row in table.itertuples():
            key = f"{simulator} | {row.nuisance} | {row.variant}"
            out["sqrt_pehe"][key] = [float(row.pehe_mean), float(row.pehe_se)]
            out["fit_seconds"][key] = float(row.seconds_mean)
        for nuisance in ("forest", "auto"):
            diff, se = paired_difference(sub[sub.nuisance == nuisance], "cross-fitted",
                                         "not cross-fitted", "pehe", column="variant")
            out["difference"][f"{simulator} | {nuisance}"] = [diff, se]
            print(f"  {nuisance}: cross-fitted minus not = {diff:.3f} +/- {se:.3f}")
        auto = sub[sub.nuisance == "auto"]
        for variant in VARIANTS:
            picks = auto[auto.variant == variant].chosen.value_counts().to_dict()
            out["chosen"][f"{simulator} | {variant}"] = picks
            print(f"  auto chose ({variant}): {picks}")
    print(f"\n{len(results)} fits in {seconds:.0f} s")
    folder = ROOT / "benchmarks" / "results"
    folder.mkdir(parents=True, exist_ok=True)
    name = "aace_crossfit" + ("" if len(simulators) == len(SIMULATORS) else f"_{simulators[0]}")
    atomic_write_text(folder / f"{name}.json", json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
