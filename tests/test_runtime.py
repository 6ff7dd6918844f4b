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
    with pytest.raises(ValueError, match="non-negative"):
        check_seed(-1)
    with pytest.raises(ValueError, match="random_state"):
        check_seed("zero")


def test_resolve_device_rejects_unknown():
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("gpu0")
