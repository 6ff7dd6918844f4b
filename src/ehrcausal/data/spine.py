r"""A simulated spine-surgery cohort with two surgical decisions as two causal tasks.

This is the data of the X-MultiTask chapter (Tamo et al. 2025, "Causal Machine Learning for
Surgical Interventions", arXiv:2509.19705). The paper studies two decisions on two cohorts: the
surgical approach (anterior vs posterior) in a public spinal-fusion cohort (1,017 patients,
outcome: complication severity) and surgery vs non-surgical management in a private cohort
(368 patients, outcome: patient-reported outcomes). Neither is available offline, so
:func:`simulate_spine` draws ONE population of pre-operative records and defines both decisions
on it: the approach task on all ``n`` patients and the surgery task on a seeded subset of the
same patients, so that the two tasks share patients (``modalities["ids"]``) and, through
``shared_effect``, effect modifiers. All numbers below are assumptions of this simulator,
chosen to be clinically plausible for an adult spine-surgery population; none is fitted to data.

Covariates (40 columns, the same for both tasks)
------------------------------------------------
Five correlated latent factors drive the correlations among the observed columns:
:math:`(z_{age}, F, R, A, M) \sim N(0, \Sigma)` (age, frailty, renal dysfunction,
anaemia/inflammation, metabolic), with :math:`\Sigma` the correlation matrix ``_LATENT_CORR``,
plus an independent disease-severity factor :math:`D \sim N(0, 1)`. Each column adds its own
independent noise :math:`\varepsilon \sim N(0, 1)` (a fresh draw per column);
:math:`\sigma(u) = 1/(1 + e^{-u})`, ``Bern`` a Bernoulli draw, ``clip`` keeps a range:

* demographics: ``age_years`` = clip(60 + 13 z_age, 18, 90); ``male`` ~ Bern(0.45);
  ``bmi_kg_m2`` = clip(29 + 5.5 (0.6 M + 0.8 eps), 16, 60); ``smoker`` ~ Bern(sigma(-1.7 +
  0.4 F - 0.25 a)); ``asa_class`` in 1..4 = 1 + #{L > c} for c in (-1.4, 0.25, 1.65) with
  L = 0.55 F + 0.2 R + 0.2 M + 0.2 a + 0.3 cad + 0.2 copd + 0.2 diabetes + 0.6 eps,
  where a = (age - 60) / 13;
* comorbidities (0/1): ``diabetes`` sigma(-1.9 + 1.1 M + 0.3 a); ``hypertension``
  sigma(-0.2 + 0.6 a + 0.6 M + 0.3 R); ``cad`` sigma(-2.6 + 0.6 a + 0.5 F + 0.5 male + 0.2 M);
  ``copd`` sigma(-2.9 + 0.5 F + 1.3 smoker + 0.3 a); ``osteoporosis`` sigma(-2.2 + 0.8 a -
  0.9 male + 0.4 F - 0.3 b) with b = (bmi - 29) / 5.5; ``depression`` sigma(-1.4 + 0.4 F);
  ``prior_spine_surgery`` sigma(-1.9 + 0.45 n_prior_surgeries);
* 20 pre-operative labs (units in the names): ``hemoglobin_g_dl`` clip(13.4 + 1.1 male - 0.9 A
  - 0.3 R - 0.2 F + eps, 6, 19); ``hematocrit_pct`` clip(3 hemoglobin + 1.2 eps, 18, 60);
  ``wbc_k_ul`` exp(log 7 + 0.18 A + 0.25 eps); ``platelets_k_ul`` clip(250 + 25 A - 12 F +
  55 eps, 20, 800); ``sodium_mmol_l`` 139.5 - 0.7 R + 2.3 eps; ``potassium_mmol_l`` 4.2 +
  0.18 R + 0.35 eps; ``chloride_mmol_l`` 103 + 0.6 (sodium - 139.5) + 1.8 eps;
  ``bicarbonate_mmol_l`` 25.5 - 0.8 R + 2 eps; ``bun_mg_dl`` exp(log 15 + 0.28 R + 0.1 a +
  0.25 eps); ``creatinine_mg_dl`` exp(log 0.85 + 0.15 male + 0.28 R + 0.15 eps);
  ``glucose_mg_dl`` exp(log 98 + 0.08 M + 0.1 eps) + 45 diabetes exp(0.3 eps);
  ``calcium_mg_dl`` 9.4 - 0.15 A + 0.35 eps; ``albumin_g_dl`` clip(4.1 - 0.22 F - 0.15 A +
  0.3 eps, 1.5, 5.5); ``inr`` exp(0.04 F + 0.06 eps); ``pt_s`` 12.2 inr + 0.4 eps; ``ptt_s``
  30 + 1.2 F + 3 eps; ``alt_u_l`` exp(log 22 + 0.12 M + 0.4 eps); ``ast_u_l`` exp(log 23 +
  0.5 log(alt / 22) + 0.25 eps); ``alk_phos_u_l`` exp(log 80 + 0.08 F + 0.25 eps);
  ``bilirubin_mg_dl`` exp(log 0.6 + 0.4 eps);
* counts (Poisson): ``n_medications`` rate exp(log 4.5 + 0.3 F + 0.1 M + 0.15 a +
  0.3 diabetes + 0.2 hypertension); ``n_prior_surgeries`` exp(log 1.1 + 0.25 F + 0.2 a);
  ``n_history_entries`` exp(log 7 + 0.3 F + 0.15 R + 0.1 a);
* spine: ``cervical`` ~ Bern(0.3) (else lumbar); ``n_levels`` fused in 1..4 with probabilities
  (0.40, 0.35, 0.17, 0.08) for cervical and (0.45, 0.30, 0.15, 0.10) for lumbar procedures;
  ``myelopathy`` sigma(-2.3 + 2.3 cervical + 0.3 a); ``baseline_function_srs`` clip(3.4 -
  0.45 D + 0.35 eps, 1, 5) and ``baseline_pain_srs`` clip(3.1 - 0.4 D + 0.45 eps, 1, 5) on the
  SRS-22 1-5 scale (higher is better).

Effect modifiers (functions of the observed columns only, so the true effects are CATEs)
----------------------------------------------------------------------------------------
With :math:`z_{alb} = (\text{albumin} - 4)/0.4`, :math:`z_{hgb} = (\text{hemoglobin} -
13.8)/1.5`, :math:`z_{med} = (\text{n\_medications} - 5)/2.5`, :math:`z_{cr} =
\log(\text{creatinine}/0.9)/0.3`, :math:`z_f = (\text{baseline\_function} - 3.4)/0.55`,
:math:`z_p = (\text{baseline\_pain} - 3.1)/0.6`:

.. math::
    \text{frail}(x) &= 0.4 a + 0.35(\text{asa} - 2.5) - 0.35 z_{alb} - 0.2 z_{hgb} + 0.2 z_{med}\\
    g(x) &= 0.5\,\text{frail}(x) + 0.25 a + 0.6\,\text{osteoporosis} + 0.5\,\text{myelopathy}
            + 0.25 b - 0.14

:math:`g` is the *shared* effect modifier (centred near 0 in the population); it enters both
tasks multiplied by ``shared_effect`` :math:`= s`. The task-specific modifiers use disjoint,
independent covariates (spine level and extent for the approach; the baseline scores, which
depend only on :math:`D`, for surgery), so with :math:`s = 0` the two tasks' effects are
independent across patients.

Task "approach" (anterior T=1 vs posterior T=0; outcome: complication severity 0..3)
------------------------------------------------------------------------------------
Ordered logit (proportional odds) with cut-points :math:`\theta = (0.6, 2.04, 3.43)`:

.. math::
    P(Y \le c \mid x, t) &= \sigma(\theta_c - \eta_t(x)),\quad c = 0, 1, 2\\
    \eta_0(x) &= 0.45\,\text{frail} + 0.25(\text{n\_levels} - 1) + 0.35\,\text{diabetes}
        + 0.25\,\text{smoker} + 0.15 b + 0.2\,\text{cad} + 0.25\,\text{copd} + 0.15 z_{cr}
        + 0.3\,\text{prior\_spine\_surgery}\\
    \eta_1(x) &= \eta_0(x) + \delta_a(x),\quad
    \delta_a(x) = -0.1 + 0.6\,s\,g(x) - 0.5\,\text{cervical} + 0.3(\text{n\_levels} - 1)

``mu0``/``mu1`` are the exact class probabilities :math:`P(Y = c \mid x, t)` (shape (n, 4)),
``tau = mu1 - mu0`` (per-class probability effects, rows sum to 0), and Y is drawn from
:math:`P(\cdot \mid x, T)`. At the defaults the observed class shares are about 55/25/13/7 %.

Task "surgery" (surgery T=1 vs non-surgical management T=0; outcome: 4 PRO domains)
-----------------------------------------------------------------------------------
Domains ("function", "pain", "self_image", "mental_health") on the SRS-22 1-5 scale, higher
is better:

.. math::
    \mu_0^{fun} &= 0.8 + 0.72\,\text{baseline\_function} - 0.1 a - 0.1(\text{asa} - 2.5)\\
    \mu_0^{pain} &= 0.9 + 0.72\,\text{baseline\_pain} - 0.05 a - 0.1\,\text{depression}\\
    \mu_0^{img} &= 3.1 + 0.15 z_f - 0.1 b - 0.15\,\text{depression}\\
    \mu_0^{men} &= 3.8 - 0.5\,\text{depression} + 0.1 z_p - 0.05\,\text{frail}\\
    \tau^{d}(x) &= \beta_d + s\,w_d\,g(x) + h_d(x),\quad \mu_1^d = \mu_0^d + \tau^d

with :math:`\beta = (0.45, 0.55, 0.6, 0.15)`, :math:`w = (-0.3, -0.2, -0.15, -0.1)` (frail,
osteoporotic, myelopathic patients gain less from surgery) and task-specific
:math:`h = (-0.2 z_f, -0.25 z_p, -0.05 z_f - 0.1 z_p, -0.04 z_f - 0.04 z_p)` (worse
baseline, larger gain).
:math:`Y^d = \mu_T^d(x) + N(0, 0.45^2)` independently per domain; Y is NOT clipped to [1, 5],
so ``mu`` is exactly its expectation (the expected values lie in [1, 5] for more than 99.8 % of
patients at the defaults).

Treatment assignment (confounded; ``confounding`` :math:`= k`, 0 gives a randomised 50/50 trial)
------------------------------------------------------------------------------------------------
.. math::
    \operatorname{logit} e_a(x) &= k(-0.9 + 1.8\,\text{cervical} + 0.7\,\text{myelopathy}
        - 0.45(\text{n\_levels} - 1) - 0.4\,\text{osteoporosis} - 0.2 a)\\
    \operatorname{logit} e_s(x) &= k(0.1 - 0.9 z_f - 0.35 a - 0.3(\text{asa} - 2.5)
        + 0.3\,\text{myelopathy})

(cervical disease and myelopathy favour the anterior approach, multilevel fusion and
osteoporosis the posterior one; worse baseline function and younger age favour surgery), each
clipped to [0.05, 0.95] and stored in ``modalities["propensity"]``.

Randomness: one :class:`numpy.random.SeedSequence` per ``seed`` spawns independent streams for
the covariates, the treatments, the outcome noise, the surgery subset and the splits (each
task its own child stream), so changing ``confounding`` changes T (and hence Y) but never X,
and changing ``shared_effect`` changes only the true effects and Y.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..runtime import seed_streams, stream_seed
from ..validation import check_int
from ._simulate import check_nonnegative
from .dataset import CausalDataset
from .splits import check_split, protocol_split

__all__ = ["simulate_spine", "SPINE_COLUMNS", "PRO_DOMAINS", "SEVERITY_CLASSES"]

PRO_DOMAINS: tuple[str, ...] = ("function", "pain", "self_image", "mental_health")
SEVERITY_CLASSES: tuple[int, ...] = (0, 1, 2, 3)
SOURCE = "simulated: spine surgery cohort"

# correlation of the latent factors (age, frailty, renal, anaemia/inflammation, metabolic)
_LATENT_CORR = np.array(
    [
        [1.0, 0.5, 0.4, 0.2, 0.3],
        [0.5, 1.0, 0.4, 0.4, 0.3],
        [0.4, 0.4, 1.0, 0.3, 0.3],
        [0.2, 0.4, 0.3, 1.0, 0.1],
        [0.3, 0.3, 0.3, 0.1, 1.0],
    ]
)
_ASA_CUTS = (-1.4, 0.25, 1.65)
_LEVEL_PROBS = {"cervical": (0.40, 0.35, 0.17, 0.08), "lumbar": (0.45, 0.30, 0.15, 0.10)}
_THETA = np.array([0.6, 2.04, 3.43])  # ordered-logit cut-points
_G_CENTRE = 0.14
_SURGERY_BASE = np.array([0.45, 0.55, 0.6, 0.15])
_SURGERY_SHARED = np.array([-0.3, -0.2, -0.15, -0.1])
_PRO_NOISE_SD = 0.45
_PROPENSITY_CLIP = (0.05, 0.95)

SPINE_COLUMNS: tuple[str, ...] = (
    "age_years",
    "male",
    "bmi_kg_m2",
    "smoker",
    "asa_class",
    "hemoglobin_g_dl",
    "hematocrit_pct",
    "wbc_k_ul",
    "platelets_k_ul",
    "sodium_mmol_l",
    "potassium_mmol_l",
    "chloride_mmol_l",
    "bicarbonate_mmol_l",
    "bun_mg_dl",
    "creatinine_mg_dl",
    "glucose_mg_dl",
    "calcium_mg_dl",
    "albumin_g_dl",
    "inr",
    "pt_s",
    "ptt_s",
    "alt_u_l",
    "ast_u_l",
    "alk_phos_u_l",
    "bilirubin_mg_dl",
    "n_medications",
    "n_prior_surgeries",
    "n_history_entries",
    "diabetes",
    "hypertension",
    "cad",
    "copd",
    "osteoporosis",
    "depression",
    "prior_spine_surgery",
    "cervical",
    "n_levels",
    "myelopathy",
    "baseline_function_srs",
    "baseline_pain_srs",
)


def _sigmoid(u: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-u))


# ---------------------------------------------------------------------------------------------
# covariates
# ---------------------------------------------------------------------------------------------


def _simulate_covariates(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Draw the 40 pre-operative columns (equations in the module docstring)."""

    def eps() -> np.ndarray:
        return rng.standard_normal(n)

    def bern(logit: np.ndarray | float) -> np.ndarray:
        return (rng.random(n) < _sigmoid(np.asarray(logit, dtype=float))).astype(np.int64)

    chol = np.linalg.cholesky(_LATENT_CORR)
    z_age, F, R, A, M = (rng.standard_normal((n, 5)) @ chol.T).T
    D = rng.standard_normal(n)

    age = np.clip(60.0 + 13.0 * z_age, 18.0, 90.0)
    a = (age - 60.0) / 13.0
    male = (rng.random(n) < 0.45).astype(np.int64)
    bmi = np.clip(29.0 + 5.5 * (0.6 * M + 0.8 * eps()), 16.0, 60.0)
    b = (bmi - 29.0) / 5.5
    smoker = bern(-1.7 + 0.4 * F - 0.25 * a)
    diabetes = bern(-1.9 + 1.1 * M + 0.3 * a)
    hypertension = bern(-0.2 + 0.6 * a + 0.6 * M + 0.3 * R)
    cad = bern(-2.6 + 0.6 * a + 0.5 * F + 0.5 * male + 0.2 * M)
    copd = bern(-2.9 + 0.5 * F + 1.3 * smoker + 0.3 * a)
    osteoporosis = bern(-2.2 + 0.8 * a - 0.9 * male + 0.4 * F - 0.3 * b)
    depression = bern(-1.4 + 0.4 * F)
    asa_latent = (
        0.55 * F + 0.2 * R + 0.2 * M + 0.2 * a + 0.3 * cad + 0.2 * copd + 0.2 * diabetes
    ) + 0.6 * eps()
    asa = 1 + sum((asa_latent > c).astype(np.int64) for c in _ASA_CUTS)

    hgb = np.clip(13.4 + 1.1 * male - 0.9 * A - 0.3 * R - 0.2 * F + eps(), 6.0, 19.0)
    hct = np.clip(3.0 * hgb + 1.2 * eps(), 18.0, 60.0)
    wbc = np.exp(np.log(7.0) + 0.18 * A + 0.25 * eps())
    platelets = np.clip(250.0 + 25.0 * A - 12.0 * F + 55.0 * eps(), 20.0, 800.0)
    sodium = 139.5 - 0.7 * R + 2.3 * eps()
    potassium = 4.2 + 0.18 * R + 0.35 * eps()
    chloride = 103.0 + 0.6 * (sodium - 139.5) + 1.8 * eps()
    bicarbonate = 25.5 - 0.8 * R + 2.0 * eps()
    bun = np.exp(np.log(15.0) + 0.28 * R + 0.1 * a + 0.25 * eps())
    creatinine = np.exp(np.log(0.85) + 0.15 * male + 0.28 * R + 0.15 * eps())
    glucose = np.exp(np.log(98.0) + 0.08 * M + 0.1 * eps()) + 45.0 * diabetes * np.exp(
        0.3 * eps()
    )
    calcium = 9.4 - 0.15 * A + 0.35 * eps()
    albumin = np.clip(4.1 - 0.22 * F - 0.15 * A + 0.3 * eps(), 1.5, 5.5)
    inr = np.exp(0.04 * F + 0.06 * eps())
    pt = 12.2 * inr + 0.4 * eps()
    ptt = 30.0 + 1.2 * F + 3.0 * eps()
    alt = np.exp(np.log(22.0) + 0.12 * M + 0.4 * eps())
    ast = np.exp(np.log(23.0) + 0.5 * np.log(alt / 22.0) + 0.25 * eps())
    alk_phos = np.exp(np.log(80.0) + 0.08 * F + 0.25 * eps())
    bilirubin = np.exp(np.log(0.6) + 0.4 * eps())

    n_medications = rng.poisson(
        np.exp(np.log(4.5) + 0.3 * F + 0.1 * M + 0.15 * a + 0.3 * diabetes + 0.2 * hypertension)
    )
    n_prior_surgeries = rng.poisson(np.exp(np.log(1.1) + 0.25 * F + 0.2 * a))
    n_history_entries = rng.poisson(np.exp(np.log(7.0) + 0.3 * F + 0.15 * R + 0.1 * a))
    prior_spine_surgery = bern(-1.9 + 0.45 * n_prior_surgeries)

    cervical = (rng.random(n) < 0.3).astype(np.int64)
    u_levels = rng.random(n)
    cum = np.where(
        cervical[:, None] == 1,
        np.cumsum(_LEVEL_PROBS["cervical"])[None, :3],
        np.cumsum(_LEVEL_PROBS["lumbar"])[None, :3],
    )
    n_levels = 1 + (u_levels[:, None] > cum).sum(axis=1)
    myelopathy = bern(-2.3 + 2.3 * cervical + 0.3 * a)
    baseline_function = np.clip(3.4 - 0.45 * D + 0.35 * eps(), 1.0, 5.0)
    baseline_pain = np.clip(3.1 - 0.4 * D + 0.45 * eps(), 1.0, 5.0)

    columns = {
        "age_years": age,
        "male": male,
        "bmi_kg_m2": bmi,
        "smoker": smoker,
        "asa_class": asa,
        "hemoglobin_g_dl": hgb,
        "hematocrit_pct": hct,
        "wbc_k_ul": wbc,
        "platelets_k_ul": platelets,
        "sodium_mmol_l": sodium,
        "potassium_mmol_l": potassium,
        "chloride_mmol_l": chloride,
        "bicarbonate_mmol_l": bicarbonate,
        "bun_mg_dl": bun,
        "creatinine_mg_dl": creatinine,
        "glucose_mg_dl": glucose,
        "calcium_mg_dl": calcium,
        "albumin_g_dl": albumin,
        "inr": inr,
        "pt_s": pt,
        "ptt_s": ptt,
        "alt_u_l": alt,
        "ast_u_l": ast,
        "alk_phos_u_l": alk_phos,
        "bilirubin_mg_dl": bilirubin,
        "n_medications": n_medications.astype(np.int64),
        "n_prior_surgeries": n_prior_surgeries.astype(np.int64),
        "n_history_entries": n_history_entries.astype(np.int64),
        "diabetes": diabetes,
        "hypertension": hypertension,
        "cad": cad,
        "copd": copd,
        "osteoporosis": osteoporosis,
        "depression": depression,
        "prior_spine_surgery": prior_spine_surgery,
        "cervical": cervical,
        "n_levels": n_levels.astype(np.int64),
        "myelopathy": myelopathy,
        "baseline_function_srs": baseline_function,
        "baseline_pain_srs": baseline_pain,
    }
    return pd.DataFrame(columns, columns=list(SPINE_COLUMNS))


