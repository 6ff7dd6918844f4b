"""The four-modality multitask simulator: tasks, modalities, the true dependency, the shared-
causes knob, missingness, notes that never name a diagnosis, and which modality carries what."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ehrcausal.data import modality_recoverability, simulate_multimodal
from ehrcausal.data.multimodal import (
    DIAGNOSIS_TERMS,
    IMAGE_SIZE,
    MODALITIES,
    PROBLEM_CLASSES,
    true_dependency,
)
from ehrcausal.text.notes import contains_forbidden_term


@pytest.fixture(scope="module")
def ds():
    return simulate_multimodal(400, seed=3)


def test_tasks_cover_the_four_problem_classes(ds):
    t = ds.tasks
    counts = t.problem_class.value_counts()
    assert len(t) >= 40 and set(t.problem_class) == set(PROBLEM_CLASSES)
    assert counts["binary"] >= 30 and counts["multiclass"] >= 2 and counts["regression"] >= 3
    assert counts["clustering"] == 1
    assert t[t.problem_class == "binary"].department.nunique() >= 6
    assert list(ds.targets.columns) == list(t.name)
    assert list(ds.dependency.index) == list(t.name) == list(ds.dependency.columns)


def test_targets_have_the_types_of_their_class_and_missing_labels(ds):
    y, t = ds.targets, ds.tasks.set_index("name")
    for name in y:
        v = y[name].dropna().to_numpy()
        cls = t.loc[name, "problem_class"]
        if cls == "binary":
            assert set(np.unique(v)) == {0.0, 1.0}
        elif cls in ("multiclass", "clustering"):
            assert set(np.unique(v)) == set(range(int(t.loc[name, "n_classes"])))
        else:
            assert (v > 0).all() and len(np.unique(v)) > 100
    share = y.isna().to_numpy().mean()
    assert 0.06 < share < 0.14  # label_missing = 0.1


def test_modalities_shapes_units_and_missingness(ds):
    m = ds.modalities
    assert set(m) == set(MODALITIES)
    tab = m["tabular"]
    assert any(c.endswith("_mg_dL") for c in tab) and "age_years" in tab
    assert tab.notna().all().all()
    img = m["image"]
    assert img.shape == (400, IMAGE_SIZE, IMAGE_SIZE) and img.dtype == np.float32
    present = np.isfinite(img).all(axis=(1, 2))
    assert (np.isnan(img[~present])).all() and ((img[present] >= 0) & (img[present] <= 1)).all()
    assert 0.15 < 1 - present.mean() < 0.35  # image missing with probability 0.25
    ts = m["timeseries"]
    h = ts.hours
    ok = np.isfinite(h)
    assert ((h[ok] >= 0) & (h[ok] <= 48)).all()
    assert np.array_equal(ok, np.isfinite(ts.values))
    assert (np.diff(np.where(ok, h, 1e9), axis=2) >= 0).all()  # sorted times, observed first
    counts = ok.sum(axis=2)
    assert len(np.unique(counts)) > 5  # irregular sampling
    assert ((counts == 0) & ts.observed()[:, None]).any()  # a missing channel
    binned = ts.binned(12)
    assert binned.shape == (400, 12, 2 * len(ts.channels))
    assert [t is None for t in m["text"]] == list(ds.latent["missing"]["text"])


def test_notes_never_name_a_diagnosis(ds):
    notes = [t for t in ds.modalities["text"] if t is not None]
    assert len(notes) > 300
    bad = [t for t in notes if contains_forbidden_term(t, DIAGNOSIS_TERMS)]
    assert not bad, bad[:2]
    assert "pneumonia" in DIAGNOSIS_TERMS and "heart failure" in DIAGNOSIS_TERMS


def test_same_seed_same_data_other_seed_other_data(ds):
    again = simulate_multimodal(400, seed=3)
    pd.testing.assert_frame_equal(again.targets, ds.targets)
    np.testing.assert_array_equal(again.modalities["image"], ds.modalities["image"])
    assert again.modalities["text"] == ds.modalities["text"]
    other = simulate_multimodal(400, seed=4)
    assert not other.targets.equals(ds.targets)


def test_true_dependency_structure_and_the_shared_knob(ds):
    D = ds.dependency.to_numpy()
    assert np.allclose(D, D.T) and np.allclose(np.diag(D), 1) and (D >= 0).all() and (D <= 1).all()
    t = ds.tasks
    b = t.index[t.problem_class == "binary"]
    dept = t.department.to_numpy()
    same = [D[i, j] for i in b for j in b if i < j and dept[i] == dept[j]]
    other = [D[i, j] for i in b for j in b if i < j and dept[i] != dept[j]]
    assert np.mean(same) > np.mean(other) + 0.2
    zero = simulate_multimodal(400, seed=3, shared=0.0)
    np.testing.assert_allclose(zero.dependency.to_numpy(), np.eye(len(t)))
    np.testing.assert_allclose(true_dependency(0.0).to_numpy(), np.eye(len(t)))
    # the knob acts on the labels only: same patients, same pictures and notes
    np.testing.assert_array_equal(zero.modalities["image"], ds.modalities["image"])
    assert zero.modalities["text"] == ds.modalities["text"]
    assert not zero.targets.equals(ds.targets)
    # without shared causes, two diagnoses of a department are (empirically) unrelated
    big0 = simulate_multimodal(2000, seed=1, shared=0.0, label_missing=0.0)
    big1 = simulate_multimodal(2000, seed=1, shared=1.0, label_missing=0.0)
    r0 = big0.targets[["heart_failure", "atrial_fibrillation"]].corr().iloc[0, 1]
    r1 = big1.targets[["heart_failure", "atrial_fibrillation"]].corr().iloc[0, 1]
    assert abs(r0) < 0.05 < 0.15 < r1


def test_each_private_signal_is_readable_from_its_marker_modality_only():
    ds = simulate_multimodal(1000, seed=0)
    r = modality_recoverability(ds)
    mods = list(MODALITIES)
    marked = r[r.marker_modality != "none"]
    by = marked.groupby("marker_modality")[mods].mean()
    for m in mods:
        assert by.loc[m, m] > 0.06
        assert by.loc[m, m] > by.loc[m, [o for o in mods if o != m]].max() + 0.05
    assert (r[r.marker_modality == "none"][mods] < 0.05).all().all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 5}, "n must be an integer >= 20"),
        ({"shared": -1.0}, "shared must be a number"),
        ({"label_missing": 0.95}, "label_missing"),
        ({"modality_missing": {"tabular": 0.5}}, "modality_missing keys"),
        ({"modality_missing": {"image": 1.5}}, r"modality_missing\['image'\]"),
        ({"style": "terse"}, "style must be one of"),
        ({"split": (0.5, 0.5)}, "split"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_knobs_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate_multimodal(**{"n": 50, **kwargs})


def test_take_and_subset_keep_rows_aligned(ds):
    tr = ds.subset("train")
    rows = np.flatnonzero(ds.split == "train")
    assert len(tr) == len(rows) == len(tr.modalities["text"]) == len(tr.modalities["timeseries"])
    np.testing.assert_array_equal(tr.modalities["image"], ds.modalities["image"][rows])
    pd.testing.assert_frame_equal(tr.targets, ds.targets.iloc[rows].reset_index(drop=True))
