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
- ``ate_error``: :math:`|\bar{\hat\tau} - \bar\tau|` against the true effects, averaged over
  classes or domains; ``ate_error_nn``: the paper's "ATE error", the same against the 1-NN
  pseudo-effects (:func:`~ehrcausal.metrics.ate_error_nn`, as its released ``evaluate.py``).
- ``pehe``: the true :math:`\sqrt{\mathrm{PEHE}}` against the simulator's effects (per-class
  probability differences, averaged over classes), which real data never give.

The second half of the module turns the tidy results into what the chapter shows: the
simulated truth, the results tables beside the paper's headline numbers, the described and
released variants against each other and the baselines, the ablation, the cohort-size sweep
and the bootstrap intervals on one cohort.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..data.dataset import CausalDataset
from ..metrics import ate_error, ate_error_nn, auc_by_class, nn_pehe, pehe
from ..validation import check_int
from .base import ChapterConfig, fit_inputs, grid, learner_names, parse_list, run_cached
from .report import Md, ci, metric_table, paired_difference, summarise, verdict

#: the two decisions of the simulator
TASKS: tuple[str, ...] = ("approach", "surgery")
#: headline numbers of Tamo et al. (2025, abstract) for X-MultiTask: the approach task on the
#: public spinal-fusion cohort, and the surgery task (PROs) on the private AIS cohort
PAPER_HEADLINE: dict[str, dict[str, float]] = {
    "approach": {"auc_treated": 0.84, "auc_control": 0.77, "nn_pehe": 0.2778, "ate_error": 0.0763},
    "surgery": {"nn_pehe": 0.2551, "ate_error": 0.0902},
}
#: the chapter's two subjects: X-MultiTask as the paper describes it and as its code was released
DESCRIBED = "xmultitask"
RELEASED = "xmultitask_released"
#: the label of X-MultiTask without inverse-propensity weights (the IPW ablation)
NO_IPW = "xmultitask_no_ipw"
#: how the chapter's tables and figures name the learners
LABELS = {
    DESCRIBED: "X-MultiTask (described)",
    RELEASED: "X-MultiTask (released)",
    NO_IPW: "X-MultiTask, no IPW",
    "mc_s_learner": "S-learner",
    "mc_t_learner": "T-learner",
    "mc_x_learner": "X-learner",
    "dcn_pd": "DCN-PD",
    "mc_tarnet": "TARNet (multitask trunk)",
}
#: the columns of the results tables per task: metric -> header
COLUMNS = {
    "approach": {"auc_treated": "AUC anterior", "auc_control": "AUC posterior",
                 "nn_pehe": "NN-PEHE", "ate_error_nn": "ATE error (NN, paper's)",
                 "ate_error": "ATE error (true τ)", "pehe": "√PEHE (true)"},
    "surgery": {"rmse_treated": "RMSE surgery arm", "rmse_control": "RMSE non-surgical arm",
                "nn_pehe": "NN-PEHE", "ate_error_nn": "ATE error (NN, paper's)",
                "ate_error": "ATE error (true τ)", "pehe": "√PEHE (true)"},
}
#: the row label of the true effects scored on the paper's metrics (their noise floor)
TRUTH = "true effect"
#: the variants of the ablation table, in its order (the main-run rows are picked by learner)
ABLATION = {
    "described: IPW, multitask, X-learner stage 2": ("main", DESCRIBED),
    "without IPW": ("ipw", None),
    "single task (one network per decision)": ("single_task", None),
    "released code (one network per decision, arms as tasks, e(x)(p1 - p0))": ("main", RELEASED),
}


@dataclass(kw_only=True)
class Config(ChapterConfig):
    """The chapter's parameters, parsed (lists from comma strings) and checked."""

    n: int
    learners: Any
    sizes: Any
    size_learners: Any

    def __post_init__(self) -> None:
        super().__post_init__()
        self.n = check_int(self.n, "n", low=60)
        self.learners = learner_names(self.learners, ["multi_outcome"], "learners")
        self.size_learners = learner_names(self.size_learners, ["multi_outcome"],
                                           "size_learners")
        self.sizes = [check_int(s, "sizes", low=60) for s in parse_list(self.sizes, int,
                                                                        name="sizes")]
        for name in (DESCRIBED, RELEASED):
            if name not in self.learners:
                raise ValueError(f"the chapter compares the two X-MultiTask variants: add {name!r}")

    @property
    def params(self) -> dict[str, dict[str, Any]]:
        """Budget parameters by label, with X-MultiTask without IPW as its own label."""
        params = self.budget({name: name for name in {*self.learners, *self.size_learners}})
        params[NO_IPW] = {**params[DESCRIBED], "ipw": False}
        return params