# ---------------------------------------------------------------------------------------------
# ground truth: functions of the observed covariates
# ---------------------------------------------------------------------------------------------


def _col(X: pd.DataFrame, name: str) -> np.ndarray:
    return X[name].to_numpy(dtype=float)


def _scores(X: pd.DataFrame) -> dict[str, np.ndarray]:
    """Standardised covariates, the frailty index and the shared effect modifier g(x)."""
    a = (_col(X, "age_years") - 60.0) / 13.0
    b = (_col(X, "bmi_kg_m2") - 29.0) / 5.5
    z_alb = (_col(X, "albumin_g_dl") - 4.0) / 0.4
    z_hgb = (_col(X, "hemoglobin_g_dl") - 13.8) / 1.5
    z_med = (_col(X, "n_medications") - 5.0) / 2.5
    z_cr = np.log(_col(X, "creatinine_mg_dl") / 0.9) / 0.3
    asa = _col(X, "asa_class") - 2.5
    frail = 0.4 * a + 0.35 * asa - 0.35 * z_alb - 0.2 * z_hgb + 0.2 * z_med
    g = (
        0.5 * frail
        + 0.25 * a
        + 0.6 * _col(X, "osteoporosis")
        + 0.5 * _col(X, "myelopathy")
        + 0.25 * b
        - _G_CENTRE
    )
    return {
        "a": a,
        "b": b,
        "asa": asa,
        "z_cr": z_cr,
        "z_f": (_col(X, "baseline_function_srs") - 3.4) / 0.55,
        "z_p": (_col(X, "baseline_pain_srs") - 3.1) / 0.6,
        "frail": frail,
        "g": g,
    }


