"""Respiratory-encounter simulator with clinical notes (AACE equations, SimSUM-style network).

Records come from a small Bayesian network in the spirit of SimSUM (Rabaey et al. 2024):

- roots (Bernoulli, :data:`ROOT_PROBS`): ``policy`` (holds a health-insurance policy),
  ``self_employed``, ``asthma``, ``smoking``, ``hay_fever``, ``winter`` (season);
- latent diagnoses, never shown in ``X``, the annotations or the note: ``copd`` (from smoking),
  ``pneumonia`` (noisy-OR of copd, asthma, winter with a leak), ``upper_airway_infection``
  (from winter);
- symptoms by noisy-OR with a leak (:data:`SYMPTOM_NOISY_OR`): ``dyspnoea``, ``cough``, ``pain``
  (chest pain), ``nasal``; and ``fever`` in {0 none, 1 low, 2 high} from :data:`FEVER_TABLE`
  over (pneumonia, upper-airway infection);
- background for the note only: ``age`` and ``sex``.

Noisy-OR: P(child = 1 | parents) = 1 - (1 - leak) * prod_{j: parent_j = 1} (1 - w_j).

Treatment and outcome follow the equations of the AACE code (Arno & Demeester 2025), with
fever_low = 1{fever = 1}, fever_high = 1{fever = 2} and gamma = ``confounding``:

- M0 = 1.8 self_empl + 1.6 dysp + 1.2 cough + 0.5 pain + 0.4 nasal + 0.3 fever_low
  + 1.5 fever_high + 1.1 dysp*fever_high + 0.9 self_empl*cough - 0.6 nasal*fever_low
  + 0.7 pain*self_empl + 0.8 cough*fever_high + 0.7 dysp*self_empl
- logit e = -2.2 + gamma [2.0 policy + 1.5 dysp + 1.1 cough + 1.3 fever_high + 0.6 pain
  + 0.9 policy*dysp + 0.7 policy*fever_high - 0.5 nasal*fever_low], e clipped to [0.05, 0.95]
- tau = -1 + 1.1 pain + 1.0 nasal + 0.7 fever_low - 1.0 dysp - 0.7 cough - 1.1 fever_high
- M1 = M0 + tau; T ~ Bernoulli(e); Y = M_T + N(0, noise_sd^2). Lower Y is better.

The network's probabilities are documented modelling assumptions (chosen to be clinically
plausible for primary-care respiratory encounters and to give every symptom a marginal
between about 8% and 50%), not estimates from data.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from ..text.notes import render_respiratory_notes
from ..validation import check_int, check_number
from ._simulate import AnnotatedModel, check_knobs, check_rng, simulate_annotated
from .dataset import CausalDataset

__all__ = [
    "ROOT_PROBS",
    "COPD_GIVEN_SMOKING",
    "PNEUMONIA_NOISY_OR",
    "UAI_GIVEN_WINTER",
    "SYMPTOM_NOISY_OR",
    "FEVER_TABLE",
    "AGE_MODEL",
    "P_FEMALE",
    "CONFOUNDERS",
    "NON_CONFOUNDING_COLUMNS",
    "network_marginals",
    "sample_respiratory_records",
    "respiratory_mu0",
    "respiratory_tau",
    "respiratory_propensity",
    "respiratory_selection_score",
    "simulate_respiratory",
]

#: P(root = 1). Assumptions: about 60% hold a (private) health-insurance policy, 15% are
#: self-employed, asthma 12% and current smoking 25% (higher than in the general population,
#: as respiratory encounters over-sample both), hay fever 18%, and 40% of respiratory
#: encounters fall in winter (seasonal excess).
ROOT_PROBS: dict[str, float] = {
    "policy": 0.60,
    "self_employed": 0.15,
    "asthma": 0.12,
    "smoking": 0.25,
    "hay_fever": 0.18,
    "winter": 0.40,
}

#: P(copd = 1 | smoking = 0), P(copd = 1 | smoking = 1). Assumption.
COPD_GIVEN_SMOKING: tuple[float, float] = (0.03, 0.25)

#: Noisy-OR weights of pneumonia on its parents, with a leak. Assumption.
PNEUMONIA_NOISY_OR: dict[str, float] = {"leak": 0.04, "copd": 0.20, "asthma": 0.10, "winter": 0.12}

#: P(upper_airway_infection = 1 | winter = 0), P(... | winter = 1). Assumption.
UAI_GIVEN_WINTER: tuple[float, float] = (0.15, 0.45)

#: Noisy-OR weights of each binary symptom on its parents, with a leak. Assumption.
SYMPTOM_NOISY_OR: dict[str, dict[str, float]] = {
    "dyspnoea": {"leak": 0.05, "copd": 0.65, "asthma": 0.45, "pneumonia": 0.55, "hay_fever": 0.15},
    "cough": {"leak": 0.07, "copd": 0.55, "asthma": 0.35, "pneumonia": 0.75,
              "upper_airway_infection": 0.55},
    "pain": {"leak": 0.05, "pneumonia": 0.40, "copd": 0.15},
    "nasal": {"leak": 0.04, "upper_airway_infection": 0.75, "hay_fever": 0.60},
}

#: P(fever = none, low, high | pneumonia, upper_airway_infection). Assumption.
FEVER_TABLE: dict[tuple[int, int], tuple[float, float, float]] = {
    (0, 0): (0.93, 0.05, 0.02),
    (0, 1): (0.55, 0.35, 0.10),
    (1, 0): (0.25, 0.30, 0.45),
    (1, 1): (0.15, 0.30, 0.55),
}

#: Background for the note only. Assumption: adult primary-care patients, age ~ N(50, 17^2)
#: clipped to [18, 95] and rounded to whole years.
AGE_MODEL: dict[str, float] = {"mean": 50.0, "sd": 17.0, "min": 18.0, "max": 95.0}

#: P(sex = "F"). Assumption.
P_FEMALE = 0.52

#: The confounders, in the fixed order used by ``text_only`` (the first ones are withheld).
CONFOUNDERS: tuple[str, ...] = (
    "dyspnoea", "cough", "fever", "pain", "nasal", "policy", "self_employed",
)

#: Columns always in ``X`` besides the visible confounders (no causal role in T or Y).
NON_CONFOUNDING_COLUMNS: tuple[str, ...] = (
    "asthma", "smoking", "hay_fever", "winter", "age", "male",
)

_ROOTS = tuple(ROOT_PROBS)
_DIAGNOSES = ("copd", "pneumonia", "upper_airway_infection")
_SYMPTOMS = tuple(SYMPTOM_NOISY_OR)
_SOURCE = "simulated: respiratory encounters (AACE equations)"


def _noisy_or(weights: Mapping[str, float], parents: Mapping[str, Any]) -> Any:
    """P(child = 1 | parents) = 1 - (1 - leak) prod_j (1 - w_j)^{parent_j}."""
    keep = 1.0 - weights["leak"]
    for name, w in weights.items():
        if name != "leak":
            keep = keep * (1.0 - w) ** parents[name]
    return 1.0 - keep


def _pneumonia_prob(parents: Mapping[str, Any]) -> Any:
    return _noisy_or(PNEUMONIA_NOISY_OR, parents)


def network_marginals() -> dict[str, float]:
    """Exact marginal probabilities of every binary node and of each fever level.

    Enumerates the 2^6 root configurations and the 2^3 diagnosis configurations, weighting
    each by its probability under the network, and sums P(node = 1 | parents) (no sampling).
    Keys: the roots, the diagnoses, the binary symptoms, ``fever_none``, ``fever_low``,
    ``fever_high``, and ``female``.
    """
    out = dict.fromkeys((*_ROOTS, *_DIAGNOSES, *_SYMPTOMS), 0.0)
    out.update(fever_none=0.0, fever_low=0.0, fever_high=0.0)
    for roots in itertools.product((0, 1), repeat=len(_ROOTS)):
        r = dict(zip(_ROOTS, roots, strict=True))
        p_roots = float(np.prod([ROOT_PROBS[k] if v else 1 - ROOT_PROBS[k] for k, v in r.items()]))
        p_copd1 = COPD_GIVEN_SMOKING[r["smoking"]]
        p_uai1 = UAI_GIVEN_WINTER[r["winter"]]
        for copd, uai in itertools.product((0, 1), repeat=2):
            p_cu = (p_copd1 if copd else 1 - p_copd1) * (p_uai1 if uai else 1 - p_uai1)
            p_pn1 = _pneumonia_prob({**r, "copd": copd})
            for pn in (0, 1):
                w = p_roots * p_cu * (p_pn1 if pn else 1 - p_pn1)
                node = {**r, "copd": copd, "pneumonia": pn, "upper_airway_infection": uai}
                for k in (*_ROOTS, *_DIAGNOSES):
                    out[k] += w * node[k]
                for s, weights in SYMPTOM_NOISY_OR.items():
                    out[s] += w * _noisy_or(weights, node)
                for level, p in zip(("fever_none", "fever_low", "fever_high"),
                                    FEVER_TABLE[(pn, uai)], strict=True):
                    out[level] += w * p
    out["female"] = P_FEMALE
    return out


def sample_respiratory_records(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Draw ``n`` latent records (roots, diagnoses, symptoms, fever, age, sex) from the network.

    Columns: the roots, ``copd``, ``pneumonia``, ``upper_airway_infection``, the binary
    symptoms, ``fever`` (0/1/2), ``fever_low``, ``fever_high``, ``age`` (int years), ``sex``
    ("F"/"M") and ``male`` (0/1). Every draw comes from ``rng`` in a fixed order.
    """
    n = check_int(n, "n", 1)
    check_rng(rng)
    u = rng.random((n, len(_ROOTS) + 3 + len(_SYMPTOMS) + 2))
    cols = iter(range(u.shape[1]))
    rec: dict[str, np.ndarray] = {}
    for k in _ROOTS:
        rec[k] = (u[:, next(cols)] < ROOT_PROBS[k]).astype(int)
    p_copd = np.where(rec["smoking"] == 1, COPD_GIVEN_SMOKING[1], COPD_GIVEN_SMOKING[0])
    rec["copd"] = (u[:, next(cols)] < p_copd).astype(int)
    rec["pneumonia"] = (u[:, next(cols)] < _pneumonia_prob(rec)).astype(int)
    p_uai = np.where(rec["winter"] == 1, UAI_GIVEN_WINTER[1], UAI_GIVEN_WINTER[0])
    rec["upper_airway_infection"] = (u[:, next(cols)] < p_uai).astype(int)
    for s, weights in SYMPTOM_NOISY_OR.items():
        rec[s] = (u[:, next(cols)] < _noisy_or(weights, rec)).astype(int)
    table = np.array([FEVER_TABLE[(a, b)] for a in (0, 1) for b in (0, 1)])
    probs = table[2 * rec["pneumonia"] + rec["upper_airway_infection"]]
    uf = u[:, next(cols)]
    rec["fever"] = (uf >= probs[:, 0]).astype(int) + (uf >= probs[:, 0] + probs[:, 1]).astype(int)
    rec["fever_low"] = (rec["fever"] == 1).astype(int)
    rec["fever_high"] = (rec["fever"] == 2).astype(int)
    female = u[:, next(cols)] < P_FEMALE
    age = rng.normal(AGE_MODEL["mean"], AGE_MODEL["sd"], size=n)
    rec["age"] = np.rint(np.clip(age, AGE_MODEL["min"], AGE_MODEL["max"])).astype(int)
    df = pd.DataFrame(rec)
    df["sex"] = np.where(female, "F", "M")
    df["male"] = (~female).astype(int)
    return df


