"""Shared fixtures: a simple simulated data set with a known effect, and the IHDP data folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ehrcausal.data import CausalDataset


def simulate_simple(n: int = 1500, seed: int = 0) -> CausalDataset:
    """X ~ N(0, I_5); logit e(x) = 0.8 x1 (confounded); tau(x) = 1 + x0; Y = x1 + T tau + N(0, .5^2)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    e = 1.0 / (1.0 + np.exp(-0.8 * X[:, 1]))
    T = rng.binomial(1, e)
    mu0 = X[:, 1] + 0.5 * X[:, 2]
    tau = 1.0 + X[:, 0]
    Y = mu0 + T * tau + rng.normal(scale=0.5, size=n)
    split = np.where(rng.uniform(size=n) < 0.7, "train", np.where(rng.uniform(size=n) < 0.5, "val", "test"))
    return CausalDataset(
        X=pd.DataFrame(X, columns=[f"x{i}" for i in range(5)]),
        T=T,
        Y=Y,
        mu0=mu0,
        mu1=mu0 + tau,
        split=split,
        meta={"source": "simple simulation", "seed": seed},
    )


@pytest.fixture(scope="session")
def simple() -> CausalDataset:
    return simulate_simple()


@pytest.fixture(scope="session")
def ihdp_dir() -> Path:
    """The repository's data/ folder, which ships ihdp_npci/ (see data/README.md)."""
    root = Path(__file__).resolve().parents[1] / "data"
    assert (root / "ihdp_npci" / "ihdp_npci_1.csv").is_file(), f"{root}/ihdp_npci/ is missing"
    return root
