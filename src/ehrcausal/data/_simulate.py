"""Machinery shared by the simulators: seed streams, knob checks, annotation and assembly.

The two annotated-note simulators (:func:`ehrcausal.data.simulate_respiratory` and
:func:`ehrcausal.data.simulate_cardiac`) differ only in their records, equations, notes and
which columns are tabular; everything else is here, once:

1. Seed streams. ``seed_streams(seed, STREAMS)`` spawns one independent
   :class:`numpy.random.SeedSequence` per source of randomness (records, treatment, outcome
   noise, annotation, notes, split), so changing a knob that acts on one stage (say
   ``confounding``) never changes the draws of another (the records and the notes).
2. Treatment and outcome: ``T ~ Bernoulli(e(x))`` and ``Y = M_T(x) + noise_sd * eps`` with
   ``eps ~ N(0, 1)``, ``M_1 = M_0 + tau``.
3. Annotation: each record is annotated with probability ``p_i``. Under ``"uniform"``
   selection ``p_i = annotated``; under ``"covariates"`` selection
   ``p_i = sigmoid(c + s_i)`` with ``s_i`` the simulator's selection score and ``c`` solved by
   bisection so that ``mean_i p_i = annotated`` (missing at random given the score's
   inputs). With ``annotated = 1`` every record is annotated.
4. Assembly into a :class:`~ehrcausal.data.CausalDataset` whose ``modalities`` carry the latent
   records and the true propensity and annotation probabilities.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from ..runtime import seed_streams, stream_seed
from ..text.notes import STYLES
from ..validation import check_int, check_number
from .dataset import CausalDataset
from .splits import check_split, protocol_split

#: The seed streams of the annotated-note simulators, in spawn order (never reorder: the
#: order fixes which child sequence each stage gets, hence every simulated number).
STREAMS: tuple[str, ...] = ("records", "treatment", "noise", "annotation", "notes", "split")

#: Annotation selection schemes.
SELECTIONS: tuple[str, ...] = ("uniform", "covariates")


def check_nonnegative(value: Any, name: str) -> float:
    """A finite number >= 0, as a float (``ValueError`` naming ``name`` otherwise)."""
    return check_number(value, name, 0.0, math.inf, high_open=True)


def check_rng(rng: Any) -> np.random.Generator:
    """Require a :class:`numpy.random.Generator` (a seeded one, for reproducibility)."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError(
            f"rng must be a numpy Generator (np.random.default_rng(seed)), got {rng!r}"
        )
    return rng


@dataclass(frozen=True)
class Knobs:
    """The validated knobs shared by the annotated-note simulators."""

    n: int
    seed: int
    confounding: float
    annotated: float
    annotation_selection: str
    style: str
    misspelling_rate: float
    noise_sd: float
    split: tuple[float, float, float]

    def as_meta(self, **extra: Any) -> dict[str, Any]:
        """The knobs as recorded in ``meta["knobs"]`` (``extra`` after ``confounding``)."""
        return {
            "n": self.n, "confounding": self.confounding, **extra,
            "annotated": self.annotated, "annotation_selection": self.annotation_selection,
            "style": self.style, "misspelling_rate": self.misspelling_rate,
            "noise_sd": self.noise_sd, "split": list(self.split),
        }


def check_knobs(
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
) -> Knobs:
    """Validate the shared knobs; every error is a ``ValueError`` naming the knob."""
    if annotation_selection not in SELECTIONS:
        raise ValueError(
            f"annotation_selection must be one of {SELECTIONS}, got {annotation_selection!r}"
        )
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    return Knobs(
        n=check_int(n, "n", 10),
        seed=check_int(seed, "seed", 0),
        confounding=check_nonnegative(confounding, "confounding"),
        annotated=check_number(annotated, "annotated", 0.0, 1.0, low_open=True),
        annotation_selection=annotation_selection,
        style=style,
        misspelling_rate=check_number(misspelling_rate, "misspelling_rate", 0.0, 0.5),
        noise_sd=check_nonnegative(noise_sd, "noise_sd"),
        split=check_split(split),
    )


