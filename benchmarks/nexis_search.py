"""Benchmark: the NEXIS search on 10,000 patients x 4,096 neurons (target: <= 60 s on 2 cores).

Activations are SAE-like: each patient has ``k`` active neurons (exponential values) among
``m``; neurons 0, 1 and 2 modify the effect. The timed call is the whole public search
(:func:`ehrcausal.discovery.nexis`: input checks, rare-neuron filter, duplicate check,
standardisation and every round), once per variance; the marginal Bonferroni tests are timed
beside it. Wall-clock and CPU seconds (summed over the process's threads) are recorded with
the load average: on a shared machine the CPU time is the better guide to an idle one.
Results are printed and written to ``benchmarks/results/nexis_search.json``.

    python benchmarks/nexis_search.py [--n 10000] [--neurons 4096] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def sparse_neurons(n: int, m: int, k: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    Z = np.zeros((n, m))
    cols = rng.integers(0, m, size=(n, k))
    Z[np.arange(n)[:, None], cols] = rng.exponential(size=(n, k))
    T = rng.integers(0, 2, n)
    w = np.array([3.0, -3.0, 2.4])
    Y = Z[:, :3].sum(axis=1) + T * (0.2 + Z[:, :3] @ w) + rng.normal(size=n)
    return Y, T, Z


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--neurons", type=int, default=4096)
    ap.add_argument("--k", type=int, default=32, help="active neurons per patient")
    ap.add_argument("--threads", type=int, default=2, help="BLAS threads")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from threadpoolctl import threadpool_limits

    from ehrcausal.discovery import marginal, nexis

    Y, T, Z = sparse_neurons(args.n, args.neurons, args.k, args.seed)
    rows = []
    with threadpool_limits(args.threads):
        for name, call in (
            ("nexis nonrobust", lambda: nexis(Y, T, Z)),
            ("nexis HC2 + Satterthwaite df", lambda: nexis(Y, T, Z, cov_type="HC1")),
            ("marginal Bonferroni", lambda: marginal(Y, T, Z)),
        ):
            load = os.getloadavg()[0]
            start, cpu = time.perf_counter(), time.process_time()
            res = call()
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
            rows.append({"search": name, "seconds": round(seconds, 2),
                         "cpu_seconds": round(cpu, 2), "load_average_1min": round(load, 2),
                         "rounds": len(res.rounds), "selected": res.selected.tolist()})
            print(f"{name:22s} {seconds:7.2f} s wall, {cpu:7.2f} s CPU (all threads; load "
                  f"{load:.1f})  selected {res.selected.tolist()} in {len(res.rounds)} round(s)")
    out = {"n": args.n, "neurons": args.neurons, "k": args.k, "threads": args.threads,
           "cpu_count": os.cpu_count(), "platform": platform.platform(), "results": rows,
           "target_seconds": 60}
    path = ROOT / "benchmarks" / "results" / "nexis_search.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    from ehrcausal.cache import atomic_write_text

    atomic_write_text(path, json.dumps(out, indent=2) + "\n")
    print(f"written {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
