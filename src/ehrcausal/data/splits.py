"""Train/validation/test splits: the random protocol split and the check of its fractions.

:func:`protocol_split` is the split of Shalit, Johansson & Sontag (2017) for IHDP (a uniformly
random permutation cut at the given fractions), used for every data set of the study: with
fractions (f_train, f_val, f_test) and n rows, ``round(f_train n)`` rows are labelled
``"train"``, ``round(f_val n)`` ``"val"`` and the rest ``"test"``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..validation import check_int, check_number

__all__ = ["IHDP_FRACTIONS", "protocol_split", "check_split"]

#: The 63/27/10 train/validation/test protocol of Shalit et al. (2017) for IHDP.
IHDP_FRACTIONS: tuple[float, float, float] = (0.63, 0.27, 0.10)


def protocol_split(
    n: int, seed: int, fractions: tuple[float, float, float] = IHDP_FRACTIONS
) -> np.ndarray:
    """Random ``"train"``/``"val"``/``"test"`` labels (object array of length ``n``).

    A permutation ``np.random.default_rng(seed).permutation(n)`` is cut after
    ``round(fractions[0] * n)`` and ``round(fractions[1] * n)`` positions; the test split gets
    the rest (so the rounding never loses a row). The same ``n``, ``seed`` and ``fractions``
    always give the same labels. Fractions must be non-negative and sum to 1.
    """
    n = check_int(n, "n", 0)
    seed = check_int(seed, "seed", 0)
    if not np.isclose(sum(fractions), 1.0) or min(fractions) < 0:
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    labels = np.empty(n, dtype=object)
    labels[perm[:n_train]] = "train"
    labels[perm[n_train : n_train + n_val]] = "val"
    labels[perm[n_train + n_val :]] = "test"
    return labels


def check_split(split: Any, name: str = "split") -> tuple[float, float, float]:
    """Three positive proportions (train, val, test) summing to 1, as floats.

    Raises ``ValueError`` naming ``name`` for anything else (a string, two numbers, a zero or
    negative share, a NaN, a sum other than 1).
    """
    if isinstance(split, (str, bytes)):
        raise ValueError(f"{name} must be three proportions (train, val, test), got {split!r}")
    try:
        values = tuple(split)
    except TypeError as exc:
        raise ValueError(
            f"{name} must be three proportions (train, val, test), got {split!r}"
        ) from exc
    if len(values) != 3:
        raise ValueError(f"{name} must be three proportions (train, val, test), got {split!r}")
    fr = tuple(check_number(f, name, 0.0, 1.0, low_open=True) for f in values)
    if not np.isclose(sum(fr), 1.0):
        raise ValueError(
            f"{name} must be three positive proportions (train, val, test) summing to 1, "
            f"got {split!r} (sum {sum(fr):g})"
        )
    return fr[0], fr[1], fr[2]
