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
from ..validation import check_int
from .dataset import CausalDataset
from .ihdp import protocol_split

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
_SELECTIONS = ("uniform", "covariates")
_STYLES = ("normal", "compact")
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
    check_int(n, "n", 1)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(
            f"rng must be a numpy Generator (np.random.default_rng(seed)), got {rng!r}"
        )
    n = int(n)
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


# ---------------------------------------------------------------------------------------------
# Knob checks, annotation selection and assembly, shared with the cardiac simulator.
# ---------------------------------------------------------------------------------------------


def _check_number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a number, got {value!r}") from exc
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return v


def _check_knobs(
    *,
    n: Any,
    seed: Any,
    confounding: Any,
    annotated: Any,
    annotation_selection: Any,
    style: Any,
    misspelling_rate: Any,
    noise_sd: Any,
    split: Any,
) -> tuple[float, tuple[float, float, float]]:
    """Validate the knobs shared by the simulators; return (annotated, split) as floats."""
    check_int(n, "n", 10)
    check_int(seed, "seed", 0)
    if _check_number("confounding", confounding) < 0:
        raise ValueError(f"confounding must be >= 0, got {confounding!r}")
    a = _check_number("annotated", annotated)
    if not 0.0 < a <= 1.0:
        raise ValueError(f"annotated must lie in (0, 1], got {annotated!r}")
    if annotation_selection not in _SELECTIONS:
        raise ValueError(
            f"annotation_selection must be one of {_SELECTIONS}, got {annotation_selection!r}"
        )
    if style not in _STYLES:
        raise ValueError(f"style must be one of {_STYLES}, got {style!r}")
    if not 0.0 <= _check_number("misspelling_rate", misspelling_rate) <= 0.5:
        raise ValueError(f"misspelling_rate must lie in [0, 0.5], got {misspelling_rate!r}")
    if _check_number("noise_sd", noise_sd) < 0:
        raise ValueError(f"noise_sd must be >= 0, got {noise_sd!r}")
    try:
        fr = tuple(_check_number("split", f) for f in split)
    except TypeError as exc:
        raise ValueError(
            f"split must be three proportions (train, val, test), got {split!r}"
        ) from exc
    if len(fr) != 3 or min(fr) <= 0 or not np.isclose(sum(fr), 1.0):
        raise ValueError(
            "split must be three positive proportions (train, val, test) summing to 1, "
            f"got {split!r}"
        )
    return a, (fr[0], fr[1], fr[2])


def _streams(seed: int) -> dict[str, np.random.SeedSequence]:
    """Independent child seed sequences: records, treatment, noise, annotation, notes, split."""
    names = ("records", "treatment", "noise", "annotation", "notes", "split")
    return dict(zip(names, np.random.SeedSequence(int(seed)).spawn(len(names)), strict=True))


def _int_seed(ss: np.random.SeedSequence) -> int:
    return int(ss.generate_state(1)[0])


def _solve_intercept(linear: np.ndarray, target: float, tol: float = 1e-12) -> float:
    """Bisection for c such that mean(sigmoid(c + linear)) = target (0 < target < 1)."""
    base = float(np.log(target / (1.0 - target)))
    lo, hi = base - float(linear.max()) - 1.0, base - float(linear.min()) + 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if float(expit(mid + linear).mean()) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo < tol:
            break
    return 0.5 * (lo + hi)


