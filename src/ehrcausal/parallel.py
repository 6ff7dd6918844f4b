"""Replicate loops: one function maps work over replicates, locally or on a Dask cluster.

:func:`run_replicates` applies a function to each item in this process, in local ``loky``
processes through joblib (``n_jobs``), or as tasks on a Dask cluster (a scheduler address), shows a progress bar and returns the
results in the order of the items. Local worker processes use one BLAS/torch thread each
(:func:`ehrcausal.runtime.limit_threads`), so parallel replicates do not oversubscribe; Dask
workers started by a nanny already get ``OMP_NUM_THREADS=1`` (and the MKL and OpenBLAS
equivalents) from ``distributed``'s ``distributed.nanny.pre-spawn-environ`` setting, and the
thread settings of a cluster are its operator's to choose.

The scheduler address comes from the ``scheduler`` argument or, when that is not given, from
the environment variable ``EHRCAUSAL_DASK_SCHEDULER`` (:data:`SCHEDULER_ENV`), so a whole study
run by the chapter runner or papermill can be pointed at an existing cluster without changing
a notebook. Results do not depend on the back-end: each item is one call of ``fn``; with the
resumable cache of :func:`ehrcausal.chapters.base.run_cached` every result is written
atomically by the worker that computed it (:mod:`ehrcausal.cache`), so a worker that dies
mid-task leaves no partial record, and the scheduler's retry or a rerun recomputes only that
item.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from .runtime import limit_threads
from .validation import check_int

__all__ = ["SCHEDULER_ENV", "dask_scheduler", "run_replicates"]

#: the environment variable read for a Dask scheduler address when ``scheduler`` is not given
SCHEDULER_ENV = "EHRCAUSAL_DASK_SCHEDULER"


def _call_one(fn: Callable[..., Any], arg: Any, single_thread: bool) -> Any:
    if single_thread:
        limit_threads()
    return fn(arg)


def dask_scheduler(scheduler: str | None = None) -> str | None:
    """The Dask scheduler address to use: ``scheduler``, else ``$EHRCAUSAL_DASK_SCHEDULER``.

    ``None`` (and an empty or unset variable) means local execution. An address is a non-empty
    string such as ``"tcp://10.0.0.5:8786"``; anything else raises ValueError.
    """
    if scheduler is None:
        scheduler = os.environ.get(SCHEDULER_ENV, "").strip() or None
        if scheduler is None:
            return None
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise ValueError(
            f"scheduler must be a Dask scheduler address such as 'tcp://host:8786', "
            f"got {scheduler!r}"
        )
    return scheduler.strip()


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

    ``n_jobs`` -- local processes (loky): 1 runs in this process, -1 uses every core.
    ``scheduler`` -- the address of a Dask scheduler ("tcp://host:8786"), default
    ``$EHRCAUSAL_DASK_SCHEDULER``; when set, each item is one task on that cluster's workers
    (``n_jobs`` is then ignored: the cluster decides) and ``distributed`` must be installed. ``fn`` and the items must be picklable, and the workers must import the same
    version of ``ehrcausal``. Results come back in the order of ``items``.
    """
    from tqdm import tqdm

    n_jobs = check_int(n_jobs, "n_jobs")
    if n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs must be -1 or an integer >= 1, got {n_jobs}")
    scheduler = dask_scheduler(scheduler)
    items = list(items)
    if scheduler is not None:
        return _run_on_dask(fn, items, scheduler, progress=progress, desc=desc)
    if n_jobs == 1:
        return [fn(it) for it in tqdm(items, desc=desc, disable=not progress)]
    from joblib import Parallel, delayed, parallel_config

    with parallel_config(backend="loky", n_jobs=n_jobs):
        gen = Parallel(return_as="generator")(delayed(_call_one)(fn, it, True) for it in items)
        return list(tqdm(gen, total=len(items), desc=desc, disable=not progress))


def _run_on_dask(
    fn: Callable[[Any], Any], items: list[Any], scheduler: str, *, progress: bool, desc: str
) -> list[Any]:
    """One task per item on the cluster at ``scheduler``; results in the order of ``items``.

    The tasks are submitted directly (``Client.map``), not through joblib's ``dask`` back-end,
    which runs everything in the calling process when the cluster has a single thread in all.
    A task whose worker dies is rescheduled by the scheduler (up to its
    ``distributed.scheduler.allowed-failures``); a task that raises re-raises here.
    """
    from tqdm import tqdm

    try:
        from distributed import Client, as_completed
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise ValueError("scheduler= needs the 'distributed' package installed") from exc
    if not items:
        return []
    with Client(scheduler) as client:
        futures = client.map(partial(_call_one, fn, single_thread=False), items, pure=False)
        with tqdm(total=len(items), desc=desc, disable=not progress) as bar:
            for _ in as_completed(futures):
                bar.update()
        return client.gather(futures)