def solve_intercept(linear: np.ndarray, target: float, tol: float = 1e-12) -> float:
    """Bisection for c such that mean(sigmoid(c + linear)) = target (0 < target < 1).

    The mean is increasing in c, and the root lies in
    [logit(target) - max(linear) - 1, logit(target) - min(linear) + 1].
    """
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


def select_annotated(
    selection: str, annotated: float, score: np.ndarray, stream: np.random.SeedSequence
) -> tuple[np.ndarray, np.ndarray]:
    """True annotation probabilities and the annotated mask (see the module docstring, 3.)."""
    n = len(score)
    u = np.random.default_rng(stream).random(n)
    if annotated >= 1.0:
        prob = np.ones(n)
    elif selection == "uniform":
        prob = np.full(n, annotated)
    else:
        prob = expit(solve_intercept(score, annotated) + score)
    return prob, u < prob


@dataclass(frozen=True)
class AnnotatedModel:
    """What makes one annotated-note simulator: its records, equations and notes.

    ``selection_score(records, T)`` is the linear score of ``"covariates"`` annotation
    selection; ``render_notes(records, seed=, style=, misspelling_rate=)`` writes the notes.
    """

    source: str
    sample_records: Callable[[int, np.random.Generator], pd.DataFrame]
    propensity: Callable[[pd.DataFrame, float], np.ndarray]
    mu0: Callable[[pd.DataFrame], np.ndarray]
    tau: Callable[[pd.DataFrame], np.ndarray]
    selection_score: Callable[[pd.DataFrame, np.ndarray], np.ndarray]
    render_notes: Callable[..., list[str]]


def simulate_annotated(
    model: AnnotatedModel,
    knobs: Knobs,
    *,
    x_columns: list[str],
    annotation_columns: list[str],
    text_only: list[str],
    tabular: list[str],
    extra_knobs: dict[str, Any] | None = None,
) -> CausalDataset:
    """Draw records, treatment, outcome, annotations, notes and split; assemble the dataset.

    ``X`` holds ``x_columns`` of the records (as ints); ``annotations`` holds
    ``annotation_columns`` (as floats, rows NaN where not annotated). ``text_only`` and
    ``tabular`` (the confounders visible only in the note, and in ``X``) go into ``meta``.
    """
    n = knobs.n
    ss = seed_streams(knobs.seed, STREAMS)

    records = model.sample_records(n, np.random.default_rng(ss["records"]))
    e = model.propensity(records, knobs.confounding)
    T = (np.random.default_rng(ss["treatment"]).random(n) < e).astype(int)
    mu0 = model.mu0(records)
    mu1 = mu0 + model.tau(records)
    noise = np.random.default_rng(ss["noise"]).standard_normal(n)
    Y = np.where(T == 1, mu1, mu0) + knobs.noise_sd * noise

    X = records[x_columns].astype(int).reset_index(drop=True)
    ann_prob, ann_mask = select_annotated(
        knobs.annotation_selection, knobs.annotated, model.selection_score(records, T),
        ss["annotation"],
    )
    annotations = records[annotation_columns].astype(float).reset_index(drop=True)
    annotations.loc[~ann_mask, :] = np.nan

    text = model.render_notes(
        records, seed=stream_seed(ss["notes"]), style=knobs.style,
        misspelling_rate=knobs.misspelling_rate,
    )
    labels = protocol_split(n, stream_seed(ss["split"]), knobs.split)
    meta = {
        "source": model.source, "seed": knobs.seed, "knobs": knobs.as_meta(**(extra_knobs or {})),
        "text_only": list(text_only), "tabular": list(tabular), "x_columns": list(x_columns),
        "annotation_columns": list(annotation_columns),
    }
    return CausalDataset(
        X=X, T=T, Y=Y, text=text, annotations=annotations,
        modalities={"records": records, "annotated": ann_mask,
                    "annotation_propensity": ann_prob, "propensity": e},
        mu0=mu0, mu1=mu1, tau=mu1 - mu0, split=labels, meta=meta,
    )
