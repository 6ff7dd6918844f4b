"""Replicate loops and chapter helpers (seeding and device choice live in :mod:`ehrcausal.runtime`).

- :func:`run_replicates` maps a function over replicates with joblib (local processes by
  default; a Dask scheduler address switches the back-end), showing a progress bar.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .runtime import child_seeds, limit_threads

__all__ = [
    "run_replicates",
    "summarise",
]


def _call_one(fn: Callable[..., Any], arg: Any, single_thread: bool) -> Any:
    if single_thread:
        limit_threads()
    return fn(arg)


def run_replicates(
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    *,
    n_jobs: int = 1,
    scheduler: str | None = None,
    progress: bool = True,
    desc: str = "replicates",
) -> list[Any]:
    """Apply ``fn`` to each item, in parallel when ``n_jobs != 1``, keeping the input order.

    ``scheduler`` -- the address of a Dask scheduler ("tcp://host:8786"); when given, the joblib
    ``dask`` back-end sends the work there (``distributed`` must be installed). Otherwise local
    processes (loky) are used. Results come back in the order of ``items``.
    """
    from joblib import Parallel, delayed, parallel_config
    from tqdm import tqdm

    items = list(items)
    if n_jobs == 1 and scheduler is None:
        return [fn(it) for it in tqdm(items, desc=desc, disable=not progress)]
    if scheduler is not None:
        try:
            from dask.distributed import Client
        except ImportError as exc:  # pragma: no cover - optional dependency
            raise ValueError("scheduler= needs the 'distributed' package installed") from exc
        client = Client(scheduler)
        ctx = parallel_config(backend="dask")
    else:
        client = None
        ctx = parallel_config(backend="loky", n_jobs=n_jobs)
    try:
        with ctx:
            gen = Parallel(return_as="generator")(
                delayed(_call_one)(fn, it, True) for it in items
            )
            out = list(tqdm(gen, total=len(items), desc=desc, disable=not progress))
    finally:
        if client is not None:
            client.close()
    return out


def summarise(
    df: pd.DataFrame, value_cols: Sequence[str], by: Sequence[str] | str = "learner"
) -> pd.DataFrame:
    """Mean and standard error of ``value_cols`` grouped ``by``: columns ``<col>_mean``, ``<col>_se``.

    The standard error is the sample standard deviation over replicates divided by sqrt(R).
    """
    by = [by] if isinstance(by, str) else list(by)
    g = df.groupby(by, sort=False)[list(value_cols)]
    mean = g.mean().add_suffix("_mean")
    se = (g.std(ddof=1) / np.sqrt(g.count())).add_suffix("_se")
    out = pd.concat([mean, se], axis=1)
    cols = [c for v in value_cols for c in (f"{v}_mean", f"{v}_se")]
    out = out[cols]
    out.insert(0, "replicates", g.count().iloc[:, 0].to_numpy())
    return out.reset_index()


def fit_and_score(
    ds: Any,
    learner: str,
    params: dict[str, Any] | None = None,
    *,
    label: str | None = None,
    random_state: int = 0,
    fit_splits: Sequence[str] = ("train", "val"),
    test_split: str = "test",
) -> dict[str, Any]:
    """Fit a registered learner on the ``fit_splits`` rows of ``ds`` and score its effects.

    The learner sees the validation rows as ``val_mask`` (for early stopping) when it asks for
    them. ``label`` names the row (default: ``learner``). Returns within-sample (fit rows) and out-of-sample (test rows) sqrt(PEHE) and ATE
    error, and the fit time in seconds.
    """
    import time

    from .learners import make, spec
    from .metrics import ate_error, pehe

    if not ds.has_truth:
        raise ValueError("fit_and_score needs a dataset with the true effect tau")
    train = ds.subset(*fit_splits)
    test = ds.subset(test_split)
    params = dict(params or {})
    est = make(learner, random_state=random_state, **params)
    start = time.perf_counter()
    extra = {"val_mask": train.split == "val"} if "val_mask" in spec(learner).fit_inputs else {}
    est.fit(train.Y, train.T, X=train.X, **extra)
    seconds = time.perf_counter() - start
    tau_in, tau_out = est.effect(train.X), est.effect(test.X)
    return {
        "learner": label or learner,
        "pehe_in": pehe(train.tau, tau_in),
        "pehe_out": pehe(test.tau, tau_out),
        "ate_in": ate_error(train.tau, tau_in),
        "ate_out": ate_error(test.tau, tau_out),
        "seconds": seconds,
    }


def _benchmark_task(task: dict[str, Any]) -> dict[str, Any]:
    from .cache import ResultCache

    cache = ResultCache(task["cache_dir"], namespace="benchmark")
    ds = task["load"](task["replicate"])
    key = {
        "data": {k: ds.meta.get(k) for k in ("source", "realization", "sha256", "seed", "split_seed")},
        "learner": task["learner"],
        "base": task["base"],
        "params": task["params"],
        "random_state": task["random_state"],
    }
    hit = cache.get(key)
    if hit is not None:
        return {**hit, "cached": True}
    row = fit_and_score(
        ds, task["base"], task["params"], label=task["learner"], random_state=task["random_state"]
    )
    row["replicate"] = task["replicate"]
    cache.put(key, row)
    return {**row, "cached": False}


def run_benchmark(
    load: Callable[[int], Any],
    replicates: Sequence[int],
    learners: Sequence[str] | Mapping[str, str],
    *,
    params: dict[str, dict[str, Any]] | None = None,
    seed: int = 0,
    n_jobs: int = 1,
    scheduler: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Every learner on every replicate: a tidy table with one row per (replicate, learner).

    ``load(r)`` returns replicate ``r`` as a :class:`~ehrcausal.data.CausalDataset` with a split
    and the true effect. ``learners`` lists registry names, or maps row labels to registry
    names (to compare variants of one learner); ``params`` is keyed by the same labels.
    Replicate ``r`` uses the seed ``child_seeds(seed, ...)`` for all
    learners, so learners are compared on the same draws. With ``cache_dir`` each finished
    (replicate, learner) result is stored atomically and a re-run resumes where it stopped.
    """
    params = params or {}
    if not isinstance(learners, Mapping):
        learners = {name: name for name in learners}
    replicates = list(replicates)
    seeds = dict(zip(replicates, child_seeds(seed, len(replicates)), strict=True))
    tasks = [
        {
            "load": load,
            "replicate": r,
            "learner": label,
            "base": base,
            "params": params.get(label, {}),
            "random_state": seeds[r],
            "cache_dir": None if cache_dir is None else str(cache_dir),
        }
        for r in replicates
        for label, base in learners.items()
    ]
    rows = run_replicates(
        _benchmark_task, tasks, n_jobs=n_jobs, scheduler=scheduler, progress=progress,
        desc=f"{len(learners)} learners x {len(replicates)} replicates",
    )
    cols = ["replicate", "learner", "pehe_in", "pehe_out", "ate_in", "ate_out", "seconds", "cached"]
    return pd.DataFrame(rows)[cols]


