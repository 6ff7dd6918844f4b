"""Seeds and device choice (``ehrcausal.runtime``)."""

from __future__ import annotations

import numpy as np
import pytest

from ehrcausal.runtime import check_seed, child_seeds, resolve_device


def test_child_seeds_reproducible_and_distinct():
    a, b = child_seeds(0, 5), child_seeds(0, 5)
    assert a == b and len(set(a)) == 5
    assert child_seeds(1, 5) != a


def test_check_seed():
    assert check_seed(3) == 3
    assert check_seed(np.random.default_rng(0)) == check_seed(np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"in \[0, 2\*\*32 - 1\]"):
        check_seed(-1)
    with pytest.raises(ValueError, match="random_state"):
        check_seed("zero")


def test_resolve_device_rejects_unknown():
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("gpu0")


def test_check_seed_accepts_the_full_numpy_range_and_names_the_rest():
    from ehrcausal.runtime import MAX_SEED, check_seed

    assert check_seed(MAX_SEED) == 2**32 - 1 and check_seed(np.uint32(7)) == 7
    for bad in (-1, 2**32, True, 1.5, "3"):
        with pytest.raises(ValueError, match="random_state"):
            check_seed(bad)


def test_blas_threads_limits_inside_the_block_and_restores_after():
    import numpy  # noqa: F401  (loads its BLAS)
    from threadpoolctl import threadpool_info

    from ehrcausal.runtime import blas_threads

    before = [p["num_threads"] for p in threadpool_info()]
    assert before  # a BLAS pool is loaded
    with blas_threads(1):
        assert all(p["num_threads"] == 1 for p in threadpool_info())
    assert [p["num_threads"] for p in threadpool_info()] == before
