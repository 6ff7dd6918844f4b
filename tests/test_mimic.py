"""The MIMIC-III cohort builder on a miniature fixture in the published schema."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ehrcausal.data.mimic import AGE_OVER_89, VITAL_ITEMIDS, build_mimic_cohort

from .mimic_fixture import VITALS, write_mimic_fixture

TABLES = ("PATIENTS", "ADMISSIONS", "ICUSTAYS", "PRESCRIPTIONS", "NOTEEVENTS", "CHARTEVENTS")


@pytest.fixture(scope="module")
def mimic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("mimic")
    expected = write_mimic_fixture(folder)
    return folder, expected


@pytest.fixture(scope="module")
def cohort(mimic):
    folder, _ = mimic
    return build_mimic_cohort(folder, progress=False)


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for p in src.iterdir():
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


def test_cohort_rows_treatment_outcome_and_text(mimic, cohort):
    _, exp = mimic
    ids = cohort.modalities["ids"]
    pd.testing.assert_frame_equal(
        ids[["SUBJECT_ID", "HADM_ID", "ICUSTAY_ID"]],
        exp["ids"][["SUBJECT_ID", "HADM_ID", "ICUSTAY_ID"]],
        check_dtype=False,
    )
    assert list(pd.to_datetime(ids["t0"])) == list(exp["ids"]["t0"])
    np.testing.assert_array_equal(cohort.T, exp["T"])
    np.testing.assert_array_equal(cohort.Y, exp["Y"])
    assert cohort.text == exp["texts"]
    assert cohort.tau is None and not cohort.has_truth
    assert cohort.meta["source"] == "MIMIC-III v1.4 (user-supplied)"


def test_attrition_flow_and_counts(mimic, cohort):
    _, exp = mimic
    assert cohort.meta["flow"] == exp["flow"]
    assert len(cohort) == exp["flow"]["with_notes_before_t0"]
    assert cohort.meta["n_age_over_89"] == exp["n_age_over_89"]
    assert cohort.meta["n_stays_without_notes"] == 1  # patient 108
    assert cohort.meta["n_error_notes_skipped"] == 1  # patient 107


def test_tabular_features_vitals_and_imputation(mimic, cohort):
    _, exp = mimic
    X = cohort.X
    assert list(X.columns) == ["age", "male", *VITALS, *(f"{v}_missing" for v in VITALS)]
    assert not X.isna().any().any()
    np.testing.assert_allclose(X["age"], exp["age"], atol=1e-6)
    assert X["age"].iloc[3] == AGE_OVER_89  # patient 109, shifted DOB
    np.testing.assert_array_equal(X["male"], exp["male"])
    raw = exp["vitals"]
    for v in VITALS:
        miss = raw[v].isna().to_numpy()
        np.testing.assert_array_equal(X[f"{v}_missing"], miss.astype(float))
        np.testing.assert_allclose(X.loc[~miss, v], raw.loc[~miss, v], atol=1e-9)
        np.testing.assert_allclose(X.loc[miss, v], np.nanmedian(raw[v]))
    # Fahrenheit converted: 100.4 F -> 38 C for patient 106; two systolic values averaged
    assert X["temperature"].iloc[1] == pytest.approx(38.0)
    assert X["sbp"].iloc[0] == pytest.approx(115.0)
    assert X["heart_rate"].iloc[0] == pytest.approx(95.0)  # not the value after t0 nor 400
    assert set(cohort.meta["vital_medians"]) == set(VITAL_ITEMIDS)


def test_exact_prescription_rule(mimic):
    folder, exp = mimic
    ds = build_mimic_cohort(folder, prescription_rule="exact", progress=False)
    np.testing.assert_array_equal(ds.T, exp["T_exact"])


def test_note_category_filter(mimic):
    folder, exp = mimic
    ds = build_mimic_cohort(folder, note_categories=["nursing"], progress=False)
    got = dict(zip(ds.modalities["ids"]["SUBJECT_ID"], ds.text, strict=True))
    assert got == exp["nursing_texts"]
    assert ds.meta["flow"]["with_notes_before_t0"] == len(exp["nursing_texts"])


def test_min_age_lets_the_child_in(mimic):
    folder, _ = mimic
    ds = build_mimic_cohort(folder, min_age=5, progress=False)
    subjects = list(ds.modalities["ids"]["SUBJECT_ID"])
    assert 102 in subjects
    assert ds.T[subjects.index(102)] == 1  # ceftriaxone on the day of t0


def test_gzip_chunks_and_extra_patients(tmp_path):
    exp = write_mimic_fixture(tmp_path, seed=3, n_patients=15, gzip=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{t}.csv.gz" for t in TABLES)
    ds = build_mimic_cohort(tmp_path, chunksize=2, progress=False)
    np.testing.assert_array_equal(ds.modalities["ids"]["SUBJECT_ID"], exp["ids"]["SUBJECT_ID"])
    np.testing.assert_array_equal(ds.T, exp["T"])
    np.testing.assert_array_equal(ds.Y, exp["Y"])
    assert ds.text == exp["texts"]
    assert ds.meta["flow"] == exp["flow"]
    hr = exp["vitals"]["heart_rate"]
    np.testing.assert_allclose(ds.X.loc[hr.notna().to_numpy(), "heart_rate"], hr.dropna())


# ------------------------------------------------------------------------------------ errors


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="MIMIC-III folder not found.*nowhere"):
        build_mimic_cohort(tmp_path / "nowhere", progress=False)


def test_missing_tables_are_all_listed(mimic, tmp_path):
    folder = _copy(mimic[0], tmp_path / "m")
    (folder / "NOTEEVENTS.csv").unlink()
    (folder / "PATIENTS.csv").unlink()
    with pytest.raises(FileNotFoundError) as err:
        build_mimic_cohort(folder, progress=False)
    msg = str(err.value)
    assert "PATIENTS.csv[.gz]" in msg and "NOTEEVENTS.csv[.gz]" in msg
    assert "lacks 2 table" in msg
    assert "CHARTEVENTS.csv[.gz]" in msg  # the expected list names every table


def test_missing_columns(mimic, tmp_path):
    folder = _copy(mimic[0], tmp_path / "m")
    pat = pd.read_csv(folder / "PATIENTS.csv").drop(columns=["DOB", "GENDER"])
    pat.to_csv(folder / "PATIENTS.csv", index=False)
    with pytest.raises(ValueError, match=r"PATIENTS.*\['GENDER', 'DOB'\]"):
        build_mimic_cohort(folder, progress=False)


def test_unparsable_dates(mimic, tmp_path):
    folder = _copy(mimic[0], tmp_path / "m")
    icu = pd.read_csv(folder / "ICUSTAYS.csv", dtype=str)
    icu.loc[2, "INTIME"] = "not a date"
    icu.to_csv(folder / "ICUSTAYS.csv", index=False)
    with pytest.raises(ValueError, match="ICUSTAYS, column INTIME.*'not a date'"):
        build_mimic_cohort(folder, progress=False)


def test_empty_cohort_reports_attrition(mimic):
    with pytest.raises(ValueError, match=re.escape("adult: 0")) as err:
        build_mimic_cohort(mimic[0], min_age=150, progress=False)
    assert "first_icu_stay: 12" in str(err.value)


def test_empty_after_notes_reports_attrition(mimic):
    with pytest.raises(ValueError, match="with_notes_before_t0: 0"):
        build_mimic_cohort(mimic[0], note_categories=["Echo"], progress=False)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"treatment_window_hours": 0}, "treatment_window_hours"),
        ({"treatment_window_hours": float("inf")}, "treatment_window_hours"),
        ({"min_age": True}, "min_age"),
        ({"t0_offset_hours": float("nan")}, "t0_offset_hours"),
        ({"min_age": -1}, "min_age"),
        ({"antibiotics": []}, "antibiotics is empty"),
        ({"antibiotics": "vancomycin"}, "antibiotics must be a sequence"),
        ({"note_categories": [""]}, "note_categories"),
        ({"prescription_rule": "fuzzy"}, "prescription_rule"),
        ({"chunksize": 0}, "chunksize"),
        ({"chunksize": 1000.0}, "chunksize"),
    ],
)
def test_bad_parameters(mimic, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_mimic_cohort(mimic[0], progress=False, **kwargs)
