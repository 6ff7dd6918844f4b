"""MIMIC-III v1.4 cohort builder for the treatment-policy chapter (AACE; see book/design.md).

For users with credentialed PhysioNet access: point :func:`build_mimic_cohort` at the folder
holding the published CSV tables (upper-case names, ``.csv`` or ``.csv.gz``, upper-case column
names) and it returns a :class:`~ehrcausal.data.CausalDataset` with clinical notes (``text``),
tabular confounders (``X``), a binary treatment and a binary outcome. Nothing is downloaded;
the real data never ship with this package. The true effect is unknown (``tau`` is ``None``).

Cohort (Johnson et al. 2016, *MIMIC-III, a freely accessible critical care database*,
Scientific Data 3:160035, for the schema; the design follows the AACE MIMIC experiment):

1. ICU stays (``ICUSTAYS``); keep the **first ICU stay of each patient** (earliest ``INTIME``,
   ties broken by the smaller ``ICUSTAY_ID``); link to ``PATIENTS`` and ``ADMISSIONS``.
2. **Adults**: age at ``INTIME`` >= ``min_age``. MIMIC-III shifts the date of birth of patients
   older than 89 so that they appear ~300 years old; their age is set to **91.4 years** (the
   median age of that group reported by the MIMIC team) and the count is kept in
   ``meta["n_age_over_89"]``.
3. Time zero ``t0 = INTIME + t0_offset_hours``; window end ``w = t0 + treatment_window_hours``.
   A stay is kept only if the patient is still **alive** (``DEATHTIME`` missing or > w), still
   **in hospital** (``DISCHTIME`` > w) and still **in the ICU** (``OUTTIME`` > w) at w, so that
   every kept patient could have been treated during the whole window.
4. Treatment ``T = 1`` when the admission has an antibiotic prescription (``DRUG`` or
   ``DRUG_NAME_GENERIC`` contains a name of :data:`ANTIBIOTICS` as a whole word, case-insensitive;
   routes in ``exclude_routes``, e.g. eye drops, do not count) that starts within ``[t0, w]``.
   ``STARTDATE`` has **date precision** in MIMIC-III, so the rule is a parameter:
   ``"day_overlap"`` (default) counts a prescription when its calendar day
   ``[STARTDATE, STARTDATE + 1 day)`` overlaps ``[t0, w]`` (sensitive: a same-day order from
   before ``t0`` counts); ``"exact"`` requires the timestamp itself in ``[t0, w]`` (for exports
   with a time of day; with date-only values it reads midnight).
5. Outcome ``Y = 1`` for in-hospital death after the window: ``HOSPITAL_EXPIRE_FLAG = 1`` and
   the death time (``DEATHTIME``, else ``DISCHTIME``) > w.
6. Text: the admission's ``NOTEEVENTS`` (``ISERROR`` not 1, optionally of ``note_categories``)
   written before ``t0``, oldest first, joined by a blank line. A note with a ``CHARTTIME``
   counts when ``CHARTTIME < t0``; a note with only a ``CHARTDATE`` counts only when
   ``CHARTDATE < date(t0)`` (its whole day lies before t0: the safe rule, which for instance
   drops discharge summaries). Stays without any such note are dropped and counted.
7. Tabular ``X``: ``age``, ``male`` and the last value before ``t0`` (within the admission) of
   heart rate, systolic blood pressure, respiratory rate, temperature (degrees Celsius;
   Fahrenheit items are converted, C = (F - 32) * 5 / 9) and SpO2 from ``CHARTEVENTS``
   (:data:`VITAL_ITEMIDS`, CareVue and MetaVision; values outside :data:`VITAL_RANGES` and rows
   flagged ``ERROR = 1`` are discarded; several values at the last time are averaged). A
   missing vital is replaced by the cohort median and flagged in ``<vital>_missing`` (0/1),
   because the learners reject NaN.

``meta["flow"]`` holds the number of stays after each step (the attrition table of the
chapter); ``modalities["ids"]`` holds ``SUBJECT_ID``, ``HADM_ID``, ``ICUSTAY_ID`` and ``t0``.
Rows are ordered by ``SUBJECT_ID``. ``CHARTEVENTS`` (~30 GB), ``NOTEEVENTS`` and
``PRESCRIPTIONS`` are read in chunks of ``chunksize`` rows, keeping only the cohort's rows
(and for ``CHARTEVENTS`` only the vital-sign ITEMIDs).

The CSV tables are read with the helpers of :mod:`ehrcausal.data.tables` (shared with the MOVER
loader).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

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
    "ANTIBIOTICS",
    "NON_SYSTEMIC_ROUTES",
    "VITAL_ITEMIDS",
    "FAHRENHEIT_ITEMIDS",
    "VITAL_RANGES",
    "MIMIC_COLUMNS",
    "AGE_OVER_89",
    "build_mimic_cohort",
]

SOURCE = "MIMIC-III v1.4 (user-supplied)"

#: Antibiotic names matched as whole words (case-insensitive) in DRUG or DRUG_NAME_GENERIC.
#: Generic names of the systemic antibacterials common in MIMIC-III, plus a few brand names
#: that appear as DRUG (Zosyn, Unasyn, Bactrim, Flagyl, Levaquin, Augmentin).
ANTIBIOTICS: tuple[str, ...] = (
    "amikacin",
    "amoxicillin",
    "ampicillin",
    "azithromycin",
    "aztreonam",
    "cefazolin",
    "cefepime",
    "cefoxitin",
    "cefpodoxime",
    "ceftaroline",
    "ceftazidime",
    "ceftriaxone",
    "cefuroxime",
    "cephalexin",
    "ciprofloxacin",
    "clarithromycin",
    "clindamycin",
    "colistin",
    "daptomycin",
    "dicloxacillin",
    "doxycycline",
    "ertapenem",
    "erythromycin",
    "gentamicin",
    "imipenem",
    "levofloxacin",
    "linezolid",
    "meropenem",
    "metronidazole",
    "minocycline",
    "moxifloxacin",
    "nafcillin",
    "nitrofurantoin",
    "oxacillin",
    "penicillin",
    "piperacillin",
    "polymyxin",
    "rifampin",
    "sulfamethoxazole",
    "tigecycline",
    "tobramycin",
    "vancomycin",
    "zosyn",
    "unasyn",
    "bactrim",
    "flagyl",
    "levaquin",
    "augmentin",
)

#: PRESCRIPTIONS.ROUTE values (upper-case) that are not systemic: eye, ear and skin.
NON_SYSTEMIC_ROUTES: tuple[str, ...] = (
    "OU",
    "OD",
    "OS",
    "BOTH EYES",
    "LEFT EYE",
    "RIGHT EYE",
    "OPHTHALMIC",
    "AU",
    "AD",
    "AS",
    "BOTH EARS",
    "LEFT EAR",
    "RIGHT EAR",
    "TP",
    "TOPICAL",
)

#: CHARTEVENTS ITEMIDs of the vital signs, CareVue (3-4 digits) and MetaVision (22xxxx), as
#: used by the MIMIC code repository's vital-sign concepts:
#: heart rate 211 (CV "Heart Rate"), 220045 (MV "Heart Rate");
#: systolic BP 51 (CV "Arterial BP [Systolic]"), 442 ("Manual BP [Systolic]"),
#: 455 ("NBP [Systolic]"), 6701 ("Arterial BP #2 [Systolic]"), 220179 (MV "Non Invasive Blood
#: Pressure systolic"), 220050 (MV "Arterial Blood Pressure systolic");
#: respiratory rate 615 ("Resp Rate (Total)"), 618 ("Respiratory Rate"), 220210 (MV
#: "Respiratory Rate"), 224690 (MV "Respiratory Rate (Total)");
#: temperature 676 ("Temperature C"), 678 ("Temperature F"), 223761 (MV "Temperature
#: Fahrenheit"), 223762 (MV "Temperature Celsius");
#: SpO2 646 (CV "SpO2"), 220277 (MV "O2 saturation pulseoxymetry").
VITAL_ITEMIDS: dict[str, tuple[int, ...]] = {
    "heart_rate": (211, 220045),
    "sbp": (51, 442, 455, 6701, 220179, 220050),
    "resp_rate": (615, 618, 220210, 224690),
    "temperature": (676, 678, 223761, 223762),
    "spo2": (646, 220277),
}

#: Temperature ITEMIDs recorded in degrees Fahrenheit (converted to Celsius).
FAHRENHEIT_ITEMIDS: tuple[int, ...] = (678, 223761)

#: Plausible ranges (after unit conversion); values outside are charting errors and dropped.
VITAL_RANGES: dict[str, tuple[float, float]] = {
    "heart_rate": (0.0, 300.0),
    "sbp": (0.0, 400.0),
    "resp_rate": (0.0, 70.0),
    "temperature": (10.0, 50.0),
    "spo2": (0.0, 100.0),
}

#: Age given to patients whose shifted date of birth makes them older than 89.
AGE_OVER_89 = 91.4

#: Columns read from each table: (required, optional).
MIMIC_COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "PATIENTS": (("SUBJECT_ID", "GENDER", "DOB"), ()),
    "ADMISSIONS": (
        ("SUBJECT_ID", "HADM_ID", "DISCHTIME", "DEATHTIME", "HOSPITAL_EXPIRE_FLAG"),
        (),
    ),
    "ICUSTAYS": (("SUBJECT_ID", "HADM_ID", "ICUSTAY_ID", "INTIME", "OUTTIME"), ()),
    "PRESCRIPTIONS": (("HADM_ID", "STARTDATE", "DRUG", "DRUG_NAME_GENERIC"), ("ROUTE",)),
    "NOTEEVENTS": (("HADM_ID", "CHARTDATE", "CHARTTIME", "CATEGORY", "ISERROR", "TEXT"), ()),
    "CHARTEVENTS": (("HADM_ID", "ITEMID", "CHARTTIME", "VALUENUM"), ("ERROR",)),
}

PRESCRIPTION_RULES = ("day_overlap", "exact")
NOTE_SEPARATOR = "\n\n"


# --------------------------------------------------------------------------------------------
# Parameter checks
# --------------------------------------------------------------------------------------------


def _check_names(values: Any, name: str) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise ValueError(f"{name} must be a sequence of strings, got {values!r}")
    out = tuple(values)
    if not out:
        raise ValueError(f"{name} is empty")
    bad = [v for v in out if not isinstance(v, str) or not v.strip()]
    if bad:
        raise ValueError(f"{name} must hold non-empty strings, got {bad[:3]}")
    return out


def _word_pattern(names: Sequence[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(n.strip()) for n in sorted(names, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])", re.IGNORECASE)


# --------------------------------------------------------------------------------------------
# Cohort
# --------------------------------------------------------------------------------------------


def _ids(df: pd.DataFrame, table: str, columns: Sequence[str]) -> pd.DataFrame:
    for col in columns:
        df[col] = parse_numbers(df[col], table, col).astype("Int64")
    return df


def _empty_cohort(flow: Mapping[str, int]) -> ValueError:
    steps = ", ".join(f"{k}: {v}" for k, v in flow.items())
    return ValueError(f"the MIMIC-III cohort is empty after inclusion; attrition: {steps}")


def build_mimic_cohort(
    mimic_dir: str | os.PathLike,
    *,
    treatment_window_hours: float = 6.0,
    t0_offset_hours: float = 3.0,
    min_age: float = 18.0,
    antibiotics: Sequence[str] = ANTIBIOTICS,
    note_categories: Sequence[str] | None = None,
    prescription_rule: str = "day_overlap",
    exclude_routes: Sequence[str] = NON_SYSTEMIC_ROUTES,
    chunksize: int = 1_000_000,
    progress: bool = True,
) -> CausalDataset:
    """Build the AACE MIMIC-III cohort (early antibiotics -> in-hospital death) from CSV tables.

    Parameters
    ----------
    mimic_dir : folder with ``PATIENTS``, ``ADMISSIONS``, ``ICUSTAYS``, ``PRESCRIPTIONS``,
        ``NOTEEVENTS`` and ``CHARTEVENTS`` as ``.csv`` or ``.csv.gz`` (MIMIC-III v1.4 schema).
    treatment_window_hours : length of the treatment window ``[t0, t0 + window]``.
    t0_offset_hours : ``t0 = INTIME + t0_offset_hours`` (decision time).
    min_age : minimum age in years at ICU admission.
    antibiotics : drug names matched as whole words in ``DRUG`` / ``DRUG_NAME_GENERIC``.
    note_categories : keep only notes of these ``CATEGORY`` values (case-insensitive); ``None``
        keeps every category.
    prescription_rule : ``"day_overlap"`` or ``"exact"`` (see the module docstring).
    exclude_routes : ``ROUTE`` values (case-insensitive) that do not count as treatment.
    chunksize : rows per chunk for the large tables.
    progress : show a progress bar per large table.

    Returns
    -------
    CausalDataset with ``X`` (age, male, five vitals and their ``_missing`` indicators),
    ``T``, ``Y`` (0/1), ``text`` (notes before t0), ``modalities["ids"]`` and ``meta`` (source,
    folder, ``flow`` attrition counts, parameters, note and imputation counts).

    Reference: Johnson A.E.W. et al. (2016) MIMIC-III, a freely accessible critical care
    database. Scientific Data 3:160035. Design: the MIMIC experiment of Arno & Demeester (2025).
    """
    window = check_number(treatment_window_hours, "treatment_window_hours", 0, math.inf,
                          low_open=True, high_open=True)
    offset = check_number(t0_offset_hours, "t0_offset_hours", 0, math.inf, high_open=True)
    min_age = check_number(min_age, "min_age", 0, math.inf, high_open=True)
    antibiotics = _check_names(antibiotics, "antibiotics")
    categories = None
    if note_categories is not None:
        categories = {c.strip().lower() for c in _check_names(note_categories, "note_categories")}
    if prescription_rule not in PRESCRIPTION_RULES:
        raise ValueError(
            f"prescription_rule must be one of {PRESCRIPTION_RULES}, got {prescription_rule!r}"
        )
    routes = {r.strip().upper() for r in tuple(exclude_routes)}
    chunksize = check_int(chunksize, "chunksize", 1)

    paths = find_tables(mimic_dir, MIMIC_COLUMNS, label="MIMIC-III")
    for table, (required, _) in MIMIC_COLUMNS.items():  # fail fast before reading big tables
        check_columns(paths[table], table, required)

    def read(table: str, **kw: Any) -> pd.DataFrame:
        required, optional = MIMIC_COLUMNS[table]
        return read_table(paths[table], table, required, optional, **kw)

    flow: dict[str, int] = {}

    # 1. first ICU stay per patient, linked to the patient and the admission
    icu = _ids(read("ICUSTAYS"), "ICUSTAYS", ("SUBJECT_ID", "HADM_ID", "ICUSTAY_ID"))
    icu["INTIME"] = parse_datetimes(icu["INTIME"], "ICUSTAYS", "INTIME")
    icu["OUTTIME"] = parse_datetimes(icu["OUTTIME"], "ICUSTAYS", "OUTTIME")
    flow["icu_stays"] = len(icu)
    icu = icu.dropna(subset=["SUBJECT_ID", "HADM_ID", "ICUSTAY_ID", "INTIME"])
    icu = icu.sort_values(["SUBJECT_ID", "INTIME", "ICUSTAY_ID"], kind="stable")
    icu = icu.drop_duplicates("SUBJECT_ID", keep="first")
    flow["first_icu_stay"] = len(icu)

    pat = _ids(read("PATIENTS"), "PATIENTS", ("SUBJECT_ID",))
    pat["DOB"] = parse_datetimes(pat["DOB"], "PATIENTS", "DOB")
    pat = pat.drop_duplicates("SUBJECT_ID")
    adm = _ids(read("ADMISSIONS"), "ADMISSIONS", ("SUBJECT_ID", "HADM_ID"))
    for col in ("DISCHTIME", "DEATHTIME"):
        adm[col] = parse_datetimes(adm[col], "ADMISSIONS", col)
    adm["HOSPITAL_EXPIRE_FLAG"] = parse_numbers(
        adm["HOSPITAL_EXPIRE_FLAG"], "ADMISSIONS", "HOSPITAL_EXPIRE_FLAG"
    )
    adm = adm.drop_duplicates("HADM_ID")
    co = icu[["SUBJECT_ID", "HADM_ID", "ICUSTAY_ID", "INTIME", "OUTTIME"]].merge(
        pat[["SUBJECT_ID", "GENDER", "DOB"]], on="SUBJECT_ID", how="inner"
    )
    co = co.merge(
        adm[["HADM_ID", "DISCHTIME", "DEATHTIME", "HOSPITAL_EXPIRE_FLAG"]],
        on="HADM_ID",
        how="inner",
    )
    flow["linked_patient_admission"] = len(co)

    # 2. adults (ages > 89 are shifted in MIMIC-III: set to 91.4)
    seconds = (co["INTIME"] - co["DOB"]).dt.total_seconds().to_numpy(dtype=float)
    age = seconds / (365.25 * 86400.0)
    over_89 = age > 89.0
    co["age"] = np.where(over_89, AGE_OVER_89, age)
    co = co[co["age"] >= min_age]
    flow["adult"] = len(co)
    n_over_89 = int((co["age"] == AGE_OVER_89).sum())

    # 3. alive, in hospital and in the ICU at the end of the treatment window
    co = co.assign(
        t0=co["INTIME"] + pd.Timedelta(hours=offset),
    )
    co["window_end"] = co["t0"] + pd.Timedelta(hours=window)
    co = co[co["DEATHTIME"].isna() | (co["DEATHTIME"] > co["window_end"])]
    flow["alive_at_window_end"] = len(co)
    co = co[co["DISCHTIME"] > co["window_end"]]
    flow["in_hospital_at_window_end"] = len(co)
    co = co[co["OUTTIME"] > co["window_end"]]
    flow["in_icu_at_window_end"] = len(co)
    if co.empty:
        raise _empty_cohort(flow)
    co = co.sort_values("SUBJECT_ID").reset_index(drop=True)
    hadm = set(co["HADM_ID"].astype(int))

    def in_cohort(chunk: pd.DataFrame) -> pd.Series:
        ids = pd.to_numeric(chunk["HADM_ID"], errors="coerce")
        return ids.isin(hadm)

    # 4. treatment: an antibiotic starting within [t0, t0 + window]
    rx = read("PRESCRIPTIONS", keep=in_cohort, chunksize=chunksize, progress=progress)
    rx = _ids(rx, "PRESCRIPTIONS", ("HADM_ID",))
    rx["STARTDATE"] = parse_datetimes(rx["STARTDATE"], "PRESCRIPTIONS", "STARTDATE")
    pattern = _word_pattern(antibiotics)
    drug = rx["DRUG"].fillna("").astype(str)
    generic = rx["DRUG_NAME_GENERIC"].fillna("").astype(str)
    is_abx = (drug + " | " + generic).str.contains(pattern, regex=True).to_numpy(dtype=bool)
    if "ROUTE" in rx.columns and routes:
        route = rx["ROUTE"].fillna("").astype(str).str.strip().str.upper()
        is_abx = is_abx & ~route.isin(routes).to_numpy(dtype=bool)
    abx = rx.loc[is_abx & rx["STARTDATE"].notna().to_numpy(), ["HADM_ID", "STARTDATE"]]
    abx = abx.merge(co[["HADM_ID", "t0", "window_end"]], on="HADM_ID")
    if prescription_rule == "day_overlap":
        day = abx["STARTDATE"].dt.normalize()
        hit = (day <= abx["window_end"]) & (day + pd.Timedelta(days=1) > abx["t0"])
    else:
        hit = (abx["STARTDATE"] >= abx["t0"]) & (abx["STARTDATE"] <= abx["window_end"])
    treated = set(abx.loc[hit, "HADM_ID"].astype(int))
    co["T"] = co["HADM_ID"].astype(int).isin(treated).astype(int)

    # 5. outcome: in-hospital death after the window
    death = co["DEATHTIME"].fillna(co["DISCHTIME"])
    co["Y"] = ((co["HOSPITAL_EXPIRE_FLAG"] == 1) & (death > co["window_end"])).astype(int)

    # 6. notes written before t0
    notes = read("NOTEEVENTS", keep=in_cohort, chunksize=chunksize, progress=progress)
    notes = _ids(notes, "NOTEEVENTS", ("HADM_ID",))
    notes["CHARTTIME"] = parse_datetimes(notes["CHARTTIME"], "NOTEEVENTS", "CHARTTIME")
    notes["CHARTDATE"] = parse_datetimes(notes["CHARTDATE"], "NOTEEVENTS", "CHARTDATE")
    notes["ISERROR"] = parse_numbers(notes["ISERROR"], "NOTEEVENTS", "ISERROR")
    n_error_notes = int((notes["ISERROR"] == 1).sum())
    notes = notes[notes["ISERROR"] != 1]
    if categories is not None:
        cat = notes["CATEGORY"].fillna("").astype(str).str.strip().str.lower()
        notes = notes[cat.isin(categories)]
    notes = notes.merge(co[["HADM_ID", "t0"]], on="HADM_ID")
    timed = notes["CHARTTIME"].notna()
    before = (timed & (notes["CHARTTIME"] < notes["t0"])) | (
        ~timed & notes["CHARTDATE"].notna() & (notes["CHARTDATE"] < notes["t0"].dt.normalize())
    )
    notes = notes[before].assign(_when=notes["CHARTTIME"].fillna(notes["CHARTDATE"]))
    notes = notes.sort_values(["HADM_ID", "_when", "_row"], kind="stable")
    notes["TEXT"] = notes["TEXT"].fillna("").astype(str).str.strip()
    notes = notes[notes["TEXT"] != ""]
    text_by_hadm = notes.groupby("HADM_ID", sort=False)["TEXT"].agg(NOTE_SEPARATOR.join)
    n_notes = notes.groupby("HADM_ID", sort=False).size()
    co["text"] = co["HADM_ID"].map(text_by_hadm)
    n_without_notes = int(co["text"].isna().sum())
    co = co[co["text"].notna()].reset_index(drop=True)
    flow["with_notes_before_t0"] = len(co)
    if co.empty:
        raise _empty_cohort(flow)

    # 7. vitals: last value before t0
    item_to_vital = {i: v for v, items in VITAL_ITEMIDS.items() for i in items}
    item_ids = {str(i) for i in item_to_vital}
    hadm = set(co["HADM_ID"].astype(int))

    def vital_rows(chunk: pd.DataFrame) -> pd.Series:
        item = chunk["ITEMID"].astype("string").str.strip()
        return item.isin(item_ids) & in_cohort(chunk)

    ce = read("CHARTEVENTS", keep=vital_rows, chunksize=chunksize, progress=progress)
    ce = _ids(ce, "CHARTEVENTS", ("HADM_ID", "ITEMID"))
    ce["CHARTTIME"] = parse_datetimes(ce["CHARTTIME"], "CHARTEVENTS", "CHARTTIME")
    ce["VALUENUM"] = parse_numbers(ce["VALUENUM"], "CHARTEVENTS", "VALUENUM")
    if "ERROR" in ce.columns:
        err = parse_numbers(ce["ERROR"], "CHARTEVENTS", "ERROR")
        ce = ce[err != 1]
    ce = ce.dropna(subset=["VALUENUM", "CHARTTIME"])
    ce = ce.merge(co[["HADM_ID", "t0"]], on="HADM_ID")
    ce = ce[ce["CHARTTIME"] < ce["t0"]].copy()
    item = ce["ITEMID"].astype(int)
    ce["vital"] = item.map(item_to_vital)
    fahrenheit = item.isin(FAHRENHEIT_ITEMIDS)
    ce.loc[fahrenheit, "VALUENUM"] = (ce.loc[fahrenheit, "VALUENUM"] - 32.0) * 5.0 / 9.0
    low = ce["vital"].map({k: r[0] for k, r in VITAL_RANGES.items()})
    high = ce["vital"].map({k: r[1] for k, r in VITAL_RANGES.items()})
    ce = ce[(ce["VALUENUM"] >= low) & (ce["VALUENUM"] <= high)]
    if ce.empty:
        vitals = pd.DataFrame({v: pd.Series(dtype=float) for v in VITAL_ITEMIDS})
    else:
        last_time = ce.groupby(["HADM_ID", "vital"])["CHARTTIME"].transform("max")
        last = ce[ce["CHARTTIME"] == last_time].groupby(["HADM_ID", "vital"])["VALUENUM"].mean()
        vitals = last.unstack("vital").reindex(columns=list(VITAL_ITEMIDS))

    X = pd.DataFrame(
        {
            "age": co["age"].to_numpy(dtype=float),
            "male": (co["GENDER"].fillna("").astype(str).str.strip().str.upper() == "M")
            .to_numpy()
            .astype(float),
        }
    )
    for vital in VITAL_ITEMIDS:
        X[vital] = co["HADM_ID"].map(vitals[vital]).to_numpy(dtype=float)
    X, medians = impute_median(X, list(VITAL_ITEMIDS))

    ids = co[["SUBJECT_ID", "HADM_ID", "ICUSTAY_ID", "t0"]].copy()
    for col in ("SUBJECT_ID", "HADM_ID", "ICUSTAY_ID"):
        ids[col] = ids[col].astype("int64")
    return CausalDataset(
        X=X,
        T=co["T"].to_numpy(),
        Y=co["Y"].to_numpy(),
        text=co["text"].tolist(),
        modalities={"ids": ids},
        meta={
            "source": SOURCE,
            "folder": str(Path(mimic_dir).expanduser()),
            "flow": flow,
            "parameters": {
                "treatment_window_hours": window,
                "t0_offset_hours": offset,
                "min_age": min_age,
                "antibiotics": list(antibiotics),
                "note_categories": None if categories is None else sorted(categories),
                "prescription_rule": prescription_rule,
                "exclude_routes": sorted(routes),
                "chunksize": chunksize,
            },
            "n_age_over_89": n_over_89,
            "age_over_89_value": AGE_OVER_89,
            "n_stays_without_notes": n_without_notes,
            "n_error_notes_skipped": n_error_notes,
            "n_notes_used": int(n_notes.reindex(co["HADM_ID"]).fillna(0).sum()),
            "vital_medians": medians,
            "vital_missing": {v: int(X[f"{v}_missing"].sum()) for v in VITAL_ITEMIDS},
            "outcome": "in-hospital death after t0 + treatment window",
            "treatment": "antibiotic prescription starting within [t0, t0 + window]",
        },
    )