def label(name: str) -> str:
    """The chapter's name for a learner (or ``"none"`` for no learner)."""
    return LABELS.get(name, "none" if name is None else name)


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
    out.update(nn_scores(ds, tau_hat, targets))
    return out


def nn_scores(ds: CausalDataset, tau_hat: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """The paper's two nearest-neighbour metrics of ``tau_hat`` on the rows ``ds``: NN-PEHE
    (squared, and its root) and the NN-based ATE error; ``targets`` are the one-hot classes or
    the outcome columns."""
    est_2d = np.asarray(tau_hat, dtype=float).reshape(len(ds), -1)
    out = {"nn_pehe": nn_pehe(ds.X, ds.T, targets, est_2d, squared=True),
           "ate_error_nn": ate_error_nn(ds.X, ds.T, targets, est_2d)}
    out["nn_pehe_root"] = float(np.sqrt(out["nn_pehe"]))
    return out


def _targets(ds: CausalDataset) -> np.ndarray:
    """One-hot classes (class outcome) or the outcome columns (continuous)."""
    if ds.meta.get("outcome", "class") == "class":
        return np.eye(ds.tau.shape[1])[np.asarray(ds.Y, dtype=int)]
    return np.asarray(ds.Y, dtype=float).reshape(len(ds), -1)


def truth_rows(cfg: Config) -> pd.DataFrame:
    """The true effects scored on the paper's metrics, per replicate and task of the main run.

    On each replicate's test patients the simulator's true :math:`\tau` is scored by NN-PEHE and
    the NN-based ATE error (its true √PEHE and ATE error are 0): the floor of those metrics,
    which no estimate can be expected to beat, since the pseudo-effects carry the outcome noise
    of two patients.
    """
    from ..data.spine import simulate_spine

    rows = []
    for replicate, seed in enumerate(cfg.seeds):
        cohort = simulate_spine(cfg.n, seed)
        for task in TASKS:
            test = cohort[task].subset("test")
            rows.append({"experiment": "main", "replicate": replicate, "n": cfg.n,
                         "learner": TRUTH, "task": task, "pehe": 0.0, "ate_error": 0.0,
                         **nn_scores(test, test.tau, _targets(test))})
    return pd.DataFrame(rows)


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
        """The cell as a JSON-serialisable cache key."""
        return asdict(self)


def fit_on_tasks(base: str, cohort: Mapping[str, CausalDataset], tasks: Sequence[str], *,
                 random_state: int, params: Mapping[str, Any]) -> Any:
    """A learner fitted on the training and validation rows of ``tasks`` (validation rows as
    ``val_mask`` when its registry entry asks for them)."""
    from ..learners import make

    fit = {t: cohort[t].subset("train", "val") for t in tasks}
    est = make(base, random_state=random_state, **params)
    est.fit_tasks(fit, **fit_inputs(base, val_mask={t: d.split == "val" for t, d in fit.items()}))
    return est


def run_cell(cell: SpineCell) -> list[dict[str, Any]]:
    """Simulate, fit and score one cell; one row per task it was fitted on."""
    from ..data.spine import simulate_spine

    cohort = simulate_spine(cell.n, cell.seed, **cell.knobs)
    unknown = sorted(set(cell.tasks) - set(cohort))
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; the cohort has {sorted(cohort)}")
    start = time.perf_counter()
    est = fit_on_tasks(cell.base, cohort, cell.tasks, random_state=cell.seed, params=cell.params)
    seconds = time.perf_counter() - start
    return [
        {
            "experiment": cell.experiment,
            "replicate": cell.replicate,
            "n": cell.n,
            "learner": cell.learner,
            "task": task,
            "n_tasks": len(cell.tasks),
            **score_task(est, cohort[task].subset("test"), task),
            "seconds": seconds,
        }
        for task in cell.tasks
    ]


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
            replicate=g["replicate"][0],
            seed=int(g["replicate"][1]),
            n=int(g["n"]),
            learner=g["learner"][0],
            base=g["learner"][1],
            tasks=tuple(g["tasks"]),
            params=dict(params.get(g["learner"][0], {})),
            knobs=dict(knobs or {}),
        )
        for g in grid(n=sizes, tasks=tasks, replicate=list(enumerate(seeds)),
                      learner=list(learners.items()))
    ]


