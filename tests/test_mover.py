"""The MOVER EPIC EMR spinal-fusion loader on a miniature fixture in the export's schema."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ehrcausal.data.mover import DEFAULT_LABS, MOVER_TABLES, load_mover_spine

from .mover_fixture import LABS, write_mover_fixture


@pytest.fixture(scope="module")
def mover(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("mover")
    return folder, write_mover_fixture(folder)


@pytest.fixture(scope="module")
def cohort(mover):
    return load_mover_spine(mover[0], progress=False)


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for p in src.iterdir():
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


def test_rows_treatment_and_outcome(mover, cohort):
    _, exp = mover
    ids = cohort.modalities["ids"]
    assert list(ids["LOG_ID"]) == exp["log_ids"]
    assert list(ids["MRN"]) == exp["mrn"]
    np.testing.assert_array_equal(cohort.T, exp["T"])
    np.testing.assert_array_equal(cohort.Y, exp["Y"])
    assert cohort.Y.dtype.kind == "i" and cohort.Y.max() == 3
    np.testing.assert_array_equal(cohort.modalities["n_complications"], exp["n_complications"])
    assert cohort.tau is None and cohort.text is None
    assert cohort.meta["source"].startswith("MOVER EPIC EMR")


def test_attrition(mover, cohort):
    _, exp = mover
    assert cohort.meta["flow"] == exp["flow"]
    assert cohort.meta["n_approach_combined"] == exp["n_combined"]
    assert cohort.meta["n_approach_unknown"] == exp["n_unknown"]


def test_features_units_labs_and_imputation(mover, cohort):
    _, exp = mover
    X = cohort.X
    assert not X.isna().any().any()
    lab_cols = [f"lab_{lab}" for lab in LABS]
    assert list(X.columns[: 4 + len(LABS) + 2]) == [
        "age",
        "male",
        "bmi",
        "asa",
        *lab_cols,
        "n_preop_medications",
        "n_history",
    ]
    assert tuple(DEFAULT_LABS) == LABS
    np.testing.assert_allclose(X["age"], exp["age"])
    np.testing.assert_array_equal(X["male"], exp["male"])
    for name, want in (("bmi", exp["bmi"]), ("asa", exp["asa"])):
        miss = np.isnan(want)
        assert miss.sum() == 1
        np.testing.assert_allclose(X.loc[~miss, name], want[~miss], rtol=1e-6)
        np.testing.assert_allclose(X.loc[miss, name], np.nanmedian(want), rtol=1e-6)
        np.testing.assert_array_equal(X[f"{name}_missing"], miss.astype(float))
    # 80 kg at 5' 10" (1.778 m): BMI 25.31
    assert X["bmi"].iloc[0] == pytest.approx(80.0 / 1.778**2, rel=1e-6)
    for lab in LABS:
        raw = exp["labs"][lab].to_numpy()
        miss = np.isnan(raw)
        np.testing.assert_allclose(X.loc[~miss, f"lab_{lab}"], raw[~miss], rtol=1e-9)
        np.testing.assert_allclose(X.loc[miss, f"lab_{lab}"], np.nanmedian(raw))
        np.testing.assert_array_equal(X[f"lab_{lab}_missing"], miss.astype(float))
    row = dict(zip(exp["log_ids"], range(len(exp["log_ids"])), strict=True))
    assert X.loc[row["a01"], "lab_hemoglobin"] == pytest.approx(13.9)  # not A1c, not post-OR
    assert X.loc[row["a01"], "lab_potassium"] == pytest.approx(4.2)  # mean at the last time
    assert X.loc[row["a11"], "lab_hemoglobin"] == pytest.approx(14.2)  # not the same-day one
    np.testing.assert_array_equal(X["n_preop_medications"], exp["n_preop_medications"])
    np.testing.assert_array_equal(X["n_history"], exp["n_history"])


def test_lab_window_is_a_parameter(mover):
    ds = load_mover_spine(mover[0], lab_window_days=5, progress=False)
    ids = list(ds.modalities["ids"]["LOG_ID"])
    # a01's last hemoglobin (3 days before) stays; a03's platelets (10 days before) go
    assert ds.X.loc[ids.index("a01"), "lab_hemoglobin"] == pytest.approx(13.9)
    assert ds.X.loc[ids.index("a03"), "lab_platelets_missing"] == 1.0
    assert ds.X.loc[ids.index("a01"), "lab_sodium_missing"] == 1.0  # 7 days before


def test_lateral_as_posterior_option_and_cap(mover):
    folder, exp = mover
    ds = load_mover_spine(folder, lateral_as_anterior=False, max_complications=1, progress=False)
    assert "a05" not in list(ds.modalities["ids"]["LOG_ID"])
    assert ds.meta["flow"]["approach_determined"] == exp["flow"]["approach_determined"] - 1
    assert ds.meta["n_approach_unknown"] == exp["n_unknown"] + 1
    assert set(np.unique(ds.Y)) == {0, 1}


def test_custom_lab_mapping(mover):
    ds = load_mover_spine(mover[0], labs={"hba1c": r"hemoglobin a1c"}, progress=False)
    lab_cols = [c for c in ds.X.columns if c.startswith("lab_")]
    assert lab_cols == ["lab_hba1c", "lab_hba1c_missing"]
    ids = list(ds.modalities["ids"]["LOG_ID"])
    assert ds.X.loc[ids.index("a01"), "lab_hba1c"] == pytest.approx(6.1)


def test_gzip_birth_dates_and_no_record_type(tmp_path):
    exp = write_mover_fixture(tmp_path, gzip=True, birth_as_date=True, record_type=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{t}.csv.gz" for t in MOVER_TABLES)
    ds = load_mover_spine(tmp_path, chunksize=3, progress=False)
    assert list(ds.modalities["ids"]["LOG_ID"]) == exp["log_ids"]
    np.testing.assert_array_equal(ds.Y, exp["Y"])
    np.testing.assert_allclose(ds.X["age"], exp["age"], rtol=1e-9)
    np.testing.assert_array_equal(ds.X["n_preop_medications"], exp["n_all_medications"])
    assert "no RECORD_TYPE" in ds.meta["medication_rule"]


# ------------------------------------------------------------------------------------ errors


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="MOVER EPIC_EMR folder not found.*absent"):
        load_mover_spine(tmp_path / "absent", progress=False)


def test_missing_tables_are_all_listed(mover, tmp_path):
    folder = _copy(mover[0], tmp_path / "m")
    (folder / "patient_labs.csv").unlink()
    (folder / "patient_history.csv").unlink()
    with pytest.raises(FileNotFoundError) as err:
        load_mover_spine(folder, progress=False)
    msg = str(err.value)
    assert "lacks 2 table" in msg
    assert "patient_labs.csv[.gz]" in msg and "patient_history.csv[.gz]" in msg


def test_missing_columns(mover, tmp_path):
    folder = _copy(mover[0], tmp_path / "m")
    path = folder / "patient_post_op_complications.csv"
    pd.read_csv(path).drop(columns=["Element_Name"]).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"patient_post_op_complications.*\['ELEMENT_NAME'\]"):
        load_mover_spine(folder, progress=False)


def test_missing_age_column(mover, tmp_path):
    folder = _copy(mover[0], tmp_path / "m")
    path = folder / "patient_information.csv"
    pd.read_csv(path).drop(columns=["BIRTH_DATE"]).to_csv(path, index=False)
    with pytest.raises(ValueError, match="patient_information lacks an age column"):
        load_mover_spine(folder, progress=False)


def test_unparsable_dates(mover, tmp_path):
    folder = _copy(mover[0], tmp_path / "m")
    path = folder / "patient_information.csv"
    info = pd.read_csv(path, dtype=str)
    info.loc[0, "SURGERY_DATE"] = "yesterday-ish"
    info.to_csv(path, index=False)
    with pytest.raises(ValueError, match="patient_information, column SURGERY_DATE"):
        load_mover_spine(folder, progress=False)


def test_no_fusion_procedures(mover, tmp_path):
    folder = _copy(mover[0], tmp_path / "m")
    path = folder / "patient_information.csv"
    info = pd.read_csv(path, dtype=str)
    info["PRIMARY_PROCEDURE_NM"] = "TOTAL KNEE ARTHROPLASTY"
    info.to_csv(path, index=False)
    with pytest.raises(ValueError, match=re.escape("no spinal-fusion procedures")) as err:
        load_mover_spine(folder, progress=False)
    assert "11 surgeries, 0 named a fusion" in str(err.value)


def test_no_determined_approach(mover, tmp_path):
    folder = _copy(mover[0], tmp_path / "m")
    path = folder / "patient_information.csv"
    info = pd.read_csv(path, dtype=str)
    info["PRIMARY_PROCEDURE_NM"] = "LUMBAR SPINAL FUSION"
    info.to_csv(path, index=False)
    with pytest.raises(ValueError, match="no spinal fusion with a determined approach"):
        load_mover_spine(folder, progress=False)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"labs": []}, "labs is empty"),
        ({"labs": "hemoglobin"}, "labs must be a sequence"),
        ({"labs": ["sodium", "sodium"]}, "duplicates"),
        ({"labs": {"x": "("}}, "not a valid regular expression"),
        ({"lab_window_days": 0}, "lab_window_days"),
        ({"lab_window_days": float("inf")}, "lab_window_days"),
        ({"max_complications": 0}, "max_complications"),
        ({"max_complications": 2.5}, "max_complications"),
        ({"lateral_as_anterior": "yes"}, "lateral_as_anterior"),
        ({"chunksize": -1}, "chunksize"),
        ({"chunksize": True}, "chunksize"),
    ],
)
def test_bad_parameters(mover, kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_mover_spine(mover[0], progress=False, **kwargs)
