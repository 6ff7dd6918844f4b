"""IHDP semi-synthetic benchmark (Hill 2011, response surface B; NPCI realizations).

Each realization has 747 children (139 treated) with 25 covariates (x1-x6 continuous and
standardised, x7-x25 binary), the factual and counterfactual outcomes and the noiseless
potential outcomes ``mu0``/``mu1``; the true CATE is ``mu1 - mu0``.

Protocol (Shalit, Johansson & Sontag 2017): per realization a random 63/27/10
train/validation/test split (:func:`ehrcausal.data.splits.protocol_split`); within-sample
metrics on train+validation, out-of-sample on test.

The 50 CSV files ship with the repository in ``data/ihdp_npci/`` (provenance and SHA-256 in
data/README.md); ``$EHRCAUSAL_DATA/ihdp_npci/`` takes precedence when it exists (a user's own
copy). Every file is checked against its published SHA-256 before use.
"""

from __future__ import annotations

import json
import os
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from ..cache import file_digest
from ..validation import check_int
from ._paths import README, dataset_dir
from .dataset import CausalDataset
from .splits import IHDP_FRACTIONS, protocol_split

N_REALIZATIONS = 50
COLUMNS = ["t", "y_factual", "y_cfactual", "mu0", "mu1"] + [f"x{i}" for i in range(1, 26)]
FOLDER = "ihdp_npci"
PUBLIC_SOURCE = (
    "the CSV realizations of the NPCI IHDP benchmark published with the DragonNet repository "
    "(claudiashi57/dragonnet, dat/ihdp/csv/, realizations 1-50) or the CEVAE repository "
    "(AMLab-Amsterdam/CEVAE, datasets/IHDP/csv/, realizations 1-10)"
)


@cache
def _checksums() -> dict[str, str]:
    text = resources.files("ehrcausal.data").joinpath("checksums.json").read_text()
    return json.loads(text)["ihdp_npci"]


def ihdp_path(realization: int, data_dir: str | os.PathLike | None = None) -> Path:
    """Path of one realization's CSV in the data set folder (the file itself may be missing).

    The folder is ``data_dir/ihdp_npci`` when ``data_dir`` is given, else the first of
    ``$EHRCAUSAL_DATA/ihdp_npci`` and the repository's ``data/ihdp_npci`` that exists;
    ``FileNotFoundError`` names the folders tried when none does.
    """
    realization = check_int(realization, "realization", 1, N_REALIZATIONS)
    return dataset_dir(FOLDER, data_dir) / f"ihdp_npci_{realization}.csv"


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
    data_dir : folder holding ``ihdp_npci/``; default: ``$EHRCAUSAL_DATA/ihdp_npci`` if that
        folder exists, else the repository's ``data/ihdp_npci`` (see :func:`ihdp_path`).
    split_seed : seed of the train/val/test split; default ``realization`` (so each realization
        has its own, reproducible split).
    verify : check the file's SHA-256 against the published list.
    """
    realization = check_int(realization, "realization", 1, N_REALIZATIONS)
    seed = realization if split_seed is None else check_int(split_seed, "split_seed", 0)
    path = ihdp_path(realization, data_dir)
    if not path.is_file():
        raise FileNotFoundError(
            f"IHDP realization {realization} not found at {path}: that folder is incomplete. "
            f"The repository ships all {N_REALIZATIONS} files in data/{FOLDER}/ (see {README}); "
            f"public source: {PUBLIC_SOURCE}."
        )
    digest = file_digest(path)
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
    T = raw["t"].to_numpy().astype(int)
    y_f = raw["y_factual"].to_numpy()
    y_cf = raw["y_cfactual"].to_numpy()
    return CausalDataset(
        X=X,
        T=T,
        Y=y_f,
        mu0=raw["mu0"].to_numpy(),
        mu1=raw["mu1"].to_numpy(),
        split=protocol_split(len(raw), seed, IHDP_FRACTIONS),
        modalities={"y_cfactual": y_cf},
        meta={
            "source": "IHDP NPCI (Hill 2011, surface B)",
            "realization": realization,
            "split_seed": seed,
            "sha256": digest,
            "path": path.name,
        },
    )
