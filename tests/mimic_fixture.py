"""A miniature MIMIC-III v1.4 folder in the published schema, with hand-designed patients.

:func:`write_mimic_fixture` writes the six tables the cohort builder reads (with the other
columns of the real tables too, so that ``usecols`` is exercised) and returns the cohort that
:func:`ehrcausal.data.mimic.build_mimic_cohort` must produce from them, worked out by hand.

Designed patients (t0 = INTIME + 3 h, window end w = t0 + 6 h):

====  =====================================================================================
101   two ICU stays (the later one listed first; only the first is kept); vancomycin on the
      day of t0 (T=1 by day overlap, 0 by the exact rule); notes before t0 (out of file
      order, one with a comma, quote and newline) and after t0; HR before/after t0 and one
      implausible HR; two systolic values at the same time (averaged)
102   a child (age 10): excluded
103   dies before w: excluded
104   discharged before w: excluded
105   leaves the ICU before w: excluded
106   antibiotic two days later (T=0); dies after w (Y=1); temperature in Fahrenheit;
      a radiology note before t0 and a nursing note after it
107   antibiotic matched through DRUG_NAME_GENERIC only (T=1); an ISERROR note
108   no note at all: excluded
109   older than 89 (shifted DOB: age 91.4); heparin in the window and vancomycin the day
      before (T=0); notes with CHARTDATE only (the day before t0: kept; the day of t0 and a
      discharge summary: dropped); no vitals (all imputed); Y=1
110   only an ophthalmic antibiotic (route OU: T=0)
111   the window crosses midnight; cefepime the next day (T=1 by both rules); a radiology and
      a nursing note (category filter)
112   CareVue vitals, a text-only HR row and an ERROR=1 row (ignored); note charted before
      INTIME; levofloxacin on the day of t0; Y=1
====  =====================================================================================

Extra patients (``n_patients > 12``) are plain included stays drawn with ``seed``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

N_DESIGNED = 12
VITALS = ("heart_rate", "sbp", "resp_rate", "temperature", "spo2")


def _ts(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _day(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d")


class _Builder:
    def __init__(self) -> None:
        self.patients: list[dict[str, Any]] = []
        self.admissions: list[dict[str, Any]] = []
        self.icustays: list[dict[str, Any]] = []
        self.prescriptions: list[dict[str, Any]] = []
        self.notes: list[dict[str, Any]] = []
        self.chart: list[dict[str, Any]] = []

    def patient(self, sid: int, gender: str, dob: datetime, dod: datetime | None = None) -> None:
        self.patients.append(
            {
                "ROW_ID": len(self.patients) + 1,
                "SUBJECT_ID": sid,
                "GENDER": gender,
                "DOB": _ts(dob),
                "DOD": _ts(dod),
                "DOD_HOSP": _ts(dod),
                "DOD_SSN": "",
                "EXPIRE_FLAG": int(dod is not None),
            }
        )

    def admission(
        self,
        sid: int,
        hadm: int,
        admit: datetime,
        disch: datetime,
        death: datetime | None = None,
    ) -> None:
        self.admissions.append(
            {
                "ROW_ID": len(self.admissions) + 1,
                "SUBJECT_ID": sid,
                "HADM_ID": hadm,
                "ADMITTIME": _ts(admit),
                "DISCHTIME": _ts(disch),
                "DEATHTIME": _ts(death),
                "ADMISSION_TYPE": "EMERGENCY",
                "ADMISSION_LOCATION": "EMERGENCY ROOM ADMIT",
                "DISCHARGE_LOCATION": "DEAD/EXPIRED" if death else "HOME",
                "INSURANCE": "Medicare",
                "DIAGNOSIS": "SEPSIS",
                "HOSPITAL_EXPIRE_FLAG": int(death is not None),
                "HAS_CHARTEVENTS_DATA": 1,
            }
        )

    def icustay(self, sid: int, hadm: int, icu: int, intime: datetime, outtime: datetime) -> None:
        self.icustays.append(
            {
                "ROW_ID": len(self.icustays) + 1,
                "SUBJECT_ID": sid,
                "HADM_ID": hadm,
                "ICUSTAY_ID": icu,
                "DBSOURCE": "metavision",
                "FIRST_CAREUNIT": "MICU",
                "LAST_CAREUNIT": "MICU",
                "FIRST_WARDID": 50,
                "LAST_WARDID": 50,
                "INTIME": _ts(intime),
                "OUTTIME": _ts(outtime),
                "LOS": round((outtime - intime).total_seconds() / 86400, 4),
            }
        )

    def rx(
        self,
        sid: int,
        hadm: int,
        start: datetime,
        drug: str,
        generic: str = "",
        route: str = "IV",
    ) -> None:
        self.prescriptions.append(
            {
                "ROW_ID": len(self.prescriptions) + 1,
                "SUBJECT_ID": sid,
                "HADM_ID": hadm,
                "ICUSTAY_ID": "",
                "STARTDATE": _day(start) + " 00:00:00",
                "ENDDATE": _day(start + timedelta(days=3)) + " 00:00:00",
                "DRUG_TYPE": "MAIN",
                "DRUG": drug,
                "DRUG_NAME_POE": drug,
                "DRUG_NAME_GENERIC": generic,
                "FORMULARY_DRUG_CD": drug[:6].upper(),
                "GSN": "",
                "NDC": "0",
                "PROD_STRENGTH": "1g",
                "DOSE_VAL_RX": "1",
                "DOSE_UNIT_RX": "g",
                "FORM_VAL_DISP": "1",
                "FORM_UNIT_DISP": "VIAL",
                "ROUTE": route,
            }
        )

    def note(
        self,
        sid: int,
        hadm: int,
        text: str,
        *,
        charttime: datetime | None = None,
        chartdate: datetime | None = None,
        category: str = "Nursing",
        iserror: bool = False,
    ) -> None:
        date = chartdate if chartdate is not None else charttime
        self.notes.append(
            {
                "ROW_ID": len(self.notes) + 1,
                "SUBJECT_ID": sid,
                "HADM_ID": hadm,
                "CHARTDATE": _day(date),
                "CHARTTIME": _ts(charttime),
                "STORETIME": _ts(charttime),
                "CATEGORY": category,
                "DESCRIPTION": "Report",
                "CGID": 1,
                "ISERROR": 1 if iserror else "",
                "TEXT": text,
            }
        )

    def vital(
        self,
        sid: int,
        hadm: int,
        icu: int | str,
        itemid: int,
        time: datetime,
        value: float | None,
        *,
        error: int | str = "",
        uom: str = "",
    ) -> None:
        self.chart.append(
            {
                "ROW_ID": len(self.chart) + 1,
                "SUBJECT_ID": sid,
                "HADM_ID": hadm,
                "ICUSTAY_ID": icu,
                "ITEMID": itemid,
                "CHARTTIME": _ts(time),
                "STORETIME": _ts(time),
                "CGID": 1,
                "VALUE": "" if value is None else f"{value:g}",
                "VALUENUM": "" if value is None else value,
                "VALUEUOM": uom,
                "WARNING": "",
                "ERROR": error,
                "RESULTSTATUS": "",
                "STOPPED": "",
            }
        )


def write_mimic_fixture(
    folder: str | Path, *, seed: int = 0, n_patients: int = 12, gzip: bool = False
) -> dict[str, Any]:
    """Write the miniature MIMIC-III folder; return the expected cohort.

    Returns a dict with ``ids`` (DataFrame SUBJECT_ID, HADM_ID, ICUSTAY_ID, t0 in cohort
    order), ``T`` (day-overlap rule), ``T_exact``, ``Y``, ``age``, ``male``, ``vitals``
    (DataFrame of the raw last values before t0, NaN where none), ``texts`` (the joined note
    text per row), ``nursing_texts`` (subject -> text with ``note_categories=["Nursing"]``),
    ``flow`` (expected attrition) and ``n_age_over_89``.
    """
    if n_patients < N_DESIGNED:
        raise ValueError(f"n_patients must be at least {N_DESIGNED}, got {n_patients}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    b = _Builder()
    d = datetime
    far = timedelta(days=5)

    def plain(sid: int, gender: str, dob: datetime, intime: datetime, **kw: Any) -> tuple:
        hadm, icu = sid * 10 + 1, sid * 10 + 2
        death = kw.get("death")
        disch = kw.get("disch", death or intime + far)
        out = kw.get("out", min(disch, intime + timedelta(days=2)))
        b.patient(sid, gender, dob, death)
        b.admission(sid, hadm, intime - timedelta(hours=2), disch, death)
        b.icustay(sid, hadm, icu, intime, out)
        return hadm, icu

    # 101: two ICU stays; the later one is written first
    sid = 101
    in1 = d(2150, 1, 1, 10)
    b.patient(sid, "M", d(2100, 3, 15))
    b.admission(sid, 1019, d(2150, 6, 1, 8), d(2150, 6, 9))
    b.icustay(sid, 1019, 1029, d(2150, 6, 1, 10), d(2150, 6, 3))
    b.admission(sid, 1011, in1 - timedelta(hours=2), d(2150, 1, 10, 12))
    b.icustay(sid, 1011, 1012, in1, d(2150, 1, 3, 10))
    b.rx(sid, 1011, d(2150, 1, 1), "Vancomycin", "Vancomycin HCl")
    b.rx(sid, 1019, d(2150, 6, 1), "Meropenem", "Meropenem")
    b.note(
        sid,
        1011,
        'P101 physician note, "quoted",\nsecond line.',
        charttime=d(2150, 1, 1, 12, 30),
        category="Physician ",
    )
    b.note(sid, 1011, "P101 nursing note before t0.", charttime=d(2150, 1, 1, 11))
    b.note(sid, 1011, "P101 note after t0.", charttime=d(2150, 1, 1, 14))
    b.note(sid, 1019, "P101 second stay note.", charttime=d(2150, 6, 1, 9))
    b.vital(sid, 1011, 1012, 211, d(2150, 1, 1, 10, 30), 90)
    b.vital(sid, 1011, 1012, 220045, d(2150, 1, 1, 12), 95)
    b.vital(sid, 1011, 1012, 220045, d(2150, 1, 1, 12, 30), 400)  # implausible: dropped
    b.vital(sid, 1011, 1012, 220045, d(2150, 1, 1, 13, 30), 130)  # after t0
    b.vital(sid, 1011, 1012, 51, d(2150, 1, 1, 12), 120)
    b.vital(sid, 1011, 1012, 455, d(2150, 1, 1, 12), 110)
    b.vital(sid, 1011, 1012, 618, d(2150, 1, 1, 11), 18)
    b.vital(sid, 1011, 1012, 676, d(2150, 1, 1, 11), 37.0, uom="Deg. C")
    b.vital(sid, 1011, 1012, 646, d(2150, 1, 1, 11), 97)
    b.vital(sid, 1011, 1012, 999, d(2150, 1, 1, 11), 5)  # not a vital
    b.vital(sid, 1019, 1029, 220045, d(2150, 6, 1, 11), 60)  # second stay

    # 102: child
    h, i = plain(102, "F", d(2140, 1, 1), d(2150, 2, 1, 10))
    b.rx(102, h, d(2150, 2, 1), "Ceftriaxone")
    b.note(102, h, "P102 child note.", charttime=d(2150, 2, 1, 11))
    # 103: dies before the window ends
    t = d(2150, 3, 1, 10)
    h, i = plain(103, "M", d(2090, 1, 1), t, death=t + timedelta(hours=7))
    b.note(103, h, "P103 note.", charttime=t + timedelta(hours=1))
    # 104: discharged before the window ends
    t = d(2150, 4, 1, 10)
    h, i = plain(
        104, "F", d(2090, 1, 1), t, disch=t + timedelta(hours=8), out=t + timedelta(hours=5)
    )
    b.note(104, h, "P104 note.", charttime=t + timedelta(hours=1))
    # 105: leaves the ICU before the window ends
    t = d(2150, 5, 1, 10)
    h, i = plain(105, "M", d(2090, 1, 1), t, out=t + timedelta(hours=8, minutes=30))
    b.note(105, h, "P105 note.", charttime=t + timedelta(hours=1))

    # 106: antibiotic two days later; dies after the window; Fahrenheit
    t = d(2150, 6, 10, 10)
    h, i = plain(106, "F", d(2080, 6, 10), t, death=d(2150, 6, 12, 8))
    b.rx(106, h, d(2150, 6, 12), "Ceftriaxone", "Ceftriaxone")
    b.note(106, h, "P106 radiology before t0.", charttime=d(2150, 6, 10, 9), category="Radiology")
    b.note(106, h, "P106 nursing after t0.", charttime=d(2150, 6, 10, 15))
    b.vital(106, h, i, 678, d(2150, 6, 10, 10, 30), 98.6)
    b.vital(106, h, i, 223761, d(2150, 6, 10, 12), 100.4)
    b.vital(106, h, i, 220045, d(2150, 6, 10, 11), 110)

    # 107: generic-name antibiotic; an ISERROR note
    t = d(2150, 7, 1, 10)
    h, i = plain(107, "M", d(2110, 7, 1), t)
    b.rx(107, h, d(2150, 7, 1), "PTZ premix bag", "Piperacillin-Tazobactam Na")
    b.note(107, h, "P107 erroneous note.", charttime=d(2150, 7, 1, 10, 30), iserror=True)
    b.note(107, h, "P107 valid note.", charttime=d(2150, 7, 1, 11))
    b.vital(107, h, i, 220210, d(2150, 7, 1, 12, 59), 22)
    b.vital(107, h, i, 220277, d(2150, 7, 1, 12), 94)

    # 108: no note at all
    t = d(2150, 8, 1, 10)
    h, i = plain(108, "F", d(2100, 8, 1), t)
    b.rx(108, h, d(2150, 8, 1), "Amoxicillin")
    b.vital(108, h, i, 220045, d(2150, 8, 1, 11), 70)

    # 109: older than 89; non-antibiotic in window; CHARTDATE-only notes; no vitals
    t = d(2150, 9, 2, 10)
    h, i = plain(109, "M", d(1850, 1, 1), t, death=d(2150, 9, 20, 6))
    b.rx(109, h, d(2150, 9, 2), "Heparin", "Heparin Sodium", route="SC")
    b.rx(109, h, d(2150, 9, 1), "Vancomycin", "Vancomycin")
    b.note(109, h, "P109 note from the day before.", chartdate=d(2150, 9, 1))
    b.note(109, h, "P109 same-day undated note.", chartdate=d(2150, 9, 2))
    b.note(
        109, h, "P109 discharge summary.", chartdate=d(2150, 9, 20), category="Discharge summary"
    )

    # 110: only an ophthalmic antibiotic
    t = d(2150, 10, 1, 10)
    h, i = plain(110, "F", d(2090, 10, 1), t)
    b.rx(110, h, d(2150, 10, 1), "Erythromycin 0.5% Ophth Oint", "Erythromycin", route="OU")
    b.note(110, h, "P110 note.", charttime=d(2150, 10, 1, 12))
    b.vital(110, h, i, 211, d(2150, 10, 1, 12), 80)
    b.vital(110, h, i, 442, d(2150, 10, 1, 12), 130)

    # 111: window across midnight; category filter
    t = d(2150, 11, 1, 20)
    h, i = plain(111, "M", d(2095, 11, 1), t)
    b.rx(111, h, d(2150, 11, 2), "CefePIME", "Cefepime")
    b.note(111, h, "P111 radiology report.", charttime=d(2150, 11, 1, 21), category="Radiology")
    b.note(111, h, "P111 nursing note.", charttime=d(2150, 11, 1, 22), category="Nursing")
    b.vital(111, h, i, 646, d(2150, 11, 1, 22), 99)

    # 112: CareVue vitals, a text-only row and an ERROR row; note before INTIME
    t = d(2150, 12, 1, 10)
    h, i = plain(112, "F", d(2085, 12, 1), t, death=d(2150, 12, 5))
    b.rx(112, h, d(2150, 12, 1), "Levofloxacin", "Levofloxacin")
    b.note(112, h, "P112 note.", charttime=d(2150, 12, 1, 9, 30))
    b.vital(112, h, i, 211, d(2150, 12, 1, 12), 100)
    b.vital(112, h, "", 211, d(2150, 12, 1, 12, 30), None)
    b.vital(112, h, i, 220045, d(2150, 12, 1, 12, 45), 150, error=1)
    b.vital(112, h, i, 455, d(2150, 12, 1, 12), 100)
    b.vital(112, h, i, 615, d(2150, 12, 1, 12), 25)
    b.vital(112, h, i, 676, d(2150, 12, 1, 12), 36.5)
    b.vital(112, h, i, 646, d(2150, 12, 1, 12), 92)

    # expected cohort of the designed patients
    rows = [
        # sid, hadm, icu, intime, T, T_exact, Y, male, dob, vitals, texts, nursing text
        (
            101,
            1011,
            1012,
            in1,
            1,
            0,
            0,
            1,
            d(2100, 3, 15),
            (95, 115, 18, 37.0, 97),
            ["P101 nursing note before t0.", 'P101 physician note, "quoted",\nsecond line.'],
            "P101 nursing note before t0.",
        ),
        (
            106,
            1061,
            1062,
            d(2150, 6, 10, 10),
            0,
            0,
            1,
            0,
            d(2080, 6, 10),
            (110, None, None, 38.0, None),
            ["P106 radiology before t0."],
            None,
        ),
        (
            107,
            1071,
            1072,
            d(2150, 7, 1, 10),
            1,
            0,
            0,
            1,
            d(2110, 7, 1),
            (None, None, 22, None, 94),
            ["P107 valid note."],
            "P107 valid note.",
        ),
        (
            109,
            1091,
            1092,
            d(2150, 9, 2, 10),
            0,
            0,
            1,
            1,
            None,
            (None, None, None, None, None),
            ["P109 note from the day before."],
            "P109 note from the day before.",
        ),
        (
            110,
            1101,
            1102,
            d(2150, 10, 1, 10),
            0,
            0,
            0,
            0,
            d(2090, 10, 1),
            (80, 130, None, None, None),
            ["P110 note."],
            "P110 note.",
        ),
        (
            111,
            1111,
            1112,
            d(2150, 11, 1, 20),
            1,
            1,
            0,
            1,
            d(2095, 11, 1),
            (None, None, None, None, 99),
            ["P111 radiology report.", "P111 nursing note."],
            "P111 nursing note.",
        ),
        (
            112,
            1121,
            1122,
            d(2150, 12, 1, 10),
            1,
            0,
            1,
            0,
            d(2085, 12, 1),
            (100, 100, 25, 36.5, 92),
            ["P112 note."],
            "P112 note.",
        ),
    ]

    # extra plain patients drawn with the seed
    rng = np.random.default_rng(seed)
    for k in range(n_patients - N_DESIGNED):
        sid = 200 + k
        t = d(2160, 1, 1, 10) + timedelta(days=int(rng.integers(0, 300)))
        treated = int(rng.integers(0, 2))
        dies = int(rng.integers(0, 2))
        male = int(rng.integers(0, 2))
        hr = float(rng.integers(60, 120))
        dob = t - timedelta(days=int(rng.integers(25, 80) * 365.25))
        h, i = plain(sid, "M" if male else "F", dob, t, death=t + far if dies else None)
        b.rx(sid, h, t if treated else t + timedelta(days=3), "Cefazolin", "Cefazolin")
        b.note(sid, h, f"Filler {sid} note.", charttime=t + timedelta(hours=1))
        b.vital(sid, h, i, 220045, t + timedelta(hours=1), hr)
        rows.append(
            (
                sid,
                h,
                i,
                t,
                treated,
                0,
                dies,
                male,
                dob,
                (hr, None, None, None, None),
                [f"Filler {sid} note."],
                f"Filler {sid} note.",
            )
        )

    ext = ".csv.gz" if gzip else ".csv"
    tables = {
        "PATIENTS": b.patients,
        "ADMISSIONS": b.admissions,
        "ICUSTAYS": b.icustays,
        "PRESCRIPTIONS": b.prescriptions,
        "NOTEEVENTS": b.notes,
        "CHARTEVENTS": b.chart,
    }
    for name, records in tables.items():
        pd.DataFrame(records).to_csv(folder / f"{name}{ext}", index=False)

    n_extra = n_patients - N_DESIGNED
    ages = []
    for r in rows:
        if r[8] is None:
            ages.append(91.4)
        else:
            ages.append((r[3] - r[8]).total_seconds() / (365.25 * 86400))
    vitals = pd.DataFrame(
        [[np.nan if v is None else float(v) for v in r[9]] for r in rows], columns=VITALS
    )
    return {
        "ids": pd.DataFrame(
            {
                "SUBJECT_ID": [r[0] for r in rows],
                "HADM_ID": [r[1] for r in rows],
                "ICUSTAY_ID": [r[2] for r in rows],
                "t0": [r[3] + timedelta(hours=3) for r in rows],
            }
        ),
        "T": np.array([r[4] for r in rows]),
        "T_exact": np.array([r[5] for r in rows]),
        "Y": np.array([r[6] for r in rows]),
        "male": np.array([r[7] for r in rows], dtype=float),
        "age": np.array(ages),
        "vitals": vitals,
        "texts": ["\n\n".join(r[10]) for r in rows],
        "nursing_texts": {r[0]: r[11] for r in rows if r[11] is not None},
        "flow": {
            "icu_stays": 13 + n_extra,
            "first_icu_stay": 12 + n_extra,
            "linked_patient_admission": 12 + n_extra,
            "adult": 11 + n_extra,
            "alive_at_window_end": 10 + n_extra,
            "in_hospital_at_window_end": 9 + n_extra,
            "in_icu_at_window_end": 8 + n_extra,
            "with_notes_before_t0": 7 + n_extra,
        },
        "n_age_over_89": 1,
    }
