"""A miniature HAIM-MIMIC-MM embeddings file in the published column pattern.

:func:`write_haim_fixture` writes ``<root>/haim_mimic_mm/cxr_ic_fusion_1103.csv`` (and, unless
told otherwise, HAIM's key file ``haim_mimiciv_key_ids.csv``) with the column groups of
``ehrcausal.data.haim`` in HAIM's order (ids and image context, ``de_``, ``vd_``, ``vp_``,
``vmd_``, ``vmp_``, ``ts_ce_``, ``ts_le_``, ``ts_pe_``, ``n_ecg_``, ``n_ech_``, ``n_rad_``,
then ``split``, the 14 CheXpert findings, ``PerformedProcedureStepDescription`` and
``ViewPosition``), with fewer columns per group than the real file. It returns what the loader
must find, worked out by construction.

Design: ``N_PATIENTS`` patients; patient ``p`` has ``1 + p % 2`` stays (key-file rows, in
order), and stay ``s`` (its ``haim_id``) has ``1 + s % 3`` radiographs (rows). Then:

- the last stay's ``haim_id`` is absent from the key file (no patient: excluded);
- the first radiograph of stay 1 has no label at all (excluded);
- findings take 1, 0, -1 and empty in turn; ``death_status`` and ``img_length_of_stay`` vary so
  that every branch of the 48-hour labels occurs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ehrcausal.data.haim import FINDINGS

N_PATIENTS = 14
SIZES = {"de_": 6, "vd_": 8, "vp_": 18, "vmd_": 8, "vmp_": 18, "ts_ce_": 11, "ts_le_": 11,
         "ts_pe_": 11, "n_ecg_": 4, "n_ech_": 4, "n_rad_": 4}


def write_haim_fixture(root: Path, *, key_file: bool = True, subject_column: bool = False,
                       drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """Write the miniature under ``root/haim_mimic_mm/``; return the expected counts."""
    rng = np.random.default_rng(0)
    keys = []
    for p in range(N_PATIENTS):
        for k in range(1 + p % 2):
            keys.append({"subject_id": 10_000 + p, "hadm_id": 20_000 + 10 * p + k,
                         "stay_id": 30_000 + 10 * p + k})
    keys = pd.DataFrame(keys)
    n_stays = len(keys) + 1  # the last stay has no key row
    rows = []
    for stay in range(n_stays):
        for img in range(1 + stay % 3):
            i = len(rows)
            row: dict[str, Any] = {
                "haim_id": stay, "img_id": f"img{i:04d}", "img_charttime": "2150-01-01 10:00:00",
                "img_deltacharttime": 5.0 + i, "discharge_location": "HOME",
                "img_length_of_stay": float(12 + 11 * (i % 7)),  # 12 .. 78 h
                "death_status": float(i % 4 == 0),
            }
            if subject_column:
                row["subject_id"] = (int(keys.subject_id[stay]) if stay < len(keys)
                                     else np.nan)
            for prefix, size in SIZES.items():
                for j in range(size):
                    row[f"{prefix}{j}"] = round(float(rng.standard_normal()), 4)
            row["split"] = "train"
            for f_idx, f in enumerate(FINDINGS):
                row[f] = (1.0, 0.0, -1.0, np.nan)[(i + f_idx) % 4]
            row["PerformedProcedureStepDescription"] = "CHEST (PORTABLE AP)"
            row["ViewPosition"] = "AP"
            if stay == 1 and img == 0:  # no label at all
                row["img_length_of_stay"] = np.nan
                row["death_status"] = np.nan
                for f in FINDINGS:
                    row[f] = np.nan
            rows.append(row)
    table = pd.DataFrame(rows).drop(columns=list(drop))
    folder = Path(root) / "haim_mimic_mm"
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "cxr_ic_fusion_1103.csv", index=False)
    if key_file:
        keys.to_csv(folder / "haim_mimiciv_key_ids.csv", index=False)
    subject = table.haim_id.map(keys.subject_id)
    with_id = table[subject.notna()]
    labelled = with_id[with_id[list(FINDINGS)].isin([0.0, 1.0]).any(axis=1)
                       | with_id.img_length_of_stay.notna()]
    return {
        "table": table, "keys": keys,
        "flow": {
            "rows_in_file": (len(table), table.haim_id.nunique(), subject.nunique()),
            "with_patient_id": (len(with_id), with_id.haim_id.nunique(), N_PATIENTS),
            "with_a_label": (len(labelled), labelled.haim_id.nunique(), N_PATIENTS),
        },
        "labelled": labelled.reset_index(drop=True),
    }
