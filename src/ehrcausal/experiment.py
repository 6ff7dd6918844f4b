"""Seeding, device choice and replicate loops: the one place for each of these concerns.

- :func:`resolve_device` turns ``"auto"`` into CUDA when present, else CPU, at call time
  (nothing is chosen at import time).
- :func:`seed_sequence` / :func:`child_seeds` derive independent, reproducible seeds for
  replicates from one master seed (:class:`numpy.random.SeedSequence`).
- :func:`torch_seed` seeds torch's global generators for one fit.
- :func:`run_replicates` maps a function over replicates with joblib (local processes by
  default; a Dask scheduler address switches the back-end), showing a progress bar.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "resolve_device",
    "child_seeds",
    "torch_seed",
    "run_replicates",
    "summarise",
]


def resolve_device(device: str | None = "auto") -> str:
    """Return the torch device string to use.

    ``"auto"`` (or ``None``) selects ``"cuda"`` when a CUDA device is visible and ``"cpu"``
    otherwise; any other value is checked and returned unchanged.
    """
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not isinstance(device, str):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available here")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    return device


def child_seeds(seed: int, n: int) -> list[int]:
    """``n`` independent 32-bit seeds derived reproducibly from ``seed``."""
    ss = np.random.SeedSequence(int(seed))
    return [int(c.generate_state(1)[0]) for c in ss.spawn(n)]


def check_seed(random_state: Any) -> int:
    """Turn ``random_state`` (None, int or numpy Generator/RandomState) into an int seed."""
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    if isinstance(random_state, (int, np.integer)):
        if random_state < 0:
            raise ValueError(f"random_state must be non-negative, got {random_state}")
        return int(random_state)
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**31 - 1))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    raise ValueError(f"random_state must be None, an int or a numpy generator, got {random_state!r}")


@contextlib.contextmanager
def torch_seed(seed: int):
    """Seed torch (CPU and CUDA) for the duration of a fit, restoring the CPU RNG state after."""
    import torch

    state = torch.random.get_rng_state()
    torch.manual_seed(int(seed))
    try:
        yield
    finally:
        torch.random.set_rng_state(state)


def _limit_threads() -> None:
    """Use one BLAS/torch thread per worker so parallel replicates do not oversubscribe."""
    with contextlib.suppress(Exception):
        import torch

        torch.set_num_threads(1)


def _call_one(fn: Callable[..., Any], arg: Any, single_thread: bool) -> Any:
    if single_thread:
        _limit_threads()
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
    from tqdm.auto import tqdm

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


def n_cpus() -> int:
    """Usable CPU count (respects affinity masks)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1
