"""Reading the CSV tables of real-data exports (MIMIC-III, MOVER): find, check, read, parse.

The loaders of user-supplied data read their tables through these helpers, so every loader
matches column names the same way (:func:`normalise_column`), reads values as text and parses
them explicitly, and fails with a message naming the table, the column and example values.
Large tables are read in chunks, keeping only the rows a loader needs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "NA_VALUES",
    "normalise_column",
    "find_tables",
    "check_columns",
    "read_table",
    "parse_datetimes",
    "parse_numbers",
    "impute_median",
    "attrition_table",
]

#: Text read as missing. pandas' default list is not used: it would turn the words "None",
#: "NA" and "N/A" (a lab called "NA" for sodium, a complication value "None") into NaN.
NA_VALUES = ["", "\\N", "NULL", "null", "NaN", "nan", "<NA>"]


def normalise_column(name: str) -> str:
    """Canonical column name: stripped, inner white space as ``_``, upper case."""
    return re.sub(r"\s+", "_", str(name).strip()).upper()


def find_tables(
    folder: str | os.PathLike, tables: Iterable[str], *, label: str
) -> dict[str, Path]:
    """Locate ``<table>.csv`` or ``<table>.csv.gz`` for every table in ``folder``.

    File names match case-insensitively. Raises ``FileNotFoundError`` naming the folder when it
    does not exist, and listing every missing table (with the expected file names) otherwise.
    """
    if not isinstance(folder, (str, os.PathLike)):
        raise ValueError(f"the {label} folder must be a path, got {type(folder).__name__}")
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"{label} folder not found: {root} (pass the folder that holds the CSV tables)"
        )
    files = {p.name.lower(): p for p in root.iterdir() if p.is_file()}
    found: dict[str, Path] = {}
    missing: list[str] = []
    for table in tables:
        for ext in (".csv", ".csv.gz"):
            hit = files.get(f"{table}{ext}".lower())
            if hit is not None:
                found[table] = hit
                break
        else:
            missing.append(table)
    if missing:
        names = ", ".join(f"{t}.csv[.gz]" for t in missing)
        expected = ", ".join(f"{t}.csv[.gz]" for t in tables)
        raise FileNotFoundError(
            f"{label} folder {root} lacks {len(missing)} table file(s): {names}. "
            f"Expected tables: {expected}"
        )
    return found


def check_columns(path: Path, table: str, required: Sequence[str]) -> pd.Index:
    """Read a table's header; raise ``ValueError`` naming the table and any missing columns."""
    header = pd.read_csv(path, nrows=0).columns
    present = {normalise_column(c) for c in header}
    missing = [c for c in required if c not in present]
    if missing:
        raise ValueError(
            f"table {table} ({path.name}) lacks required column(s) {missing}; "
            f"it has {sorted(present)}"
        )
    return header


