"""MOVER EPIC EHR loader for the surgical-decision chapter (X-MultiTask; see book/design.md).

MOVER, the *Medical Informatics Operating Room Vitals and Events Repository* (Samad et al.
2023, JAMIA Open 6(4):ooad084, doi:10.1093/jamiaopen/ooad084; UC Irvine, access under a data
use agreement at doi:10.24432/C5VS5G), is the likely public source of the X-MultiTask paper's
spinal-fusion cohort. :func:`load_mover_spine` reads the ``EPIC_EMR`` CSV tables from a folder
the user points at and returns a :class:`~ehrcausal.data.CausalDataset`: one row per
spinal-fusion surgery (``LOG_ID``), treatment ``T = 1`` for an anterior (or lateral) approach
and ``0`` for a posterior one, outcome ``Y`` the number of post-operative complications capped
at ``max_complications`` (a class label 0..3). Nothing is downloaded; ``tau`` is unknown.

Schema (column names are matched after stripping, upper-casing and turning spaces into
underscores, so ``Lab Name``, ``Lab_Name`` and ``LAB_NAME`` are the same; ``mrn`` is ``MRN``).
The columns used are listed in :data:`MOVER_COLUMNS`. Confirmed from the MOVER documentation
and public descriptions of the export: ``LOG_ID`` / ``MRN`` (surgery / patient keys),
``patient_information``: ``SURGERY_DATE``, ``BIRTH_DATE`` (in the EPIC export this column holds
the **age in years**, capped at 90), ``SEX``, ``HEIGHT`` (text ``F' I``, feet and inches),
``WEIGHT`` (**ounces**), ``ASA_RATING_C`` (1-6), ``PRIMARY_PROCEDURE_NM``, ``IN_OR_DTTM``;
``patient_labs``: ``Lab Name``, ``Observation Value``, ``Collection Datetime``;
``patient_medications``: ``MEDICATION_NM``, ``RECORD_TYPE``; ``patient_history``: ``mrn``,
``dx_name`` (no ``LOG_ID`` and no date); ``patient_post_op_complications``: ``Element_Name``,
``Element_abbr``, ``SMRTDTA_ELEM_VALUE``. **Assumptions** (not confirmed against the real
files): the exact ``Lab Name`` strings (matched by the aliases of :data:`LAB_ALIASES`), the
``RECORD_TYPE`` value of pre-operative orders (``PREOP`` once non-letters are removed, e.g.
``pre-op``), the name of the generic AQI reporting element of the complications table
(:data:`GENERIC_COMPLICATION_PATTERN`), and a date column holding dates when
``BIRTH_DATE`` is not numeric (age is then computed at ``SURGERY_DATE``).

Cohort and variables:

1. ``patient_information`` rows, one per ``LOG_ID`` (the first row of a duplicated ``LOG_ID``).
2. **Fusion**: ``PRIMARY_PROCEDURE_NM`` matches :data:`FUSION_PATTERN` (fusion, arthrodesis,
   ACDF, ALIF, PLIF, TLIF, XLIF, LLIF, OLIF, DLIF, PSF; case-insensitive, whole words).
3. **Spinal**: the name also has a spine term (:data:`SPINE_PATTERN`: spine, spinal, cervical,
   thoracic, lumbar, sacral, vertebral, interbody, a level such as ``L4``, ...) or is an
   interbody-fusion acronym; "ankle arthrodesis" is not a spinal fusion.
4. **Approach**: anterior (:data:`ANTERIOR_PATTERN`: anterior, anterolateral, ACDF, ALIF, ACCF)
   gives ``T = 1``; posterior (:data:`POSTERIOR_PATTERN`: posterior, posterolateral,
   transforaminal, PLIF, TLIF, PSF, PCF) gives ``T = 0``. Lateral interbody fusions (XLIF,
   LLIF, OLIF, DLIF, "lateral interbody") reach the anterior column through the flank: they
   count as anterior by default (``lateral_as_anterior=True``) and as undetermined otherwise.
   Names with both approaches (combined 360-degree surgery) or neither are dropped and counted
   (``meta["n_approach_combined"]``, ``meta["n_approach_unknown"]``).
5. Features: ``age``, ``male`` (1 for ``SEX`` male, else 0), ``bmi`` = weight [kg] / height
   [m]^2 with weight = ounces x 0.028349523125 and height = (12 feet + inches) x 0.0254
   (BMI outside [10, 100] is treated as missing), ``asa`` (``ASA_RATING_C``, 1..6), the last
   value of each lab of ``labs`` collected in ``[t_ref - lab_window_days, t_ref)`` where
   ``t_ref`` is ``IN_OR_DTTM`` when present, else midnight of ``SURGERY_DATE`` (so same-day labs
   of unknown order are left out); non-numeric values and the export's ``9999999`` sentinel
   are ignored and several values at the last time are averaged. ``n_preop_medications``: the
   distinct ``MEDICATION_NM`` of the surgery's pre-operative orders (``RECORD_TYPE`` pre-op;
   every order of the encounter when the column is absent, see ``meta["medication_rule"]``).
   ``n_history``: distinct ``dx_name`` entries of the patient (``MRN``); the history table
   is undated, so it may include diagnoses recorded after the surgery. Missing ``age``,
   ``bmi``, ``asa`` and labs are replaced by the cohort median with a 0/1 ``<name>_missing``
   indicator.
6. Outcome: the complication rows of the ``LOG_ID`` after removing exact repeats (same
   element and value), the generic AQI reporting element and explicit negatives (value
   ``none``, ``no``, ``n/a``), counted and capped at ``max_complications``. Surgeries without
   any row count 0 (no complication documented). The uncapped count is in
   ``modalities["n_complications"]``.

Rows are ordered by ``LOG_ID``; ``modalities["ids"]`` holds ``LOG_ID``, ``MRN``,
``SURGERY_DATE`` and ``PRIMARY_PROCEDURE_NM``; ``meta["flow"]`` the attrition counts.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..validation import check_int, check_number
from .dataset import CausalDataset
from .tables import (
    check_columns,
    find_tables,
    impute_median,
    parse_datetimes,
    parse_numbers,
    read_table,
)

__all__ = [
    "DEFAULT_LABS",
    "LAB_ALIASES",
    "MOVER_COLUMNS",
    "MOVER_TABLES",
    "FUSION_PATTERN",
    "SPINE_PATTERN",
    "ANTERIOR_PATTERN",
    "LATERAL_PATTERN",
    "POSTERIOR_PATTERN",
    "GENERIC_COMPLICATION_PATTERN",
    "load_mover_spine",
]

SOURCE = "MOVER EPIC EMR (Samad et al. 2023, JAMIA Open; user-supplied)"

MOVER_TABLES: tuple[str, ...] = (
    "patient_information",
    "patient_labs",
    "patient_medications",
    "patient_history",
    "patient_post_op_complications",
)

#: Columns read from each table (normalised names): (required, optional). patient_information
#: also needs one of AGE or BIRTH_DATE.
MOVER_COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "patient_information": (
        (
            "LOG_ID",
            "MRN",
            "SURGERY_DATE",
            "SEX",
            "HEIGHT",
            "WEIGHT",
            "ASA_RATING_C",
            "PRIMARY_PROCEDURE_NM",
        ),
        ("BIRTH_DATE", "AGE", "IN_OR_DTTM"),
    ),
    "patient_labs": (("LOG_ID", "LAB_NAME", "OBSERVATION_VALUE", "COLLECTION_DATETIME"), ()),
    "patient_medications": (("LOG_ID", "MEDICATION_NM"), ("RECORD_TYPE",)),
    "patient_history": (("MRN", "DX_NAME"), ()),
    "patient_post_op_complications": (
        ("LOG_ID", "ELEMENT_NAME"),
        ("ELEMENT_ABBR", "SMRTDTA_ELEM_VALUE"),
    ),
}

#: Lab feature -> accepted ``Lab Name`` spellings (case-insensitive, whole name, optionally
#: followed by a specimen such as ", serum" or "(blood)"). An assumption: the real names of the
#: export were not available to check.
LAB_ALIASES: dict[str, tuple[str, ...]] = {
    "hemoglobin": ("hemoglobin", "hgb", "hb"),
    "hematocrit": ("hematocrit", "hct"),
    "wbc": ("wbc", "wbc count", "white blood cell count", "white blood cells", "leukocytes"),
    "platelets": ("platelets", "platelet count", "platelet", "plt"),
    "sodium": ("sodium", "na"),
    "potassium": ("potassium", "k"),
    "chloride": ("chloride", "cl"),
    "bicarbonate": (
        "bicarbonate",
        "co2",
        "total co2",
        "co2, total",
        "hco3",
        "carbon dioxide",
        "carbon dioxide, total",
    ),
    "bun": ("bun", "urea nitrogen", "blood urea nitrogen"),
    "creatinine": ("creatinine", "creat", "cr"),
    "glucose": ("glucose", "glu"),
    "calcium": ("calcium", "calcium, total", "total calcium", "ca"),
    "albumin": ("albumin",),
    "inr": ("inr", "international normalized ratio", "pt inr", "inr (pt)"),
    "pt": ("pt", "prothrombin time", "protime"),
    "ptt": ("ptt", "aptt", "partial thromboplastin time", "activated partial thromboplastin time"),
    "alt": ("alt", "alt (sgpt)", "sgpt", "alanine aminotransferase"),
    "ast": ("ast", "ast (sgot)", "sgot", "aspartate aminotransferase"),
    "alkaline_phosphatase": ("alkaline phosphatase", "alk phos", "alp", "alkp"),
    "total_bilirubin": (
        "bilirubin, total",
        "total bilirubin",
        "bilirubin total",
        "tbili",
        "bilirubin",
    ),
}

#: The 20 pre-operative labs used by default (keys of :data:`LAB_ALIASES`).
DEFAULT_LABS: tuple[str, ...] = tuple(LAB_ALIASES)

#: Lab values that encode "no numeric result" in the MOVER export.
LAB_SENTINELS: tuple[float, ...] = (9999999.0,)

_SPECIMEN = r"(?:\s*,?\s*\(?\s*(?:serum|plasma|blood|whole blood|serum/plasma|ser/plas)\s*\)?)?"
_ACRONYMS = r"ACDF|ALIF|PLIF|TLIF|XLIF|LLIF|OLIF|DLIF|PSF|ACCF|PCF"

FUSION_PATTERN = re.compile(
    r"\b(?:fusions?|arthrodesis|ACDF|ALIF|PLIF|TLIF|XLIF|LLIF|OLIF|DLIF|PSF)\b", re.IGNORECASE
)
SPINE_PATTERN = re.compile(
    r"\b(?:spine|spinal|cervical|thoracic|lumbar|lumbosacral|thoracolumbar|cervicothoracic|"
    r"sacral|sacrum|vertebrae?|vertebral|interbody|dis[ck]|discectomy|diskectomy|"
    r"occipitocervical|atlantoaxial|[CTL]\d{1,2}|S1|"
    rf"{_ACRONYMS})\b",
    re.IGNORECASE,
)
ANTERIOR_PATTERN = re.compile(r"\b(?:anterior|anterolateral|ACDF|ALIF|ACCF)\b", re.IGNORECASE)
LATERAL_PATTERN = re.compile(
    r"\b(?:XLIF|LLIF|OLIF|DLIF|(?:extreme |direct |oblique )?lateral (?:lumbar )?interbody)\b",
    re.IGNORECASE,
)
POSTERIOR_PATTERN = re.compile(
    r"\b(?:posterior|posterolateral|transforaminal|PLIF|TLIF|PSF|PCF)\b", re.IGNORECASE
)
#: The generic "post-op complications" reporting element (AQI/NACOR), not a complication class.
GENERIC_COMPLICATION_PATTERN = re.compile(
    r"\bAQI\b|^\s*AN\s+POST-?OP\s+COMPLICATIONS\s*$", re.IGNORECASE
)
NEGATIVE_VALUES = frozenset({"none", "no", "n/a", "na", "no complications", "none documented"})

OUNCE_KG = 0.028349523125
INCH_M = 0.0254
BMI_RANGE = (10.0, 100.0)
_HEIGHT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*'\s*(\d+(?:\.\d+)?)?\s*\"?\s*$")


def _lab_patterns(labs: Sequence[str] | Mapping[str, str]) -> dict[str, re.Pattern[str]]:
    if isinstance(labs, Mapping):
        items = list(labs.items())
        if not items:
            raise ValueError("labs is empty")
        out = {}
        for name, pattern in items:
            if not isinstance(name, str) or not name.strip() or not isinstance(pattern, str):
                raise ValueError(
                    f"labs must map feature names to regular expressions, got {name!r}"
                )
            try:
                out[name] = re.compile(rf"(?:{pattern}){_SPECIMEN}", re.IGNORECASE)
            except re.error as exc:
                raise ValueError(
                    f"labs[{name!r}] is not a valid regular expression: {exc}"
                ) from exc
        return out
    if isinstance(labs, str) or not isinstance(labs, Sequence):
        raise ValueError(f"labs must be a sequence of lab names or a mapping, got {labs!r}")
    if not labs:
        raise ValueError("labs is empty")
    bad = [x for x in labs if not isinstance(x, str) or not x.strip()]
    if bad:
        raise ValueError(f"labs must hold non-empty strings, got {bad[:3]}")
    if len(set(labs)) != len(labs):
        raise ValueError(f"labs has duplicates: {sorted({x for x in labs if labs.count(x) > 1})}")
    out = {}
    for name in labs:
        aliases = LAB_ALIASES.get(name, (name,))
        alt = "|".join(re.escape(a) for a in sorted(aliases, key=len, reverse=True))
        out[name] = re.compile(rf"(?:{alt}){_SPECIMEN}", re.IGNORECASE)
    return out


def _approach(name: str, lateral_as_anterior: bool) -> str:
    """'anterior', 'posterior', 'combined' or 'unknown' from a procedure name."""
    anterior = bool(ANTERIOR_PATTERN.search(name))
    if lateral_as_anterior and LATERAL_PATTERN.search(name):
        anterior = True
    posterior = bool(POSTERIOR_PATTERN.search(name))
    if anterior and posterior:
        return "combined"
    if anterior:
        return "anterior"
    if posterior:
        return "posterior"
    return "unknown"


def _height_m(values: pd.Series) -> np.ndarray:
    out = np.full(len(values), np.nan)
    for k, v in enumerate(values.tolist()):
        if not isinstance(v, str):
            continue
        m = _HEIGHT.match(v)
        if m:
            inches = 12.0 * float(m.group(1)) + float(m.group(2) or 0.0)
            out[k] = inches * INCH_M
    return out


def _norm_text(values: pd.Series) -> pd.Series:
    return (
        values.fillna("").astype(str).str.strip().str.lower().str.replace(r"\s+", " ", regex=True)
    )


def _ages(info: pd.DataFrame, surgery: pd.Series) -> np.ndarray:
    table = "patient_information"
    if "AGE" in info.columns:
        return parse_numbers(info["AGE"], table, "AGE").to_numpy(dtype=float)
    raw = info["BIRTH_DATE"]
    numeric = parse_numbers(raw, table, "BIRTH_DATE", strict=False)
    text = raw.astype("string").str.strip()
    if not (numeric.isna() & text.notna() & (text != "")).any():
        return numeric.to_numpy(dtype=float)  # the EPIC export stores the age in years here
    born = parse_datetimes(raw, table, "BIRTH_DATE")
    return ((surgery - born).dt.total_seconds() / (365.25 * 86400.0)).to_numpy(dtype=float)


def load_mover_spine(
    mover_dir: str | os.PathLike,
    *,
    labs: Sequence[str] | Mapping[str, str] = DEFAULT_LABS,
    lab_window_days: float = 30.0,
    max_complications: int = 3,
    lateral_as_anterior: bool = True,
    chunksize: int = 1_000_000,
    progress: bool = True,
) -> CausalDataset:
    """Load the MOVER spinal-fusion cohort: approach (anterior vs posterior) -> complications.

    Parameters
    ----------
    mover_dir : folder holding the EPIC EMR tables ``patient_information``, ``patient_labs``,
        ``patient_medications``, ``patient_history`` and ``patient_post_op_complications``
        (``.csv`` or ``.csv.gz``).
    labs : lab features: names of :data:`LAB_ALIASES` (another name is matched literally), or a
        mapping feature name -> regular expression matched against the whole ``Lab Name``.
    lab_window_days : labs count when collected within this many days before the reference
        time (``IN_OR_DTTM``, else midnight of ``SURGERY_DATE``).
    max_complications : cap of the complication count; ``Y`` takes values 0..cap.
    lateral_as_anterior : count lateral interbody fusions (XLIF, LLIF, OLIF, DLIF) as anterior;
        if False they are undetermined and dropped.
    chunksize : rows per chunk when reading the large tables (labs, medications, history,
        complications), of which only the cohort's rows are kept.
    progress : show a progress bar per large table.

    Returns
    -------
    CausalDataset with ``X`` (age, male, bmi, asa, ``lab_<name>`` for each lab, counts of
    pre-operative medications and history entries, ``<name>_missing`` indicators), ``T``
    (1 anterior / 0 posterior), ``Y`` (int 0..cap), ``modalities["ids"]`` and
    ``modalities["n_complications"]``, ``meta`` (source, folder, ``flow``, parameters, columns,
    assumptions).

    References: Samad M. et al. (2023) Medical Informatics Operating Room Vitals and Events
    Repository (MOVER). JAMIA Open 6(4):ooad084. Tamo et al. (2025), X-MultiTask.
    """
    patterns = _lab_patterns(labs)
    days = check_number(lab_window_days, "lab_window_days", 0, math.inf,
                        low_open=True, high_open=True)
    cap = check_int(max_complications, "max_complications", 1)
    if not isinstance(lateral_as_anterior, (bool, np.bool_)):
        raise ValueError(f"lateral_as_anterior must be True or False, got {lateral_as_anterior!r}")
    chunksize = check_int(chunksize, "chunksize", 1)
    window = pd.Timedelta(days=days)

    paths = find_tables(mover_dir, MOVER_TABLES, label="MOVER EPIC_EMR")
    for table, (required, _) in MOVER_COLUMNS.items():  # fail fast before the big tables
        check_columns(paths[table], table, required)

    def read(table: str, keep: Callable[[pd.DataFrame], pd.Series] | None = None) -> pd.DataFrame:
        required, optional = MOVER_COLUMNS[table]
        return read_table(
            paths[table],
            table,
            required,
            optional,
            keep=keep,
            chunksize=int(chunksize),
            progress=progress and keep is not None,
        )

    def by_column(column: str, values: set[str]) -> Callable[[pd.DataFrame], pd.Series]:
        return lambda chunk: chunk[column].astype("string").str.strip().isin(values)

    # 1. surgeries, one row per LOG_ID
    info = read("patient_information")
    if "AGE" not in info.columns and "BIRTH_DATE" not in info.columns:
        raise ValueError(
            "table patient_information lacks an age column: expected AGE or BIRTH_DATE"
        )
    flow: dict[str, int] = {"surgeries": len(info)}
    info["LOG_ID"] = info["LOG_ID"].astype("string").str.strip()
    info = info.dropna(subset=["LOG_ID"]).drop_duplicates("LOG_ID", keep="first")
    flow["unique_log_id"] = len(info)

    # 2.-4. spinal fusion with a determined approach
    proc = info["PRIMARY_PROCEDURE_NM"].fillna("").astype(str)
    info = info[proc.str.contains(FUSION_PATTERN)]
    flow["fusion_procedure"] = len(info)
    proc = info["PRIMARY_PROCEDURE_NM"].fillna("").astype(str)
    info = info[proc.str.contains(SPINE_PATTERN)]
    flow["spinal_fusion"] = len(info)
    if info.empty:
        raise ValueError(
            f"no spinal-fusion procedures in patient_information (PRIMARY_PROCEDURE_NM): "
            f"{flow['unique_log_id']} surgeries, {flow['fusion_procedure']} named a fusion, "
            f"none at the spine; patterns: {FUSION_PATTERN.pattern} and {SPINE_PATTERN.pattern}"
        )
    approach = (
        info["PRIMARY_PROCEDURE_NM"]
        .astype(str)
        .map(lambda s: _approach(s, bool(lateral_as_anterior)))
    )
    n_combined = int((approach == "combined").sum())
    n_unknown = int((approach == "unknown").sum())
    keep = approach.isin(["anterior", "posterior"])
    info = info[keep].assign(T=(approach[keep] == "anterior").astype(int))
    flow["approach_determined"] = len(info)
    if info.empty:
        raise ValueError(
            f"no spinal fusion with a determined approach: {flow['spinal_fusion']} spinal "
            f"fusions, {n_combined} combined anterior+posterior, {n_unknown} without an approach "
            f"in the procedure name; attrition: {flow}"
        )
    info = info.sort_values("LOG_ID").reset_index(drop=True)
    table = "patient_information"
    surgery = parse_datetimes(info["SURGERY_DATE"], table, "SURGERY_DATE")
    in_or = (
        parse_datetimes(info["IN_OR_DTTM"], table, "IN_OR_DTTM")
        if "IN_OR_DTTM" in info.columns
        else pd.Series(pd.NaT, index=info.index, dtype="datetime64[s]")
    )
    t_ref = in_or.fillna(surgery.dt.normalize())
    logs = info["LOG_ID"]
    log_set = set(logs)

    # 5. features
    age = _ages(info, surgery)
    age = np.where((age >= 0) & (age <= 120), age, np.nan)
    male = (info["SEX"].fillna("").astype(str).str.strip().str.upper().str[:1] == "M").astype(float)
    weight_kg = parse_numbers(info["WEIGHT"], table, "WEIGHT").to_numpy(dtype=float) * OUNCE_KG
    height = _height_m(info["HEIGHT"])
    with np.errstate(invalid="ignore", divide="ignore"):
        bmi = weight_kg / height**2
    bmi = np.where((bmi >= BMI_RANGE[0]) & (bmi <= BMI_RANGE[1]), bmi, np.nan)
    asa = parse_numbers(info["ASA_RATING_C"], table, "ASA_RATING_C").to_numpy(dtype=float)
    asa = np.where((asa >= 1) & (asa <= 6), asa, np.nan)
    X = pd.DataFrame({"age": age, "male": male.to_numpy(), "bmi": bmi, "asa": asa})

    any_lab = re.compile("|".join(f"(?:{p.pattern})" for p in patterns.values()), re.IGNORECASE)

    def lab_rows(chunk: pd.DataFrame) -> pd.Series:
        name = chunk["LAB_NAME"].fillna("").astype(str).str.strip()
        name = name.str.replace(r"\s+", " ", regex=True)
        return by_column("LOG_ID", log_set)(chunk) & name.str.fullmatch(any_lab)

    lab = read("patient_labs", lab_rows)
    lab["LOG_ID"] = lab["LOG_ID"].astype("string").str.strip()
    lab["value"] = parse_numbers(
        lab["OBSERVATION_VALUE"], "patient_labs", "OBSERVATION_VALUE", strict=False
    )
    lab = lab[lab["value"].notna() & ~lab["value"].isin(LAB_SENTINELS)]
    lab["time"] = parse_datetimes(lab["COLLECTION_DATETIME"], "patient_labs", "COLLECTION_DATETIME")
    lab = lab.merge(pd.DataFrame({"LOG_ID": logs, "t_ref": t_ref}), on="LOG_ID")
    lab = lab[(lab["time"] < lab["t_ref"]) & (lab["time"] >= lab["t_ref"] - window)]
    lab_name = (
        lab["LAB_NAME"].fillna("").astype(str).str.strip().str.replace(r"\s+", " ", regex=True)
    )
    lab_columns = []
    for name, pattern in patterns.items():
        col = f"lab_{name}"
        lab_columns.append(col)
        rows = lab[lab_name.str.fullmatch(pattern).to_numpy(dtype=bool)]
        if rows.empty:
            X[col] = np.nan
            continue
        last_time = rows.groupby("LOG_ID")["time"].transform("max")
        last = rows[rows["time"] == last_time].groupby("LOG_ID")["value"].mean()
        X[col] = logs.map(last).to_numpy(dtype=float)

    meds = read("patient_medications", by_column("LOG_ID", log_set))
    meds["LOG_ID"] = meds["LOG_ID"].astype("string").str.strip()
    if "RECORD_TYPE" in meds.columns:
        kind = (
            meds["RECORD_TYPE"]
            .fillna("")
            .astype(str)
            .str.upper()
            .str.replace(r"[^A-Z]", "", regex=True)
        )
        meds = meds[kind == "PREOP"]
        medication_rule = "distinct MEDICATION_NM with RECORD_TYPE pre-op"
    else:
        medication_rule = "distinct MEDICATION_NM of the encounter (no RECORD_TYPE column)"
    med_name = _norm_text(meds["MEDICATION_NM"])
    n_meds = meds.assign(_m=med_name)[med_name != ""].groupby("LOG_ID")["_m"].nunique()
    X["n_preop_medications"] = logs.map(n_meds).fillna(0).to_numpy(dtype=float)

    mrn = info["MRN"].astype("string").str.strip()
    hist = read("patient_history", by_column("MRN", set(mrn.dropna())))
    hist["MRN"] = hist["MRN"].astype("string").str.strip()
    dx = _norm_text(hist["DX_NAME"])
    n_hist = hist.assign(_d=dx)[dx != ""].groupby("MRN")["_d"].nunique()
    X["n_history"] = mrn.map(n_hist).fillna(0).to_numpy(dtype=float)

    X, medians = impute_median(X, ["age", "bmi", "asa", *lab_columns])
    order = ["age", "male", "bmi", "asa", *lab_columns, "n_preop_medications", "n_history"]
    order += [f"{c}_missing" for c in ["age", "bmi", "asa", *lab_columns]]
    X = X[order]

    # 6. outcome: post-operative complications
    comp = read("patient_post_op_complications", by_column("LOG_ID", log_set))
    comp["LOG_ID"] = comp["LOG_ID"].astype("string").str.strip()
    element = comp["ELEMENT_NAME"].fillna("").astype(str)
    generic = element.str.contains(GENERIC_COMPLICATION_PATTERN)
    if "ELEMENT_ABBR" in comp.columns:
        generic |= (
            comp["ELEMENT_ABBR"].fillna("").astype(str).str.contains(GENERIC_COMPLICATION_PATTERN)
        )
    value = (
        _norm_text(comp["SMRTDTA_ELEM_VALUE"])
        if "SMRTDTA_ELEM_VALUE" in comp.columns
        else pd.Series("", index=comp.index)
    )
    comp = comp.assign(_element=_norm_text(comp["ELEMENT_NAME"]), _value=value)
    comp = comp[~generic.to_numpy(dtype=bool) & ~value.isin(NEGATIVE_VALUES).to_numpy(dtype=bool)]
    comp = comp[comp["_element"] != ""].drop_duplicates(["LOG_ID", "_element", "_value"])
    n_comp = logs.map(comp.groupby("LOG_ID").size()).fillna(0).to_numpy(dtype=int)
    Y = np.minimum(n_comp, cap)

    ids = pd.DataFrame(
        {
            "LOG_ID": logs.astype(str).to_numpy(),
            "MRN": mrn.astype(str).to_numpy(),
            "SURGERY_DATE": surgery.to_numpy(),
            "PRIMARY_PROCEDURE_NM": info["PRIMARY_PROCEDURE_NM"].astype(str).to_numpy(),
        }
    )
    return CausalDataset(
        X=X,
        T=info["T"].to_numpy(),
        Y=Y,
        modalities={"ids": ids, "n_complications": n_comp},
        meta={
            "source": SOURCE,
            "folder": str(Path(mover_dir).expanduser()),
            "flow": flow,
            "n_approach_combined": n_combined,
            "n_approach_unknown": n_unknown,
            "parameters": {
                "labs": {k: p.pattern for k, p in patterns.items()},
                "lab_window_days": float(lab_window_days),
                "max_complications": cap,
                "lateral_as_anterior": bool(lateral_as_anterior),
                "chunksize": int(chunksize),
            },
            "columns": {t: list(r) + list(o) for t, (r, o) in MOVER_COLUMNS.items()},
            "medication_rule": medication_rule,
            "medians": medians,
            "treatment": "1 = anterior (incl. lateral) approach, 0 = posterior",
            "outcome": f"number of post-operative complications, capped at {cap}",
            "assumptions": [
                "Lab Name spellings (LAB_ALIASES)",
                "RECORD_TYPE value of pre-operative medication orders ('pre-op')",
                "name of the generic AQI complications element (GENERIC_COMPLICATION_PATTERN)",
                "patient_history is undated: n_history may include post-operative entries",
            ],
        },
    )
