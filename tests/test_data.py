"""CausalDataset and the IHDP loader: the shipped files, lookup order, checksums, protocol
split, clear errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ehrcausal.data import CausalDataset, load_ihdp, protocol_split
from ehrcausal.data.ihdp import ihdp_path
from ehrcausal.data.splits import check_split


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


def test_missing_data_set_names_the_folders_and_the_readme(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_ihdp(2, tmp_path)
    msg = str(info.value)
    assert str(tmp_path / "ihdp_npci") in msg and "data/README.md" in msg
    assert "EHRCAUSAL_DATA" in msg


def test_incomplete_folder_names_the_file_and_the_source(tmp_path):
    (tmp_path / "ihdp_npci").mkdir()
    with pytest.raises(FileNotFoundError, match="ihdp_npci_2.csv") as info:
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


def test_repository_copy_is_the_default(ihdp_dir, monkeypatch, tmp_path):
    monkeypatch.delenv("EHRCAUSAL_DATA", raising=False)
    monkeypatch.chdir(tmp_path)  # found from the package's location, not the working directory
    assert ihdp_path(1).resolve() == (ihdp_dir / "ihdp_npci" / "ihdp_npci_1.csv").resolve()
    assert len(load_ihdp(1)) == 747


def test_env_variable_overrides_only_when_it_holds_the_data_set(ihdp_dir, monkeypatch, tmp_path):
    (tmp_path / "ihdp_npci").mkdir()
    shutil.copy(ihdp_dir / "ihdp_npci" / "ihdp_npci_1.csv", tmp_path / "ihdp_npci")
    monkeypatch.setenv("EHRCAUSAL_DATA", str(tmp_path))
    assert ihdp_path(1) == tmp_path / "ihdp_npci" / "ihdp_npci_1.csv"
    assert len(load_ihdp(1)) == 747
    with pytest.raises(FileNotFoundError, match="incomplete"):
        load_ihdp(2)  # the override folder is used as a whole, never mixed with the repository
    monkeypatch.setenv("EHRCAUSAL_DATA", str(tmp_path / "elsewhere"))  # no ihdp_npci/ there
    assert ihdp_path(1).resolve() == (ihdp_dir / "ihdp_npci" / "ihdp_npci_1.csv").resolve()


def test_shipped_files_match_the_published_checksums(ihdp_dir):
    from ehrcausal.cache import file_digest
    from ehrcausal.data.ihdp import N_REALIZATIONS, _checksums

    files = sorted(p.name for p in (ihdp_dir / "ihdp_npci").glob("*.csv"))
    assert len(files) == N_REALIZATIONS and set(files) == set(_checksums())
    readme = (ihdp_dir / "README.md").read_text()
    for name, digest in _checksums().items():
        assert file_digest(ihdp_dir / "ihdp_npci" / name) == digest, name
        assert f"{digest}  {name}" in readme, name


def _git_root() -> Path | None:
    if shutil.which("git") is None:
        return None
    here = Path(__file__).resolve().parent
    out = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=here,
                         capture_output=True, text=True, check=False)
    return Path(out.stdout.strip()) if out.returncode == 0 else None


@pytest.mark.slow
def test_a_fresh_clone_loads_ihdp_without_any_setting(tmp_path):
    """The committed repository alone (no EHRCAUSAL_DATA, no install) loads realization 1."""
    root = _git_root()
    if root is None:
        pytest.skip("git or the repository's checkout is not available")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(root), str(clone)], check=True,
                   capture_output=True, text=True)
    env = {k: v for k, v in os.environ.items() if k not in ("EHRCAUSAL_DATA", "PYTHONPATH")}
    env["PYTHONPATH"] = str(clone / "src")
    code = (
        "import ehrcausal\n"
        "from ehrcausal.data import load_ihdp\n"
        "from ehrcausal.data.ihdp import ihdp_path\n"
        "ds = load_ihdp(1)\n"
        "print(ehrcausal.__file__)\n"
        "print(ihdp_path(1))\n"
        "print(f'{ds.tau.mean():.3f}')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=clone, env=env,
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    package, path, tau = out.stdout.strip().splitlines()[-3:]
    print(path)
    clone = clone.resolve()
    assert Path(package).resolve().is_relative_to(clone / "src")
    assert Path(path).resolve() == clone / "data" / "ihdp_npci" / "ihdp_npci_1.csv"
    assert tau == "4.016"


@pytest.mark.parametrize("bad", [0, 51, 1.5, "1", True])
def test_ihdp_bad_realization(bad):
    with pytest.raises(ValueError, match="realization"):
        load_ihdp(bad)


def test_protocol_split_counts_and_determinism():
    labels = protocol_split(101, 7, (0.6, 0.2, 0.2))
    counts = pd.Series(labels).value_counts()
    assert counts["train"] == 61 and counts["val"] == 20 and counts["test"] == 20
    np.testing.assert_array_equal(labels, protocol_split(101, 7, (0.6, 0.2, 0.2)))
    assert (labels != protocol_split(101, 8, (0.6, 0.2, 0.2))).any()
    # a permutation of the seed's generator, cut at the rounded fractions
    perm = np.random.default_rng(7).permutation(101)
    assert set(labels[perm[:61]]) == {"train"} and set(labels[perm[81:]]) == {"test"}


def test_protocol_split_rejects_bad_input():
    with pytest.raises(ValueError, match="sum to 1"):
        protocol_split(10, 0, (0.5, 0.4, 0.2))
    with pytest.raises(ValueError, match="seed"):
        protocol_split(10, 1.5, (0.5, 0.3, 0.2))
    with pytest.raises(ValueError, match="n must be"):
        protocol_split(True, 0, (0.5, 0.3, 0.2))


def test_check_split():
    assert check_split([0.5, 0.25, 0.25]) == (0.5, 0.25, 0.25)
    for bad in ((0.5, 0.5), (0.8, 0.2, 0.0), (0.5, 0.4, 0.3), "abc", 3, (0.5, "a", 0.5),
                (0.5, float("nan"), 0.5), (True, 0.0, 0.0)):
        with pytest.raises(ValueError, match="split"):
            check_split(bad)


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
