r"""Experiments of the chapter on treatment policies from multimodal records (AACE).

Every experiment of the chapter is a list of *cells*: one (simulator, replicate, knobs,
representation, learner) each. A cell simulates its records (the simulators are seeded, so the
same replicate gives the same patients and notes whatever the treatment or annotation knobs),
turns the notes into the representation

.. math:: \phi(x) = [\text{note embedding}(x),\ \text{tabular covariates}(x)],

fits the learner on the training and validation rows, and scores it on the test rows against
the truth: PEHE, the policy benefit averaged over all budgets and the AUTOC.

Lower outcomes are better in both simulators, so a patient's *benefit* from treatment is
:math:`b = \mu_0 - \mu_1 = -\tau`, and a learner's policy treats patients in decreasing order of
:math:`-\hat\tau(\phi)` (the risk-based policy's ``effect`` is minus its predicted risk, so it
treats the sickest first). The policy benefit at budget :math:`k` is the mean benefit captured,

.. math:: G(k) = \frac1n \sum_{i \le k} b_{(i)}, \qquad \bar G = \frac1n \sum_{k=1}^n G(k),

i.e. the reduction of the mean outcome against treating no one, which is the policy value of
:func:`ehrcausal.metrics.policy_value` on the benefit scale; AUTOC is
:func:`ehrcausal.metrics.autoc` of the benefit :math:`b` under the same ordering.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from ..cache import default_cache_dir
from ..data.dataset import CausalDataset
from ..experiment import run_cached
from ..metrics import autoc, pehe, policy_value, policy_value_curve

#: the chapter's simulators, by name
SIMULATORS: tuple[str, ...] = ("respiratory", "cardiac")
#: text representations: sentence embeddings, or TF-IDF + truncated SVD
REPRESENTATIONS: tuple[str, ...] = ("minilm", "tfidf")
#: learners that take the annotations (and the tabular covariates as extra confounders)
ANNOTATION_LEARNERS: tuple[str, ...] = ("aace", "aace_no_crossfit", "aace_weighted")
#: budgets of the policy-benefit curve kept per cell (fractions of the test patients treated)
CURVE_BUDGETS = np.linspace(0.0, 1.0, 21)


def simulate(simulator: str, n: int, seed: int, **knobs: Any) -> CausalDataset:
    """One replicate of a chapter simulator (``"respiratory"`` or ``"cardiac"``)."""
    from ..data.cardiac import simulate_cardiac
    from ..data.respiratory import simulate_respiratory

    fns: dict[str, Callable[..., CausalDataset]] = {
        "respiratory": simulate_respiratory,
        "cardiac": simulate_cardiac,
    }
    if simulator not in fns:
        raise ValueError(f"unknown simulator {simulator!r}; use one of {SIMULATORS}")
    return fns[simulator](n, seed, **knobs)


def represent(
    ds: CausalDataset,
    representation: str = "minilm",
    *,
    device: str = "auto",
    cache_dir: Any = None,
    progress: bool = False,
    random_state: int = 0,
) -> pd.DataFrame:
    """The representation phi: the notes' embedding beside the tabular covariates ``ds.X``."""
    from ..text.embeddings import embed

    if representation not in REPRESENTATIONS:
        raise ValueError(f"unknown representation {representation!r}; use {REPRESENTATIONS}")
    if ds.text is None:
        raise ValueError("the dataset has no notes (ds.text is None); nothing to embed")
    emb = embed(
        ds.text,
        model=representation,
        device=device,
        cache_dir=cache_dir,
        progress=progress,
        random_state=random_state,
    )
    cols = [f"{representation}_{j}" for j in range(emb.shape[1])]
    phi = pd.DataFrame(emb.astype(float), columns=cols)
    return pd.concat([phi, ds.X.reset_index(drop=True).astype(float)], axis=1)


def policy_scores(ds: CausalDataset, tau_hat: np.ndarray | None, score: np.ndarray) -> dict:
    """PEHE (when ``tau_hat`` is an effect estimate), mean policy benefit, AUTOC and the curve.

    ``score`` orders the patients: the highest score is treated first (use ``-tau_hat`` when
    lower outcomes are better).
    """
    if ds.tau is None or ds.mu0 is None:
        raise ValueError("policy_scores needs the true effect (a simulated dataset)")
    benefit = -ds.tau
    zeros = np.zeros_like(benefit)
    curve = policy_value_curve(zeros, benefit, score)
    n = len(benefit)
    idx = np.floor(CURVE_BUDGETS * n + 0.5).astype(int)
    return {
        "pehe": float("nan") if tau_hat is None else pehe(ds.tau, tau_hat),
        "policy": policy_value(zeros, benefit, score),
        "autoc": autoc(benefit, score),
        "curve": [float(v) for v in curve[idx]],
    }


@dataclass(frozen=True)
class Cell:
    """One unit of work: a learner on one replicate of one simulated setting."""

    experiment: str
    simulator: str
    replicate: int
    seed: int
    n: int
    learner: str
    base: str
    representation: str = "minilm"
    knobs: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    random_state: int = 0

    def key(self) -> dict[str, Any]:
        return asdict(self)


def _fit_kwargs(base: str, train: CausalDataset) -> dict[str, Any]:
    if base in ANNOTATION_LEARNERS:
        if train.annotations is None:
            raise ValueError("the AACE learners need annotations in the dataset")
        return {"annotations": train.annotations, "confounders": train.X}
    if base == "oracle":
        return {"tau": train.tau}
    return {"val_mask": train.split == "val"}


