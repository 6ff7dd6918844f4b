"""The one data model of the study: :class:`CausalDataset`.

A dataset holds tabular covariates ``X``, a binary treatment ``T``, an outcome ``Y`` and, where
the data are simulated, the noiseless potential outcomes ``mu0``/``mu1`` and the true effect
``tau`` (``mu1 - mu0``; for class outcomes one column per class of probability differences).
Optional modalities (clinical ``text``, expert ``annotations``, anything else in ``modalities``)
ride along row-aligned with ``X``. ``split`` labels each row ``"train"``, ``"val"`` or ``"test"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ..validation import check_same_length, check_treatment

SPLITS = ("train", "val", "test")


@dataclass
class CausalDataset:
    """Row-aligned multimodal causal data set.

    Attributes
    ----------
    X : DataFrame (n, d) of tabular covariates.
    T : int array (n,) in {0, 1}.
    Y : array (n,) outcome (integer labels for class outcomes).
    text : optional list of n clinical notes.
    annotations : optional DataFrame (n, k) of structured facts (may hold NaN where unannotated).
    modalities : optional mapping name -> array/list with n rows (time series, images, ...).
    mu0, mu1 : optional arrays (n,) or (n, C) of noiseless potential outcomes.
    tau : optional array (n,) or (n, C) of true effects, ``mu1 - mu0``.
    split : optional array (n,) of "train"/"val"/"test".
    meta : provenance (source, version, seed, checksum, ...).
    """

    X: pd.DataFrame
    T: np.ndarray
    Y: np.ndarray
    text: list[str] | None = None
    annotations: pd.DataFrame | None = None
    modalities: dict[str, Any] = field(default_factory=dict)
    mu0: np.ndarray | None = None
    mu1: np.ndarray | None = None
    tau: np.ndarray | None = None
    split: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.X, pd.DataFrame):
            self.X = pd.DataFrame(np.asarray(self.X))
        self.X = self.X.reset_index(drop=True)
        self.T = check_treatment(self.T)
        self.Y = np.asarray(self.Y)
        if self.annotations is not None:
            self.annotations = pd.DataFrame(self.annotations).reset_index(drop=True)
        for name in ("mu0", "mu1", "tau"):
            v = getattr(self, name)
            if v is not None:
                setattr(self, name, np.asarray(v, dtype=float))
        if self.tau is None and self.mu0 is not None and self.mu1 is not None:
            self.tau = self.mu1 - self.mu0
        if self.split is not None:
            self.split = np.asarray(self.split, dtype=object)
            unknown = set(np.unique(self.split)) - set(SPLITS)
            if unknown:
                raise ValueError(f"split has labels {sorted(unknown)}; allowed: {SPLITS}")
        check_same_length(
            X=self.X,
            T=self.T,
            Y=self.Y,
            text=self.text,
            annotations=self.annotations,
            mu0=self.mu0,
            mu1=self.mu1,
            tau=self.tau,
            split=self.split,
            **{f"modalities[{k!r}]": v for k, v in self.modalities.items()},
        )

    def __len__(self) -> int:
        return len(self.T)

    @property
    def n_treated(self) -> int:
        return int(self.T.sum())

    @property
    def has_truth(self) -> bool:
        """Whether the true effect is known (simulated or semi-synthetic data)."""
        return self.tau is not None

    def take(self, rows: np.ndarray) -> CausalDataset:
        """A new dataset with the given rows (boolean mask or integer indices)."""
        idx = np.arange(len(self))[np.asarray(rows)]

        def pick(v: Any) -> Any:
            if v is None:
                return None
            if isinstance(v, pd.DataFrame):
                return v.iloc[idx].reset_index(drop=True)
            if isinstance(v, list):
                return [v[i] for i in idx]
            return np.asarray(v)[idx]

        return replace(
            self,
            X=pick(self.X),
            T=pick(self.T),
            Y=pick(self.Y),
            text=pick(self.text),
            annotations=pick(self.annotations),
            modalities={k: pick(v) for k, v in self.modalities.items()},
            mu0=pick(self.mu0),
            mu1=pick(self.mu1),
            tau=pick(self.tau),
            split=pick(self.split),
            meta=dict(self.meta),
        )

    def subset(self, *splits: str) -> CausalDataset:
        """Rows whose split label is one of ``splits`` (e.g. ``ds.subset("train", "val")``)."""
        if self.split is None:
            raise ValueError("this dataset has no split; set `split` first")
        unknown = set(splits) - set(SPLITS)
        if unknown or not splits:
            raise ValueError(f"unknown split(s) {sorted(unknown) or '(none given)'}; use {SPLITS}")
        return self.take(np.isin(self.split, splits))

    def to_frame(self) -> pd.DataFrame:
        """One tidy table: covariates, T, Y (``Y_0..Y_{D-1}`` if 2-d), truth, split, annotations."""
        df = self.X.copy()
        df["T"] = self.T
        if self.Y.ndim == 2:
            for j in range(self.Y.shape[1]):
                df[f"Y_{j}"] = self.Y[:, j]
        else:
            df["Y"] = self.Y
        for name in ("mu0", "mu1", "tau"):
            v = getattr(self, name)
            if v is None:
                continue
            if v.ndim == 1:
                df[name] = v
            else:
                for j in range(v.shape[1]):
                    df[f"{name}_{j}"] = v[:, j]
        if self.split is not None:
            df["split"] = self.split
        if self.text is not None:
            df["text"] = self.text
        if self.annotations is not None:
            df = pd.concat([df, self.annotations.add_prefix("ann_")], axis=1)
        return df

    def __repr__(self) -> str:
        extra = [k for k in ("text", "annotations", "tau") if getattr(self, k) is not None]
        extra += list(self.modalities)
        src = self.meta.get("source", "?")
        return (
            f"CausalDataset(source={src!r}, n={len(self)}, treated={self.n_treated}, "
            f"d={self.X.shape[1]}, extras={extra})"
        )
