"""A randomised trial with enrolment notes, direct effect modifiers and their proxies.

Each participant has 24 binary clinical concepts (:data:`ehrcausal.text.notes.TRIAL_CONCEPTS`)
that the enrolment note expresses (imperfectly: :func:`ehrcausal.text.notes.render_trial_notes`),
an age and a sex:

- six *pairs* ``(C_k, P_k)``: a condition and a correlated concept (its specialist, drug or
  device: CKD and nephrology follow-up, heart failure and a loop diuretic, diabetes and
  metformin, smoking and an inhaler, obesity and sleep apnoea, depression and an SSRI).
  ``C_k ~ Bernoulli(p_k)`` (:data:`PAIR_PREVALENCE`) and ``P_k = C_k`` with probability
  ``r`` (``proxy_correlation``), otherwise an independent ``Bernoulli(p_k)`` draw, so
  ``corr(C_k, P_k) = r`` exactly;
- four prognostic conditions (prior MI, atrial fibrillation, stroke, frailty), prevalence 0.2;
- eight conditions with no role (osteoarthritis, ..., psoriasis), prevalence 0.15.

The first ``n_modifiers`` conditions ``C_0 .. C_{M-1}`` modify the effect *directly*; their
partners ``P_k`` are proxies (they modify nothing, but are correlated with a modifier, so a
marginal interaction test declares them modifiers); the other conditions are only prognostic.
With ``proxies_per_modifier = P > 1``, modifier ``C_k`` gets ``P - 1`` more proxies taken, in
order, from the eight neutral conditions (``C_0`` the first ``P - 1``, ``C_1`` the next, ...):
each is then ``C_k`` with probability ``r``, otherwise an independent ``Bernoulli(p_k)``, so it
correlates with ``C_k`` at ``r`` exactly and with the partner at ``r^2`` (a statistical proxy
of the simulation, with no clinical claim):

    tau = effect * (sum_{k < M} w_k C_k - 0.3),   w = (1, -0.8, 0.6, -1, 0.8, -0.6),
    mu0 = 0.5 sum_k C_k + 0.6 (prior MI + AF + stroke + frailty) + 0.02 (age - 65) + u_site,
    Y = mu0 + T tau + noise_sd * eps.

Treatment is randomised with probability 1/2: per participant, or, with ``clusters = G > 0``,
per site (participants are spread uniformly over ``G`` sites, ``floor(G/2)`` sites are treated,
and ``u_site ~ N(0, cluster_sd^2)`` is shared within a site; ``u_site = 0`` without clusters).

All draws come from independent seed streams (records, treatment, noise, notes, split, sites),
so changing ``effect`` changes only the outcome and never the notes. The weights and
prevalences are documented modelling assumptions, not estimates from data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..runtime import seed_streams, stream_seed
from ..text.notes import STYLES, TRIAL_CONCEPTS, render_trial_notes
from ..validation import check_int, check_number
from .dataset import CausalDataset
from .splits import check_split, protocol_split

__all__ = [
    "TRIAL_STREAMS",
    "PAIR_PREVALENCE",
    "MODIFIER_WEIGHTS",
    "extra_proxies",
    "sample_trial_records",
    "simulate_trial_notes",
]

#: Seed streams, in spawn order (never reorder).
TRIAL_STREAMS: tuple[str, ...] = ("records", "treatment", "noise", "notes", "split", "sites")
#: Prevalence of the condition of each pair.
PAIR_PREVALENCE: tuple[float, ...] = (0.30, 0.25, 0.30, 0.25, 0.30, 0.20)
#: Effect weights w_k of the direct modifiers C_0 .. C_5.
MODIFIER_WEIGHTS: tuple[float, ...] = (1.0, -0.8, 0.6, -1.0, 0.8, -0.6)

_N_PAIRS = len(PAIR_PREVALENCE)
_CONDITIONS = TRIAL_CONCEPTS[0 : 2 * _N_PAIRS : 2]
_PARTNERS = TRIAL_CONCEPTS[1 : 2 * _N_PAIRS : 2]
_PROGNOSTIC = TRIAL_CONCEPTS[2 * _N_PAIRS : 2 * _N_PAIRS + 4]
_NEUTRAL = TRIAL_CONCEPTS[2 * _N_PAIRS + 4 :]
_SOURCE = "simulated: randomised trial with enrolment notes"


def extra_proxies(n_modifiers: int, proxies_per_modifier: int) -> list[list[str]]:
    """The concepts that become additional proxies of each modifier (module docstring)."""
    extra = proxies_per_modifier - 1
    if extra * n_modifiers > len(_NEUTRAL):
        raise ValueError(
            f"proxies_per_modifier={proxies_per_modifier} with n_modifiers={n_modifiers} needs "
            f"{extra * n_modifiers} extra proxies; at most {len(_NEUTRAL)} concepts can serve"
        )
    return [list(_NEUTRAL[k * extra:(k + 1) * extra]) for k in range(n_modifiers)]


def sample_trial_records(
    n: int, rng: np.random.Generator, proxy_correlation: float = 0.8, *,
    n_modifiers: int = 0, proxies_per_modifier: int = 1,
) -> pd.DataFrame:
    """Draw ``n`` participants' concepts (0/1 columns :data:`TRIAL_CONCEPTS`), age and sex.

    With ``proxies_per_modifier > 1``, the extra proxies of the first ``n_modifiers``
    conditions are drawn last, from the same generator, so the other columns do not change.
    """
    n = check_int(n, "n", 1)
    r = check_number(proxy_correlation, "proxy_correlation", 0.0, 1.0)
    n_mod = check_int(n_modifiers, "n_modifiers", 0, _N_PAIRS)
    ppm = check_int(proxies_per_modifier, "proxies_per_modifier", 1, 3)
    extras = extra_proxies(n_mod, ppm)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy Generator, got {rng!r}")
    u = rng.random((n, 3 * _N_PAIRS + len(_PROGNOSTIC) + len(_NEUTRAL) + 1))
    cols = iter(range(u.shape[1]))
    rec: dict[str, np.ndarray] = {}
    for c, p, prev in zip(_CONDITIONS, _PARTNERS, PAIR_PREVALENCE, strict=True):
        cond = u[:, next(cols)] < prev
        copy = u[:, next(cols)] < r
        rec[c] = cond.astype(int)
        rec[p] = np.where(copy, cond, u[:, next(cols)] < prev).astype(int)
    for c in _PROGNOSTIC:
        rec[c] = (u[:, next(cols)] < 0.2).astype(int)
    for c in _NEUTRAL:
        rec[c] = (u[:, next(cols)] < 0.15).astype(int)
    female = u[:, next(cols)] < 0.5
    age = np.rint(np.clip(rng.normal(65.0, 9.0, size=n), 40, 90)).astype(int)
    for k, names in enumerate(extras):
        cond = rec[_CONDITIONS[k]].astype(bool)
        for c in names:
            v = rng.random((n, 2))
            rec[c] = np.where(v[:, 0] < r, cond, v[:, 1] < PAIR_PREVALENCE[k]).astype(int)
    df = pd.DataFrame({c: rec[c] for c in TRIAL_CONCEPTS})
    df["age"] = age
    df["sex"] = np.where(female, "F", "M")
    df["male"] = (~female).astype(int)
    return df


def simulate_trial_notes(
    n: int = 2000,
    seed: int = 0,
    *,
    effect: float = 1.0,
    n_modifiers: int = 3,
    proxy_correlation: float = 0.8,
    clusters: int = 0,
    cluster_sd: float = 0.5,
    noise_sd: float = 1.0,
    style: str = "normal",
    misspelling_rate: float = 0.02,
    split: tuple[float, float, float] = (0.6, 0.2, 0.2),
    wording: str = "varied",
    proxies_per_modifier: int = 1,
    mention_noise: float = 1.0,
) -> CausalDataset:
    """Simulate a randomised trial with enrolment notes and known direct effect modifiers.

    Parameters
    ----------
    n : participants (>= 10). seed : master seed (independent streams per stage).
    effect : effect size (outcome units, noise sd 1 by default) multiplying the modifier terms.
    n_modifiers : number M in [0, 6] of direct modifiers (the first M pair conditions).
    proxy_correlation : correlation r in [0, 1] between each condition and its partner.
    clusters : 0 for individual randomisation, else the number G >= 4 of randomised sites.
    cluster_sd : standard deviation of the site effect on the outcome (with clusters).
    noise_sd : outcome noise. style, misspelling_rate, wording : of the notes
        (:func:`ehrcausal.text.notes.render_trial_notes`; ``wording="canonical"`` writes each
        concept with one phrase per mode).
    split : train/val/test proportions.
    proxies_per_modifier : 1 to 3 proxies of each direct modifier (its partner, then neutral
        concepts, module docstring).
    mention_noise : in [0, 1], how unfaithfully the notes express the concepts (1: present
        concepts sometimes left out or hedged, absent ones sometimes given a spurious mention,
        at the style's rates; 0: faithful mentions; :func:`~ehrcausal.text.notes.render_trial_notes`).

    Returns a :class:`CausalDataset`: ``X`` (``age``, ``male``), ``T``, ``Y``, ``text``,
    ``mu0``, ``mu1``, ``tau``, ``split``; ``modalities["records"]`` holds the concepts (the
    truth the note is written from) and ``modalities["site"]`` the site ids (all 0 without
    clusters); ``meta`` names the ``modifiers``, ``proxies`` (their partners), ``prognostic``
    concepts and ``concepts`` (all 24, in column order).
    """
    n = check_int(n, "n", 10)
    seed = check_int(seed, "seed", 0)
    effect = check_number(effect, "effect", 0.0)
    n_mod = check_int(n_modifiers, "n_modifiers", 0, _N_PAIRS)
    r = check_number(proxy_correlation, "proxy_correlation", 0.0, 1.0)
    clusters = check_int(clusters, "clusters", 0)
    if 0 < clusters < 4:
        raise ValueError(f"clusters must be 0 (individual randomisation) or >= 4, got {clusters}")
    cluster_sd = check_number(cluster_sd, "cluster_sd", 0.0)
    noise_sd = check_number(noise_sd, "noise_sd", 0.0)
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    rate = check_number(misspelling_rate, "misspelling_rate", 0.0, 0.5)
    split = check_split(split)
    noise_m = check_number(mention_noise, "mention_noise", 0.0, 1.0)
    ss = seed_streams(seed, TRIAL_STREAMS)

    ppm = check_int(proxies_per_modifier, "proxies_per_modifier", 1, 3)
    extras = extra_proxies(n_mod, ppm)
    rec = sample_trial_records(n, np.random.default_rng(ss["records"]), r, n_modifiers=n_mod,
                               proxies_per_modifier=ppm)
    rng_t = np.random.default_rng(ss["treatment"])
    rng_s = np.random.default_rng(ss["sites"])
    if clusters:
        site = rng_s.integers(0, clusters, size=n)
        treated_sites = rng_t.permutation(clusters)[: clusters // 2]
        T = np.isin(site, treated_sites).astype(int)
        u_site = rng_s.normal(0.0, cluster_sd, size=clusters)[site]
    else:
        site = np.zeros(n, dtype=int)
        T = (rng_t.random(n) < 0.5).astype(int)
        u_site = np.zeros(n)
    C = rec[list(_CONDITIONS)].to_numpy(dtype=float)
    w = np.array(MODIFIER_WEIGHTS[:n_mod])
    tau = effect * (C[:, :n_mod] @ w - 0.3)
    mu0 = (0.5 * C.sum(axis=1) + 0.6 * rec[list(_PROGNOSTIC)].to_numpy(dtype=float).sum(axis=1)
           + 0.02 * (rec["age"].to_numpy(dtype=float) - 65.0) + u_site)
    noise = np.random.default_rng(ss["noise"]).standard_normal(n)
    Y = mu0 + T * tau + noise_sd * noise
    text = render_trial_notes(rec, seed=stream_seed(ss["notes"]), style=style,
                              misspelling_rate=rate, wording=wording, mention_noise=noise_m)
    labels = protocol_split(n, stream_seed(ss["split"]), split)
    knobs: dict[str, Any] = {
        "n": n, "effect": effect, "n_modifiers": n_mod, "proxy_correlation": r,
        "clusters": clusters, "cluster_sd": cluster_sd, "noise_sd": noise_sd, "style": style,
        "misspelling_rate": rate, "split": list(split), "wording": wording,
        "proxies_per_modifier": ppm, "mention_noise": noise_m,
    }
    meta = {
        "source": _SOURCE, "seed": seed, "knobs": knobs, "concepts": list(TRIAL_CONCEPTS),
        "modifiers": list(_CONDITIONS[:n_mod]),
        "proxies": list(_PARTNERS[:n_mod]) + [c for names in extras for c in names],
        "prognostic": list(_CONDITIONS[n_mod:]) + list(_PROGNOSTIC),
    }
    return CausalDataset(
        X=rec[["age", "male"]].reset_index(drop=True), T=T, Y=Y, text=text,
        modalities={"records": rec, "site": site},
        mu0=mu0, mu1=mu0 + tau, tau=tau, split=labels, meta=meta,
    )
