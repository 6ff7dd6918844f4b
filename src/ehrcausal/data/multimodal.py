"""A simulated cohort of admissions with four modalities and 40 clinical tasks (M3H setting).

Bertsimas & Ma (2024, *M3H: Multimodal Multitask Machine Learning for Healthcare*, arXiv
2404.18975) learn many tasks at once (diagnoses grouped in departments, operations forecasts,
a phenotyping task) from tabular, time-series, language and vision inputs. Their data are not
public; this simulator gives the same kind of problem with a known truth: which tasks share
latent causes, how strongly, and which modality carries each task's own signal.

Every equation below is an assumption of the simulator, not a fact about patients.

**Latent state** (one admission ``i``; ``N`` is the standard normal):

- phenotype ``c_i ~ Categorical(pi)``, ``pi = (0.3, 0.3, 0.2, 0.2)`` over
  :data:`PHENOTYPES`;
- organ-system factors ``z_i = M[c_i] + e_i`` with ``e_i ~ N(0, I_6)`` over :data:`FACTORS`
  (cardiac, respiratory, renal, hepatic, metabolic, inflammatory); ``M`` is
  :data:`PHENOTYPE_MEANS`. Hence ``Cov(z) = I + B`` with the between-phenotype matrix
  ``B = sum_c pi_c (M_c - m)(M_c - m)'``, ``m = sum_c pi_c M_c``;
- one private cause ``u_{i,t} ~ N(0, 1)`` per task ``t``, independent of everything else.

**Tasks.** Each supervised task ``t`` has a latent score

    eta_t = a_t + s * w_t' z + b_t * u_t

with ``s`` the knob ``shared`` (``s = 0`` removes every shared cause), fixed loadings ``w_t``
(:data:`TASK_TABLE`: a primary factor with weight 1 and an optional secondary factor with
weight 0.5 for a diagnosis; the weights listed for the other tasks) and ``b_t = 1.2``
(:data:`PRIVATE`).

- 34 binary diagnoses in 8 departments: ``y_t = 1[eta_t + 0.5 l > 0]`` with ``l`` standard
  logistic noise (label noise, :data:`LABEL_NOISE`), and ``a_t`` set so that
  ``P(y_t = 1) ~ prevalence_t`` at ``s = 1``;
- 2 multiclass tasks: ``severity`` (3 levels) and ``triage`` (4 levels),
  ``y_t = sum_k 1[eta_t + 0.5 N > k-th cut]`` with cuts (-0.6, 0.9) and (-1.0, 0.0, 1.0)
  times ``sd(eta_t)``;
- 3 regression forecasts: ``los_days = exp(1.4 + 0.3 eta_t + 0.15 N)``,
  ``icu_hours = 24 exp(0.4 eta_t + 0.3 N)`` and ``visits_next_year = 3 exp(0.3 eta_t + 0.2 N)``
  (operations forecasts);
- 1 clustering task, ``phenotype = c`` (learned without its labels; the labels score it).

**True dependency.** With ``Var(eta_t) = s^2 w_t' (I + B) w_t + b_t^2``, the shared-cause
strength of tasks ``t != k`` is the absolute correlation of their latent scores,

    D[t, k] = |s^2 w_t' (I + B) w_k| / sqrt(Var(eta_t) Var(eta_k)),

and for the phenotype task the correlation ratio ``D[c, k] = sqrt(s^2 w_k' B w_k / Var(eta_k))``
(the share of ``eta_k``'s standard deviation explained by the phenotype). ``D[t, t] = 1``;
``D = I`` when ``s = 0``.

**Modalities.** The factors ``z`` reach the tabular data and the time series (redundantly);
each task's private cause ``u_t`` reaches exactly one modality (its *marker*, in
:data:`TASK_TABLE`), so some tasks are readable mainly from one modality (image-only findings,
note-only symptoms); the multiclass and regression tasks have no marker (their private part is
not observable).

- *Tabular*: age ``~ 40 + 12 N + 4 z_card`` (clipped to [18, 95]), ``male ~ Bernoulli(0.5)``,
  BMI ``~ 27 + 4 N + 2 z_metab``, and laboratory values with units (:data:`LABS`):
  ``v = center * exp(scale * (x' l + 0.45 N))`` for log-normal labs and
  ``v = center + scale * (x' l + 0.45 N)`` otherwise, with ``x = (z, u)`` and loadings ``l``.
- *Time series*: 8 channels (:data:`CHANNELS`) over 48 h. Each channel's level is
  ``base + scale * (v' z)``, its trend over the stay ``scale * 2 * u_marker`` (times
  ``t/48 - 1/2``), its noise ``sd * exp(0.3 z_infl)``. Observation times are uniform on
  [0, 48] h (irregular, sorted); the count per channel is ``Poisson(rate)`` capped at
  :data:`MAX_OBS`; a channel is missing entirely with probability 0.1.
- *Notes*: the 13 findings of :data:`~ehrcausal.text.notes.MULTIMODAL_NOTE_FINDINGS`;
  ``dyspnoea``, ``chest_pain`` and ``confusion`` follow a factor
  (``1[z_f + 0.8 N > 1]``), the others a task's private cause (``1[u_t + 0.5 N > 0.8]``).
  Notes are rendered by :func:`~ehrcausal.text.notes.render_finding_notes` and never name a
  diagnosis.
- *Images*: 64 x 64 single-channel pictures in [0, 1] drawn procedurally (a chest-film-like
  scene: two dark lung fields, a bright cardiac silhouette, pixel noise ``0.04 N``), with
  findings (:data:`IMAGE_FINDINGS`): the silhouette's width ``0.2 exp(0.12 z_card + 0.25 u)``
  (an enlarged silhouette), and presence ``1[u_t + 0.5 N > 0.8]`` of right or left
  effusion-like blunting, lower and upper opacities (size growing with ``z_resp``), a nodule,
  a device line and an apical lucency; the place of a finding is drawn within its region.

**Missingness.** Each modality other than the tabular one is missing for a patient with the
probabilities ``modality_missing`` (the time series all NaN, the note ``None``, the image all
NaN); each label is missing (NaN) with probability ``label_missing``. ``split`` is the
protocol split with fractions ``split``.

Seed streams (:func:`~ehrcausal.runtime.seed_streams`) separate the latent state, each
modality, the label noise, the missingness and the split, so changing ``shared`` changes the
labels only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ..runtime import check_seed, seed_streams, stream_seed
from ..text.notes import MULTIMODAL_NOTE_FINDINGS, STYLES, render_finding_notes
from ..validation import check_int, check_number
from .splits import check_split, protocol_split

__all__ = [
    "MODALITIES",
    "PROBLEM_CLASSES",
    "FACTORS",
    "PHENOTYPES",
    "IMAGE_SIZE",
    "IrregularSeries",
    "MultimodalDataset",
    "simulate_multimodal",
    "summary_features",
    "modality_recoverability",
    "DIAGNOSIS_TERMS",
]

MODALITIES: tuple[str, ...] = ("tabular", "timeseries", "text", "image")
PROBLEM_CLASSES: tuple[str, ...] = ("binary", "multiclass", "regression", "clustering")
FACTORS: tuple[str, ...] = ("cardiac", "respiratory", "renal", "hepatic", "metabolic",
                            "inflammatory")
PHENOTYPES: tuple[str, ...] = ("stable", "cardiorenal", "respiratory_inflammatory",
                               "metabolic_hepatic")
PHENOTYPE_PROBS = np.array([0.3, 0.3, 0.2, 0.2])
#: mean of the factors in each phenotype (rows: PHENOTYPES; columns: FACTORS)
PHENOTYPE_MEANS = np.array([
    [-0.6, -0.6, -0.6, -0.6, -0.6, -0.6],
    [1.2, -0.2, 1.2, -0.2, -0.2, -0.2],
    [-0.2, 1.2, -0.2, -0.2, -0.2, 1.2],
    [-0.2, -0.2, -0.2, 1.2, 1.2, -0.2],
])
IMAGE_SIZE = 64
#: weight b of each task's private cause, and scale of the logistic label noise of a diagnosis
PRIVATE = 1.2
LABEL_NOISE = 0.5
MAX_OBS = 12

_F = {f: j for j, f in enumerate(FACTORS)}

# name, department, primary factor, secondary factor, prevalence, marker modality, marker
_DIAGNOSES: tuple[tuple[str, str, str, str | None, float, str, str], ...] = (
    ("heart_failure", "cardiology", "cardiac", "renal", 0.2, "image", "enlarged_silhouette"),
    ("atrial_fibrillation", "cardiology", "cardiac", None, 0.15, "timeseries", "heart_rate"),
    ("coronary_syndrome", "cardiology", "cardiac", "metabolic", 0.15, "tabular", "ck_mb"),
    ("pericarditis", "cardiology", "cardiac", "inflammatory", 0.1, "text", "palpitations"),
    ("pneumonia", "pulmonology", "respiratory", "inflammatory", 0.2, "image", "lower_opacity"),
    ("copd_exacerbation", "pulmonology", "respiratory", None, 0.15, "timeseries",
     "resp_rate"),
    ("pulmonary_embolism", "pulmonology", "respiratory", "cardiac", 0.1, "tabular", "d_dimer"),
    ("pleural_effusion", "pulmonology", "respiratory", "cardiac", 0.15, "image",
     "right_effusion"),
    ("lung_mass", "pulmonology", "respiratory", None, 0.1, "image", "nodule"),
    ("pneumothorax", "pulmonology", "respiratory", None, 0.1, "image", "apical_lucency"),
    ("acute_kidney_injury", "nephrology", "renal", "cardiac", 0.2, "timeseries",
     "urine_output"),
    ("chronic_kidney_disease", "nephrology", "renal", "metabolic", 0.2, "tabular",
     "cystatin_c"),
    ("hyperkalaemia", "nephrology", "renal", None, 0.1, "tabular", "potassium"),
    ("nephrotic_syndrome", "nephrology", "renal", None, 0.1, "text", "foamy_urine"),
    ("cirrhosis", "hepatology", "hepatic", "metabolic", 0.15, "tabular", "albumin"),
    ("acute_hepatitis", "hepatology", "hepatic", "inflammatory", 0.1, "text", "jaundice"),
    ("gi_bleed", "hepatology", "hepatic", None, 0.1, "timeseries", "map"),
    ("pancreatitis", "hepatology", "hepatic", "inflammatory", 0.1, "tabular", "lipase"),
    ("diabetic_ketoacidosis", "endocrinology", "metabolic", None, 0.1, "timeseries",
     "glucose"),
    ("thyrotoxicosis", "endocrinology", "metabolic", None, 0.1, "text", "weight_loss"),
    ("adrenal_insufficiency", "endocrinology", "metabolic", "inflammatory", 0.1, "tabular",
     "cortisol"),
    ("hyponatraemia", "endocrinology", "metabolic", "renal", 0.15, "tabular", "sodium"),
    ("stroke", "neurology", "cardiac", "metabolic", 0.1, "text", "numbness"),
    ("migraine", "neurology", "metabolic", None, 0.1, "text", "headache"),
    ("delirium", "neurology", "inflammatory", "metabolic", 0.15, "timeseries", "spo2"),
    ("meningitis", "neurology", "inflammatory", None, 0.1, "text", "neck_stiffness"),
    ("sepsis", "infectious_disease", "inflammatory", "renal", 0.2, "timeseries",
     "temperature"),
    ("urinary_tract_infection", "infectious_disease", "inflammatory", "renal", 0.15, "text",
     "dysuria"),
    ("cellulitis", "infectious_disease", "inflammatory", None, 0.1, "text", "rash"),
    ("line_infection", "infectious_disease", "inflammatory", None, 0.1, "image", "device"),
    ("tuberculosis", "infectious_disease", "respiratory", "inflammatory", 0.1, "image",
     "upper_opacity"),
    ("anaemia", "haematology", "inflammatory", "hepatic", 0.2, "tabular", "haemoglobin"),
    ("thrombocytopenia", "haematology", "hepatic", "inflammatory", 0.1, "tabular",
     "platelets"),
    ("lymphoma", "haematology", "inflammatory", None, 0.1, "text", "night_sweats"),
    ("malignant_effusion", "haematology", "inflammatory", "respiratory", 0.1, "image",
     "left_effusion"),
)

# name, class, department, loadings on FACTORS, marker modality (none)
_OTHER: tuple[tuple[str, str, str, tuple[float, ...]], ...] = (
    ("severity", "multiclass", "operations", (0.5, 0.5, 0.5, 0.3, 0.3, 0.6)),
    ("triage", "multiclass", "operations", (0.6, 0.6, 0.2, 0.2, 0.2, 0.5)),
    ("los_days", "regression", "operations", (0.4, 0.4, 0.4, 0.4, 0.2, 0.5)),
    ("icu_hours", "regression", "operations", (0.7, 0.6, 0.3, 0.1, 0.1, 0.3)),
    ("visits_next_year", "regression", "operations", (0.2, 0.3, 0.5, 0.4, 0.6, 0.1)),
)
_CUTS = {"severity": (-0.6, 0.9), "triage": (-1.0, 0.0, 1.0)}


def _task_table() -> pd.DataFrame:
    rows = []
    for name, dept, f1, f2, prev, mod, marker in _DIAGNOSES:
        w = np.zeros(len(FACTORS))
        w[_F[f1]] = 1.0
        if f2 is not None:
            w[_F[f2]] = 0.5
        rows.append({"name": name, "problem_class": "binary", "department": dept,
                     "n_classes": 2, "prevalence": prev, "marker_modality": mod,
                     "marker": marker, "loadings": tuple(w)})
    for name, cls, dept, w in _OTHER:
        rows.append({"name": name, "problem_class": cls, "department": dept,
                     "n_classes": len(_CUTS[name]) + 1 if name in _CUTS else 0,
                     "prevalence": np.nan, "marker_modality": "none", "marker": "",
                     "loadings": tuple(w)})
    rows.append({"name": "phenotype", "problem_class": "clustering", "department": "phenotyping",
                 "n_classes": len(PHENOTYPES), "prevalence": np.nan,
                 "marker_modality": "none", "marker": "", "loadings": (0.0,) * len(FACTORS)})
    return pd.DataFrame(rows)


#: One row per task: name, problem_class, department, n_classes, prevalence (binary),
#: marker_modality and marker (where the task's private cause shows), loadings on FACTORS.
TASK_TABLE: pd.DataFrame = _task_table()

#: Words that name a diagnosis of the simulator; no note contains any of them.
DIAGNOSIS_TERMS: tuple[str, ...] = tuple(sorted({
    *(n.replace("_", " ") for n in TASK_TABLE["name"][TASK_TABLE.problem_class == "binary"]),
    "heart failure", "fibrillation", "pneumonia", "embolism", "effusion", "kidney injury",
    "cirrhosis", "hepatitis", "ketoacidosis", "stroke", "migraine", "meningitis", "sepsis",
    "cellulitis", "tuberculosis", "anaemia", "anemia", "lymphoma", "pericarditis",
}))


def _marker_of(marker: str) -> str | None:
    """The task whose private cause drives ``marker`` (None for a factor-driven one)."""
    hit = TASK_TABLE.index[TASK_TABLE.marker == marker]
    return None if len(hit) == 0 else str(TASK_TABLE.name[hit[0]])


# name, unit, log-normal?, center, scale, {factor: loading}, marker (task private cause)
LABS: tuple[tuple[str, str, bool, float, float, dict[str, float], str | None], ...] = (
    ("troponin", "ng/L", True, 12.0, 0.6, {"cardiac": 1.0}, None),
    ("pco2", "mmHg", False, 42.0, 5.0, {"respiratory": 1.0}, None),
    ("creatinine", "mg/dL", True, 1.0, 0.35, {"renal": 1.0}, None),
    ("bilirubin", "mg/dL", True, 0.8, 0.45, {"hepatic": 1.0}, None),
    ("hba1c", "%", False, 6.0, 0.8, {"metabolic": 1.0}, None),
    ("crp", "mg/L", True, 10.0, 0.7, {"inflammatory": 1.0}, None),
    ("ck_mb", "ng/mL", True, 3.0, 0.5, {"cardiac": 0.3}, "ck_mb"),
    ("d_dimer", "ug/mL", True, 0.5, 0.5, {"respiratory": 0.2}, "d_dimer"),
    ("cystatin_c", "mg/L", True, 1.0, 0.3, {"renal": 0.3}, "cystatin_c"),
    ("potassium", "mmol/L", False, 4.2, 0.4, {"renal": 0.2}, "potassium"),
    ("albumin", "g/dL", False, 3.8, -0.35, {"hepatic": 0.3}, "albumin"),
    ("lipase", "U/L", True, 40.0, 0.6, {"inflammatory": 0.2}, "lipase"),
    ("cortisol", "ug/dL", True, 12.0, -0.4, {"metabolic": 0.2}, "cortisol"),
    ("sodium", "mmol/L", False, 139.0, -3.0, {"renal": 0.2}, "sodium"),
    ("haemoglobin", "g/dL", False, 13.0, -1.3, {"inflammatory": 0.3}, "haemoglobin"),
    ("platelets", "10^9/L", True, 250.0, -0.35, {"hepatic": 0.3}, "platelets"),
)

# name, unit, base, scale, {factor: level loading}, noise sd, observations per 48 h
CHANNELS: tuple[tuple[str, str, float, float, dict[str, float], float, float], ...] = (
    ("heart_rate", "beats/min", 85.0, 10.0, {"cardiac": 1.0, "inflammatory": 0.5}, 6.0, 10.0),
    ("resp_rate", "breaths/min", 18.0, 3.0, {"respiratory": 1.0}, 2.0, 8.0),
    ("spo2", "%", 95.0, -1.5, {"respiratory": 1.0}, 1.0, 10.0),
    ("temperature", "C", 37.2, 0.4, {"inflammatory": 1.0}, 0.3, 6.0),
    ("map", "mmHg", 80.0, -6.0, {"cardiac": 0.6, "inflammatory": 0.6}, 5.0, 8.0),
    ("glucose", "mg/dL", 120.0, 25.0, {"metabolic": 1.0}, 15.0, 5.0),
    ("urine_output", "mL/h", 70.0, -15.0, {"renal": 1.0}, 12.0, 6.0),
    ("lactate", "mmol/L", 1.6, 0.6, {"inflammatory": 0.6, "hepatic": 0.5}, 0.3, 4.0),
)
_CHANNEL_MARKER = {"heart_rate": "heart_rate", "resp_rate": "resp_rate", "spo2": "spo2",
                   "temperature": "temperature", "map": "map", "glucose": "glucose",
                   "urine_output": "urine_output"}

#: image findings: name -> driving factor of its size (or None)
IMAGE_FINDINGS: dict[str, str | None] = {
    "enlarged_silhouette": "cardiac", "right_effusion": None, "left_effusion": None,
    "lower_opacity": "respiratory", "upper_opacity": "respiratory", "nodule": None,
    "device": None, "apical_lucency": None,
}
#: note findings driven by a factor rather than a task's private cause
_NOTE_FACTOR = {"dyspnoea": "respiratory", "chest_pain": "cardiac", "confusion": "inflammatory"}

STREAMS = ("latent", "labels", "tabular", "timeseries", "notes", "image", "missing", "split")

DEFAULT_MISSING = {"timeseries": 0.05, "text": 0.15, "image": 0.25}


@dataclass(frozen=True)
class IrregularSeries:
    """Irregularly sampled series: ``values`` and ``hours`` of shape (n, channels, slots).

    Unobserved slots are NaN in both arrays; within a channel the observed slots come first,
    in time order. ``hours`` run from the start of the observation window, whose length is
    ``horizon`` hours (48 for the simulated stays; a loader of longer histories sets it).
    """

    values: np.ndarray
    hours: np.ndarray
    channels: tuple[str, ...]
    units: tuple[str, ...]
    horizon: float = 48.0

    def __len__(self) -> int:
        return len(self.values)

    def take(self, rows: np.ndarray) -> IrregularSeries:
        """The series of the patients ``rows`` (indices or a boolean mask)."""
        return replace(self, values=self.values[rows], hours=self.hours[rows])

    def observed(self) -> np.ndarray:
        """Boolean (n,): whether the patient has at least one observation."""
        return np.isfinite(self.values).any(axis=(1, 2))

    def binned(self, n_bins: int = 12) -> np.ndarray:
        """(n, n_bins, 2 C) array: per bin of ``horizon / n_bins`` hours the mean value of each
        channel (0 where none) followed by the 0/1 mask of bins with an observation."""
        n_bins = check_int(n_bins, "n_bins", 1)
        n, c, _ = self.values.shape
        b = np.clip((np.nan_to_num(self.hours, nan=0.0) / self.horizon * n_bins).astype(int), 0,
                    n_bins - 1)
        ok = np.isfinite(self.values)
        sums = np.zeros((n, c, n_bins))
        counts = np.zeros((n, c, n_bins))
        ii, cc, kk = np.nonzero(ok)
        np.add.at(sums, (ii, cc, b[ii, cc, kk]), self.values[ii, cc, kk])
        np.add.at(counts, (ii, cc, b[ii, cc, kk]), 1.0)
        means = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
        return np.concatenate([means, (counts > 0).astype(float)], axis=1).transpose(0, 2, 1)

    def summary(self) -> pd.DataFrame:
        """Per channel: mean, sd, min, max, last value, slope per hour and count (NaN when
        the channel has fewer than the observations each statistic needs)."""
        v, h = self.values, self.hours
        cnt = np.isfinite(v).sum(axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(v, axis=2)
                sd = np.where(cnt > 1, np.nanstd(v, axis=2), np.nan)
                vmin, vmax = np.nanmin(v, axis=2), np.nanmax(v, axis=2)
                hm = np.nanmean(h, axis=2)
                cov = np.nanmean((h - hm[..., None]) * (v - mean[..., None]), axis=2)
                var = np.nanmean((h - hm[..., None]) ** 2, axis=2)
                slope = np.where((cnt > 1) & (var > 0), cov / var, np.nan)
        last_idx = np.maximum(cnt - 1, 0)
        last = np.take_along_axis(v, last_idx[..., None], axis=2)[..., 0]
        last = np.where(cnt > 0, last, np.nan)
        cols = {}
        for j, ch in enumerate(self.channels):
            for stat, arr in (("mean", mean), ("sd", sd), ("min", vmin), ("max", vmax),
                              ("last", last), ("slope", slope), ("count", cnt)):
                cols[f"{ch}_{stat}"] = arr[:, j].astype(float)
        return pd.DataFrame(cols)


@dataclass
class MultimodalDataset:
    """Row-aligned multimodal, multitask data.

    modalities -- ``tabular`` (DataFrame), ``timeseries`` (:class:`IrregularSeries`), ``text``
    (list of notes, None where missing) and ``image`` (float32 array (n, 64, 64), NaN where
    missing); targets -- one column per task, NaN where the label is missing; tasks -- name,
    problem_class, department (and what the simulator knows of each task); dependency -- task
    x task DataFrame of true shared-cause strength (simulated data only); split -- "train" /
    "val" / "test"; latent -- the simulator's hidden state; meta -- provenance and knobs.
    """

    modalities: dict[str, Any]
    targets: pd.DataFrame
    tasks: pd.DataFrame
    split: np.ndarray
    dependency: pd.DataFrame | None = None
    latent: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.targets)

    def take(self, rows: np.ndarray) -> MultimodalDataset:
        """The patients ``rows`` (indices or a boolean mask), every part aligned."""
        idx = np.arange(len(self))[rows]
        mods = take_modalities(self.modalities, idx)
        latent = {k: (v.iloc[idx].reset_index(drop=True) if isinstance(v, pd.DataFrame)
                      else np.asarray(v)[idx]) for k, v in self.latent.items()}
        return replace(self, modalities=mods,
                       targets=self.targets.iloc[idx].reset_index(drop=True),
                       split=np.asarray(self.split)[idx], latent=latent)

    def subset(self, split: str) -> MultimodalDataset:
        """The rows of one split (``"train"``, ``"val"`` or ``"test"``)."""
        return self.take(np.asarray(self.split) == split)


def take_modalities(modalities: Mapping[str, Any], idx: np.ndarray) -> dict[str, Any]:
    """The rows ``idx`` of each modality (DataFrame, series, list or array)."""
    out: dict[str, Any] = {}
    for k, v in modalities.items():
        if isinstance(v, pd.DataFrame):
            out[k] = v.iloc[idx].reset_index(drop=True)
        elif isinstance(v, IrregularSeries):
            out[k] = v.take(idx)
        elif isinstance(v, list):
            out[k] = [v[i] for i in np.asarray(idx).tolist()]
        else:
            out[k] = np.asarray(v)[idx]
    return out


def _between() -> np.ndarray:
    m = PHENOTYPE_PROBS @ PHENOTYPE_MEANS
    d = PHENOTYPE_MEANS - m
    return (d.T * PHENOTYPE_PROBS) @ d


def true_dependency(shared: float, tasks: pd.DataFrame = TASK_TABLE) -> pd.DataFrame:
    """The true shared-cause strength ``D`` of the module docstring for knob ``shared``."""
    B = _between()
    S = np.eye(len(FACTORS)) + B
    W = np.array([list(w) for w in tasks["loadings"]])
    var = shared**2 * np.einsum("tf,fg,tg->t", W, S, W) + PRIVATE**2
    D = np.abs(shared**2 * W @ S @ W.T) / np.sqrt(np.outer(var, var))
    pheno = (tasks["problem_class"] == "clustering").to_numpy()
    ratio = np.sqrt(shared**2 * np.einsum("tf,fg,tg->t", W, B, W) / var)
    D[pheno, :] = ratio[None, :]
    D[:, pheno] = ratio[:, None]
    np.fill_diagonal(D, 1.0)
    names = list(tasks["name"])
    return pd.DataFrame(D, index=names, columns=names)


def _intercepts(W: np.ndarray, prevalence: np.ndarray) -> np.ndarray:
    """a_t with P(eta_t + logistic > 0) ~ prevalence at shared = 1 (normal approximation of
    the logistic-normal integral: P ~ Phi(mu / sqrt(var + pi^2 / 3)))."""
    from scipy.stats import norm

    S = np.eye(len(FACTORS)) + _between()
    m = PHENOTYPE_PROBS @ PHENOTYPE_MEANS
    var = np.einsum("tf,fg,tg->t", W, S, W) + PRIVATE**2 + LABEL_NOISE**2 * np.pi**2 / 3
    return norm.ppf(prevalence) * np.sqrt(var) - W @ m


def _check_missing(modality_missing: Any) -> dict[str, float]:
    if modality_missing is None:
        return dict(DEFAULT_MISSING)
    if not isinstance(modality_missing, Mapping):
        raise ValueError(
            f"modality_missing must be a mapping of {tuple(DEFAULT_MISSING)} to probabilities, "
            f"got {modality_missing!r}"
        )
    unknown = sorted(set(modality_missing) - set(DEFAULT_MISSING))
    if unknown:
        raise ValueError(
            f"modality_missing keys must be among {tuple(DEFAULT_MISSING)} (the tabular data are "
            f"always present), got {unknown}"
        )
    out = dict(DEFAULT_MISSING)
    for k, v in modality_missing.items():
        out[k] = check_number(v, f"modality_missing[{k!r}]", 0.0, 1.0)
    return out


def simulate_multimodal(
    n: int = 2000,
    seed: int = 0,
    *,
    shared: float = 1.0,
    label_missing: float = 0.1,
    modality_missing: Mapping[str, float] | None = None,
    style: str = "normal",
    misspelling_rate: float = 0.02,
    split: Sequence[float] = (0.6, 0.2, 0.2),
) -> MultimodalDataset:
    """Simulate ``n`` admissions with four modalities and 40 tasks (see the module docstring).

    Parameters
    ----------
    n : patients (>= 20).
    seed : non-negative integer; the same arguments give the same data.
    shared : strength ``s`` of the shared latent causes (>= 0; 0 makes the tasks independent).
    label_missing : probability in [0, 0.9] that a label is missing.
    modality_missing : probabilities that a patient's ``timeseries``, ``text`` or ``image`` is
        missing (defaults :data:`DEFAULT_MISSING`); the tabular data are always present.
    style, misspelling_rate : of the notes (:func:`~ehrcausal.text.notes.render_finding_notes`).
    split : (train, val, test) fractions.
    """
    n = check_int(n, "n", 20)
    seed = check_int(seed, "seed", 0, 2**32 - 1)
    s = check_number(shared, "shared", 0.0, 10.0)
    label_missing = check_number(label_missing, "label_missing", 0.0, 0.9)
    missing = _check_missing(modality_missing)
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    misspelling_rate = check_number(misspelling_rate, "misspelling_rate", 0.0, 0.5)
    fractions = check_split(split)
    ss = seed_streams(seed, STREAMS)
    tasks = TASK_TABLE
    names = list(tasks["name"])
    T = len(tasks)

    # latent state
    rng = np.random.default_rng(ss["latent"])
    c = rng.choice(len(PHENOTYPES), size=n, p=PHENOTYPE_PROBS)
    z = PHENOTYPE_MEANS[c] + rng.standard_normal((n, len(FACTORS)))
    u = rng.standard_normal((n, T))
    u_of = {name: u[:, j] for j, name in enumerate(names)}

    # labels
    W = np.array([list(w) for w in tasks["loadings"]])
    lrng = np.random.default_rng(ss["labels"])
    noise_logistic = lrng.logistic(size=(n, T))
    noise_normal = lrng.standard_normal((n, T))
    y = np.full((n, T), np.nan)
    a = np.zeros(T)
    binary = (tasks["problem_class"] == "binary").to_numpy()
    a[binary] = _intercepts(W[binary], tasks["prevalence"].to_numpy()[binary])
    eta = a + s * z @ W.T + PRIVATE * u
    for j, row in tasks.iterrows():
        cls, name = row["problem_class"], row["name"]
        if cls == "binary":
            y[:, j] = (eta[:, j] + LABEL_NOISE * noise_logistic[:, j] > 0).astype(float)
        elif cls == "multiclass":
            sd = np.sqrt(s**2 * W[j] @ (np.eye(len(FACTORS)) + _between()) @ W[j] + PRIVATE**2)
            y[:, j] = np.sum(eta[:, j, None] + 0.5 * noise_normal[:, j, None]
                             > np.array(_CUTS[name])[None, :] * sd, axis=1)
        elif name == "los_days":
            y[:, j] = np.exp(1.4 + 0.3 * eta[:, j] + 0.15 * noise_normal[:, j])
        elif name == "icu_hours":
            y[:, j] = 24.0 * np.exp(0.4 * eta[:, j] + 0.3 * noise_normal[:, j])
        elif name == "visits_next_year":
            y[:, j] = 3.0 * np.exp(0.3 * eta[:, j] + 0.2 * noise_normal[:, j])
        else:  # clustering: the phenotype
            y[:, j] = c
    mrng = np.random.default_rng(ss["missing"])
    y[mrng.random((n, T)) < label_missing] = np.nan
    targets = pd.DataFrame(y, columns=names)

    # tabular
    trng = np.random.default_rng(ss["tabular"])
    fz = {f: z[:, j] for j, f in enumerate(FACTORS)}
    tab = {
        "age_years": np.clip(np.rint(62 + 12 * trng.standard_normal(n) + 4 * fz["cardiac"]),
                             18, 95),
        "male": (trng.random(n) < 0.5).astype(float),
        "bmi_kg_m2": np.round(27 + 4 * trng.standard_normal(n) + 2 * fz["metabolic"], 1),
    }
    units = {"age_years": "years", "male": "0/1", "bmi_kg_m2": "kg/m2"}
    for name, unit, lognormal, center, scale, load, marker in LABS:
        x = sum(w * fz[f] for f, w in load.items())
        if marker is not None:
            x = x + 0.9 * u_of[_marker_of(marker)]
        x = x + 0.45 * trng.standard_normal(n)
        v = center * np.exp(scale * x) if lognormal else center + scale * x
        col = f"{name}_{unit.replace('/', '_').replace('^', '').replace('%', 'pct')}"
        tab[col] = np.round(v, 2)
        units[col] = unit
    tabular = pd.DataFrame(tab)

    # time series
    srng = np.random.default_rng(ss["timeseries"])
    C = len(CHANNELS)
    values = np.full((n, C, MAX_OBS), np.nan)
    hours = np.full((n, C, MAX_OBS), np.nan)
    ts_missing = mrng.random(n) < missing["timeseries"]
    for k, (ch, _unit, base, scale, load, sd, rate) in enumerate(CHANNELS):
        level = base + scale * sum(w * fz[f] for f, w in load.items())
        marker = _CHANNEL_MARKER.get(ch)
        trend = scale * 2.0 * u_of[_marker_of(marker)] if marker else np.zeros(n)
        count = np.minimum(srng.poisson(rate, n), MAX_OBS)
        count[(srng.random(n) < 0.1) | ts_missing] = 0
        t = np.sort(srng.uniform(0, 48, (n, MAX_OBS)), axis=1)
        eps = srng.standard_normal((n, MAX_OBS))
        v = level[:, None] + trend[:, None] * (t / 48 - 0.5) + (
            sd * np.exp(0.3 * fz["inflammatory"]))[:, None] * eps
        keep = np.arange(MAX_OBS)[None, :] < count[:, None]
        values[:, k] = np.where(keep, np.round(v, 2), np.nan)
        hours[:, k] = np.where(keep, np.round(t, 2), np.nan)
    series = IrregularSeries(values, hours, tuple(ch[0] for ch in CHANNELS),
                             tuple(ch[1] for ch in CHANNELS))

    # notes
    nrng = np.random.default_rng(ss["notes"])
    note_findings = {}
    for f in MULTIMODAL_NOTE_FINDINGS:
        if f in _NOTE_FACTOR:
            note_findings[f] = (fz[_NOTE_FACTOR[f]] + 0.8 * nrng.standard_normal(n) > 1.0)
        else:
            note_findings[f] = (u_of[_marker_of(f)] + 0.5 * nrng.standard_normal(n) > 0.8)
    records = pd.DataFrame({k: v.astype(int) for k, v in note_findings.items()})
    records["age"] = tabular["age_years"]
    records["male"] = tabular["male"].astype(int)
    notes = render_finding_notes(records, seed=stream_seed(ss["notes"]), style=style,
                                 misspelling_rate=misspelling_rate)
    text_missing = mrng.random(n) < missing["text"]
    text: list[str | None] = [None if m else t for t, m in zip(notes, text_missing, strict=True)]

    # images
    image, img_findings = _draw_images(z, u_of, np.random.default_rng(ss["image"]))
    img_missing = mrng.random(n) < missing["image"]
    image[img_missing] = np.nan

    labels = protocol_split(n, stream_seed(ss["split"]), fractions)
    latent = {
        "phenotype": c, "factors": pd.DataFrame(z, columns=list(FACTORS)),
        "private": pd.DataFrame(u, columns=names), "note_findings": records[
            list(MULTIMODAL_NOTE_FINDINGS)], "image_findings": img_findings,
        "missing": pd.DataFrame({"timeseries": ~series.observed(), "text": text_missing,
                                 "image": img_missing}),
    }
    meta = {
        "source": "simulate_multimodal", "seed": seed,
        "knobs": {"n": n, "shared": s, "label_missing": label_missing,
                  "modality_missing": missing, "style": style,
                  "misspelling_rate": misspelling_rate, "split": list(fractions)},
        "units": units,
    }
    return MultimodalDataset(
        modalities={"tabular": tabular, "timeseries": series, "text": text, "image": image},
        targets=targets,
        tasks=tasks.drop(columns=["loadings"]).reset_index(drop=True),
        split=labels,
        dependency=true_dependency(s, tasks),
        latent=latent,
        meta=meta,
    )


def _draw_images(z: np.ndarray, u_of: Mapping[str, np.ndarray], rng: np.random.Generator
                 ) -> tuple[np.ndarray, pd.DataFrame]:
    """Chest-film-like 64 x 64 pictures and the findings drawn in them (module docstring)."""
    n = len(z)
    g = ((np.arange(IMAGE_SIZE) + 0.5) / IMAGE_SIZE * 2 - 1).astype(np.float32)  # [-1, 1]
    yy, xx = np.meshgrid(g, g, indexing="ij")  # yy: top (-1) to bottom (+1)
    zc, zr = z[:, _F["cardiac"]], z[:, _F["respiratory"]]
    present = {}
    for f in IMAGE_FINDINGS:
        if f == "enlarged_silhouette":
            continue
        present[f] = u_of[_marker_of(f)] + 0.5 * rng.standard_normal(n) > 0.8
    width = 0.2 * np.exp(0.12 * zc + 0.25 * u_of[_marker_of("enlarged_silhouette")])
    shift = (0.04 * rng.standard_normal((n, 2))).astype(np.float32)
    img = np.full((n, IMAGE_SIZE, IMAGE_SIZE), 0.62, dtype=np.float32)
    lungs = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
    for side in (-1.0, 1.0):
        cx = side * 0.42 + shift[:, 0]
        inside = ((xx[None] - cx[:, None, None]) / 0.3) ** 2 + (
            (yy[None] + 0.05 - shift[:, 1, None, None]) / 0.62) ** 2 < 1
        lungs |= inside
    img[lungs] -= 0.35
    heart = ((xx[None] - 0.06 - shift[:, 0, None, None]) / width[:, None, None]) ** 2 + (
        (yy[None] - 0.3 - shift[:, 1, None, None]) / 0.24) ** 2 < 1
    img[heart] = 0.75
    out = {"enlarged_silhouette": width}

    def blob(mask: np.ndarray, cx: np.ndarray, cy: np.ndarray, sigma: np.ndarray, amp: float):
        out = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
        r = np.flatnonzero(mask)
        d2 = (xx[None] - cx[r, None, None]) ** 2 + (yy[None] - cy[r, None, None]) ** 2
        out[r] = amp * np.exp(-d2 / (2 * sigma[r, None, None] ** 2))
        return out

    ones = np.ones(n)
    for f, side in (("right_effusion", -1.0), ("left_effusion", 1.0)):
        level = 0.45 - 0.15 * rng.random(n)
        region = (np.sign(xx[None]) == side) & (yy[None] > level[:, None, None]
                                                 + 0.15 * np.abs(xx[None]) ** 2)
        img += np.where(present[f][:, None, None] & region & lungs, 0.3, 0.0).astype(np.float32)
        out[f] = present[f].astype(float)
    for f, cy_lo, cy_hi in (("lower_opacity", 0.1, 0.4), ("upper_opacity", -0.55, -0.3)):
        side = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        cx = side * (0.3 + 0.2 * rng.random(n))
        cy = cy_lo + (cy_hi - cy_lo) * rng.random(n)
        sigma = 0.07 * np.exp(0.2 * zr)
        img += blob(present[f], cx, cy, sigma, 0.3).astype(np.float32)
        out[f] = present[f] * sigma
    side = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    img += blob(present["nodule"], side * (0.25 + 0.25 * rng.random(n)),
                -0.3 + 0.6 * rng.random(n), 0.03 * ones, 0.45).astype(np.float32)
    out["nodule"] = present["nodule"].astype(float)
    # a device: a thin bright line from the upper edge to the cardiac silhouette
    x0 = -0.3 + 0.15 * rng.random(n)
    dist = np.abs(xx[None] - (x0[:, None, None] + 0.4 * (yy[None] + 1) / 1.3))
    line = (dist < 0.03) & (yy[None] < 0.3) & present["device"][:, None, None]
    img[line] = 0.95
    out["device"] = present["device"].astype(float)
    side = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    apex = (np.sign(xx[None]) == side[:, None, None]) & (yy[None] < -0.35) & lungs
    img[apex & present["apical_lucency"][:, None, None]] = 0.08
    out["apical_lucency"] = present["apical_lucency"].astype(float)
    img += 0.04 * rng.standard_normal(img.shape).astype(np.float32)
    return np.clip(img, 0.0, 1.0).astype(np.float32), pd.DataFrame(out)


# ---------------------------------------------------------------------------------------------
# Per-modality features and recoverability
# ---------------------------------------------------------------------------------------------


def summary_features(
    modalities: Mapping[str, Any], *, text_encoder: Any = None, image_pool: int = 8
) -> dict[str, pd.DataFrame]:
    """Flat features per modality (NaN where a modality is missing), HAIM-style.

    ``tabular`` as given; ``timeseries``: :meth:`IrregularSeries.summary` (7 statistics per
    channel); ``text``: ``text_encoder.transform`` of the notes (a fitted
    :class:`~ehrcausal.text.TfidfSVD`; left out when None); ``image``: the mean of each
    ``image_pool x image_pool`` block of pixels.
    """
    out: dict[str, pd.DataFrame] = {}
    if "tabular" in modalities:
        out["tabular"] = pd.DataFrame(modalities["tabular"]).reset_index(drop=True)
    if "timeseries" in modalities:
        out["timeseries"] = modalities["timeseries"].summary()
    if "text" in modalities and text_encoder is not None:
        texts = modalities["text"]
        has = np.array([t is not None for t in texts])
        Z = np.full((len(texts), text_encoder.n_features_out_), np.nan)
        if has.any():
            Z[has] = text_encoder.transform([t for t in texts if t is not None])
        out["text"] = pd.DataFrame(Z, columns=[f"note_{j}" for j in range(Z.shape[1])])
    if "image" in modalities:
        img = np.asarray(modalities["image"], dtype=float)
        k = check_int(image_pool, "image_pool", 1)
        n, h, w = img.shape
        pooled = img[:, : h // k * k, : w // k * k].reshape(n, h // k, k, w // k, k).mean(
            axis=(2, 4)).reshape(n, -1)
        out["image"] = pd.DataFrame(pooled, columns=[f"px_{j}" for j in range(pooled.shape[1])])
    return out


def modality_recoverability(
    ds: MultimodalDataset, *, random_state: int = 0, n_components: int = 64
) -> pd.DataFrame:
    """Which modality carries each task's own signal, measured on held-out patients.

    The target of task ``t`` is its private latent cause ``u_t`` (the part of the task no other
    task shares; simulated data only). For each modality, a ridge regression of all the
    ``u_t`` at once on that modality's :func:`summary_features` (missing values imputed with
    the training median plus missingness indicators, standardised; notes as an
    ``n_components``-d TF-IDF/SVD fitted on the training notes; images pooled in 4 x 4 blocks),
    with the penalty chosen per task by efficient leave-one-out among 10^-1..10^4, is fitted on
    the ``"train"`` rows and scored by R^2 on the ``"test"`` rows. A task is *readable mainly
    from one modality* when that modality's R^2 is clearly above the others'. A linear reader
    of summary features is a lower bound on what a modality carries.

    Returns one row per supervised task: ``task``, ``problem_class``, ``marker_modality`` and
    one R^2 column per modality.
    """
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ..text.embeddings import TfidfSVD

    if "private" not in ds.latent:
        raise ValueError("modality_recoverability needs simulated data (ds.latent['private'])")
    seed = check_seed(random_state)
    k = check_int(n_components, "n_components", 2)
    tr = np.asarray(ds.split) == "train"
    te = np.asarray(ds.split) == "test"
    notes = [t for t, keep in zip(ds.modalities["text"], tr, strict=True)
             if keep and t is not None]
    enc = TfidfSVD(n_components=min(k, len(notes) - 1), random_state=seed).fit(notes)
    feats = summary_features(ds.modalities, text_encoder=enc, image_pool=4)
    table = ds.tasks[ds.tasks.problem_class != "clustering"].reset_index(drop=True)
    U = ds.latent["private"][list(table.name)].to_numpy()
    out = table[["name", "problem_class", "marker_modality"]].rename(columns={"name": "task"})
    for mod, F in feats.items():
        pipe = make_pipeline(
            SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
            StandardScaler(), RidgeCV(alphas=np.logspace(-1, 4, 11), alpha_per_target=True),
        )
        X = F.to_numpy(dtype=float)
        pipe.fit(X[tr], U[tr])
        out[mod] = r2_score(U[te], pipe.predict(X[te]), multioutput="raw_values")
    return out