def _col(records: pd.DataFrame | Mapping[str, Any], name: str) -> np.ndarray:
    return np.asarray(records[name], dtype=float)


def respiratory_mu0(records: pd.DataFrame | Mapping[str, Any]) -> np.ndarray:
    """Untreated mean outcome M0 of the AACE equations (see the module docstring)."""
    se, dy, co = _col(records, "self_employed"), _col(records, "dyspnoea"), _col(records, "cough")
    pa, na = _col(records, "pain"), _col(records, "nasal")
    fl, fh = _col(records, "fever_low"), _col(records, "fever_high")
    return (
        1.8 * se + 1.6 * dy + 1.2 * co + 0.5 * pa + 0.4 * na + 0.3 * fl + 1.5 * fh
        + 1.1 * dy * fh + 0.9 * se * co - 0.6 * na * fl + 0.7 * pa * se + 0.8 * co * fh
        + 0.7 * dy * se
    )


def respiratory_tau(records: pd.DataFrame | Mapping[str, Any]) -> np.ndarray:
    """Treatment effect tau = M1 - M0 of the AACE equations (negative: treatment helps)."""
    return (
        -1.0 + 1.1 * _col(records, "pain") + 1.0 * _col(records, "nasal")
        + 0.7 * _col(records, "fever_low") - 1.0 * _col(records, "dyspnoea")
        - 0.7 * _col(records, "cough") - 1.1 * _col(records, "fever_high")
    )