def chapter_cells(cfg: Config) -> list[SpineCell]:
    """Every cell of the chapter: the main comparison, the IPW and single-task ablations, and
    the cohort sizes other than ``cfg.n`` (the main run is the size experiment's point at n)."""
    common = {"seeds": cfg.seeds, "params": cfg.params}
    return [
        *design("main", learners={k: k for k in cfg.learners}, sizes=[cfg.n], **common),
        *design("ipw", learners={NO_IPW: DESCRIBED}, sizes=[cfg.n], **common),
        *design("single_task", learners={DESCRIBED: DESCRIBED}, sizes=[cfg.n],
                tasks=[("approach",), ("surgery",)], **common),
        *design("size", learners={k: k for k in cfg.size_learners},
                sizes=[s for s in cfg.sizes if s != cfg.n], **common),
    ]


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


# ----------------------------------------------------------------------------------------------
# What the chapter shows
# ----------------------------------------------------------------------------------------------


def cohort(cfg: Config) -> dict[str, CausalDataset]:
    """Replicate 1's cohort at the chapter's size: the approach and surgery decisions."""
    from ..data.spine import simulate_spine

    return simulate_spine(cfg.n, cfg.seeds[0])


def _shared_effects(cohort: Mapping[str, CausalDataset]) -> tuple[np.ndarray, list[int]]:
    """The approach's effect on expected severity, and the approach rows of the surgery patients."""
    appr, surg = cohort["approach"], cohort["surgery"]
    severity = appr.tau @ np.arange(appr.tau.shape[1])
    pos = {p: i for i, p in enumerate(appr.modalities["ids"])}  # patient id -> approach row
    return severity, [pos[p] for p in surg.modalities["ids"]]


def truth_readings(cohort: Mapping[str, CausalDataset]) -> dict[str, Any]:
    """What the data section glues about the simulated cohort and its true effects."""
    appr, surg = cohort["approach"], cohort["surgery"]
    shares = np.bincount(appr.Y.astype(int), minlength=4) / len(appr)
    e_a = appr.modalities["propensity"]
    severity, rows = _shared_effects(cohort)
    return {
        "n_surgery": len(surg),
        "n_features": appr.X.shape[1],
        "share_anterior": float(100 * appr.T.mean()),
        "share_surgery": float(100 * surg.T.mean()),
        "class_shares": " / ".join(f"{100 * s:.0f}" for s in shares),
        "ate_approach_severe": float(appr.tau[:, 3].mean()),
        "ate_surgery_function": float(surg.tau[:, 0].mean()),
        "prop_range": f"{e_a.min():.2f} to {e_a.max():.2f}",
        "shared_corr": float(np.corrcoef(severity[rows], surg.tau[:, 0])[0, 1]),
    }


def truth_figure(cohort: Mapping[str, CausalDataset]) -> Any:
    """The simulated truth: the approach's effects, and how they relate to surgery's."""
    import matplotlib.pyplot as plt

    from ..plots import learner_palette

    severity, rows = _shared_effects(cohort)
    effect_function = cohort["surgery"].tau[:, 0]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    axes[0].hist(severity, bins=40, color=learner_palette(["a"])["a"])
    axes[0].set_xlabel("true effect of anterior vs posterior on expected severity")
    axes[0].set_ylabel("patients")
    axes[1].scatter(severity[rows], effect_function, s=8, alpha=0.5)
    axes[1].set_xlabel("effect on expected severity (approach)")
    axes[1].set_ylabel("effect on SRS function (surgery)")
    fig.suptitle("The simulated truth: heterogeneous effects that share structure across "
                 "decisions", y=1.03)
    fig.tight_layout()
    return fig


def _main(results: pd.DataFrame, task: str) -> pd.DataFrame:
    return results[(results.experiment == "main") & (results.task == task)]


def task_summary(results: pd.DataFrame, task: str, learners: Sequence[str]) -> pd.DataFrame:
    """Mean and s.e. of the task's metrics in the main comparison, one row per learner."""
    metrics = list(COLUMNS[task])
    return summarise(_main(results, task), metrics, by="learner").set_index("learner").reindex(
        learners)


