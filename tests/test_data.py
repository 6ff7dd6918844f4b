"""CausalDataset and the IHDP loader: checksums, protocol split, clear errors."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from ehrcausal.data import CausalDataset, load_ihdp, protocol_split


def test_ihdp_realization_1_matches_published_facts(ihdp_dir):
    ds = load_ihdp(1, ihdp_dir)
    assert len(ds) == 747 and ds.n_treated == 139 and ds.X.shape[1] == 25
    assert ds.tau.mean() == pytest.approx(4.016, abs=5e-4)  # data/README.md
    np.testing.assert_allclose(ds.tau, ds.mu1 - ds.mu0)
    assert set(np.unique(ds.X["x14"])) == {0.0, 1.0}  # shifted from {1, 2}
    assert ds.meta["realization"] == 1 and len(ds.meta["sha256"]) == 64


def test_ihdp_split_fractions_and_determinism(ihdp_dir):
    a, b = load_ihdp(3, ihdp_dir), load_ihdp(3, ihdp_dir)
    counts = pd.Series(a.split).value_counts()
    assert counts["train"] == round(0.63 * 747) and counts["val"] == round(0.27 * 747)
    assert counts["test"] == 747 - counts["train"] - counts["val"]
    np.testing.assert_array_equal(a.split, b.split)
    c = load_ihdp(3, ihdp_dir, split_seed=99)
    assert (a.split != c.split).any()
    assert (load_ihdp(4, ihdp_dir).split != a.split).any()  # each realization its own split


def test_ihdp_missing_file_names_the_variable(tmp_path):
    with pytest.raises(FileNotFoundError, match="EHRCAUSAL_DATA") as info:
        load_ihdp(2, tmp_path)
    assert "dragonnet" in str(info.value).lower()


def test_ihdp_corrupt_file_is_refused(ihdp_dir, tmp_path):
    (tmp_path / "ihdp_npci").mkdir()
    target = tmp_path / "ihdp_npci" / "ihdp_npci_5.csv"
    shutil.copy(ihdp_dir / "ihdp_npci" / "ihdp_npci_5.csv", target)
    load_ihdp(5, tmp_path)  # an intact copy loads
    with open(target, "a") as f:
        f.write("0,0,0\n")
    with pytest.raises(ValueError, match="SHA-256"):
        load_ihdp(5, tmp_path)


def test_ihdp_env_variable_is_used(ihdp_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("EHRCAUSAL_DATA", str(ihdp_dir))
    assert len(load_ihdp(1)) == 747
    monkeypatch.setenv("EHRCAUSAL_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError):
        load_ihdp(1)


@pytest.mark.parametrize("bad", [0, 51, 1.5, "1", True])
def test_ihdp_bad_realization(bad):
    with pytest.raises(ValueError, match="realization"):
        load_ihdp(bad)


def test_protocol_split_rejects_bad_fractions():
    with pytest.raises(ValueError, match="sum to 1"):
        protocol_split(10, 0, (0.5, 0.4, 0.2))


def test_dataset_subset_take_and_frame(simple):
    train = simple.subset("train")
    assert set(train.split) == {"train"} and len(train) == int((simple.split == "train").sum())
    np.testing.assert_array_equal(train.tau, simple.tau[simple.split == "train"])
    both = simple.subset("train", "val")
    assert len(both) == len(simple) - int((simple.split == "test").sum())
    frame = simple.to_frame()
    assert {"T", "Y", "mu0", "mu1", "tau", "split"} <= set(frame.columns)
    with pytest.raises(ValueError, match="unknown split"):
        simple.subset("holdout")


def test_dataset_multimodal_fields_stay_aligned():
    ds = CausalDataset(
        X=pd.DataFrame({"a": [1.0, 2.0, 3.0]}),
        T=[0, 1, 0],
        Y=[1.0, 2.0, 3.0],
        text=["n0", "n1", "n2"],
        annotations=pd.DataFrame({"cough": [1, 0, np.nan]}),
        tau=np.array([[0.1, -0.1], [0.2, -0.2], [0.3, -0.3]]),
        split=["train", "test", "train"],
    )
    sub = ds.subset("train")
    assert sub.text == ["n0", "n2"]
    assert sub.tau.shape == (2, 2) and sub.tau[1, 0] == 0.3
    assert "tau_1" in ds.to_frame().columns and "ann_cough" in ds.to_frame().columns


def test_dataset_rejects_inconsistent_input():
    with pytest.raises(ValueError, match="different numbers of rows"):
        CausalDataset(X=pd.DataFrame({"a": [1.0, 2.0]}), T=[0, 1, 1], Y=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="binary"):
        CausalDataset(X=pd.DataFrame({"a": [1.0, 2.0]}), T=[0, 2], Y=[1.0, 2.0])
    with pytest.raises(ValueError, match="split has labels"):
        CausalDataset(X=pd.DataFrame({"a": [1.0]}), T=[0], Y=[1.0], split=["dev"])
