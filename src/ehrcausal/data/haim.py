"""HAIM-MIMIC-MM loader for credentialed users (the likely data of the M3H paper).

HAIM-MIMIC-MM (Soenksen et al. 2022, *Integrated multimodal artificial intelligence framework
for healthcare applications*, npj Digital Medicine 5:149) has one row per chest radiograph
taken during an ICU stay of MIMIC-IV, with embeddings of the stay's records up to the
radiograph's time. The authors' public code (github.com/lrsoenksen/HAIM, Apache-2.0) writes it
as one CSV, e.g. ``cxr_ic_fusion_1103.csv``. Nothing here is downloaded: MIMIC-IV and
MIMIC-CXR need PhysioNet credentials, so the file is the user's. :func:`load_haim_mimic_mm`
reads it from ``$EHRCAUSAL_DATA/haim_mimic_mm/`` (or ``data_dir/haim_mimic_mm/``; see
``data/README.md``).

**Schema** (facts read in the HAIM repository; file and line at commit ``691b883``):

- ids and image context, ``1_2-Generate Embeddings.py`` lines 79 and 167: ``haim_id``,
  ``img_id``, ``img_charttime``, ``img_deltacharttime``, ``discharge_location``,
  ``img_length_of_stay`` (hours from the radiograph to discharge, line 153) and
  ``death_status`` (1 when ``discharge_location`` is ``DIED``, lines 155-156). ``haim_id`` is
  the 0-based row of ``haim_mimiciv_key_ids.csv`` (``subject_id``, ``hadm_id``, ``stay_id``),
  ``MIMIC_IV_HAIM_API.py`` lines 2091-2098 (one pickle per row, named by its position); the
  embeddings file itself has no ``subject_id``.
- feature groups, ``1_2-Generate Embeddings.py`` lines 80-91 (prefix and a 0-based index):
  ``de_`` demographics (``anchor_age``, ``gender_int``, ``ethnicity_int``,
  ``marital_status_int``, ``language_int``, ``insurance_int``: ``MIMIC_IV_HAIM_API.py``
  line 752); ``ts_ce_``, ``ts_le_``, ``ts_pe_`` statistics of chart, lab and procedure events
  (11 per event: max, min, mean, variance, mean difference, mean absolute difference, maximum
  absolute difference, sum of absolute differences, last minus first, number of peaks and the
  linear trend; ``MIMIC_IV_HAIM_API.py`` lines 924-942, events listed at lines 963-984);
  ``n_ecg_``, ``n_ech_``, ``n_rad_`` Bio_ClinicalBERT embeddings of ECG, echocardiogram and
  radiology notes; ``vd_``, ``vp_`` DenseNet features and predictions of the radiograph,
  ``vmd_``, ``vmp_`` the same aggregated over the stay's radiographs.
- labels, ``1_2-Generate Embeddings.py`` line 94: ``split`` (MIMIC-CXR's), the 14 CheXpert
  findings (1 positive, 0 negative, -1 uncertain, empty when not mentioned),
  ``PerformedProcedureStepDescription`` and ``ViewPosition``. HAIM's models keep a finding's
  rows with label 0 or 1 (``2_3-Pathology Diagnosis Modeling.py`` line 96); its 48-hour
  mortality label is ``death_status == 1`` and ``img_length_of_stay < 48`` against the rest
  (``2_2-Mortality Prediction Modeling.py`` lines 41-47; alive rows under 48 h are left
  out), its length-of-stay label ``img_length_of_stay < 48`` alive against the rest
  (``2_1-Length of Stay Modeling.py`` lines 31-37).

**What the loader returns.** One row per radiograph (as HAIM), and:

- ``modalities`` (``layout="modalities"``): ``tabular`` the demographics and the time-series
  statistics (the file holds only statistics, not the series, so they are tabular summaries
  and the ``timeseries`` modality is absent); ``text`` the note embeddings and ``image`` the
  radiograph features, as DataFrames of vectors (not notes or pictures). With
  ``layout="tabular"`` every group is concatenated into ``tabular`` (HAIM's own fusion), the
  form the M3H learners of this package take, since they read notes as text and pictures as
  64 x 64 arrays;
- ``targets`` and ``tasks``: the 14 findings (binary, department ``radiology``; -1 and empty
  are missing labels), ``mortality_48h`` and ``discharge_48h`` (binary, department
  ``outcomes``; rows HAIM leaves out of a label are missing) and ``hours_to_discharge``
  (regression, department ``operations``); a binary task with fewer than ``min_positives``
  positive or negative rows is dropped (``meta["dropped_tasks"]``);
- ``split``: a random split of **patients** (``subject_id``), so no patient is in two splits;
- ``meta["flow"]``: rows, stays (``haim_id``) and patients after each step (rows in the
  file; with a patient id; with at least one label).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..validation import check_int
from ._paths import dataset_dir
from .multimodal import MultimodalDataset
from .splits import check_split, protocol_split

__all__ = ["FOLDER", "EMBEDDINGS_FILE", "KEY_FILE", "GROUPS", "FINDINGS", "load_haim_mimic_mm"]

FOLDER = "haim_mimic_mm"
EMBEDDINGS_FILE = "cxr_ic_fusion_1103.csv"
KEY_FILE = "haim_mimiciv_key_ids.csv"
#: feature group -> (column prefix, modality)
GROUPS: dict[str, tuple[str, str]] = {
    "demographics": ("de_", "tabular"),
    "chart_events": ("ts_ce_", "tabular"),
    "lab_events": ("ts_le_", "tabular"),
    "procedure_events": ("ts_pe_", "tabular"),
    "ecg_notes": ("n_ecg_", "text"),
    "echo_notes": ("n_ech_", "text"),
    "radiology_notes": ("n_rad_", "text"),
    "image_dense": ("vd_", "image"),
    "image_predictions": ("vp_", "image"),
    "stay_images_dense": ("vmd_", "image"),
    "stay_images_predictions": ("vmp_", "image"),
}
FINDINGS: tuple[str, ...] = (
    "Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Enlarged Cardiomediastinum",
    "Fracture", "Lung Lesion", "Lung Opacity", "No Finding", "Pleural Effusion",
    "Pleural Other", "Pneumonia", "Pneumothorax", "Support Devices",
)
REQUIRED = ("haim_id", "img_length_of_stay", "death_status")
LAYOUTS = ("modalities", "tabular")


def _task_name(label: str) -> str:
    return label.lower().replace(" ", "_")


def _group_of(column: str) -> str | None:
    # longest prefix first, so that "vmd_" is not read as "vd_"-like and "n_ecg_" stays apart
    for group, (prefix, _) in sorted(GROUPS.items(), key=lambda kv: -len(kv[1][0])):
        if column.startswith(prefix) and column[len(prefix):].isdigit():
            return group
    return None


def _patients(ids: pd.Series, folder: Path, header: Sequence[str]) -> tuple[pd.Series, str]:
    """``subject_id`` per row: from the file's own column, else through the key file."""
    if "subject_id" in header:
        return ids, "subject_id column of the embeddings file"
    key_path = folder / KEY_FILE
    if not key_path.is_file():
        raise ValueError(
            f"the embeddings file has no subject_id column and {key_path} is missing: without "
            "it the rows cannot be grouped by patient (haim_id is a stay). Put HAIM's "
            f"{KEY_FILE} (subject_id, hadm_id, stay_id; haim_id is its 0-based row) beside "
            "the embeddings file")
    keys = pd.read_csv(key_path)
    if "subject_id" not in keys.columns:
        raise ValueError(f"{key_path} lacks the column subject_id (found "
                         f"{list(keys.columns)[:8]})")
    if "haim_id" in keys.columns:
        lookup = keys.set_index("haim_id")["subject_id"]
    elif "haim_id_pickle" in keys.columns:
        lookup = keys.set_index("haim_id_pickle")["subject_id"]
    else:  # the row position, as HAIM numbers its pickles
        lookup = keys["subject_id"].reset_index(drop=True)
    return ids.map(lookup), f"{KEY_FILE} (haim_id -> subject_id)"


