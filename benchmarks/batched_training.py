"""Benchmark: batched against sequential training of many CFR networks on IHDP, in one process.

Fits ``--realizations`` x ``--seeds`` copies of a registered learner (default ``cfr_wass``,
one network each: IHDP realizations 1..R, each with S seeds) twice in this one process: one
after another with ``fit`` (the sequential path), then all at once with
:func:`ehrcausal.learners.batched.fit_batched`. Both use the chapter's protocol (fit on the
training and validation units of the realization's split, early stopping on its validation
units, out-of-sample sqrt(PEHE) on its test units). Prints the times, the mean out-of-sample
PEHE of both paths with its standard error, the largest difference between a network's two
PEHEs, the load average, and ``speedup N.Nx`` (sequential seconds / batched seconds).

    python benchmarks/batched_training.py --quick          # 2 x 2 networks, 15 epochs
    python benchmarks/batched_training.py --realizations 50 --seeds 5 --epochs 300
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--learner", default="cfr_wass")
    ap.add_argument("--realizations", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--quick", action="store_true", help="2 realizations x 2 seeds, 15 epochs")
    args = ap.parse_args(argv)
    if args.quick:
        args.realizations, args.seeds, args.epochs = 2, 2, 15

    import torch

    from ehrcausal.data import load_ihdp
    from ehrcausal.learners import make
    from ehrcausal.learners.batched import fit_batched
    from ehrcausal.metrics import pehe
    from ehrcausal.runtime import child_seeds

    if args.threads:
        torch.set_num_threads(args.threads)
    cells = []
    for r in range(1, args.realizations + 1):
        ds = load_ihdp(r)
        fit, test = ds.subset("train", "val"), ds.subset("test")
        for seed in child_seeds(r, args.seeds):
            cells.append((fit, test, seed))

    def estimator(seed: int):
        return make(args.learner, random_state=seed, epochs=args.epochs, device="cpu")

    def score(est, test) -> float:
        return pehe(test.tau, est.effect(test.X))

    print(f"{args.learner}: {args.realizations} IHDP realizations x {args.seeds} seeds = "
          f"{len(cells)} networks, {args.epochs} epochs at most, torch threads "
          f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")
    start = time.perf_counter()
    seq = []
    for fit, test, seed in cells:
        est = estimator(seed).fit(fit.Y, fit.T, X=fit.X, val_mask=fit.split == "val")
        seq.append(score(est, test))
    t_seq = time.perf_counter() - start
    load_mid = os.getloadavg()[0]
    start = time.perf_counter()
    ests = fit_batched([estimator(seed) for _, _, seed in cells], [c[0].Y for c in cells],
                       [c[0].T for c in cells], [c[0].X for c in cells],
                       [{"val_mask": c[0].split == "val"} for c in cells])
    t_bat = time.perf_counter() - start
    bat = [score(est, test) for est, (_, test, _) in zip(ests, cells, strict=True)]
    seq_a, bat_a = np.asarray(seq), np.asarray(bat)

    def pm(a: np.ndarray) -> str:
        se = a.std(ddof=1) / np.sqrt(len(a)) if len(a) > 1 else float("nan")
        return f"{a.mean():.3f} +- {se:.3f}"

    print(f"sequential: {t_seq:8.1f} s   out-of-sample sqrt(PEHE) {pm(seq_a)}")
    print(f"batched:    {t_bat:8.1f} s   out-of-sample sqrt(PEHE) {pm(bat_a)}")
    print(f"largest |PEHE difference| of one network: {np.abs(seq_a - bat_a).max():.4f}; "
          f"mean difference {(bat_a - seq_a).mean():+.4f}")
    print(f"load average: {load_mid:.1f} after the sequential part, "
          f"{os.getloadavg()[0]:.1f} at the end")
    print(f"speedup {t_seq / t_bat:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