def read_table(
    path: Path,
    table: str,
    required: Sequence[str],
    optional: Sequence[str] = (),
    *,
    keep: Callable[[pd.DataFrame], pd.Series] | None = None,
    chunksize: int | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Read the ``required`` (and present ``optional``) columns of one CSV table as text.

    Column names are matched after :func:`normalise_column` and returned in that form. With
    ``keep`` the table is read in chunks of ``chunksize`` rows and only the rows where
    ``keep(chunk)`` is true are kept (memory stays bounded for tables of many GB). A column
    ``_row`` numbers the rows in file order. Missing required columns raise ``ValueError``
    naming the table and the columns.
    """
    header = check_columns(path, table, required)
    norm = {c: normalise_column(c) for c in header}
    present = set(norm.values())
    wanted = set(required) | (set(optional) & present)
    usecols = [c for c in header if norm[c] in wanted]
    kwargs: dict[str, Any] = {
        "usecols": usecols,
        "dtype": str,
        "na_values": NA_VALUES,
        "keep_default_na": False,
    }
    if keep is None:
        df = pd.read_csv(path, **kwargs).rename(columns=norm)
        df["_row"] = np.arange(len(df))
        return df
    parts = []
    offset = 0
    reader = pd.read_csv(path, chunksize=chunksize or 1_000_000, **kwargs)
    if progress:
        from tqdm import tqdm

        reader = tqdm(reader, desc=f"reading {table}", unit="chunk", leave=False)
    for chunk in reader:
        chunk = chunk.rename(columns=norm)
        chunk["_row"] = np.arange(offset, offset + len(chunk))
        offset += len(chunk)
        mask = np.asarray(keep(chunk), dtype=bool)
        if mask.any():
            parts.append(chunk.loc[mask])
    if not parts:
        cols = [norm[c] for c in usecols] + ["_row"]
        return pd.DataFrame({c: pd.Series(dtype=str) for c in cols})
    return pd.concat(parts, ignore_index=True)


def _examples(values: pd.Series) -> str:
    return ", ".join(repr(v) for v in values.unique()[:3])


def parse_datetimes(values: pd.Series, table: str, column: str) -> pd.Series:
    """Parse date/time text (ISO 8601 first, then other common forms such as ``M/D/YY H:MM``).

    Empty values become ``NaT``; any other value that cannot be parsed raises ``ValueError``
    naming the table and column.
    """
    s = values.astype("string").str.strip()
    s = s.mask(s == "")
    out = pd.to_datetime(s, format="ISO8601", errors="coerce")
    bad = out.isna() & s.notna()
    if bad.any():
        retry = pd.to_datetime(s[bad], format="mixed", errors="coerce")
        out = out.astype("datetime64[us]")
        out[bad] = retry.astype("datetime64[us]")
        bad = out.isna() & s.notna()
    if bad.any():
        raise ValueError(
            f"table {table}, column {column}: {int(bad.sum())} value(s) are not dates/times, "
            f"e.g. {_examples(s[bad])}"
        )
    return out.astype("datetime64[s]")


def parse_numbers(values: pd.Series, table: str, column: str, *, strict: bool = True) -> pd.Series:
    """Parse numeric text to float; empty values become NaN.

    With ``strict`` any other unparsable value raises ``ValueError`` naming the table and
    column; otherwise it becomes NaN (for columns that legitimately mix text and numbers).
    """
    s = values.astype("string").str.strip()
    s = s.mask(s == "")
    out = pd.to_numeric(s, errors="coerce").astype(float)
    bad = out.isna() & s.notna()
    if strict and bad.any():
        raise ValueError(
            f"table {table}, column {column}: {int(bad.sum())} value(s) are not numbers, "
            f"e.g. {_examples(s[bad])}"
        )
    return out


def impute_median(X: pd.DataFrame, columns: Sequence[str]) -> tuple[pd.DataFrame, dict[str, float]]:
    """Fill NaN in ``columns`` with the column median and add a 0/1 ``<column>_missing``.

    The median is taken over the observed values; a column with no observed value is filled
    with 0 (its indicator is then all ones). Returns the new frame and the medians used.
    """
    X = X.copy()
    medians: dict[str, float] = {}
    for col in columns:
        observed = X[col].to_numpy(dtype=float)
        miss = np.isnan(observed)
        med = float(np.median(observed[~miss])) if (~miss).any() else 0.0
        medians[col] = med
        X[col] = np.where(miss, med, observed)
        X[f"{col}_missing"] = miss.astype(float)
    return X, medians


def attrition_table(flow: dict[str, Any]) -> pd.DataFrame:
    """The attrition counts ``meta["flow"]`` of a real-data loader as a table, one row per step.

    ``flow`` maps each step to the number of rows left after it, or to a mapping of counts
    (e.g. ``{"rows": ..., "patients": ...}``), one column each; ``excluded`` is what the step
    removed from the first count.
    """
    counts = {str(step).replace("_", " "): (dict(v) if isinstance(v, dict) else {"left": v})
              for step, v in flow.items()}
    table = pd.DataFrame.from_dict(counts, orient="index").astype(int)
    first = table.iloc[:, 0]
    table["excluded"] = (first.shift(1) - first).fillna(0).astype(int)
    table.index.name = "step"
    return table