def load_haim_mimic_mm(
    data_dir: str | os.PathLike | None = None,
    *,
    filename: str = EMBEDDINGS_FILE,
    layout: str = "modalities",
    min_positives: int = 20,
    seed: int = 0,
    split: Sequence[float] = (0.6, 0.2, 0.2),
) -> MultimodalDataset:
    """Read the HAIM-MIMIC-MM embeddings table (module docstring) as a multitask data set.

    Parameters
    ----------
    data_dir : folder that holds ``haim_mimic_mm/`` (default: ``$EHRCAUSAL_DATA``, then the
        repository's ``data/``; see :func:`~ehrcausal.data._paths.dataset_dir`).
    filename : the embeddings CSV in that folder.
    layout : ``"modalities"`` (tabular, text and image DataFrames) or ``"tabular"`` (every
        feature group in ``tabular``).
    min_positives : a binary task needs this many positive and negative rows (>= 1).
    seed, split : seed and (train, val, test) fractions of the split of patients.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    min_pos = check_int(min_positives, "min_positives", 1)
    seed = check_int(seed, "seed", 0, 2**32 - 1)
    fractions = check_split(split)
    folder = dataset_dir(FOLDER, data_dir)
    path = folder / filename
    if not path.is_file():
        raise FileNotFoundError(
            f"HAIM-MIMIC-MM embeddings file not found: {path}. Generate it with HAIM's code "
            "from MIMIC-IV and MIMIC-CXR (credentialed access) and put it there (see "
            "data/README.md)")
    header = list(pd.read_csv(path, nrows=0).columns)
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ValueError(f"{path.name} lacks the column(s) {missing}; HAIM's embeddings file "
                         f"has {list(REQUIRED)} (see the module docstring)")
    groups = {c: _group_of(c) for c in header}
    features = [c for c in header if groups[c] is not None]
    if not features:
        raise ValueError(f"{path.name} has no feature column: none starts with one of "
                         f"{[p for p, _ in GROUPS.values()]} followed by a number")
    findings = [f for f in FINDINGS if f in header]
    ids_cols = [c for c in ("haim_id", "subject_id", "hadm_id", "stay_id", "img_id",
                            "img_charttime") if c in header]
    dtypes = {c: "float32" for c in features}
    dtypes.update({c: "float64" for c in findings + ["img_length_of_stay", "death_status"]})
    raw = pd.read_csv(path, usecols=list(dict.fromkeys(ids_cols + list(dtypes))),
                      dtype=dtypes)

    flow: dict[str, dict[str, int]] = {}

    def count(step: str, frame: pd.DataFrame, patients: pd.Series) -> None:
        flow[step] = {"rows": len(frame), "stays": int(frame["haim_id"].nunique()),
                      "patients": int(patients.nunique())}

    subject, source = _patients(raw["subject_id"] if "subject_id" in raw else raw["haim_id"],
                                folder, header)
    raw = raw.copy()  # one block per dtype: adding a column stays cheap
    raw["subject_id"] = subject.to_numpy()
    count("rows_in_file", raw, raw["subject_id"])
    raw = raw.loc[subject.notna()].reset_index(drop=True)
    count("with_patient_id", raw, raw["subject_id"])

    # labels (HAIM's rules, module docstring)
    y: dict[str, np.ndarray] = {}
    for f in findings:
        v = raw[f].to_numpy()
        y[_task_name(f)] = np.where(np.isin(v, (0.0, 1.0)), v, np.nan)
    hours = raw["img_length_of_stay"].to_numpy(dtype=float)
    died = raw["death_status"].to_numpy(dtype=float)
    ok = np.isfinite(hours) & np.isin(died, (0.0, 1.0))
    short = hours < 48
    y["mortality_48h"] = np.where(ok & ~((died == 0) & short), (died == 1) & short, np.nan)
    y["discharge_48h"] = np.where(ok, (died == 0) & short, np.nan)
    y["hours_to_discharge"] = np.where(np.isfinite(hours), hours, np.nan)
    targets = pd.DataFrame(y).astype(float)
    labelled = targets.notna().any(axis=1).to_numpy()
    raw, targets = raw.loc[labelled].reset_index(drop=True), targets.loc[labelled].reset_index(
        drop=True)
    count("with_a_label", raw, raw["subject_id"])
    if len(raw) == 0:
        raise ValueError(f"no row of {path.name} has a label; attrition: {flow}")

    rows, dropped = [], []
    for name in targets.columns:
        if name == "hours_to_discharge":
            rows.append({"name": name, "problem_class": "regression",
                         "department": "operations", "n_classes": 0,
                         "positives": int(targets[name].notna().sum())})
            continue
        pos = int((targets[name] == 1).sum())
        neg = int((targets[name] == 0).sum())
        if min(pos, neg) < min_pos:
            dropped.append(name)
            continue
        rows.append({"name": name, "problem_class": "binary",
                     "department": "outcomes" if name.endswith("_48h") else "radiology",
                     "n_classes": 2, "positives": pos})
    tasks = pd.DataFrame(rows)
    targets = targets[list(tasks["name"])]

    # modalities
    by_modality: dict[str, list[str]] = {"tabular": [], "text": [], "image": []}
    for c in features:
        by_modality[GROUPS[groups[c]][1] if layout == "modalities" else "tabular"].append(c)
    modalities = {m: raw[cols].reset_index(drop=True) for m, cols in by_modality.items() if cols}

    # split of patients
    patients = pd.unique(raw["subject_id"])
    labels = protocol_split(len(patients), seed, fractions)
    split = pd.Series(labels, index=patients).loc[raw["subject_id"]].to_numpy()
    meta = {
        "source": "haim_mimic_mm", "file": path.name, "flow": flow, "patient_ids": source,
        "groups": {g: sum(groups[c] == g for c in features) for g in GROUPS},
        "dropped_tasks": dropped, "layout": layout,
        "knobs": {"min_positives": min_pos, "seed": seed, "split": list(fractions)},
        "ids": raw[list(dict.fromkeys(["subject_id", *ids_cols]))].reset_index(drop=True),
    }
    return MultimodalDataset(modalities=modalities, targets=targets, tasks=tasks, split=split,
                             dependency=None, meta=meta)
