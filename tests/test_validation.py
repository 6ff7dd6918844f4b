"""The shared boundary checks of ehrcausal.validation."""

from __future__ import annotations

import numpy as np
import pytest

from ehrcausal.validation import check_int


def test_check_int_accepts_python_and_numpy_integers_in_range():
    assert check_int(3, "k", 1) == 3
    assert check_int(np.int64(7), "k", 0, 7) == 7
    assert isinstance(check_int(np.int32(2), "k"), int)


@pytest.mark.parametrize(
    ("value", "low", "high", "message"),
    [
        (True, None, None, "k must be an integer, got True"),
        (2.0, None, None, "k must be an integer, got 2.0"),
        (0, 1, None, r"k must be an integer >= 1, got 0"),
        (9, None, 8, r"k must be an integer <= 8, got 9"),
        (11, 1, 10, r"k must be an integer in \[1, 10\], got 11"),
    ],
)
def test_check_int_names_the_problem(value, low, high, message):
    with pytest.raises(ValueError, match=message):
        check_int(value, "k", low, high)


def test_check_number_bounds_and_types():
    from ehrcausal.validation import check_number

    assert check_number(0, "p", 0, 1, high_open=True) == 0.0
    assert check_number(np.float32(0.5), "p", 0, 1) == 0.5
    for bad in (1, True, float("nan"), "0.3", None):
        with pytest.raises(ValueError, match=r"p must be a number in \[0, 1\)"):
            check_number(bad, "p", 0, 1, high_open=True)
    with pytest.raises(ValueError, match=r"lr must be a number in \(0, inf\)"):
        check_number(0.0, "lr", 0, low_open=True)
    assert check_number(-3, "x") == -3.0