def respiratory_propensity(
    records: pd.DataFrame | Mapping[str, Any], confounding: float = 1.0
) -> np.ndarray:
    """P(T = 1 | record): sigmoid(-2.2 + gamma * [...]) clipped to [0.05, 0.95]."""
    po, dy, co = _col(records, "policy"), _col(records, "dyspnoea"), _col(records, "cough")
    pa, na = _col(records, "pain"), _col(records, "nasal")
    fl, fh = _col(records, "fever_low"), _col(records, "fever_high")
    score = (
        2.0 * po + 1.5 * dy + 1.1 * co + 1.3 * fh + 0.6 * pa + 0.9 * po * dy + 0.7 * po * fh
        - 0.5 * na * fl
    )
    return np.clip(expit(-2.2 + confounding * score), 0.05, 0.95)


def respiratory_selection_score(
    records: pd.DataFrame | Mapping[str, Any], T: np.ndarray
) -> np.ndarray:
    """Linear score of ``"covariates"`` annotation: 1.2 policy + 0.8 smoking - 0.6 winter + T."""
    return (1.2 * np.asarray(records["policy"]) + 0.8 * np.asarray(records["smoking"])
            - 0.6 * np.asarray(records["winter"]) + 1.0 * T)


_MODEL = AnnotatedModel(
    source=_SOURCE,
    sample_records=sample_respiratory_records,
    propensity=respiratory_propensity,
    mu0=respiratory_mu0,
    tau=respiratory_tau,
    selection_score=respiratory_selection_score,
    render_notes=render_respiratory_notes,
)