def _annotation(
    selection: str, annotated: float, linear: np.ndarray, ss: np.random.SeedSequence
) -> tuple[np.ndarray, np.ndarray]:
    """True annotation probabilities and the annotated mask.

    ``"uniform"``: P(annotated) = ``annotated`` for every record. ``"covariates"``:
    P = sigmoid(c + linear) with c solved by bisection so that the mean probability equals
    ``annotated``. With ``annotated == 1`` every record is annotated under either scheme.
    """
    n = len(linear)
    u = np.random.default_rng(ss).random(n)
    if annotated >= 1.0:
        prob = np.ones(n)
    elif selection == "uniform":
        prob = np.full(n, annotated)
    else:
        prob = expit(_solve_intercept(linear, annotated) + linear)
    return prob, u < prob


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
    ann_frac, fractions = _check_knobs(
        n=n, seed=seed, confounding=confounding, annotated=annotated,
        annotation_selection=annotation_selection, style=style,
        misspelling_rate=misspelling_rate, noise_sd=noise_sd, split=split,
    )
    to = _check_number("text_only", text_only)
    if not 0.0 <= to <= 1.0:
        raise ValueError(f"text_only must lie in [0, 1], got {text_only!r}")
    n, seed = int(n), int(seed)
    gamma, sd = float(confounding), float(noise_sd)
    ss = _streams(seed)

    records = sample_respiratory_records(n, np.random.default_rng(ss["records"]))
    e = respiratory_propensity(records, gamma)
    T = (np.random.default_rng(ss["treatment"]).random(n) < e).astype(int)
    mu0 = respiratory_mu0(records)
    mu1 = mu0 + respiratory_tau(records)
    noise = np.random.default_rng(ss["noise"]).standard_normal(n)
    Y = np.where(T == 1, mu1, mu0) + sd * noise

    n_hidden = int(round(to * len(CONFOUNDERS)))
    hidden, visible = list(CONFOUNDERS[:n_hidden]), list(CONFOUNDERS[n_hidden:])

    def expand(names: list[str]) -> list[str]:
        out: list[str] = []
        for c in names:
            out.extend(["fever_low", "fever_high"] if c == "fever" else [c])
        return out

    x_cols = expand(visible) + list(NON_CONFOUNDING_COLUMNS)
    X = records[x_cols].astype(int).reset_index(drop=True)

    linear = (1.2 * records["policy"].to_numpy() + 0.8 * records["smoking"].to_numpy()
              - 0.6 * records["winter"].to_numpy() + 1.0 * T)
    ann_prob, ann_mask = _annotation(annotation_selection, ann_frac, linear, ss["annotation"])
    ann_cols = expand(hidden)
    annotations = records[ann_cols].astype(float).reset_index(drop=True)
    annotations.loc[~ann_mask, :] = np.nan

    text = render_respiratory_notes(
        records, seed=_int_seed(ss["notes"]), style=style, misspelling_rate=misspelling_rate
    )
    labels = protocol_split(n, _int_seed(ss["split"]), fractions)
    knobs = {
        "n": n, "confounding": gamma, "text_only": to, "annotated": ann_frac,
        "annotation_selection": annotation_selection, "style": style,
        "misspelling_rate": float(misspelling_rate), "noise_sd": sd, "split": list(fractions),
    }
    return _annotated_dataset(
        records=records, X=X, T=T, Y=Y, mu0=mu0, mu1=mu1, propensity=e, text=text,
        annotations=annotations, ann_prob=ann_prob, ann_mask=ann_mask, split=labels,
        meta={"source": _SOURCE, "seed": seed, "knobs": knobs, "text_only": hidden,
              "tabular": visible, "x_columns": x_cols, "annotation_columns": ann_cols},
    )


def _annotated_dataset(
    *, records: pd.DataFrame, X: pd.DataFrame, T: np.ndarray, Y: np.ndarray, mu0: np.ndarray,
    mu1: np.ndarray, propensity: np.ndarray, text: list[str], annotations: pd.DataFrame,
    ann_prob: np.ndarray, ann_mask: np.ndarray, split: np.ndarray, meta: dict,
) -> CausalDataset:
    """The dataset layout shared by the AACE simulators (records and truths as modalities)."""
    return CausalDataset(
        X=X, T=T, Y=Y, text=text, annotations=annotations,
        modalities={"records": records, "annotated": ann_mask,
                    "annotation_propensity": ann_prob, "propensity": propensity},
        mu0=mu0, mu1=mu1, tau=mu1 - mu0, split=split, meta=meta,
    )
