"""Seeding and device choice: the one place for each, imported by everything, importing nothing.

- :func:`check_seed` turns a ``random_state`` (None, int, numpy generator) into an int seed.
- :func:`child_seeds` derives independent, reproducible seeds for replicates or members from one
  master seed (:class:`numpy.random.SeedSequence`).
- :func:`seed_streams` spawns named, independent seed sequences from one master seed (one per
  source of randomness of a simulator or renderer); :func:`stream_seed` turns one into an int.
- :func:`torch_seed` seeds torch's global generators for the duration of one fit.
- :func:`resolve_device` turns ``"auto"`` into CUDA when present, else CPU, at call time
  (nothing is chosen at import time).
- :func:`limit_threads` keeps one BLAS/torch thread per worker process.

This module is a leaf of the package's import graph: it imports no other ``ehrcausal`` module.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

#: the largest seed numpy's legacy generators and scikit-learn accept
MAX_SEED = 2**32 - 1

__all__ = [
    "check_seed",
    "child_seeds",
    "seed_streams",
    "stream_seed",
    "torch_seed",
    "resolve_device",
    "limit_threads",
    "blas_threads",
]


def check_seed(random_state: Any) -> int:
    """Turn ``random_state`` (None, int or numpy Generator/RandomState) into an int seed.

    ``None`` draws fresh entropy (an unseeded, irreproducible run); every chapter passes an int.
    """
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    if isinstance(random_state, bool):
        raise ValueError(f"random_state must be None, an int or a numpy generator, got {random_state!r}")
    if isinstance(random_state, (int, np.integer)):
        if not 0 <= random_state <= MAX_SEED:
            raise ValueError(
                f"random_state must be an integer in [0, 2**32 - 1], got {random_state}"
            )
        return int(random_state)
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**31 - 1))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    raise ValueError(f"random_state must be None, an int or a numpy generator, got {random_state!r}")


def child_seeds(seed: int, n: int) -> list[int]:
    """``n`` independent 32-bit seeds derived reproducibly from ``seed``."""
    ss = np.random.SeedSequence(int(seed))
    return [int(c.generate_state(1)[0]) for c in ss.spawn(n)]


@contextlib.contextmanager
def torch_seed(seed: int) -> Iterator[None]:
    """Seed torch (CPU and CUDA) for the duration of a fit, restoring the CPU RNG state after."""
    import torch

    state = torch.random.get_rng_state()
    torch.manual_seed(int(seed))
    try:
        yield
    finally:
        torch.random.set_rng_state(state)


def resolve_device(device: str | None = "auto") -> str:
    """Return the torch device string to use.

    ``"auto"`` (or ``None``) selects ``"cuda"`` when a CUDA device is visible and ``"cpu"``
    otherwise; ``"cpu"``, ``"cuda"`` and ``"cuda:N"`` are checked and returned unchanged.
    """
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not isinstance(device, str) or not (device == "cpu" or device.startswith("cuda")):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available here")
    return device


def limit_threads() -> None:
    """Use one BLAS/torch thread in this process, so parallel workers do not oversubscribe."""
    with contextlib.suppress(Exception):
        import torch

        torch.set_num_threads(1)
    with contextlib.suppress(Exception):
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)


@contextlib.contextmanager
def blas_threads(limit: int = 1) -> Iterator[None]:
    """Limit the BLAS / OpenMP thread pools to ``limit`` threads inside the block (restored
    after). For many small linear-algebra fits (ridge and logistic regressions on a few hundred
    rows), one thread is faster than several, and idle BLAS threads that spin while waiting cost
    CPU on a busy machine (measured on the AACE learner: about 19 times its single-thread CPU
    time at n = 300 on a loaded two-core machine)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=limit):
        yield


def seed_streams(seed: int, names: Sequence[str]) -> dict[str, np.random.SeedSequence]:
    """Named, statistically independent child seed sequences of ``SeedSequence(seed)``.

    ``names[i]`` gets the i-th child of ``np.random.SeedSequence(seed).spawn(len(names))``, so
    the same seed and names always give the same streams, and drawing more or fewer numbers
    from one stream never changes another. Pass a stream to ``np.random.default_rng`` for a
    generator, to :func:`stream_seed` for an int seed, or ``.spawn(k)`` it for sub-streams.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    names = list(names)
    if len(set(names)) != len(names):
        raise ValueError(f"stream names must be distinct, got {names}")
    children = np.random.SeedSequence(int(seed)).spawn(len(names))
    return dict(zip(names, children, strict=True))


def stream_seed(stream: np.random.SeedSequence) -> int:
    """A 32-bit int seed drawn deterministically from a seed sequence (its first state word)."""
    return int(stream.generate_state(1)[0])
