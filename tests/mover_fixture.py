"""A miniature MOVER EPIC_EMR folder in the export's schema, with hand-designed surgeries.

:func:`write_mover_fixture` writes the five tables :func:`ehrcausal.data.mover.load_mover_spine`
reads, with the real tables' other columns and header spellings (``Lab Name`` with a space,
lower-case ``mrn`` in ``patient_history``, ``Element_Name``), and returns the expected cohort.

=====  ==========================================================  =========================
LOG    procedure                                                   fate
=====  ==========================================================  =========================
a01    ACDF C5-C6 (also a duplicated patient_information row)      anterior, 0 complications
a02    POSTERIOR LUMBAR FUSION L4-L5                               posterior, 1 (repeated)
a03    TLIF L5-S1                                                  posterior, 5 -> capped 3
a04    ANTERIOR LUMBAR INTERBODY FUSION (ALIF) L5-S1; no height    anterior, 1
a05    XLIF L3-L4                                                  lateral: anterior
a06    SPINAL FUSION, LUMBAR                                       no approach: dropped
a07    ANTERIOR/POSTERIOR SPINAL FUSION T10-PELVIS                 combined: dropped
a08    LAPAROSCOPIC CHOLECYSTECTOMY                                not a fusion: dropped
a09    ARTHRODESIS, ANKLE                                          not spinal: dropped
a11    Posterior cervical fusion C3-C7; no IN_OR_DTTM              posterior, 2
a12    ACDF C6-C7 (same patient as a02; sex Unknown; age 90)       anterior, 0
=====  ==========================================================  =========================

Labs inside and outside the 30-day window, after the OR entry, on the surgery day without an
OR time, the ``9999999`` sentinel, two values at the same time (averaged), a specimen suffix
(``Creatinine, Serum``) and a look-alike (``Hemoglobin A1c``) are all covered.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

OUNCE_KG = 0.028349523125
LABS = (
    "hemoglobin",
    "hematocrit",
    "wbc",
    "platelets",
    "sodium",
    "potassium",
    "chloride",
    "bicarbonate",
    "bun",
    "creatinine",
    "glucose",
    "calcium",
    "albumin",
    "inr",
    "pt",
    "ptt",
    "alt",
    "ast",
    "alkaline_phosphatase",
    "total_bilirubin",
)

# log, mrn, procedure, surgery day, in-OR time, age, sex, height (ft, in) or None, kg, ASA
SURGERIES: list[tuple[Any, ...]] = [
    (
        "a01",
        "m1",
        "ACDF C5-C6",
        datetime(2019, 3, 4),
        datetime(2019, 3, 4, 8),
        55,
        "Male",
        (5, 10),
        80.0,
        2,
    ),
    (
        "a02",
        "m2",
        "POSTERIOR LUMBAR FUSION L4-L5",
        datetime(2019, 5, 2),
        datetime(2019, 5, 2, 7, 30),
        67,
        "Female",
        (5, 4.5),
        70.0,
        3,
    ),
    (
        "a03",
        "m3",
        "TLIF L5-S1",
        datetime(2019, 8, 15),
        datetime(2019, 8, 15, 9),
        72,
        "Male",
        (6, 1),
        95.0,
        None,
    ),
    (
        "a04",
        "m4",
        "ANTERIOR LUMBAR INTERBODY FUSION (ALIF) L5-S1",
        datetime(2020, 1, 9),
        datetime(2020, 1, 9, 10),
        45,
        "Female",
        None,
        60.0,
        2,
    ),
    (
        "a05",
        "m5",
        "XLIF L3-L4",
        datetime(2020, 2, 20),
        datetime(2020, 2, 20, 8),
        60,
        "Male",
        (5, 7),
        88.0,
        1,
    ),
    (
        "a06",
        "m6",
        "SPINAL FUSION, LUMBAR",
        datetime(2020, 3, 3),
        datetime(2020, 3, 3, 8),
        50,
        "Female",
        (5, 5),
        65.0,
        2,
    ),
    (
        "a07",
        "m7",
        "ANTERIOR/POSTERIOR SPINAL FUSION T10-PELVIS",
        datetime(2020, 4, 4),
        datetime(2020, 4, 4, 8),
        30,
        "Male",
        (5, 9),
        75.0,
        2,
    ),
    (
        "a08",
        "m8",
        "LAPAROSCOPIC CHOLECYSTECTOMY",
        datetime(2020, 5, 5),
        datetime(2020, 5, 5, 8),
        41,
        "Female",
        (5, 6),
        72.0,
        2,
    ),
    (
        "a09",
        "m9",
        "ARTHRODESIS, ANKLE",
        datetime(2020, 5, 6),
        datetime(2020, 5, 6, 8),
        64,
        "Male",
        (5, 8),
        90.0,
        3,
    ),
    (
        "a11",
        "m11",
        "Posterior cervical fusion C3-C7",
        datetime(2020, 6, 10),
        None,
        50,
        "Male",
        (5, 11),
        85.0,
        3,
    ),
    (
        "a12",
        "m2",
        "ACDF C6-C7",
        datetime(2021, 7, 1),
        datetime(2021, 7, 1, 8),
        90,
        "Unknown",
        (5, 2),
        55.0,
        4,
    ),
]
COHORT = ("a01", "a02", "a03", "a04", "a05", "a11", "a12")

# log -> (lab name as exported, value, collection time); the expected value per feature
LAB_ROWS: list[tuple[str, str, str, datetime]] = [
    ("a01", "Hemoglobin", "13.1", datetime(2019, 2, 20, 9)),
    ("a01", "Hemoglobin", "13.9", datetime(2019, 3, 1, 10)),
    ("a01", "HGB", "12.0", datetime(2019, 1, 1, 10)),  # older than 30 days
    ("a01", "Hemoglobin", "9.0", datetime(2019, 3, 4, 12)),  # after entering the OR
    ("a01", "Hemoglobin A1c", "6.1", datetime(2019, 3, 3, 10)),  # not hemoglobin
    ("a01", "Sodium", "140", datetime(2019, 2, 25, 10)),
    ("a01", "Sodium", "9999999", datetime(2019, 3, 2, 10)),  # sentinel
    ("a01", "Potassium", "4.1", datetime(2019, 3, 1, 10)),
    ("a01", "Potassium", "4.3", datetime(2019, 3, 1, 10)),  # same time: mean 4.2
    ("a01", "Potassium", ">5.0", datetime(2019, 3, 2, 10)),  # not a number
    ("a01", "Creatinine, Serum", "0.9", datetime(2019, 3, 1, 10)),
    ("a03", "Platelets", "250", datetime(2019, 8, 5, 10)),
    ("a03", "Glucose", "105", datetime(2019, 8, 14, 7)),
    ("a03", "NA", "138", datetime(2019, 8, 14, 7)),  # sodium; not a missing value
    ("a04", "INR", "1.1", datetime(2020, 1, 2, 10)),
    ("a04", "PT", "12.5", datetime(2020, 1, 2, 10)),
    ("a04", "PTT", "30", datetime(2020, 1, 2, 10)),
    ("a04", "Hemoglobin", "12.5", datetime(2020, 1, 2, 10)),
    ("a05", "Hemoglobin (Blood)", "14.0", datetime(2020, 2, 18, 10)),
    ("a05", "BUN", "15", datetime(2020, 2, 18, 10)),
    ("a05", "Albumin", "4.0", datetime(2020, 2, 18, 10)),
    ("a11", "Hemoglobin", "14.2", datetime(2020, 6, 9, 10)),
    ("a11", "Hemoglobin", "11.0", datetime(2020, 6, 10, 6)),  # surgery day, no OR time
    ("a11", "WBC", "7.5", datetime(2020, 6, 9, 10)),
    ("a12", "Hematocrit", "41", datetime(2021, 6, 25, 10)),
    ("a12", "ALT (SGPT)", "25", datetime(2021, 6, 25, 10)),
    ("a12", "AST (SGOT)", "22", datetime(2021, 6, 25, 10)),
    ("a12", "Alkaline Phosphatase", "80", datetime(2021, 6, 25, 10)),
    ("a12", "Bilirubin, Total", "0.6", datetime(2021, 6, 25, 10)),
    ("a12", "Chloride", "101", datetime(2021, 6, 25, 10)),
    ("a12", "CO2", "24", datetime(2021, 6, 25, 10)),
    ("a12", "Calcium", "9.4", datetime(2021, 6, 25, 10)),
    ("a08", "Hemoglobin", "10.0", datetime(2020, 5, 1, 10)),  # not in the cohort
]
EXPECTED_LABS: dict[str, dict[str, float]] = {
    "a01": {"hemoglobin": 13.9, "sodium": 140.0, "potassium": 4.2, "creatinine": 0.9},
    "a03": {"platelets": 250.0, "glucose": 105.0, "sodium": 138.0},
    "a04": {"inr": 1.1, "pt": 12.5, "ptt": 30.0, "hemoglobin": 12.5},
    "a05": {"hemoglobin": 14.0, "bun": 15.0, "albumin": 4.0},
    "a11": {"hemoglobin": 14.2, "wbc": 7.5},
    "a12": {
        "hematocrit": 41.0,
        "alt": 25.0,
        "ast": 22.0,
        "alkaline_phosphatase": 80.0,
        "total_bilirubin": 0.6,
        "chloride": 101.0,
        "bicarbonate": 24.0,
        "calcium": 9.4,
    },
}

# log -> (medication, record type)
MED_ROWS: list[tuple[str, str, str]] = [
    ("a01", "ACETAMINOPHEN 500 MG TAB", "PREOP"),
    ("a01", "acetaminophen 500 mg tab", "PREOP"),  # same drug, other case
    ("a01", "GABAPENTIN 300 MG CAP", "Pre-op"),
    ("a01", "CEFAZOLIN 2 G IV", "PERIOP"),
    ("a01", "OXYCODONE 5 MG TAB", "POSTOP"),
    ("a03", "METFORMIN 500 MG TAB", "PREOP"),
    ("a05", "LISINOPRIL 10 MG TAB", "PREOP"),
    ("a05", "ATORVASTATIN 20 MG TAB", "PREOP"),
    ("a05", "ASPIRIN 81 MG TAB", "PREOP"),
    ("a12", "OMEPRAZOLE 20 MG CAP", "POSTOP"),
    ("a08", "ONDANSETRON 4 MG", "PREOP"),  # not in the cohort
]
EXPECTED_PREOP_MEDS = {"a01": 2, "a03": 1, "a05": 3}
EXPECTED_ALL_MEDS = {"a01": 4, "a03": 1, "a05": 3, "a12": 1}

HISTORY_ROWS: list[tuple[str, str, str]] = [
    ("m1", "401.9", "Hypertension"),
    ("m1", "401.9", "hypertension "),
    ("m1", "250.00", "Type 2 diabetes mellitus"),
    ("m2", "715.90", "Osteoarthritis"),
    ("m2", "724.2", "Chronic low back pain"),
    ("m4", "493.90", "Asthma"),
    ("m11", "530.81", "GERD"),
    ("m11", "401.9", "Hypertension"),
    ("m11", "", "gerd"),
    ("m8", "574.20", "Gallstones"),
]
EXPECTED_HISTORY = {"m1": 2, "m2": 2, "m4": 1, "m11": 2}

GENERIC = ("AN AQI POST-OP COMPLICATIONS", "AN Post-op Complications")
# log -> (element name, context, value)
COMPLICATION_ROWS: list[tuple[str, str, str, str]] = [
    ("a01", GENERIC[0], "ENCOUNTER", "None"),
    ("a02", "Cardiovascular", "ENCOUNTER", ""),
    ("a02", "Cardiovascular", "NOTE", ""),  # the same complication charted twice
    ("a02", GENERIC[0], "ORDER", ""),
    ("a03", "Cardiovascular", "ENCOUNTER", ""),
    ("a03", "Respiratory", "ENCOUNTER", ""),
    ("a03", "Airway", "ENCOUNTER", ""),
    ("a03", "Metabolic", "ENCOUNTER", ""),
    ("a03", "Neurological", "ENCOUNTER", ""),
    ("a03", "Other", "ENCOUNTER", "None"),  # explicit negative
    ("a04", "Respiratory", "ENCOUNTER", "hypoxia in PACU"),
    ("a11", "Other", "ENCOUNTER", "ileus"),
    ("a11", "Other", "ENCOUNTER", "urinary retention"),
    ("a08", "Cardiovascular", "ENCOUNTER", ""),  # not in the cohort
]
EXPECTED_COMPLICATIONS = {"a02": 1, "a03": 5, "a04": 1, "a11": 2}


def _mdy(value: datetime | None) -> str:
    if value is None:
        return ""
    return f"{value.month}/{value.day}/{value.year % 100:02d} {value.hour}:{value.minute:02d}"


def write_mover_fixture(
    folder: str | Path,
    *,
    gzip: bool = False,
    birth_as_date: bool = False,
    record_type: bool = True,
) -> dict[str, Any]:
    """Write the miniature MOVER folder; return the expected cohort.

    ``birth_as_date`` writes real dates of birth in ``BIRTH_DATE`` (instead of the export's
    age in years); ``record_type=False`` leaves ``RECORD_TYPE`` out of patient_medications.
    The result has ``log_ids``, ``mrn``, ``T``, ``Y``, ``n_complications``, ``age``, ``male``,
    ``bmi``, ``asa`` (NaN where missing), ``labs`` (DataFrame, NaN where none),
    ``n_preop_medications``, ``n_all_medications``, ``n_history``, ``flow``, ``n_combined``
    and ``n_unknown``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    info = []
    births = {}
    for log, mrn, proc, day, in_or, age, sex, height, kg, asa in SURGERIES:
        born = day - timedelta(days=round(age * 365.25))
        births[log] = born
        row = {
            "LOG_ID": log,
            "MRN": mrn,
            "DISCH_DISP_C": 1,
            "DISCH_DISP": "Home Routine",
            "HOSP_ADMSN_TIME": _mdy(day - timedelta(hours=6)),
            "HOSP_DISCH_TIME": _mdy(day + timedelta(days=3)),
            "LOS": 3,
            "ICU_ADMIN_FLAG": "No",
            "SURGERY_DATE": day.strftime("%Y-%m-%d"),
            "BIRTH_DATE": born.strftime("%Y-%m-%d") if birth_as_date else age,
            "HEIGHT": "" if height is None else f"{height[0]}' {height[1]:g}",
            "WEIGHT": f"{kg / OUNCE_KG:.6f}",
            "SEX": sex,
            "PRIMARY_ANES_TYPE_NM": "General",
            "ASA_RATING_C": "" if asa is None else asa,
            "ASA_RATING": "" if asa is None else f"{asa}.0",
            "PATIENT_CLASS_GROUP": "Inpatient",
            "PATIENT_CLASS_NM": "Hospital Inpatient Surgery",
            "PRIMARY_PROCEDURE_NM": proc,
            "IN_OR_DTTM": _mdy(in_or),
            "OUT_OR_DTTM": _mdy(None if in_or is None else in_or + timedelta(hours=3)),
            "AN_START_DATETIME": _mdy(in_or),
            "AN_STOP_DATETIME": _mdy(None if in_or is None else in_or + timedelta(hours=3)),
        }
        info.append(row)
        if log == "a01":
            info.append(dict(row, PRIMARY_PROCEDURE_NM="LAMINECTOMY (duplicate row)"))
    mrn_of = {s[0]: s[1] for s in SURGERIES}
    labs = [
        {
            "LOG_ID": log,
            "MRN": mrn_of[log],
            "ENC_TYPE_NM": "Hospital Encounter",
            "Lab Code": "718-7",
            "Lab Name": name,
            "Observation Value": value,
            "Measurement Units": "Unknown",
            "Reference Range": "Unknown",
            "Abnormal Flag": "N",
            "Collection Datetime": _mdy(when),
        }
        for log, name, value, when in LAB_ROWS
    ]
    meds = []
    for k, (log, name, kind) in enumerate(MED_ROWS):
        row = {
            "ENC_TYPE_C": 3,
            "ENC_TYPE_NM": "Hospital Encounter",
            "LOG_ID": log,
            "MRN": mrn_of[log],
            "ORDERING_DATE": "1/1/19 0:00",
            "ORDER_CLASS_NM": "Inpatient",
            "MEDICATION_ID": 1000 + k,
            "DISPLAY_NAME": name.lower(),
            "MEDICATION_NM": name,
            "START_DATE": "1/1/19 0:00",
            "END_DATE": "1/2/19 0:00",
            "ORDER_STATUS_NM": "Completed",
            "RECORD_TYPE": kind,
            "MAR_ACTION_NM": "Given",
            "MED_ACTION_TIME": "1/1/19 8:00",
            "ADMIN_SIG": 1,
            "DOSE_UNIT_NM": "mg",
            "MED_ROUTE_NM": "Oral",
        }
        if not record_type:
            del row["RECORD_TYPE"]
        meds.append(row)
    history = [{"mrn": m, "diagnosis_code": c, "dx_name": n} for m, c, n in HISTORY_ROWS]
    complications = [
        {
            "MRN": mrn_of[log],
            "LOG_ID": log,
            "Element_Name": element,
            "CONTEXT_NAME": context,
            "Element_abbr": GENERIC[1] if element == GENERIC[0] else element[:4].upper(),
            "SMRTDTA_ELEM_VALUE": value,
        }
        for log, element, context, value in COMPLICATION_ROWS
    ]
    ext = ".csv.gz" if gzip else ".csv"
    for name, records in {
        "patient_information": info,
        "patient_labs": labs,
        "patient_medications": meds,
        "patient_history": history,
        "patient_post_op_complications": complications,
    }.items():
        pd.DataFrame(records).to_csv(folder / f"{name}{ext}", index=False)

    rows = {s[0]: s for s in SURGERIES}
    cohort = [rows[log] for log in COHORT]
    bmi = []
    for s in cohort:
        if s[7] is None:
            bmi.append(np.nan)
        else:
            metres = (12 * s[7][0] + s[7][1]) * 0.0254
            bmi.append(s[8] / metres**2)
    if birth_as_date:
        age = [(s[3] - births[s[0]]).total_seconds() / (365.25 * 86400) for s in cohort]
    else:
        age = [float(s[5]) for s in cohort]
    n_comp = np.array([EXPECTED_COMPLICATIONS.get(log, 0) for log in COHORT])
    return {
        "log_ids": list(COHORT),
        "mrn": [s[1] for s in cohort],
        "T": np.array([1, 0, 0, 1, 1, 0, 1]),
        "Y": np.minimum(n_comp, 3),
        "n_complications": n_comp,
        "age": np.array(age),
        "male": np.array([1.0 if s[6] == "Male" else 0.0 for s in cohort]),
        "bmi": np.array(bmi),
        "asa": np.array([np.nan if s[9] is None else float(s[9]) for s in cohort]),
        "labs": pd.DataFrame(
            [[EXPECTED_LABS.get(log, {}).get(lab, np.nan) for lab in LABS] for log in COHORT],
            columns=list(LABS),
        ),
        "n_preop_medications": np.array([EXPECTED_PREOP_MEDS.get(x, 0) for x in COHORT], float),
        "n_all_medications": np.array([EXPECTED_ALL_MEDS.get(x, 0) for x in COHORT], float),
        "n_history": np.array([EXPECTED_HISTORY.get(s[1], 0) for s in cohort], float),
        "flow": {
            "surgeries": 12,
            "unique_log_id": 11,
            "fusion_procedure": 10,
            "spinal_fusion": 9,
            "approach_determined": 7,
        },
        "n_combined": 1,
        "n_unknown": 1,
    }