def _expand(names: list[str]) -> list[str]:
    """Column names of confounders: ``fever`` is two indicators (low, high)."""
    out: list[str] = []
    for c in names:
        out.extend(["fever_low", "fever_high"] if c == "fever" else [c])
    return out


def simulate_respiratory(
    n: int = 10_000,
    seed: int = 0,
    *,
    confounding: float = 1.0,
    text_only: float = 5 / 7,
    annotated: float = 1.0,
    annotation_selection: str = "uniform",
    style: str = "normal",
    misspelling_rate: float = 0.02,
    noise_sd: float = 0.8,
    split: tuple[float, float, float] = (0.6, 0.2, 0.2),
) -> CausalDataset:
    """Simulate respiratory encounters with notes, annotations and known effects.

    Parameters
    ----------
    n : number of encounters (>= 10).
    seed : master seed. Independent streams (``SeedSequence(seed).spawn(6)``) drive the
        records, treatment, outcome noise, annotation, notes and split, so changing
        ``confounding``, ``annotated``, ``annotation_selection``, ``noise_sd`` or ``text_only``
        leaves the records and the notes unchanged.
    confounding : gamma >= 0 multiplying every non-intercept term of the propensity logit
        (0: a randomised trial with e = sigmoid(-2.2) for everyone).
    text_only : share of the seven confounders :data:`CONFOUNDERS` visible only through the
        note: the first ``round(7 * text_only)`` of them are withheld from ``X`` (default 5/7:
        the five symptoms are text-only; policy and self-employment are tabular).
    annotated : expected fraction (0, 1] of records whose text-only confounders are annotated.
    annotation_selection : ``"uniform"`` or ``"covariates"`` (P = sigmoid(c + 1.2 policy
        + 0.8 smoking - 0.6 winter + 1.0 T), c solved so the mean is ``annotated``).
    style, misspelling_rate : passed to :func:`ehrcausal.text.notes.render_respiratory_notes`.
    noise_sd : standard deviation of the outcome noise.
    split : train/val/test proportions.

    Returns
    -------
    CausalDataset with ``X`` (visible confounders, fever as ``fever_low``/``fever_high``, then
    :data:`NON_CONFOUNDING_COLUMNS`), ``T``, ``Y``, ``text``, ``annotations`` (one float column
    per text-only confounder, rows NaN where not annotated), ``mu0``, ``mu1``, ``tau``,
    ``split``, ``modalities`` (``records``: the full latent table; ``annotated``: bool mask;
    ``annotation_propensity``: the true annotation probability; ``propensity``: true e) and
    ``meta``.

    With ``annotation_selection="covariates"`` and ``text_only=1`` the policy indicator is
    itself text-only, so the selection then depends on a covariate that is not tabular.
    """
    knobs = check_knobs(
        n=n, seed=seed, confounding=confounding, annotated=annotated,
        annotation_selection=annotation_selection, style=style,
        misspelling_rate=misspelling_rate, noise_sd=noise_sd, split=split,
    )
    to = check_number(text_only, "text_only", 0.0, 1.0)
    n_hidden = int(round(to * len(CONFOUNDERS)))
    hidden, visible = list(CONFOUNDERS[:n_hidden]), list(CONFOUNDERS[n_hidden:])
    return simulate_annotated(
        _MODEL, knobs, x_columns=_expand(visible) + list(NON_CONFOUNDING_COLUMNS),
        annotation_columns=_expand(hidden), text_only=hidden, tabular=visible,
        extra_knobs={"text_only": to},
    )
