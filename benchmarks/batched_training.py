"""Benchmark: batched against sequential training of many CFR networks on IHDP, in one process.

Fits ``--realizations`` x ``--seeds`` copies of a registered learner (default ``cfr_wass``,
one network each: IHDP realizations 1..R, each with S seeds) twice in this one process: one
after another with ``fit`` (the sequential path), then all at once with
:func:`ehrcausal.learners.batched.fit_batched`. Both use the chapter's protocol (fit on the
training and validation units of the realization's split, early stopping on its validation
units, out-of-sample sqrt(PEHE) on its test units). Prints the times, the mean out-of-sample
PEHE of both paths with its standard error, the largest difference between a network's two
PEHEs, the load average, and ``speedup N.Nx`` (sequential seconds / batched seconds).

Both paths run with the same number of torch threads (``--threads``, default 1: on a loaded
machine two threads per process oversubscribe the cores and slow small networks down by
several times, which would flatter or punish either path depending on the load). The batched
path is the stacked one (one loss call per step, finished members leave the batch).

    python benchmarks/batched_training.py --quick          # 4 x 5 networks, 10 epochs
    python benchmarks/batched_training.py --realizations 50 --seeds 5 --epochs 300
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def _train_flop(est, fit) -> float:
    """Floating-point operations of the layer products of ``est``'s training: for each member,
    3 x 2 x (multiply-adds of one row through every linear layer) x (training rows x epochs
    run), plus 2 x that per validation row and epoch (forward only)."""
    import torch

    n_val = int((fit.split == "val").sum())
    n_train = len(fit.Y) - n_val
    total = 0.0
    for net, hist in zip(est.networks_, est.histories_, strict=True):
        macs = sum(m.in_features * m.out_features for m in net.modules()
                   if isinstance(m, torch.nn.Linear))
        total += hist.n_epochs * macs * (6 * n_train + 2 * n_val)
    return total


def _matmul_gflops(n: int = 1024, repeats: int = 10) -> float:
    """GFLOP per CPU second of n x n float32 matrix products at the current thread count (CPU
    time, so other processes on the machine do not count against it)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.process_time()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.process_time() - start) / 1e9


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--learner", default="cfr_wass")
    ap.add_argument("--realizations", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of both paths")
    ap.add_argument("--quick", action="store_true", help="4 realizations x 5 seeds, 10 epochs")
    args = ap.parse_args(argv)
    if args.quick:
        args.realizations, args.seeds, args.epochs = 4, 5, 10

    import torch

    from ehrcausal.data import load_ihdp
    from ehrcausal.learners import make
    from ehrcausal.learners.batched import fit_batched
    from ehrcausal.metrics import pehe
    from ehrcausal.runtime import child_seeds

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

    warm = cells[0][0]  # first-use costs (torch's optimizer imports) outside both timings
    estimator(0).set_params(epochs=1).fit(warm.Y, warm.T, X=warm.X, val_mask=warm.split == "val")
    print(f"{args.learner}: {args.realizations} IHDP realizations x {args.seeds} seeds = "
          f"{len(cells)} networks, {args.epochs} epochs at most, torch threads "
          f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")
    start, cpu = time.perf_counter(), time.process_time()
    seq, seq_ests = [], []
    for fit, test, seed in cells:
        est = estimator(seed).fit(fit.Y, fit.T, X=fit.X, val_mask=fit.split == "val")
        seq.append(score(est, test))
        seq_ests.append(est)
    t_seq, c_seq = time.perf_counter() - start, time.process_time() - cpu
    load_mid = os.getloadavg()[0]
    start, cpu = time.perf_counter(), time.process_time()
    ests = fit_batched([estimator(seed) for _, _, seed in cells], [c[0].Y for c in cells],
                       [c[0].T for c in cells], [c[0].X for c in cells],
                       [{"val_mask": c[0].split == "val"} for c in cells])
    t_bat, c_bat = time.perf_counter() - start, time.process_time() - cpu
    bat = [score(est, test) for est, (_, test, _) in zip(ests, cells, strict=True)]
    seq_a, bat_a = np.asarray(seq), np.asarray(bat)

    def pm(a: np.ndarray) -> str:
        se = a.std(ddof=1) / np.sqrt(len(a)) if len(a) > 1 else float("nan")
        return f"{a.mean():.3f} +- {se:.3f}"

    flop_seq, flop_bat = (sum(_train_flop(e, c[0]) for e, c in zip(es, cells, strict=True))
                          for es in (seq_ests, ests))
    peak = _matmul_gflops()
    for name, t, c, flop in (("sequential", t_seq, c_seq, flop_seq),
                             ("batched", t_bat, c_bat, flop_bat)):
        pehes = seq_a if name == "sequential" else bat_a
        print(f"{name + ':':11s} {t:8.1f} s wall, {c:8.1f} s CPU   out-of-sample sqrt(PEHE) "
              f"{pm(pehes)}   layer products {flop / 1e9 / c:5.1f} GFLOP per CPU second")
    print(f"a 1024 x 1024 matrix product on {args.threads} thread(s) in this process: {peak:.1f} "
          f"GFLOP per CPU second (near the ceiling of either path)")
    print(f"largest |PEHE difference| of one network: {np.abs(seq_a - bat_a).max():.4f}; "
          f"mean difference {(bat_a - seq_a).mean():+.4f}")
    print(f"load average: {load_mid:.1f} after the sequential part, "
          f"{os.getloadavg()[0]:.1f} at the end")
    print(f"CPU-time ratio {c_seq / c_bat:.1f}x")
    print(f"speedup {t_seq / t_bat:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
