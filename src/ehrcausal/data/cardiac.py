"""Cardiac ICU simulator with cardiology-style notes (AACE MIMIC semi-synthetic equations).

Patients (all distributions are documented assumptions, chosen to be plausible for an adult
ICU cohort such as the first ICU stays of MIMIC-III, whose published cohort descriptions
report a median age in the mid-sixties, a majority of men, and hypertension, coronary artery
disease, atrial fibrillation and heart failure as the most common cardiovascular comorbidities;
the exact numbers below are ours, not estimates from those data):

- AGE ~ N(65, 15^2) clipped to [18, 95] and rounded to whole years (:data:`AGE_MODEL`);
- G = male ~ Bernoulli(0.56) (:data:`P_MALE`);
- HTN, CAD, AF, CHF Bernoulli with logistic dependence on AGE_c = AGE - 65 (and CAD on HTN
  and sex, CHF on CAD and AF, so the conditions correlate), :data:`CONDITION_LOGITS`:

  - logit P(HTN) = 0.25 + 0.035 AGE_c
  - logit P(CAD) = -1.6 + 0.035 AGE_c + 0.7 HTN + 0.3 G
  - logit P(AF) = -1.3 + 0.055 AGE_c
  - logit P(CHF) = -1.75 + 0.025 AGE_c + 0.9 CAD + 0.8 AF

  giving prevalences of about HTN 56%, CAD 28%, AF 24%, CHF 24% (:func:`cardiac_marginals`).

Treatment and outcome follow the AACE MIMIC semi-synthetic equations (Arno & Demeester 2025),
gamma = ``confounding`` multiplying the non-intercept terms inside the bracket:

- M0 = 5.5 + 0.10 AGE_c + 0.6 G + 0.7 HTN + 1.0 CAD + 0.85 AF + 1.2 CHF
  + 0.02 max(AGE - 75, 0)^2 + 0.5 CAD*CHF + 0.35 AF*CHF + 0.25 HTN*CAD + 0.2 G*CAD
  + 0.015 AGE_c*AF
- e = sigmoid(0.9 [-0.8 + gamma (0.08 AGE_c + 0.65 G + 0.5 HTN + 0.6 CAD + 0.4 AF + 0.7 CHF
  + 0.25 G*1{AGE > 75} + 0.25 CAD*CHF)]), not clipped: the released code computes
  ``expit(0.9 * logit_e)`` (``data/mimic-syn.ipynb`` of henriarnoUG/causal-ehr, the cell that
  defines ``logit_e``), unlike its respiratory equations, which clip to [0.05, 0.95]
- tau = -1 - 0.35 HTN - 0.5 CAD + 0.2 AF + 0.45 CHF + 0.015 max(AGE - 75, 0) + 0.05 G
  + 0.2 AF*CHF - 0.35 HTN*CAD
- M1 = M0 + tau; T ~ Bernoulli(e); Y = M_T + N(0, noise_sd^2) (noise_sd = 1 in AACE).

Age and sex are tabular; the four conditions are visible only through the note (and, for
annotated records, the annotations).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import norm

from ..text.notes import render_cardiac_notes
from ..validation import check_int
from ._simulate import AnnotatedModel, check_knobs, check_rng, simulate_annotated
from .dataset import CausalDataset

__all__ = [
    "AGE_MODEL",
    "P_MALE",
    "CONDITION_LOGITS",
    "CONDITIONS",
    "cardiac_age_distribution",
    "cardiac_marginals",
    "sample_cardiac_records",
    "cardiac_mu0",
    "cardiac_tau",
    "cardiac_propensity",
    "cardiac_selection_score",
    "simulate_cardiac",
]

#: Assumption: ICU age ~ N(65, 15^2), clipped to [18, 95], rounded to whole years.
AGE_MODEL: dict[str, float] = {"mean": 65.0, "sd": 15.0, "min": 18.0, "max": 95.0}

#: Assumption: 56% of ICU patients are men.
P_MALE = 0.56

#: Logistic models of the conditions: intercept and coefficients on AGE_c and parent nodes.
CONDITION_LOGITS: dict[str, dict[str, float]] = {
    "htn": {"intercept": 0.25, "age_c": 0.035},
    "cad": {"intercept": -1.6, "age_c": 0.035, "htn": 0.7, "male": 0.3},
    "af": {"intercept": -1.3, "age_c": 0.055},
    "chf": {"intercept": -1.75, "age_c": 0.025, "cad": 0.9, "af": 0.8},
}

CONDITIONS: tuple[str, ...] = ("htn", "cad", "af", "chf")
_SOURCE = "simulated: cardiac ICU (AACE MIMIC semi-synthetic equations)"


def _condition_prob(name: str, values: Mapping[str, Any]) -> Any:
    coef = CONDITION_LOGITS[name]
    z = coef["intercept"] + coef["age_c"] * (values["age"] - 65.0)
    for parent, w in coef.items():
        if parent not in ("intercept", "age_c"):
            z = z + w * values[parent]
    return expit(z)


def cardiac_age_distribution() -> tuple[np.ndarray, np.ndarray]:
    """Exact distribution of the integer age: (ages 18..95, probabilities).

    AGE = round(clip(Z, 18, 95)) with Z ~ N(65, 15^2), so P(AGE = a) is a difference of normal
    CDFs at a +- 0.5, with the clipped tails piled on 18 and 95.
    """
    lo, hi = int(AGE_MODEL["min"]), int(AGE_MODEL["max"])
    ages = np.arange(lo, hi + 1)
    edges = np.concatenate(([-np.inf], ages[:-1] + 0.5, [np.inf]))
    cdf = norm.cdf(edges, loc=AGE_MODEL["mean"], scale=AGE_MODEL["sd"])
    return ages, np.diff(cdf)


def cardiac_marginals() -> dict[str, float]:
    """Exact marginals: P(male), the four condition prevalences, E[AGE] and P(AGE > 75).

    Sums over the exact integer-age distribution (:func:`cardiac_age_distribution`), sex and
    the configurations of HTN, CAD and AF, with P(CHF = 1 | parents) in closed form.
    """
    ages, p_age = cardiac_age_distribution()
    out = {"male": P_MALE, "htn": 0.0, "cad": 0.0, "af": 0.0, "chf": 0.0}
    for male, htn, cad, af in itertools.product((0, 1), repeat=4):
        v = {"age": ages, "male": male, "htn": htn, "cad": cad, "af": af}
        p_h = _condition_prob("htn", v)
        p_c = _condition_prob("cad", v)
        p_a = _condition_prob("af", v)
        w = (
            p_age
            * (P_MALE if male else 1 - P_MALE)
            * (p_h if htn else 1 - p_h)
            * (p_c if cad else 1 - p_c)
            * (p_a if af else 1 - p_a)
        )
        total = float(w.sum())
        out["htn"] += htn * total
        out["cad"] += cad * total
        out["af"] += af * total
        out["chf"] += float((w * _condition_prob("chf", v)).sum())
    out["age_mean"] = float((ages * p_age).sum())
    out["age_over_75"] = float(p_age[ages > 75].sum())
    return out


def sample_cardiac_records(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Draw ``n`` patients: ``age`` (int), ``male`` (0/1), ``sex`` ("F"/"M") and the conditions."""
    n = check_int(n, "n", 1)
    check_rng(rng)
    z = rng.normal(AGE_MODEL["mean"], AGE_MODEL["sd"], size=n)
    u = rng.random((n, 1 + len(CONDITIONS)))
    rec: dict[str, np.ndarray] = {
        "age": np.rint(np.clip(z, AGE_MODEL["min"], AGE_MODEL["max"])).astype(int),
        "male": (u[:, 0] < P_MALE).astype(int),
    }
    for j, c in enumerate(CONDITIONS, start=1):
        rec[c] = (u[:, j] < _condition_prob(c, rec)).astype(int)
    df = pd.DataFrame(rec)
    df.insert(2, "sex", np.where(df["male"] == 1, "M", "F"))
    return df