def _ordered_logit_proba(eta: np.ndarray) -> np.ndarray:
    """Class probabilities (n, 4) of the ordered logit P(Y <= c) = sigma(theta_c - eta)."""
    cdf = _sigmoid(_THETA[None, :] - eta[:, None])
    cdf = np.concatenate([np.zeros((len(eta), 1)), cdf, np.ones((len(eta), 1))], axis=1)
    return np.diff(cdf, axis=1)


def _approach_truth(X: pd.DataFrame, shared_effect: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact class probabilities (mu0, mu1), each (n, 4), of the approach task."""
    s = _scores(X)
    levels = _col(X, "n_levels") - 1.0
    eta0 = (
        0.45 * s["frail"]
        + 0.25 * levels
        + 0.35 * _col(X, "diabetes")
        + 0.25 * _col(X, "smoker")
        + 0.15 * s["b"]
        + 0.2 * _col(X, "cad")
        + 0.25 * _col(X, "copd")
        + 0.15 * s["z_cr"]
        + 0.3 * _col(X, "prior_spine_surgery")
    )
    delta = -0.1 + 0.6 * shared_effect * s["g"] - 0.5 * _col(X, "cervical") + 0.3 * levels
    return _ordered_logit_proba(eta0), _ordered_logit_proba(eta0 + delta)


def _surgery_truth(X: pd.DataFrame, shared_effect: float) -> tuple[np.ndarray, np.ndarray]:
    """Expected PROs (mu0, mu1), each (n, 4) in the order of PRO_DOMAINS, of the surgery task."""
    s = _scores(X)
    depression = _col(X, "depression")
    mu0 = np.column_stack(
        [
            0.8 + 0.72 * _col(X, "baseline_function_srs") - 0.1 * s["a"] - 0.1 * s["asa"],
            0.9 + 0.72 * _col(X, "baseline_pain_srs") - 0.05 * s["a"] - 0.1 * depression,
            3.1 + 0.15 * s["z_f"] - 0.1 * s["b"] - 0.15 * depression,
            3.8 - 0.5 * depression + 0.1 * s["z_p"] - 0.05 * s["frail"],
        ]
    )
    specific = np.column_stack(
        [
            -0.2 * s["z_f"],
            -0.25 * s["z_p"],
            -0.05 * s["z_f"] - 0.1 * s["z_p"],
            -0.04 * s["z_f"] - 0.04 * s["z_p"],
        ]
    )
    tau = _SURGERY_BASE[None, :] + shared_effect * _SURGERY_SHARED[None, :] * s["g"][:, None]
    tau = tau + specific
    return mu0, mu0 + tau


def _approach_propensity(X: pd.DataFrame, confounding: float) -> np.ndarray:
    s = _scores(X)
    logit = (
        -0.9
        + 1.8 * _col(X, "cervical")
        + 0.7 * _col(X, "myelopathy")
        - 0.45 * (_col(X, "n_levels") - 1.0)
        - 0.4 * _col(X, "osteoporosis")
        - 0.2 * s["a"]
    )
    return np.clip(_sigmoid(confounding * logit), *_PROPENSITY_CLIP)


def _surgery_propensity(X: pd.DataFrame, confounding: float) -> np.ndarray:
    s = _scores(X)
    logit = 0.1 - 0.9 * s["z_f"] - 0.35 * s["a"] - 0.3 * s["asa"] + 0.3 * _col(X, "myelopathy")
    return np.clip(_sigmoid(confounding * logit), *_PROPENSITY_CLIP)


# ---------------------------------------------------------------------------------------------
# validation and the public entry point
# ---------------------------------------------------------------------------------------------


#: The seed streams of the cohort, in spawn order (never reorder: it fixes every number).
_STREAMS = ("covariates", "treatment", "noise", "subset", "split")


def simulate_spine(
    n: int = 1017,
    seed: int = 0,
    *,
    n_surgery: int | None = None,
    confounding: float = 1.0,
    shared_effect: float = 1.0,
    split: tuple[float, float, float] = (0.6, 0.2, 0.2),
) -> dict[str, CausalDataset]:
    """Simulate the spine-surgery cohort and its two decision tasks.

    The equations (covariates, potential outcomes, effects, propensities) are in the module
    docstring of :mod:`ehrcausal.data.spine`; they are the ground truth the book quotes.

    Args:
        n: patients in the cohort, all in the "approach" task (at least 20; paper: 1,017).
        seed: master seed; the same seed and knobs give identical data sets.
        n_surgery: patients in the "surgery" task, a seeded subset of the cohort, in
            ``[10, n]``; default ``max(10, round(n * 368 / 1017))`` (368 at ``n = 1017``).
        confounding: scale ``k`` of both propensity logits; 0 gives randomised assignment
            (e = 0.5), larger values stronger confounding.
        shared_effect: scale ``s`` of the effect modifier g(x) shared by the two tasks; 0 makes
            the tasks' effects independent, 1 is the default shared structure.
        split: three positive train/val/test fractions summing to 1, drawn per task with its
            own seeded stream.

    Returns:
        ``{"approach": CausalDataset, "surgery": CausalDataset}``. Both have the same ``X``
        columns (:data:`SPINE_COLUMNS`), ``modalities = {"ids": patient_id, "propensity": e}``
        and ``meta`` with ``source``, ``task``, ``outcome``, ``seed`` and ``knobs``. "approach":
        ``Y`` int labels 0..3, ``mu0``/``mu1``/``tau`` (n, 4) class probabilities and their
        differences, ``meta["classes"]``. "surgery": ``Y`` float (n_surgery, 4),
        ``mu0``/``mu1``/``tau`` (n_surgery, 4) in the order ``meta["domains"]``.

    Raises:
        ValueError: a knob out of range (the message names it).
    """
    n = check_int(n, "n", 20)
    seed = check_int(seed, "seed", 0)
    if n_surgery is None:
        n_surgery = max(10, int(round(n * 368 / 1017)))
    n_surgery = check_int(n_surgery, "n_surgery", 10, n)
    confounding = check_nonnegative(confounding, "confounding")
    shared_effect = check_nonnegative(shared_effect, "shared_effect")
    fractions = check_split(split)

    ss = seed_streams(seed, _STREAMS)
    treat_a, treat_s = ss["treatment"].spawn(2)
    noise_a, noise_s = ss["noise"].spawn(2)
    split_a, split_s = ss["split"].spawn(2)

    X = _simulate_covariates(np.random.default_rng(ss["covariates"]), n)
    ids = np.arange(n, dtype=np.int64)
    knobs = {
        "n": n,
        "n_surgery": n_surgery,
        "confounding": confounding,
        "shared_effect": shared_effect,
        "split": list(fractions),
    }

    # task "approach": all patients
    e_a = _approach_propensity(X, confounding)
    T_a = (np.random.default_rng(treat_a).random(n) < e_a).astype(np.int64)
    mu0_a, mu1_a = _approach_truth(X, shared_effect)
    p_obs = np.where(T_a[:, None] == 1, mu1_a, mu0_a)
    u = np.random.default_rng(noise_a).random(n)
    Y_a = (u[:, None] > np.cumsum(p_obs, axis=1)[:, :3]).sum(axis=1).astype(np.int64)
    approach = CausalDataset(
        X=X.copy(),
        T=T_a,
        Y=Y_a,
        modalities={"ids": ids.copy(), "propensity": e_a},
        mu0=mu0_a,
        mu1=mu1_a,
        tau=mu1_a - mu0_a,
        split=protocol_split(n, stream_seed(split_a), fractions),
        meta={
            "source": SOURCE,
            "task": "approach",
            "treatment": "anterior (1) vs posterior (0) approach",
            "outcome": "class",
            "classes": list(SEVERITY_CLASSES),
            "seed": seed,
            "knobs": dict(knobs),
        },
    )

    # task "surgery": a seeded subset of the same patients
    rows = np.sort(np.random.default_rng(ss["subset"]).choice(n, size=n_surgery, replace=False))
    X_s = X.iloc[rows].reset_index(drop=True)
    e_s = _surgery_propensity(X_s, confounding)
    T_s = (np.random.default_rng(treat_s).random(n_surgery) < e_s).astype(np.int64)
    mu0_s, mu1_s = _surgery_truth(X_s, shared_effect)
    noise = _PRO_NOISE_SD * np.random.default_rng(noise_s).standard_normal((n_surgery, 4))
    Y_s = np.where(T_s[:, None] == 1, mu1_s, mu0_s) + noise
    surgery = CausalDataset(
        X=X_s,
        T=T_s,
        Y=Y_s,
        modalities={"ids": ids[rows], "propensity": e_s},
        mu0=mu0_s,
        mu1=mu1_s,
        tau=mu1_s - mu0_s,
        split=protocol_split(n_surgery, stream_seed(split_s), fractions),
        meta={
            "source": SOURCE,
            "task": "surgery",
            "treatment": "surgery (1) vs non-surgical management (0)",
            "outcome": "continuous",
            "domains": list(PRO_DOMAINS),
            "noise_sd": _PRO_NOISE_SD,
            "seed": seed,
            "knobs": dict(knobs),
        },
    )
    return {"approach": approach, "surgery": surgery}
