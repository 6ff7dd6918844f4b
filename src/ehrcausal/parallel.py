"""Replicate loops: one function maps work over replicates, locally or on a Dask cluster.

:func:`run_replicates` applies a function to each item with joblib (local ``loky`` processes by
default; a Dask scheduler address switches the back-end), shows a progress bar and returns the
results in the order of the items. Worker processes use one BLAS/torch thread each
(:func:`ehrcausal.runtime.limit_threads`), so parallel replicates do not oversubscribe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .runtime import limit_threads

__all__ = ["run_replicates"]


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