def _cols(records: pd.DataFrame | Mapping[str, Any]) -> tuple[np.ndarray, ...]:
    return tuple(
        np.asarray(records[c], dtype=float) for c in ("age", "male", "htn", "cad", "af", "chf")
    )


def cardiac_mu0(records: pd.DataFrame | Mapping[str, Any]) -> np.ndarray:
    """Untreated mean outcome M0 of the AACE MIMIC equations (see the module docstring)."""
    age, g, htn, cad, af, chf = _cols(records)
    age_c = age - 65.0
    return (
        5.5 + 0.10 * age_c + 0.6 * g + 0.7 * htn + 1.0 * cad + 0.85 * af + 1.2 * chf
        + 0.02 * np.maximum(age - 75.0, 0.0) ** 2 + 0.5 * cad * chf + 0.35 * af * chf
        + 0.25 * htn * cad + 0.2 * g * cad + 0.015 * age_c * af
    )


def cardiac_tau(records: pd.DataFrame | Mapping[str, Any]) -> np.ndarray:
    """Treatment effect tau = M1 - M0 of the AACE MIMIC equations."""
    age, g, htn, cad, af, chf = _cols(records)
    return (
        -1.0 - 0.35 * htn - 0.5 * cad + 0.2 * af + 0.45 * chf
        + 0.015 * np.maximum(age - 75.0, 0.0) + 0.05 * g + 0.2 * af * chf - 0.35 * htn * cad
    )


