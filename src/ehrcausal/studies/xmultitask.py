r"""Experiments of the chapter on multitask effects for surgical decisions (X-MultiTask).

Each cell simulates one spine-surgery cohort (:func:`ehrcausal.data.simulate_spine`: the
*approach* decision with complication severity 0-3 and the *surgery* decision with four
patient-reported outcome domains, on the same patients), fits one learner on the training and
validation rows of the tasks it is given (jointly for the multitask networks, one copy per task
for the others), and scores every task on its test rows.

Metrics per task, as Tamo et al. (2025) report them, plus what only a simulation allows:

- ``auc_treated`` / ``auc_control`` (class outcome): the one-vs-rest AUC of each arm's own head
  on the test patients of that arm, averaged over classes (anterior = treated, posterior =
  control); for a continuous outcome ``rmse_treated`` / ``rmse_control`` of the arm's head.
- ``nn_pehe``: the nearest-neighbour PEHE of Schwab et al. (2018) in the paper's form, the mean
  squared error against 1-NN pseudo-effects across arms on standardised covariates, one-hot
  outcomes for classes, averaged over classes or domains; ``nn_pehe_root`` its square root.
- ``ate_error``: :math:`|\bar{\hat\tau} - \bar\tau|` averaged over classes or domains.
- ``pehe``: the true :math:`\sqrt{\mathrm{PEHE}}` against the simulator's effects (per-class
  probability differences, averaged over classes), which real data never give.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..data.dataset import CausalDataset
from ..experiment import child_seeds, run_cached
from ..metrics import ate_error, auc_by_class, nn_pehe, pehe

#: the two decisions of the simulator, and the arm names of the approach task
TASKS: tuple[str, ...] = ("approach", "surgery")
#: headline numbers of Tamo et al. (2025, abstract) for X-MultiTask: the approach task on the
#: public spinal-fusion cohort, and the surgery task (PROs) on the private AIS cohort
PAPER_HEADLINE: dict[str, dict[str, float]] = {
    "approach": {"auc_treated": 0.84, "auc_control": 0.77, "nn_pehe": 0.2778, "ate_error": 0.0763},
    "surgery": {"nn_pehe": 0.2551, "ate_error": 0.0902},
}


def score_task(est: Any, ds: CausalDataset, task: str) -> dict[str, float]:
    """The chapter's metrics of a fitted multi-outcome learner on one task's rows ``ds``."""
    if ds.tau is None:
        raise ValueError("score_task needs the true effects (a simulated dataset)")
    outcome = ds.meta.get("outcome", "class")
    mu0, mu1 = est.predict_outcomes(ds.X, task=task)
    tau_hat = est.effect(ds.X, task=task)
    treated = ds.T == 1
    out: dict[str, float] = {
        "pehe": pehe(ds.tau, tau_hat),
        "ate_error": ate_error(ds.tau, tau_hat),
    }
    if outcome == "class":
        labels = np.asarray(ds.Y, dtype=int)
        targets = np.eye(mu0.shape[1])[labels]
        out["auc_treated"] = float(np.nanmean(auc_by_class(labels[treated], mu1[treated])))
        out["auc_control"] = float(np.nanmean(auc_by_class(labels[~treated], mu0[~treated])))
    else:
        targets = np.asarray(ds.Y, dtype=float).reshape(len(ds), -1)
        m0, m1 = mu0.reshape(len(ds), -1), mu1.reshape(len(ds), -1)
        out["rmse_treated"] = float(np.sqrt(np.mean((targets[treated] - m1[treated]) ** 2)))
        out["rmse_control"] = float(np.sqrt(np.mean((targets[~treated] - m0[~treated]) ** 2)))
    est_2d = np.asarray(tau_hat, dtype=float).reshape(len(ds), -1)
    out["nn_pehe"] = nn_pehe(ds.X, ds.T, targets, est_2d, squared=True)
    out["nn_pehe_root"] = float(np.sqrt(out["nn_pehe"]))
    return out


@dataclass(frozen=True)
class SpineCell:
    """One learner on one simulated cohort, fitted on the named tasks."""

    experiment: str
    replicate: int
    seed: int
    n: int
    learner: str
    base: str
    tasks: tuple[str, ...] = TASKS
    params: dict[str, Any] = field(default_factory=dict)
    knobs: dict[str, Any] = field(default_factory=dict)

    def key(self) -> dict[str, Any]:
        return asdict(self)


def run_cell(cell: SpineCell) -> list[dict[str, Any]]:
    """Simulate, fit and score one cell; one row per task it was fitted on."""
    import time

    from ..data.spine import simulate_spine
    from ..learners import make

    cohort = simulate_spine(cell.n, cell.seed, **cell.knobs)
    unknown = sorted(set(cell.tasks) - set(cohort))
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; the cohort has {sorted(cohort)}")
    fit = {t: cohort[t].subset("train", "val") for t in cell.tasks}
    est = make(cell.base, random_state=cell.seed, **cell.params)
    start = time.perf_counter()
    est.fit_tasks(fit, val_mask={t: d.split == "val" for t, d in fit.items()})
    seconds = time.perf_counter() - start
    rows = []
    for task in cell.tasks:
        rows.append({
            "experiment": cell.experiment,
            "replicate": cell.replicate,
            "n": cell.n,
            "learner": cell.learner,
            "task": task,
            "n_tasks": len(cell.tasks),
            **score_task(est, cohort[task].subset("test"), task),
            "seconds": seconds,
        })
    return rows


def design(
    experiment: str,
    *,
    learners: Mapping[str, str],
    seeds: Sequence[int],
    sizes: Sequence[int] = (1017,),
    tasks: Sequence[Sequence[str]] = (TASKS,),
    params: Mapping[str, dict[str, Any]] | None = None,
    knobs: dict[str, Any] | None = None,
) -> list[SpineCell]:
    """Every size x task set x replicate x learner of one experiment.

    ``learners`` maps row labels to registry names (so one learner can appear twice with
    different ``params``, e.g. X-MultiTask with and without IPW); a replicate's seed draws the
    cohort and seeds the learner.
    """
    params = params or {}
    for task_set in tasks:
        unknown = sorted(set(task_set) - set(TASKS))
        if unknown or not task_set:
            raise ValueError(f"unknown task(s) {unknown or '(none)'}; use {TASKS}")
    return [
        SpineCell(
            experiment=experiment,
            replicate=r,
            seed=int(s),
            n=int(n),
            learner=label,
            base=base,
            tasks=tuple(task_set),
            params=dict(params.get(label, {})),
            knobs=dict(knobs or {}),
        )
        for n in sizes
        for task_set in tasks
        for r, s in enumerate(seeds)
        for label, base in learners.items()
    ]


def replicate_seeds(seed: int, replicates: int) -> list[int]:
    """The cohort seed of each replicate, derived from the chapter's master seed."""
    return child_seeds(seed, replicates)


def run_cells(
    cells: Sequence[SpineCell],
    *,
    n_jobs: int = 1,
    cache_dir: Any = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Run every cell (in parallel processes when ``n_jobs > 1``): one row per (cell, task).

    With ``cache_dir`` each finished cell is stored atomically, so an interrupted run resumes.
    """
    results = run_cached(run_cell, cells, n_jobs=n_jobs, cache_dir=cache_dir,
                         namespace="xmultitask", progress=progress, desc=f"{len(cells)} fits")
    return pd.DataFrame([row for rows in results for row in rows])