def parse_list(value: Any, cast: Callable[[str], Any] = str, name: str = "value") -> list[Any]:
    """A notebook parameter given as a list or as a comma-separated string (``papermill -p``).

    ``parse_list("0.05, 0.5", float) == [0.05, 0.5]``; a list or tuple is cast element-wise. An
    empty result or an element that ``cast`` rejects raises ValueError naming ``name``.
    """
    items = value.split(",") if isinstance(value, str) else list(np.atleast_1d(value))
    out = []
    for item in items:
        text = item.strip() if isinstance(item, str) else item
        if text == "":
            continue
        try:
            out.append(cast(text))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}: cannot read {item!r} as {cast.__name__}") from exc
    if not out:
        raise ValueError(f"{name} is empty")
    return out


def _cached_call(task: tuple[Callable[[Any], Any], Any, str | None, str]) -> Any:
    from .cache import ResultCache

    fn, cell, cache_dir, namespace = task
    cache = ResultCache(cache_dir, namespace=namespace)
    key = cell.key() if hasattr(cell, "key") else cell
    hit = cache.get(key)
    if hit is not None:
        return hit
    out = fn(cell)
    cache.put(key, out)
    return out


def run_cached(
    fn: Callable[[Any], Any],
    cells: Sequence[Any],
    *,
    n_jobs: int = 1,
    cache_dir: str | os.PathLike | None = None,
    namespace: str = "cells",
    progress: bool = True,
    desc: str = "fits",
) -> list[Any]:
    """``[fn(c) for c in cells]`` through :func:`run_replicates`, each result cached on disk.

    A cell describes one unit of work (its ``key()`` or the cell itself must be
    JSON-serialisable); with ``cache_dir`` every finished result is written atomically under
    ``cache_dir/namespace`` and a rerun returns it without calling ``fn``, so an interrupted
    sweep resumes. ``fn`` must be picklable (a module-level function or a partial of one).
    """
    root = None if cache_dir is None else str(cache_dir)
    tasks = [(fn, c, root, namespace) for c in cells]
    return run_replicates(_cached_call, tasks, n_jobs=n_jobs, progress=progress, desc=desc)


def paired_difference(
    df: pd.DataFrame, a: str, b: str, metric: str, *, by: str = "replicate",
    column: str = "learner",
) -> tuple[float, float]:
    """Mean and standard error over replicates of the paired difference ``a - b`` in ``metric``.

    ``df`` is a tidy table (one row per replicate and learner); rows are matched on ``by``, so
    two learners fitted on the same replicates are compared replicate by replicate, which
    removes the variation the replicates share. The standard error is NaN with one replicate.
    """
    for name in (a, b):
        if name not in set(df[column]):
            raise ValueError(f"{column} {name!r} is not in the table")
    wide = df.pivot_table(index=by, columns=column, values=metric)
    diff = (wide[a] - wide[b]).dropna()
    if diff.empty:
        raise ValueError(f"{a!r} and {b!r} share no {by}")
    se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("nan")
    return float(diff.mean()), se