def cardiac_propensity(
    records: pd.DataFrame | Mapping[str, Any], confounding: float = 1.0
) -> np.ndarray:
    """e = sigmoid(0.9 [-0.8 + gamma (...)]), unclipped as in the released code."""
    age, g, htn, cad, af, chf = _cols(records)
    score = (
        0.08 * (age - 65.0) + 0.65 * g + 0.5 * htn + 0.6 * cad + 0.4 * af + 0.7 * chf
        + 0.25 * g * (age > 75) + 0.25 * cad * chf
    )
    return expit(0.9 * (-0.8 + confounding * score))


def cardiac_selection_score(
    records: pd.DataFrame | Mapping[str, Any], T: np.ndarray
) -> np.ndarray:
    """Linear score of ``"covariates"`` annotation: 0.03 AGE_c + 0.5 male + 1.0 T."""
    return (0.03 * (np.asarray(records["age"]) - 65.0) + 0.5 * np.asarray(records["male"])
            + 1.0 * T)


_MODEL = AnnotatedModel(
    source=_SOURCE,
    sample_records=sample_cardiac_records,
    propensity=cardiac_propensity,
    mu0=cardiac_mu0,
    tau=cardiac_tau,
    selection_score=cardiac_selection_score,
    render_notes=render_cardiac_notes,
)
_TABULAR = ["age", "male"]


def simulate_cardiac(
    n: int = 10_000,
    seed: int = 0,
    *,
    confounding: float = 1.0,
    annotated: float = 1.0,
    annotation_selection: str = "uniform",
    style: str = "normal",
    misspelling_rate: float = 0.02,
    noise_sd: float = 1.0,
    split: tuple[float, float, float] = (0.6, 0.2, 0.2),
) -> CausalDataset:
    """Simulate cardiac ICU stays with notes, annotations and known effects.

    Parameters
    ----------
    n : number of patients (>= 10).
    seed : master seed; independent streams (``SeedSequence(seed).spawn(6)``, shared
        machinery with :func:`ehrcausal.data.simulate_respiratory`) drive the records,
        treatment, outcome noise, annotation, notes and split, so changing
        ``confounding``, ``annotated``, ``annotation_selection`` or ``noise_sd`` leaves the
        records and the notes unchanged.
    confounding : gamma >= 0 multiplying the non-intercept terms of the propensity bracket
        (0: randomised, e = sigmoid(0.9 * -0.8) for everyone).
    annotated : expected fraction (0, 1] of records whose conditions are annotated.
    annotation_selection : ``"uniform"`` or ``"covariates"`` (P = sigmoid(c + 0.03 AGE_c
        + 0.5 male + 1.0 T), c solved by bisection so the mean is ``annotated``).
    style, misspelling_rate : passed to :func:`ehrcausal.text.notes.render_cardiac_notes`.
    noise_sd : standard deviation of the outcome noise.
    split : train/val/test proportions.

    Returns
    -------
    CausalDataset with ``X`` = (age, male), ``T``, ``Y``, ``text``, ``annotations`` (htn, cad,
    af, chf as floats, rows NaN where not annotated), ``mu0``, ``mu1``, ``tau``, ``split``,
    ``modalities`` (``records``, ``annotated``, ``annotation_propensity``, ``propensity``) and
    ``meta``.
    """
    knobs = check_knobs(
        n=n, seed=seed, confounding=confounding, annotated=annotated,
        annotation_selection=annotation_selection, style=style,
        misspelling_rate=misspelling_rate, noise_sd=noise_sd, split=split,
    )
    return simulate_annotated(
        _MODEL, knobs, x_columns=_TABULAR, annotation_columns=list(CONDITIONS),
        text_only=list(CONDITIONS), tabular=_TABULAR,
    )
