"""IHDP semi-synthetic benchmark (Hill 2011, response surface B; NPCI realizations).

Each realization has 747 children (139 treated) with 25 covariates (x1-x6 continuous and
standardised, x7-x25 binary), the factual and counterfactual outcomes and the noiseless
potential outcomes ``mu0``/``mu1``; the true CATE is ``mu1 - mu0``.

Protocol (Shalit, Johansson & Sontag 2017): per realization a random 63/27/10
train/validation/test split; within-sample metrics on train+validation, out-of-sample on test.

Files are read from ``$EHRCAUSAL_DATA/ihdp_npci/ihdp_npci_{i}.csv`` (default ``data/raw``) and
checked against their SHA-256 before use.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from ._paths import ENV_VAR, data_root, sha256
from .dataset import CausalDataset

N_REALIZATIONS = 50
COLUMNS = ["t", "y_factual", "y_cfactual", "mu0", "mu1"] + [f"x{i}" for i in range(1, 26)]
SPLIT_FRACTIONS = (0.63, 0.27, 0.10)
PUBLIC_SOURCE = (
    "the CSV realizations of the NPCI IHDP benchmark published with the DragonNet repository "
    "(claudiashi57/dragonnet, dat/ihdp/csv/, realizations 1-50) or the CEVAE repository "
    "(AMLab-Amsterdam/CEVAE, datasets/IHDP/csv/, realizations 1-10)"
)


@lru_cache(maxsize=1)
def _checksums() -> dict[str, str]:
    text = resources.files("ehrcausal.data").joinpath("checksums.json").read_text()
    return json.loads(text)["ihdp_npci"]


def ihdp_path(realization: int, data_dir: str | os.PathLike | None = None) -> Path:
    """Path of one realization's CSV (it may not exist)."""
    return data_root(data_dir) / "ihdp_npci" / f"ihdp_npci_{realization}.csv"


def protocol_split(n: int, seed: int, fractions: tuple[float, float, float] = SPLIT_FRACTIONS):
    """Random train/val/test labels with the given fractions (test gets the rounding rest)."""
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


def load_ihdp(
    realization: int,
    data_dir: str | os.PathLike | None = None,
    *,
    split_seed: int | None = None,
    verify: bool = True,
) -> CausalDataset:
    """Load one NPCI IHDP realization as a :class:`CausalDataset` with the 63/27/10 split.

    Parameters
    ----------
    realization : 1..50.
    data_dir : folder holding ``ihdp_npci/``; default ``$EHRCAUSAL_DATA``, else ``data/raw``.
    split_seed : seed of the train/val/test split; default ``realization`` (so each realization
        has its own, reproducible split).
    verify : check the file's SHA-256 against the published list.
    """
    if isinstance(realization, bool) or not isinstance(realization, (int, np.integer)):
        raise ValueError(f"realization must be an integer in 1..{N_REALIZATIONS}, got {realization!r}")
    if not 1 <= realization <= N_REALIZATIONS:
        raise ValueError(f"realization must be in 1..{N_REALIZATIONS}, got {realization}")
    realization = int(realization)
    path = ihdp_path(realization, data_dir)
    if not path.is_file():
        raise FileNotFoundError(
            f"IHDP realization {realization} not found at {path}. Set the environment variable "
            f"{ENV_VAR} to the folder that contains ihdp_npci/ (or pass data_dir=), or place the "
            f"files in data/raw/ihdp_npci/. Public source: {PUBLIC_SOURCE}."
        )
    digest = sha256(path)
    expected = _checksums()[path.name]
    if verify and digest != expected:
        raise ValueError(
            f"{path} is corrupt or not the published file: SHA-256 {digest[:16]}... differs from "
            f"{expected[:16]}...; fetch it again from {PUBLIC_SOURCE}."
        )
    raw = pd.read_csv(path, header=None)
    if raw.shape[1] != len(COLUMNS):
        raise ValueError(f"{path} has {raw.shape[1]} columns; expected {len(COLUMNS)}")
    raw.columns = COLUMNS
    X = raw[[f"x{i}" for i in range(1, 26)]].copy()
    if set(np.unique(X["x14"])) <= {1.0, 2.0}:
        X["x14"] = X["x14"] - 1.0  # conventional shift of the one {1, 2}-coded binary
    seed = realization if split_seed is None else int(split_seed)
    T = raw["t"].to_numpy().astype(int)
    y_f = raw["y_factual"].to_numpy()
    y_cf = raw["y_cfactual"].to_numpy()
    return CausalDataset(
        X=X,
        T=T,
        Y=y_f,
        mu0=raw["mu0"].to_numpy(),
        mu1=raw["mu1"].to_numpy(),
        split=protocol_split(len(raw), seed),
        modalities={"y_cfactual": y_cf},
        meta={
            "source": "IHDP NPCI (Hill 2011, surface B)",
            "realization": realization,
            "split_seed": seed,
            "sha256": digest,
            "path": path.name,
        },
    )