def run_cell(cell: Cell, *, device: str = "auto", cache_dir: Any = None) -> dict[str, Any]:
    """Simulate, represent, fit and score one cell; returns one tidy row (with the curve)."""
    from ..learners import make

    ds = simulate(cell.simulator, cell.n, cell.seed, **cell.knobs)
    phi = represent(
        ds, cell.representation, device=device, cache_dir=cache_dir, random_state=cell.seed
    )
    fit_rows = np.isin(ds.split, ("train", "val"))
    test_rows = ds.split == "test"
    train, test = ds.take(fit_rows), ds.take(test_rows)
    est = make(cell.base, random_state=cell.random_state, **cell.params)
    start = time.perf_counter()
    est.fit(train.Y, train.T, X=phi[fit_rows], **_fit_kwargs(cell.base, train))
    seconds = time.perf_counter() - start
    tau_hat = est.effect(phi[test_rows])
    is_effect = getattr(est, "estimates_effect", True)
    row = {
        "experiment": cell.experiment,
        "simulator": cell.simulator,
        "replicate": cell.replicate,
        "learner": cell.learner,
        "representation": cell.representation,
        **{f"knob_{k}": v for k, v in cell.knobs.items()},
        **policy_scores(test, tau_hat if is_effect else None, -tau_hat),
        "seconds": seconds,
    }
    return row


def truth_rows(cells: Iterable[Cell]) -> list[dict[str, Any]]:
    """Reference rows per distinct setting: the true-effect ranking (ceiling) and random order.

    ``"true effect"`` treats patients by their true benefit (the best any policy can do);
    ``"random"`` treats them in a seeded random order (AUTOC about 0).
    """
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    for cell in cells:
        setting = (cell.experiment, cell.simulator, cell.replicate, cell.representation,
                   tuple(sorted(cell.knobs.items())))
        if str(setting) in seen:
            continue
        seen.add(str(setting))
        ds = simulate(cell.simulator, cell.n, cell.seed, **cell.knobs)
        test = ds.take(ds.split == "test")
        rng = np.random.default_rng(cell.seed)
        common = {
            "experiment": cell.experiment,
            "simulator": cell.simulator,
            "replicate": cell.replicate,
            "representation": cell.representation,
            **{f"knob_{k}": v for k, v in cell.knobs.items()},
            "seconds": 0.0,
        }
        rows.append({**common, "learner": "true effect",
                     **policy_scores(test, test.tau, -test.tau)})
        random_score = rng.permutation(len(test)).astype(float)
        rows.append({**common, "learner": "random", **policy_scores(test, None, random_score)})
    return rows


def warm_embeddings(
    cells: Iterable[Cell], *, device: str = "auto", cache_dir: Any = None, progress: bool = True
) -> int:
    """Embed every distinct set of notes the cells need, once, in this process.

    The sentence-embedding model then runs once per set of notes with all the machine's threads
    (or on the GPU), and the parallel workers only read the cache. Returns the number of notes
    embedded or read from the cache.
    """
    done: set[tuple] = set()
    total = 0
    for cell in cells:
        if cell.representation != "minilm":
            continue
        style = cell.knobs.get("style", "normal")
        ident = (cell.simulator, cell.n, cell.seed, style)
        if ident in done:
            continue
        done.add(ident)
        ds = simulate(cell.simulator, cell.n, cell.seed, style=style)
        represent(ds, "minilm", device=device, cache_dir=cache_dir, progress=progress)
        total += len(ds)
    return total


def run_cells(
    cells: Sequence[Cell],
    *,
    n_jobs: int = 1,
    device: str = "auto",
    cache_dir: Any = None,
    use_results_cache: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """Run every cell (in parallel processes when ``n_jobs > 1``): a tidy table, one row each.

    Embeddings are computed first in this process (:func:`warm_embeddings`) and cached on disk
    under ``cache_dir`` (default: the package cache folder). With ``use_results_cache`` each
    finished cell is also stored atomically, so an interrupted run resumes where it stopped.
    """
    warm_embeddings(cells, device=device, cache_dir=cache_dir, progress=progress)
    rows = run_cached(
        partial(run_cell, device=device, cache_dir=cache_dir),
        cells,
        n_jobs=n_jobs,
        cache_dir=(cache_dir if cache_dir is not None else default_cache_dir())
        if use_results_cache else None,
        namespace="aace",
        progress=progress,
        desc=f"{len(cells)} fits",
    )
    return pd.DataFrame(rows)


def replicate_seeds(seed: int, replicates: int) -> list[int]:
    """The simulation seed of each replicate, derived from the chapter's master seed."""
    from ..runtime import child_seeds

    return child_seeds(seed, replicates)


def design(
    experiment: str,
    *,
    simulator: str,
    n: int,
    seeds: Sequence[int],
    learners: Mapping[str, str],
    params: Mapping[str, dict[str, Any]] | None = None,
    settings: Sequence[dict[str, Any]] = ({},),
    representations: Sequence[str] = ("minilm",),
) -> list[Cell]:
    """The cells of one experiment: every setting x representation x replicate x learner.

    ``settings`` is a list of knob dictionaries passed to the simulator (for example
    ``[{"annotated": 0.05}, {"annotated": 0.5}]``); ``learners`` maps row labels to registry
    names; every learner of a replicate gets the same ``random_state`` (the replicate's seed).
    """
    if simulator not in SIMULATORS:
        raise ValueError(f"unknown simulator {simulator!r}; use one of {SIMULATORS}")
    params = params or {}
    return [
        Cell(
            experiment=experiment,
            simulator=simulator,
            replicate=r,
            seed=int(s),
            n=n,
            learner=label,
            base=base,
            representation=rep,
            knobs=dict(knobs),
            params=dict(params.get(label, {})),
            random_state=int(s),
        )
        for knobs in settings
        for rep in representations
        for r, s in enumerate(seeds)
        for label, base in learners.items()
    ]