def results_tables(results: pd.DataFrame, learners: Sequence[str],
                   truth: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """The two results tables (``table_approach``, ``table_surgery``), each with the paper's
    headline row for X-MultiTask on its own cohort and, with ``truth`` (:func:`truth_rows`),
    the true effects scored on the paper's metrics.

    The paper's "ATE error" is measured against nearest-neighbour pseudo-effects, so it sits in
    the NN column; its true-τ column is not available."""
    paper_a, paper_s = PAPER_HEADLINE["approach"], PAPER_HEADLINE["surgery"]
    na = "not available"
    paper = {
        "approach": pd.DataFrame({"AUC anterior": [f"{paper_a['auc_treated']:.2f}"],
                                  "AUC posterior": [f"{paper_a['auc_control']:.2f}"],
                                  "NN-PEHE": [f"{paper_a['nn_pehe']:.4f}"],
                                  "ATE error (NN, paper's)": [f"{paper_a['ate_error']:.4f}"],
                                  "ATE error (true τ)": [na], "√PEHE (true)": [na]},
                                 index=["X-MultiTask, paper (spinal-fusion cohort)"]),
        "surgery": pd.DataFrame({"RMSE surgery arm": ["–"], "RMSE non-surgical arm": ["–"],
                                 "NN-PEHE": [f"{paper_s['nn_pehe']:.4f} (class probabilities)"],
                                 "ATE error (NN, paper's)": [
                                     f"{paper_s['ate_error']:.4f} (class probabilities)"],
                                 "ATE error (true τ)": [na], "√PEHE (true)": [na]},
                                index=["X-MultiTask, paper (AIS cohort)"]),
    }
    out = {}
    for task in TASKS:
        s = task_summary(results, task, learners)
        ours = metric_table(s, COLUMNS[task], index=[label(k) for k in s.index])
        ours.index.name = "learner"
        parts = [ours]
        if truth is not None:
            t = summarise(truth[truth.task == task], ["nn_pehe", "ate_error_nn"], by="learner")
            row = metric_table(t, {"nn_pehe": "NN-PEHE",
                                   "ate_error_nn": "ATE error (NN, paper's)"},
                               index=["true τ (floor of the NN metrics)"])
            parts.append(row.reindex(columns=ours.columns, fill_value="–"))
        table = pd.concat([*parts, paper[task]])
        table.index.name = "learner"
        out[f"table_{task}"] = table
    return out


def compare(results: pd.DataFrame, task: str, s: pd.DataFrame, a: str, b: str,
            metric: str = "pehe") -> str:
    """Learner ``a`` against ``b`` on ``metric`` (lower is better), paired over replicates."""
    diff, se = paired_difference(_main(results, task), a, b, metric)
    return verdict(diff, se, subject=f"that of {label(b)}",
                   versus=(s.loc[a, f"{metric}_mean"], s.loc[b, f"{metric}_mean"]))


def comparison_readings(
    results: pd.DataFrame, cohort: Mapping[str, CausalDataset], learners: Sequence[str]
) -> dict[str, Any]:
    """Described vs released X-MultiTask and the best baseline, per task; whether NN-PEHE
    ranks the learners as the true PEHE does (:func:`kendall_by_replicate`, summarised by its
    mean and standard error over replicates)."""
    appr, surg = cohort["approach"], cohort["surgery"]
    summaries = {task: task_summary(results, task, learners) for task in TASKS}
    out: dict[str, Any] = {"mean_e_a": float(appr.T.mean()), "mean_e_s": float(surg.T.mean())}
    readings = []
    for task, ds in [("approach", appr), ("surgery", surg)]:
        s = summaries[task]
        better = s.loc[RELEASED, "pehe_mean"] < s.loc[DESCRIBED, "pehe_mean"]
        readings.append(
            f"On the {task} decision (mean absolute true effect {float(np.abs(ds.tau).mean()):.3f})"
            f" the shrunk, biased estimate has {'the lower' if better else 'the higher'} true "
            f"error")
    out["shrink_reading"] = Md(
        "; ".join(readings) + ": shrinkage trades bias for variance, and it pays only where the "
        "effects are small relative to the estimation noise.")
    for key, task in [("a", "approach"), ("s", "surgery")]:
        s = summaries[task]
        out[f"{key}_desc_vs_rel"] = Md(compare(results, task, s, DESCRIBED, RELEASED))
        baselines = [k for k in learners if k not in {DESCRIBED, RELEASED}]
        best = min(baselines, key=lambda k, s=s: s.loc[k, "pehe_mean"]) if baselines else None
        out[f"{key}_best_baseline"] = label(best)
        out[f"{key}_desc_vs_best"] = Md(compare(results, task, s, DESCRIBED, best)
                                        if best else "–")
        by_truth, by_nn = s["pehe_mean"].idxmin(), s["nn_pehe_mean"].idxmin()
        out[f"{key}_best_truth"] = label(by_truth)
        out[f"{key}_best_nn"] = label(by_nn)
        out[f"{key}_same_best"] = ("the same learner" if by_truth == by_nn
                                   else "a different learner")
        sub = _main(results, task)
        taus = kendall_by_replicate(sub)
        out[f"{key}_kendall"] = float(taus.mean()) if len(taus) else float("nan")
        out[f"{key}_kendall_se"] = (float(taus.std(ddof=1) / np.sqrt(len(taus)))
                                    if len(taus) > 1 else 0.0)
        out[f"{key}_kendall_n"] = len(taus)
        out[f"{key}_kendall_learners"] = int(sub.groupby("replicate").size().min())
        out[f"{key}_nn_range"] = f"{sub.nn_pehe.min():.3f} to {sub.nn_pehe.max():.3f}"
        out[f"{key}_mse_range"] = f"{(sub.pehe ** 2).min():.3f} to {(sub.pehe ** 2).max():.3f}"
    return out


def floor_readings(results: pd.DataFrame, truth: pd.DataFrame) -> dict[str, Any]:
    """The paper's NN metrics of the true effects (``floor_<metric>_<a|s>``) beside those of the
    described X-MultiTask (``desc_<metric>_<a|s>``) and the paper's headline values."""
    out: dict[str, Any] = {}
    for key, task in [("a", "approach"), ("s", "surgery")]:
        floor = truth[truth.task == task]
        ours = _main(results, task)
        ours = ours[ours.learner == DESCRIBED]
        for metric in ("nn_pehe", "ate_error_nn"):
            out[f"floor_{metric}_{key}"] = float(floor[metric].mean())
            out[f"desc_{metric}_{key}"] = float(ours[metric].mean())
    out["paper_nn_pehe_a"] = PAPER_HEADLINE["approach"]["nn_pehe"]
    out["paper_ate_a"] = PAPER_HEADLINE["approach"]["ate_error"]
    out["paper_nn_pehe_s"] = PAPER_HEADLINE["surgery"]["nn_pehe"]
    return out


def kendall_by_replicate(sub: pd.DataFrame) -> pd.Series:
    """Kendall's tau between NN-PEHE and the true √PEHE across learners, within each replicate.

    Pooling every (replicate, learner) row would mix differences between cohorts (a harder
    cohort raises every learner's NN-PEHE and true error together) with the ordering of the
    learners, and the rows of one cohort are not independent; within a replicate the learners
    see the same patients. Replicates with fewer than three learners are left out.
    """
    from ..metrics import rank_agreement

    taus = {r: rank_agreement(g["nn_pehe"], g["pehe"])[0]
            for r, g in sub.groupby("replicate") if len(g) >= 3}
    return pd.Series(taus, dtype=float).dropna()


def palette(learners: Sequence[str]) -> dict[str, Any]:
    """One colour per learner label of the main comparison."""
    from ..plots import learner_palette

    return learner_palette([LABELS[k] for k in learners])


def nn_vs_truth_figure(results: pd.DataFrame, learners: Sequence[str]) -> Any:
    """NN-PEHE against the true sqrt(PEHE), one dot per learner and replicate, per task."""
    import matplotlib.pyplot as plt

    from ..plots import legend_right

    colors = palette(learners)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, task, title in zip(axes, TASKS, ["approach (4 classes)", "surgery (4 PRO domains)"],
                               strict=True):
        sub = _main(results, task)
        for name in learners:
            rows = sub[sub.learner == name]
            ax.scatter(rows.pehe, rows.nn_pehe, s=28, color=colors[LABELS[name]],
                       label=LABELS[name], alpha=0.8)
        ax.set_xlabel("true √PEHE")
        ax.set_ylabel("NN-PEHE (paper's metric)")
        ax.set_title(title)
    legend_right(axes[1])
    fig.suptitle("Does the paper's metric rank learners as the truth does? (one dot per learner "
                 "and replicate)", y=1.02)
    fig.tight_layout()
    return fig


def ablation_readings(results: pd.DataFrame) -> dict[str, Any]:
    """True sqrt(PEHE) of the X-MultiTask variants (``ablation_table``), and the change from
    the described model when IPW, or the shared network, is removed."""
    parts = []
    for variant, (experiment, learner) in ABLATION.items():
        sub = results[results.experiment == experiment]
        if learner is not None:
            sub = sub[sub.learner == learner]
        parts.append(sub.assign(variant=variant))
    abl = summarise(pd.concat(parts, ignore_index=True), ["pehe"], by=["variant", "task"])
    abl["√PEHE"] = metric_table(abl, {"pehe": "√PEHE"})["√PEHE"]
    table = abl.pivot(index="variant", columns="task", values="√PEHE").reindex(list(ABLATION))
    means = abl.set_index(["variant", "task"])["pehe_mean"]
    out: dict[str, Any] = {"ablation_table": table}
    described = next(iter(ABLATION))
    for key, variant in [("no_ipw", "without IPW"),
                         ("single", "single task (one network per decision)")]:
        for task in TASKS:
            out[f"abl_{key}_{task}"] = float(means[(variant, task)] - means[(described, task)])
    return out


def size_readings(results: pd.DataFrame, cfg: Config) -> tuple[Any, dict[str, Any]]:
    """True sqrt(PEHE) by cohort size: the figure and the numbers the prose glues.

    The main run at size ``cfg.n`` is also the size experiment's point at ``n``.
    """
    import matplotlib.pyplot as plt

    from ..plots import legend_right, mean_se_lines

    size_rows = pd.concat([results[results.experiment == "size"],
                           results[(results.experiment == "main")
                                   & results.learner.isin(cfg.size_learners)]],
                          ignore_index=True)
    size = summarise(size_rows, ["pehe"], by=["n", "task", "learner"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, task in zip(axes, TASKS, strict=True):
        mean_se_lines(ax, size[size.task == task], "n", "pehe", cfg.size_learners, labels=LABELS,
                      palette=palette(cfg.learners))
        ax.set_xscale("log")
        ax.set_xlabel("patients (approach cohort)")
        ax.set_ylabel("true √PEHE")
        ax.set_title(task)
    legend_right(axes[1])
    fig.tight_layout()
    means = size.set_index(["n", "task", "learner"])["pehe_mean"]
    big, small = max([*cfg.sizes, cfg.n]), min([*cfg.sizes, cfg.n])
    out: dict[str, Any] = {"size_small": small, "size_big": big}
    for name in (DESCRIBED, RELEASED):
        if name in cfg.size_learners:
            for n, which in [(small, "small"), (big, "big")]:
                out[f"size_{name}_{which}"] = float(means[(n, "approach", name)])
    return fig, out


def bootstrap_readings(cohort: Mapping[str, CausalDataset], cfg: Config,
                       n_boot: int) -> dict[str, Any]:
    """Bootstrap intervals of the described X-MultiTask on replicate 1's approach test patients:
    per-class AUC of each arm's head (``ci_table``) and NN-PEHE (``nn_ci``)."""
    from ..metrics import auc_by_class_ci, nn_pehe_ci

    est = fit_on_tasks(DESCRIBED, cohort, TASKS, random_state=cfg.seeds[0],
                       params=cfg.params[DESCRIBED])
    test = cohort["approach"].subset("test")
    mu0, mu1 = est.predict_outcomes(test.X, task="approach")
    tr = test.T == 1
    ci_a = auc_by_class_ci(test.Y[tr], mu1[tr], n_boot=n_boot, random_state=cfg.seed)
    ci_p = auc_by_class_ci(test.Y[~tr], mu0[~tr], n_boot=n_boot, random_state=cfg.seed)
    table = pd.DataFrame({
        "severity class": ci_a["class"],
        "AUC anterior head [95 % CI]": [ci(*v) for v in zip(ci_a.auc, ci_a.lower, ci_a.upper,
                                                            strict=True)],
        "AUC posterior head [95 % CI]": [ci(*v) for v in zip(ci_p.auc, ci_p.lower, ci_p.upper,
                                                             strict=True)],
    }).set_index("severity class")
    onehot = np.eye(mu0.shape[1])[test.Y.astype(int)]
    nn = nn_pehe_ci(test.X, test.T, onehot, est.effect(test.X, task="approach"), squared=True,
                    n_boot=n_boot, random_state=cfg.seed)
    return {"ci_table": table, "nn_ci": ci(*nn, digits=4), "n_test": len(test), "n_boot": n_boot}
