"""The HAIM-MIMIC-MM loader on a generated miniature of the published embeddings file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ehrcausal.data.haim import FINDINGS, load_haim_mimic_mm
from ehrcausal.data.multimodal import MultimodalDataset
from ehrcausal.data.tables import attrition_table
from tests.haim_fixture import SIZES, write_haim_fixture


@pytest.fixture(scope="module")
def haim(tmp_path_factory):
    root = tmp_path_factory.mktemp("haim")
    expected = write_haim_fixture(root)
    return root, expected


@pytest.fixture(scope="module")
def ds(haim):
    root, _ = haim
    return load_haim_mimic_mm(root, min_positives=2)


def test_modalities_shapes_and_groups(haim, ds):
    _, expected = haim
    assert isinstance(ds, MultimodalDataset) and ds.dependency is None
    n = len(expected["labelled"])
    assert len(ds) == n
    assert set(ds.modalities) == {"tabular", "text", "image"}
    tab = ds.modalities["tabular"]
    assert list(tab.columns[:6]) == [f"de_{j}" for j in range(6)]
    assert tab.shape == (n, sum(SIZES[p] for p in ("de_", "ts_ce_", "ts_le_", "ts_pe_")))
    assert ds.modalities["text"].shape == (n, 12)
    assert ds.modalities["image"].shape == (n, 8 + 18 + 8 + 18)
    assert not any(c.startswith("vd_") for c in ds.modalities["image"].columns
                   if c.startswith("vmd_"))
    # the values are the file's, row for row
    np.testing.assert_allclose(tab["ts_le_3"].to_numpy(),
                               expected["labelled"]["ts_le_3"].to_numpy(), rtol=1e-6)
    assert ds.meta["groups"]["stay_images_dense"] == 8 and ds.meta["groups"]["image_dense"] == 8


def test_tabular_layout_puts_every_group_in_tabular(haim):
    root, _ = haim
    flat = load_haim_mimic_mm(root, layout="tabular", min_positives=2)
    assert set(flat.modalities) == {"tabular"}
    assert flat.modalities["tabular"].shape[1] == sum(SIZES.values())


def test_labels_follow_haims_rules(haim, ds):
    _, expected = haim
    src = expected["labelled"]
    y = ds.targets
    for f in ("Atelectasis", "Lung Opacity"):
        name = f.lower().replace(" ", "_")
        v = src[f].to_numpy()
        assert np.array_equal(np.isnan(y[name]), ~np.isin(v, (0.0, 1.0)))  # -1 and empty
        assert np.array_equal(y[name].dropna().to_numpy(), v[np.isin(v, (0.0, 1.0))])
    hours, died = src.img_length_of_stay.to_numpy(), src.death_status.to_numpy()
    short = hours < 48
    alive_short = (died == 0) & short
    assert y["mortality_48h"][alive_short].isna().all()  # left out, as HAIM does
    assert (y["mortality_48h"][(died == 1) & short] == 1).all()
    assert (y["mortality_48h"][(died == 1) & ~short] == 0).all()
    assert (y["discharge_48h"][alive_short] == 1).all()
    assert (y["discharge_48h"][died == 1] == 0).all()
    np.testing.assert_allclose(y["hours_to_discharge"], hours)
    cls = ds.tasks.set_index("name").problem_class
    assert cls["hours_to_discharge"] == "regression" and cls["atelectasis"] == "binary"
    assert set(ds.tasks.department) == {"radiology", "outcomes", "operations"}


def test_split_is_by_patient(ds):
    subject = ds.meta["ids"]["subject_id"].to_numpy()
    per_patient = pd.Series(ds.split).groupby(subject).nunique()
    assert (per_patient == 1).all()
    assert set(ds.split) == {"train", "val", "test"}


def test_split_depends_on_seed_only(haim, ds):
    root, _ = haim
    again = load_haim_mimic_mm(root, min_positives=2)
    other = load_haim_mimic_mm(root, min_positives=2, seed=1)
    assert np.array_equal(again.split, ds.split)
    assert not np.array_equal(other.split, ds.split)


def test_attrition_counts(haim, ds):
    _, expected = haim
    got = {step: (c["rows"], c["stays"], c["patients"]) for step, c in ds.meta["flow"].items()}
    assert got == expected["flow"]
    table = attrition_table(ds.meta["flow"])
    assert list(table.columns) == ["rows", "stays", "patients", "excluded"]
    assert table.excluded.iloc[0] == 0
    assert table.excluded.sum() == table.rows.iloc[0] - table.rows.iloc[-1]


def test_min_positives_drops_rare_tasks(haim):
    root, _ = haim
    strict = load_haim_mimic_mm(root, min_positives=10_000)
    assert list(strict.tasks.name) == ["hours_to_discharge"]
    assert len(strict.meta["dropped_tasks"]) == len(FINDINGS) + 2


def test_subject_column_needs_no_key_file(tmp_path):
    write_haim_fixture(tmp_path, key_file=False, subject_column=True)
    ds = load_haim_mimic_mm(tmp_path, min_positives=2)
    assert ds.meta["patient_ids"].startswith("subject_id column")
    assert ds.meta["flow"]["with_patient_id"]["patients"] == 14


def test_missing_key_file_is_explained(tmp_path):
    write_haim_fixture(tmp_path, key_file=False)
    with pytest.raises(ValueError, match="haim_mimiciv_key_ids.csv"):
        load_haim_mimic_mm(tmp_path)


def test_missing_file_and_folder(tmp_path, monkeypatch):
    (tmp_path / "haim_mimic_mm").mkdir()
    with pytest.raises(FileNotFoundError, match="cxr_ic_fusion_1103.csv"):
        load_haim_mimic_mm(tmp_path)
    monkeypatch.delenv("EHRCAUSAL_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="EHRCAUSAL_DATA"):
        load_haim_mimic_mm()


def test_environment_variable_is_used(haim, monkeypatch):
    root, expected = haim
    monkeypatch.setenv("EHRCAUSAL_DATA", str(root))
    assert len(load_haim_mimic_mm(min_positives=2)) == len(expected["labelled"])


def test_missing_columns_are_named(tmp_path):
    write_haim_fixture(tmp_path, drop=("death_status",))
    with pytest.raises(ValueError, match="death_status"):
        load_haim_mimic_mm(tmp_path)


def test_no_feature_column(tmp_path):
    drop = tuple(f"{p}{j}" for p, size in SIZES.items() for j in range(size))
    write_haim_fixture(tmp_path, drop=drop)
    with pytest.raises(ValueError, match="no feature column"):
        load_haim_mimic_mm(tmp_path)


@pytest.mark.parametrize("kwargs, match", [
    ({"layout": "wide"}, "layout"), ({"min_positives": 0}, "min_positives"),
    ({"split": (0.5, 0.5)}, "split"), ({"seed": -1}, "seed"),
])
def test_bad_parameters(haim, kwargs, match):
    root, _ = haim
    with pytest.raises(ValueError, match=match):
        load_haim_mimic_mm(root, **kwargs)


@pytest.mark.parametrize("learner, budget", [("haim_gbt", {"n_estimators": 3}),
                                             ("m3h", {"epochs": 1, "hidden": 8})])
def test_the_multitask_learners_take_the_tabular_layout(haim, learner, budget):
    """The call the chapter shows for HAIM-MIMIC-MM runs on the miniature."""
    from ehrcausal.chapters.m3h import task_metrics
    from ehrcausal.learners import make

    root, _ = haim
    flat = load_haim_mimic_mm(root, layout="tabular", min_positives=2)
    train, test = flat.take(flat.split != "test"), flat.subset("test")
    extra = {"val_mask": train.split == "val"} if learner == "m3h" else {}
    est = make(learner, random_state=0, **budget).fit(
        train.modalities, train.targets, tasks=flat.tasks, **extra)
    scores = est.predict_scores(test.modalities)
    assert set(scores) == set(flat.tasks.name)
    assert all(len(v) == len(test) for v in scores.values())
    assert len(task_metrics(scores, test.targets, flat.tasks)) == len(flat.tasks)
