"""The M3H chapter: one network for many clinical tasks from four modalities.

Experiments on :func:`~ehrcausal.data.simulate_multimodal` (see ``book/design.md``):

- :func:`run_cell` -- one replicate of one learner (a registry name, or ``m3h`` at a given
  self/cross balance, or on a subset of modalities): per-task held-out metrics;
- :func:`relative_gains` -- per task, the relative gain of a multitask learner over
  ``single_task`` on each task's primary metric, and its mean over tasks per replicate;
- label regimes: every main cell is fitted with all of its training labels and, for the
  learners of ``scarce_learners``, with every supervised task keeping a share of its training
  and validation labels (:func:`scarce_fit_labels`); :func:`regime_readings` and
  :func:`regime_tables` report the gains per (knob level, label share), and the issue's target
  per regime;
- :func:`loss_cells` / :func:`loss_readings` / :func:`loss_table` -- ``m3h`` and
  ``single_task`` with DEC's clustering loss (``cluster_loss="dec"``) against the main cells,
  which cluster the phenotype by the rule after training: NMI under both read-outs, the gains,
  and the loss's effect on the supervised tasks;
- :func:`run_tim_cell` / :func:`tim_summary` -- the task-interdependence score (TIM, one
  side-by-side training run per replicate) and its attention proxy, averaged over replicates
  and compared with the simulator's true dependency (Spearman rank correlation), with their
  cost; cached per replicate like the other cells.

Per-task metrics: AUC (binary); macro-F1 and one-vs-rest AUC (multiclass); R^2 and RMSE
(regression); ARI and NMI (the clustering task, against the true phenotype). The *primary*
metric of a task, on which relative gains are computed, is AUC, macro-F1, RMSE (lower is
better) or NMI. The relative gain of learner ``a`` over ``single_task`` on task ``t`` is

    g_t = (m_t(a) - m_t(single)) / |m_t(single)|   (higher-is-better metrics),
    g_t = (m_t(single) - m_t(a)) / m_t(single)     (RMSE),

and a replicate's mean gain is the mean of ``g_t`` over tasks; its mean and paired standard
error over replicates are reported (the replicates share nothing but the design).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from ..data.multimodal import MODALITIES, MultimodalDataset, simulate_multimodal
from ..learners import make
from ..learners.m3h import (
    M3H,
    BlockClusters,
    availability,
    check_tasks,
    scarce_labels,
    task_interdependence,
)
from ..learners.m3h import spearman_offdiagonal as rank_agreement_offdiagonal
from ..plots import learner_palette
from ..runtime import seed_streams, stream_seed
from ..validation import check_int, check_number
from .base import ChapterConfig, learner_names, parse_list, replicate_seeds, run_cached
from .report import mean_se, pm, verdict

__all__ = [
    "Cell",
    "select_tasks",
    "task_metrics",
    "run_cell",
    "without_modality",
    "relative_gains",
    "gain_summary",
    "gain_values",
    "versus_single_task",
    "TimCell",
    "run_tim_cell",
    "tim_cells",
    "tim_summary",
    "TIM_OPTIONS",
    "PROXY_OPTIONS",
    "skip_cells",
    "skip_readings",
    "with_block_clusters",
    "clustering_network",
    "BLOCK_READINGS",
    "loss_cells",
    "loss_readings",
    "loss_table",
    "scarce_fit_labels",
    "label_tag",
    "regime_readings",
    "regime_tables",
    "label_counts",
    "level_tag",
    "phenotype_readings",
    "PRIMARY",
]

#: the primary metric of each problem class, and whether higher is better
PRIMARY: dict[str, tuple[str, bool]] = {
    "binary": ("auc", True), "multiclass": ("macro_f1", True), "regression": ("rmse", False),
    "clustering": ("nmi", True),
}


@dataclass(frozen=True)
class Cell:
    """One fit: data (n, seed, shared), learner (name, budget), variant (balance, modalities),
    and the share of its training and validation labels each supervised task keeps
    (``labels``, :func:`scarce_fit_labels`)."""

    n: int
    seed: int
    shared: float
    learner: str
    tasks: tuple[str, ...]
    budget: tuple[tuple[str, Any], ...] = ()
    balance: float | str | None = None
    drop: str | None = None
    labels: float = 1.0

    def key(self) -> dict[str, Any]:
        return {**asdict(self), "tasks": list(self.tasks), "budget": dict(self.budget),
                "version": cache_version(self.learner)}


#: version of the cached results of the network learners (bumped when the network or its
#: training changes, so that no result of an older network is reused); HAIM's trees keep 2
NETWORK_CACHE_VERSION = 4


def cache_version(learner: str) -> int:
    """The cache version of a learner's cells (:data:`NETWORK_CACHE_VERSION` for networks)."""
    from ..learners import spec

    return NETWORK_CACHE_VERSION if spec(learner).torch else 2


@dataclass(frozen=True)
class TimCell:
    """One replicate of the TIM experiment: ``kind`` is ``"tim"`` (the side-by-side fits of
    :func:`~ehrcausal.learners.m3h.task_interdependence`, each source keeping the fraction
    ``source_fraction`` of its training labels) or ``"attention"`` (one ``m3h`` fit on the
    tasks, its mean attention matrix on the test rows: the cheap proxy)."""

    n: int
    seed: int
    shared: float
    tasks: tuple[str, ...]
    budget: tuple[tuple[str, Any], ...]
    kind: str
    source_fraction: float = 1.0

    def key(self) -> dict[str, Any]:
        return {**asdict(self), "tasks": list(self.tasks), "budget": dict(self.budget),
                "experiment": "tim", "version": NETWORK_CACHE_VERSION}


def select_tasks(tasks: pd.DataFrame, value: Any) -> list[str]:
    """Task names from a notebook parameter: ``"all"``, or a comma-separated list of task
    names and department names (a department stands for its tasks)."""
    if isinstance(value, str) and value.strip() == "all":
        return list(tasks["name"])
    items = [v.strip() for v in (value.split(",") if isinstance(value, str) else value)]
    out: list[str] = []
    for item in items:
        if item in set(tasks["name"]):
            out.append(item)
        elif item in set(tasks["department"]):
            out += list(tasks.loc[tasks.department == item, "name"])
        elif item:
            raise ValueError(f"tasks: {item!r} is neither a task nor a department; departments: "
                             f"{sorted(set(tasks.department))}")
    if not out:
        raise ValueError("tasks is empty")
    return list(dict.fromkeys(out))


def task_metrics(scores: dict[str, np.ndarray], Y: pd.DataFrame, tasks: pd.DataFrame
                 ) -> pd.DataFrame:
    """One row per task: its primary metric and the others of its class (module docstring)."""
    from sklearn.metrics import (
        adjusted_rand_score,
        f1_score,
        normalized_mutual_info_score,
        r2_score,
        roc_auc_score,
    )

    rows = []
    for _, t in tasks.iterrows():
        y = Y[t["name"]].to_numpy()
        m = np.isfinite(y)
        s = scores[t["name"]][m]
        y = y[m]
        row = {"task": t["name"], "problem_class": t["problem_class"],
               "department": t["department"]}
        cls = t["problem_class"]
        if cls == "binary":
            row["auc"] = float(roc_auc_score(y, s)) if len(np.unique(y)) == 2 else np.nan
        elif cls == "multiclass":
            row["macro_f1"] = float(f1_score(y.astype(int), s.argmax(axis=1), average="macro",
                                             labels=list(range(s.shape[1]))))
            row["auc"] = float(roc_auc_score(y.astype(int), s, multi_class="ovr",
                                             labels=list(range(s.shape[1]))))
        elif cls == "regression":
            row["rmse"] = float(np.sqrt(np.mean((y - s) ** 2)))
            row["r2"] = float(r2_score(y, s))
        else:
            row["ari"] = float(adjusted_rand_score(y, s))
            row["nmi"] = float(normalized_mutual_info_score(y, s))
        metric, _ = PRIMARY[cls]
        row["primary"] = row[metric]
        rows.append(row)
    return pd.DataFrame(rows)


@functools.lru_cache(maxsize=4)
def cohort(n: int, seed: int, shared: float) -> MultimodalDataset:
    """The simulated cohort of a cell (kept for the next cells of the same design point)."""
    return simulate_multimodal(n, seed, shared=shared)


def _data(cell: Cell):
    ds = cohort(cell.n, cell.seed, cell.shared)
    tasks = ds.tasks[ds.tasks.name.isin(cell.tasks)].reset_index(drop=True)
    return ds, tasks


def run_cell(cell: Cell) -> dict[str, Any]:
    """Fit ``cell.learner`` on the train+val rows (val for early stopping), their supervised
    labels thinned to the share ``cell.labels`` (:func:`scarce_fit_labels`), and score the test
    rows (all their labels): ``{"metrics": records of :func:`task_metrics`, "seconds": fit
    time}``."""
    ds, tasks = _data(cell)
    fit_rows = np.asarray(ds.split) != "test"
    train, test = ds.take(fit_rows), ds.subset("test")
    train = scarce_fit_labels(train, tasks, cell.labels, cell.seed)
    if cell.drop is not None:
        train, test = without_modality(train, cell.drop), without_modality(test, cell.drop)
    mods = {k: v for k, v in train.modalities.items() if k != cell.drop}
    test_mods = {k: v for k, v in test.modalities.items() if k != cell.drop}
    params = dict(cell.budget)
    if cell.balance is not None:
        params["balance"] = cell.balance
    est = make(cell.learner, random_state=cell.seed % (2**31), **params)
    extra = {"val_mask": np.asarray(train.split) == "val"} if "val_mask" in _inputs(
        cell.learner) else {}
    start = time.perf_counter()
    est.fit(mods, train.targets, tasks=tasks, **extra)
    seconds = time.perf_counter() - start
    scores = est.predict_scores(test_mods)
    metrics = task_metrics(scores, test.targets, tasks)
    for name in tasks.loc[tasks.problem_class == "clustering", "name"]:
        # the share of held-out patients in the largest cluster (reads no label)
        sizes = np.bincount(np.asarray(scores[name], dtype=int))
        metrics.loc[metrics.task == name, "largest_share"] = sizes.max() / sizes.sum()
    if cell.drop is None:
        metrics = with_block_clusters(metrics, est, train, test, tasks, cell.seed % (2**31))
    out = {"metrics": metrics.to_dict("records"), "seconds": seconds}
    if cell.learner == "m3h" and cell.drop is None:
        out["balances"] = est.balances().to_dict()
    return out


def clustering_network(est: Any, task: str) -> M3H | None:
    """The M3H network whose representation a learner's clustering task ``task`` reads: ``est``
    itself for ``m3h`` and ``m3h_no_attention``; for ``single_task`` with the clustering loss,
    the network it trained on that loss alone; None otherwise."""
    if isinstance(est, M3H):
        return est if task in est.clusters_ else None
    model = getattr(est, "models_", {}).get(task)
    return model if isinstance(model, M3H) else None


#: the readings of :func:`with_block_clusters`: column -> the blocks the rule reads
BLOCK_READINGS = {"nmi_h_only": ("h",), "nmi_inputs_only": ("s",), "nmi_block_rule": ("h", "s")}


def with_block_clusters(metrics: pd.DataFrame, est: Any, train: MultimodalDataset,
                        test: MultimodalDataset, tasks: pd.DataFrame, seed: int
                        ) -> pd.DataFrame:
    """``metrics`` with, on each clustering task's row, the NMI of M3H's clustering rule
    (:class:`~ehrcausal.learners.m3h.BlockClusters`) on the blocks of the learner's clustering
    network (:func:`clustering_network`; nothing is added without one): ``nmi_h_only`` (the
    shared representation), ``nmi_inputs_only`` (the inputs read linearly: the single-task
    baseline without the clustering loss) and ``nmi_block_rule`` (both blocks: the rule as a
    second read-out of a network trained with the clustering loss), fitted on the learner's
    training rows (split ``"train"``) and scored on the test rows."""
    from sklearn.metrics import normalized_mutual_info_score

    out = metrics.copy()
    for name in tasks.loc[tasks.problem_class == "clustering", "name"]:
        net = clustering_network(est, name)
        if net is None:
            continue
        blocks_fit = net.cluster_blocks(train.subset("train").modalities)
        blocks_test = net.cluster_blocks(test.modalities)
        y = test.targets[name].to_numpy()
        m = np.isfinite(y)
        k = net.clusters_[name].k
        row = out.index[out.task == name]
        for column, keys in BLOCK_READINGS.items():
            keys = [key for key in keys if blocks_fit[key].shape[1]]
            if not keys:
                value = float("nan")
            else:
                bc = BlockClusters(k, seed).fit([blocks_fit[key] for key in keys])
                value = float(normalized_mutual_info_score(y[m], bc.predict(
                    [blocks_test[key] for key in keys])[m]))
            out.loc[row, column] = value
    return out


#: entropy word of the label masks' seed sequence, ``SeedSequence([seed, LABEL_STREAM])``: a
#: sequence apart from every stream the simulator draws from ``SeedSequence(seed)``
LABEL_STREAM = 0x1ABE1


def scarce_fit_labels(ds: MultimodalDataset, tasks: pd.DataFrame, fraction: float, seed: int
                      ) -> MultimodalDataset:
    """``ds`` (the rows a learner is fitted on) with every supervised task of ``tasks``
    keeping the share ``fraction`` of its labels among the ``"train"`` rows and, drawn apart,
    among the ``"val"`` rows (:func:`~ehrcausal.learners.m3h.scarce_labels`: stratified by
    class, each task from its own stream); the other labels become NaN, which every learner
    treats as missing. The draw depends on ``seed`` (a replicate's) and ``fraction`` only, so
    every learner of a replicate sees the same labels. Rows of other splits and the clustering
    task (no learner reads its labels) are untouched; ``fraction = 1`` returns ``ds``."""
    fraction = check_number(fraction, "fraction", 0.0, 1.0, low_open=True)
    if fraction >= 1.0:
        return ds
    supervised = tasks[tasks.problem_class != "clustering"].reset_index(drop=True)
    if supervised.empty:
        return ds
    specs, _ = check_tasks(supervised, ds.targets)
    names = [s.name for s in specs]
    Y = ds.targets.copy()
    split = np.asarray(ds.split)
    base = stream_seed(np.random.SeedSequence([int(seed), LABEL_STREAM]))
    for part, stream in seed_streams(base, ["train", "val"]).items():
        rows = split == part
        if rows.any():
            kept = scarce_labels(Y.loc[rows, names].reset_index(drop=True), specs=specs,
                                 fraction=fraction, seed=stream_seed(stream))
            Y.loc[rows, names] = kept.to_numpy()
    return replace(ds, targets=Y)


def without_modality(ds: MultimodalDataset, drop: str) -> MultimodalDataset:
    """The patients of ``ds`` who keep at least one modality once ``drop`` is removed.

    A patient whose only modality was ``drop`` has no input left (the learners reject such a
    patient), so a modality ablation fits and scores the others; at the default profile these
    are a handful of patients per cohort.
    """
    rest = {k: v for k, v in ds.modalities.items() if k != drop}
    return ds.take(availability(rest).any(axis=1))


def _inputs(name: str) -> tuple[str, ...]:
    from ..learners import spec

    return spec(name).fit_inputs


def tidy(cells: Sequence[Cell], results: Sequence[dict[str, Any]], label: str = "learner"
         ) -> pd.DataFrame:
    """One row per (cell, task) with the cell's design and the task's metrics."""
    frames = []
    if not cells:
        return pd.DataFrame(columns=["task", "problem_class", "primary", "replicate", "learner",
                                     "shared", "balance", "drop", "labels", "seconds", "cell"])
    for i, (c, r) in enumerate(zip(cells, results, strict=True)):
        df = pd.DataFrame(r["metrics"])
        df["replicate"] = c.seed
        df["learner"] = c.learner
        df["shared"] = c.shared
        df["balance"] = "" if c.balance is None else str(c.balance)
        df["drop"] = c.drop or ""
        df["labels"] = getattr(c, "labels", 1.0)
        df["seconds"] = r["seconds"]
        df["cell"] = i
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def relative_gains(df: pd.DataFrame, learner: str, baseline: str = "single_task"
                   ) -> pd.DataFrame:
    """Per replicate and task, the relative gain of ``learner`` over ``baseline`` (module
    docstring); ``df`` is a :func:`tidy` table with one row per (replicate, learner, task)."""
    key = ["replicate", "task", "problem_class"]
    a = df[df.learner == learner].set_index(key)["primary"]
    b = df[df.learner == baseline].set_index(key)["primary"]
    both = pd.concat({"a": a, "b": b}, axis=1).dropna().reset_index()
    higher = both.problem_class.map(lambda c: PRIMARY[c][1])
    gain = np.where(higher, (both.a - both.b) / both.b.abs(), (both.b - both.a) / both.b)
    both["gain"] = gain
    return both


def gain_summary(gains: pd.DataFrame) -> dict[str, float]:
    """Mean over tasks per replicate, then mean and standard error over replicates; the range
    of the per-task mean gains."""
    per_rep = gains.groupby("replicate")["gain"].mean()
    per_task = gains.groupby("task")["gain"].mean()
    r = len(per_rep)
    return {
        "mean": float(per_rep.mean()),
        "se": float(per_rep.std(ddof=1) / np.sqrt(r)) if r > 1 else float("nan"),
        "replicates": r,
        "task_min": float(per_task.min()),
        "task_max": float(per_task.max()),
        "share_positive": float((per_task > 0).mean()),
    }


def run_tim_cell(cell: TimCell) -> dict[str, Any]:
    """A :class:`TimCell`: ``{"matrix": source -> auxiliary -> value, "seconds": cost}``.

    TIM: every network learns on the training rows (each source slot on the fraction
    ``cell.source_fraction`` of its training labels, every auxiliary on all of its own), is
    kept at its own best epoch on the validation rows (at most the budget's ``epochs``) and is
    scored on the test rows. Proxy: ``m3h`` early-stopped on the validation rows, its mean
    attention over the test rows (:meth:`~ehrcausal.learners.m3h.M3H.attention_matrix`).
    """
    ds = cohort(cell.n, cell.seed, cell.shared)
    tasks = ds.tasks[ds.tasks.name.isin(cell.tasks)].reset_index(drop=True)
    names = list(tasks.name)
    fit = np.asarray(ds.split) != "test"
    est = make("m3h", random_state=cell.seed % (2**31), **dict(cell.budget))
    start, cpu = time.perf_counter(), time.process_time()
    if cell.kind == "tim":
        matrix, _ = task_interdependence(est, ds.modalities, ds.targets, tasks, sources=names,
                                         auxiliaries=names, eval_mask=~fit, fit_mask=fit,
                                         val_mask=np.asarray(ds.split) == "val",
                                         source_fraction=cell.source_fraction)
    elif cell.kind == "attention":
        train = ds.take(fit)
        est.fit(train.modalities, train.targets, tasks=tasks,
                val_mask=np.asarray(train.split) == "val")
        matrix = est.attention_matrix(ds.subset("test").modalities)
    else:
        raise ValueError(f"kind must be 'tim' or 'attention', got {cell.kind!r}")
    return {"matrix": matrix.to_dict(), "seconds": time.perf_counter() - start,
            "cpu_seconds": time.process_time() - cpu}


#: the TIM networks: M3H without the per-task linear skip (a path of the source's own that no
#: auxiliary can change; see :func:`tim_cells`)
TIM_OPTIONS: dict[str, Any] = {"skip": False}
#: the proxy's M3H fit: the heads read only the attention (balance 0), each task's token has
#: its own map from the shared representation, and the query and key maps get no weight decay
#: (see :func:`tim_cells`)
PROXY_OPTIONS: dict[str, Any] = {"attention_decay": False, "token_maps": "per_task",
                                 "balance": 0.0}


def tim_cells(cfg: Config) -> list[TimCell]:
    """TIM and its proxy on each of ``cfg.tim_replicates`` replicates (shared causes at the
    first knob level; replicate ``r`` is the cohort of the main cells' replicate ``r``).

    TIM's networks are ``m3h`` with :data:`TIM_OPTIONS` and at most ``cfg.tim_epochs`` epochs,
    each source keeping the fraction ``cfg.tim_source_fraction`` of its training labels; the
    proxy is ``m3h`` with :data:`PROXY_OPTIONS` and the chapter's budget.
    """
    budgets = {"tim": dict(cfg.budget_of("m3h"), epochs=cfg.tim_epochs, **TIM_OPTIONS),
               "attention": dict(cfg.budget_of("m3h"), **PROXY_OPTIONS)}
    return [TimCell(cfg.n, seed, cfg.shared[0], tuple(cfg.tim_names),
                    tuple(sorted(budgets[kind].items())), kind,
                    cfg.tim_source_fraction if kind == "tim" else 1.0)
            for seed in cfg.tim_seeds for kind in ("tim", "attention")]


def run_tim(cells: Sequence[TimCell], *, n_jobs: int = 1, cache_dir: Any = None
            ) -> list[dict[str, Any]]:
    """Run (or read from the cache) the TIM cells."""
    return run_cached(run_tim_cell, cells, n_jobs=n_jobs, cache_dir=cache_dir,
                      namespace="m3h", progress=False)


def tim_summary(cells: Sequence[TimCell], results: Sequence[dict[str, Any]]
                ) -> dict[str, Any]:
    """TIM and the proxy averaged over replicates, against the true dependency.

    Per ordered pair ``s != j``: the mean over replicates and its standard error. Spearman's
    rank correlation of each mean matrix with the truth (over the ordered pairs), and of each
    replicate's matrix (mean and s.e. over replicates); the mean wall-clock and CPU seconds
    (of the process that ran it) per replicate.
    """
    first = cells[0]
    truth = cohort(first.n, first.seed, first.shared).dependency.loc[
        list(first.tasks), list(first.tasks)]
    names = [t for t in truth.index]
    out: dict[str, Any] = {"truth": truth.to_dict(), "n_pairs": len(names) * (len(names) - 1)}
    for kind in ("tim", "attention"):
        mats = [pd.DataFrame(r["matrix"]).loc[names, names].to_numpy(dtype=float)
                for c, r in zip(cells, results, strict=True) if c.kind == kind]
        stack = np.stack(mats)
        for A in stack:
            np.fill_diagonal(A, np.nan)
        mean = pd.DataFrame(stack.mean(axis=0), index=names, columns=names)
        rhos = [rank_agreement_offdiagonal(pd.DataFrame(A, index=names, columns=names), truth)
                for A in stack]
        r = len(mats)
        se = stack.std(axis=0, ddof=1) / np.sqrt(r) if r > 1 else np.full_like(stack[0], np.nan)
        out[kind] = mean.to_dict()
        out[f"{kind}_rho"] = rank_agreement_offdiagonal(mean, truth)
        out[f"{kind}_rho_replicates"] = rhos
        out[f"{kind}_pair_se"] = float(np.nanmean(se)) if r > 1 else float("nan")
        out[f"{kind}_spread"] = float(np.nanstd(stack.mean(axis=0)))
        for key in ("seconds", "cpu_seconds"):
            out[f"{kind}_{key}"] = float(np.mean([res[key] for c, res in zip(
                cells, results, strict=True) if c.kind == kind]))
    out["replicates"] = len([c for c in cells if c.kind == "tim"])
    return out


# ---------------------------------------------------------------------------------------------
# The chapter's configuration, design and report
# ---------------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Config(ChapterConfig):
    """The notebook's parameters, checked (see the notebook's ``parameters`` cell)."""

    n: int = 300
    tasks: str = "all"
    learners: str = "all"
    shared_levels: str = "1.0,0.0"
    balances: str = "0.0,0.5,1.0,learned"
    ablation: bool = True
    tim_tasks: str = "heart_failure,atrial_fibrillation,pneumonia,copd_exacerbation"
    tim_epochs: int = 3
    tim_source_fraction: float = 0.1
    tim_replicates: int = 1
    label_fractions: str = "1.0,0.1"
    scarce_learners: str = "all"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.n = check_int(self.n, "n", 60)
        table = simulate_multimodal(60, 0).tasks
        self.task_names = select_tasks(table, self.tasks)
        self.learner_names = learner_names(self.learners, ["multitask"])
        self.shared = parse_list(self.shared_levels, float, "shared_levels")
        self.fractions = [check_number(f, "label_fractions", 0.0, 1.0, low_open=True)
                          for f in parse_list(self.label_fractions, float, "label_fractions")]
        if 1.0 not in self.fractions or min(self.fractions) == 1.0:
            raise ValueError(f"label_fractions must include 1.0 (every label kept: the main "
                             f"regime) and a share below 1 (the chapter's section on scarce "
                             f"labels), got {self.fractions}")
        self.fractions = list(dict.fromkeys(self.fractions))
        scarce = (self.learner_names if isinstance(self.scarce_learners, str)
                  and self.scarce_learners.strip() == "all" else
                  learner_names(self.scarce_learners, ["multitask"], "scarce_learners"))
        missing = sorted(set(scarce) - set(self.learner_names))
        if missing:
            raise ValueError(f"scarce_learners: {missing} are not among learners "
                             f"{self.learner_names}")
        # the baseline of every relative gain is fitted in every regime
        self.scarce_names = [n for n in self.learner_names
                             if n in scarce or n == "single_task"]
        self.balance_levels = [b if b == "learned" else float(b)
                               for b in parse_list(self.balances, name="balances")]
        self.tim_names = select_tasks(table, self.tim_tasks)
        self.tim_epochs = check_int(self.tim_epochs, "tim_epochs", 1)
        self.tim_source_fraction = check_number(self.tim_source_fraction,
                                                "tim_source_fraction", 0.0, 1.0, low_open=True)
        # TIM's replicates: the first ones share the main cells' seeds (same cohorts)
        self.tim_seeds = replicate_seeds(self.seed, check_int(self.tim_replicates,
                                                              "tim_replicates", 1))
        if len(self.tim_names) < 3:
            raise ValueError("tim_tasks: give at least 3 tasks")
        bad = [t for t in self.tim_names
               if table.set_index("name").loc[t, "problem_class"] == "clustering"]
        if bad:
            raise ValueError(f"tim_tasks: the clustering task has no loss to compare: {bad}")

    def budget_of(self, name: str) -> tuple[tuple[str, Any], ...]:
        return tuple(sorted(self.budget([name])[name].items()))


def main_cells(cfg: Config) -> list[Cell]:
    """Every learner on every replicate at every level of the shared-causes knob with every
    label kept, and the learners ``cfg.scarce_names`` at each smaller label fraction."""
    return [Cell(cfg.n, seed, shared, name, tuple(cfg.task_names), cfg.budget_of(name),
                 labels=f)
            for f in cfg.fractions for shared in cfg.shared for seed in cfg.seeds
            for name in (cfg.learner_names if f == 1.0 else cfg.scarce_names)]


def balance_cells(cfg: Config) -> list[Cell]:
    """``m3h`` at each self/cross balance (shared causes at the first knob level)."""
    return [Cell(cfg.n, seed, cfg.shared[0], "m3h", tuple(cfg.task_names), cfg.budget_of("m3h"),
                 balance=b) for b in cfg.balance_levels for seed in cfg.seeds]


def ablation_cells(cfg: Config) -> list[Cell]:
    """``m3h`` without each modality in turn (shared causes at the first knob level)."""
    if not cfg.ablation:
        return []
    return [Cell(cfg.n, seed, cfg.shared[0], "m3h", tuple(cfg.task_names), cfg.budget_of("m3h"),
                 drop=m) for m in MODALITIES for seed in cfg.seeds]


def skip_cells(cfg: Config) -> list[Cell]:
    """``m3h`` without the per-task linear skip (``skip=False``), at every knob level and
    replicate: what the skip brings, against the same single-task baseline."""
    if "m3h" not in cfg.learner_names or "single_task" not in cfg.learner_names:
        return []
    budget = tuple(sorted({**dict(cfg.budget_of("m3h")), "skip": False}.items()))
    return [Cell(cfg.n, seed, shared, "m3h", tuple(cfg.task_names), budget)
            for shared in cfg.shared for seed in cfg.seeds]


def skip_readings(main: pd.DataFrame, without: pd.DataFrame, shared: Sequence[float]
                  ) -> dict[str, Any]:
    """Gains over ``single_task`` of ``m3h`` without the skip (:func:`skip_cells`), glue-able
    as ``gain_<shared|zero>_m3h_without_skip...`` (see :func:`gain_readings`)."""
    if without.empty:
        return {}
    other = without.assign(learner="m3h_without_skip")
    both = pd.concat([main[main.learner == "single_task"], other], ignore_index=True)
    return gain_readings(both, ["m3h_without_skip"], shared)


def loss_cells(cfg: Config) -> list[Cell]:
    """``m3h`` and ``single_task`` with the clustering loss (``cluster_loss="dec"``), at every
    knob level and replicate with every label: what the loss changes against the main cells
    (which cluster by the rule, without the loss)."""
    if "m3h" not in cfg.learner_names or "single_task" not in cfg.learner_names:
        return []
    return [Cell(cfg.n, seed, shared, name, tuple(cfg.task_names), tuple(sorted(
        {**dict(cfg.budget_of(name)), "cluster_loss": "dec"}.items())))
            for shared in cfg.shared for seed in cfg.seeds for name in ("m3h", "single_task")]


def _with_phenotype(df: pd.DataFrame, column: str) -> pd.DataFrame:
    """``df`` with the clustering task's primary metric replaced by ``column``."""
    out = df.copy()
    clu = out.problem_class == "clustering"
    out.loc[clu, "primary"] = out.loc[clu, column]
    return out


def loss_readings(main: pd.DataFrame, with_loss: pd.DataFrame, shared: Sequence[float]
                  ) -> dict[str, Any]:
    """The clustering loss against the main cells (every label, no loss) at each knob level
    (``tag``, :func:`level_tag`); ``with_loss`` holds :func:`loss_cells`:

    - phenotype NMI (``nmi_<tag>_<name>_text``, mean ± s.e.): ``m3h_loss`` and
      ``single_task_loss`` (``argmax q``, the loss's own read-out), ``m3h_loss_rule`` and
      ``single_task_loss_rule`` (the rule on ``[h, s]`` of the networks trained with the
      loss, the second read-out);
    - ``largest_<tag>_<name>_text``: the share of held-out patients in the largest cluster of
      ``argmax q`` (%, mean ± s.e.; no label is read), for ``m3h_loss`` and
      ``single_task_loss``;
    - gains over single-task learning with the loss (:func:`gain_readings`,
      ``gain_<tag>_<name>...``): ``m3h_loss`` (both read by ``argmax q``) and
      ``m3h_loss_rule`` (both read by the rule on ``[h, s]``);
    - ``loss_<tag>_supervised_diff_text`` and ``..._verdict``: the paired difference of m3h's
      mean gain over the supervised tasks with and without the loss (percentage points; the
      single-task networks of the supervised tasks do not depend on the loss), i.e. what the
      clustering term does to the other tasks.
    """
    if with_loss.empty or main.empty or "nmi_block_rule" not in with_loss:
        return {}
    m3h, single = (with_loss[with_loss.learner == n] for n in ("m3h", "single_task"))
    if m3h.empty or single.empty or "single_task" not in set(main.learner):
        return {}
    m3h_loss, single_loss = m3h.assign(learner="m3h_loss"), single.assign(learner="single_task")
    tables = {
        "m3h_loss": pd.concat([single_loss, m3h_loss], ignore_index=True),
        "m3h_loss_rule": pd.concat([_with_phenotype(single_loss, "nmi_block_rule"),
                                    _with_phenotype(m3h, "nmi_block_rule").assign(
                                        learner="m3h_loss_rule")], ignore_index=True),
    }
    out: dict[str, Any] = {}
    for name, table in tables.items():
        out.update(gain_readings(table, [name], shared))
    nmi = {"m3h_loss": (m3h, "primary"), "single_task_loss": (single, "primary"),
           "m3h_loss_rule": (m3h, "nmi_block_rule"),
           "single_task_loss_rule": (single, "nmi_block_rule")}
    for level in shared:
        tag = level_tag(level, shared)
        if tag is None:
            continue
        for name, (df, column) in nmi.items():
            clu = df[(df.shared == level) & (df.problem_class == "clustering")]
            if clu.empty:
                continue
            out[f"nmi_{tag}_{name}_text"] = pm(*mean_se(_per_replicate(clu, column)), 3)
            if column == "primary" and "largest_share" in clu:
                out[f"largest_{tag}_{name}_text"] = pm(
                    *(100 * v for v in mean_se(_per_replicate(clu, "largest_share"))), 0)
        sup = {}
        for name, table in (("with", tables["m3h_loss"]), ("without", main)):
            part = table[(table.shared == level) & (table.problem_class != "clustering")]
            gains = relative_gains(part, "m3h_loss" if name == "with" else "m3h")
            sup[name] = gains.groupby("replicate")["gain"].mean()
        d, se = mean_se(100 * (sup["with"] - sup["without"]).dropna())
        out[f"loss_{tag}_supervised_diff_text"] = pm(d, se, 2)
        out[f"loss_{tag}_supervised_verdict"] = verdict(
            d, se, higher="raises", lower="lowers", within="does not change",
            above="raises (one replicate: not judged)",
            below="lowers (one replicate: not judged)")
    return out


def loss_table(main: pd.DataFrame, with_loss: pd.DataFrame) -> pd.DataFrame:
    """Phenotype NMI per knob level (rows) of m3h and single_task without the clustering loss
    (the main cells: M3H's rule on ``[h, s]``, single-task's on ``s``) and with it
    (:func:`loss_cells`), read by ``argmax q`` and by the rule on ``[h, s]``, and the share of
    held-out patients in the largest cluster of ``argmax q`` (mean ± s.e. over replicates)."""
    columns = {
        ("no loss (rule)", "m3h"): (main, "m3h", "primary", 1),
        ("no loss (rule)", "single_task"): (main, "single_task", "primary", 1),
        ("loss, argmax q", "m3h"): (with_loss, "m3h", "primary", 1),
        ("loss, argmax q", "single_task"): (with_loss, "single_task", "primary", 1),
        ("loss, rule on [h, s]", "m3h"): (with_loss, "m3h", "nmi_block_rule", 1),
        ("loss, rule on [h, s]", "single_task"): (with_loss, "single_task", "nmi_block_rule",
                                                  1),
        ("largest cluster, argmax q (%)", "m3h"): (with_loss, "m3h", "largest_share", 100),
        ("largest cluster, argmax q (%)", "single_task"): (with_loss, "single_task",
                                                           "largest_share", 100),
    }
    rows = {}
    for level in dict.fromkeys(main.shared):
        row = {}
        for col, (df, name, column, scale) in columns.items():
            clu = df[(df.shared == level) & (df.learner == name)
                     & (df.problem_class == "clustering")]
            row[col] = ("–" if clu.empty or column not in clu else
                        pm(*(scale * v for v in mean_se(_per_replicate(clu, column))),
                           0 if scale == 100 else 3))
        rows[f"{level:g}"] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.columns = pd.MultiIndex.from_tuples(out.columns)
    out.index.name = "shared causes"
    return out


def level_tag(level: float, shared: Sequence[float]) -> str | None:
    """The name of a knob level in glued values: ``"shared"`` for the main setting (the first
    level, when it is above zero), ``"zero"`` for the knob at zero, None for the others (an
    intermediate level is shown in the tables, not glued)."""
    if level == 0:
        return "zero"
    return "shared" if level == shared[0] else None


def _per_replicate(df: pd.DataFrame, column: str) -> pd.Series:
    return df.groupby("replicate")[column].mean()


def phenotype_readings(main: pd.DataFrame, learners: Sequence[str], shared: Sequence[float],
                       suffix: str = "") -> dict[str, Any]:
    """The clustering task at each knob level, as glue-able values (``tag`` is ``shared`` or
    ``zero``): ``nmi_<tag>_<learner>`` (mean over replicates) and ``..._text`` (± s.e.) for
    every learner; for ``m3h``, the NMI of the rule on one block of its network only
    (:func:`with_block_clusters`: ``nmi_<tag>_m3h_h_only``, ``nmi_<tag>_m3h_inputs_only``), the
    paired verdict of its NMI against single-task learning's (``phenotype_<tag>_h_verdict``:
    "raises", "lowers" or "does not change beyond two standard errors";
    ``..._h_diff_text`` the paired difference): both read the phenotype the same way and
    differ only in whether the supervised tasks shaped ``h`` too, so the verdict says what
    they add; ``phenotype_<tag>_origin``, the clause that says so, chosen by that verdict, and
    ``gain_<tag>_m3h_phenotype_text``, m3h's relative gain over single-task learning on the
    clustering task (%, ± s.e.). ``suffix`` is appended to the tag (:func:`regime_readings`:
    ``"_scarce"`` for the label-scarce regime)."""
    out: dict[str, Any] = {}
    clu = main[main.problem_class == "clustering"]
    if clu.empty:
        return out
    for level in shared:
        tag = level_tag(level, shared)
        if tag is None:
            continue
        tag += suffix
        sub = clu[clu.shared == level]
        for name in learners:
            part = sub[sub.learner == name]
            if part.empty:
                continue
            mean, se = mean_se(_per_replicate(part, "primary"))
            out[f"nmi_{tag}_{name}"] = mean
            out[f"nmi_{tag}_{name}_text"] = pm(mean, se, 3)
        m3h, single = sub[sub.learner == "m3h"], sub[sub.learner == "single_task"]
        if m3h.empty or "nmi_inputs_only" not in m3h or m3h["nmi_inputs_only"].isna().all():
            continue
        for block in ("h", "inputs"):
            mean, se = mean_se(_per_replicate(m3h, f"nmi_{block}_only"))
            out[f"nmi_{tag}_m3h_{block}_only"] = mean
            out[f"nmi_{tag}_m3h_{block}_only_text"] = pm(mean, se, 3)
        if single.empty:
            continue
        diff = (_per_replicate(m3h, "primary") - _per_replicate(single, "primary")).dropna()
        d, se = mean_se(diff)
        word = verdict(d, se, higher="raises", lower="lowers",
                       within="does not change beyond two standard errors",
                       above="raises (one replicate: not judged)",
                       below="lowers (one replicate: not judged)")
        out[f"phenotype_{tag}_h_verdict"] = word
        out[f"phenotype_{tag}_h_diff_text"] = pm(d, se, 3)
        out[f"phenotype_{tag}_origin"] = (
            "with one replicate, what the supervised tasks add is not judged"
            if not np.isfinite(se) else
            "what the supervised tasks taught the shared representation helps the clusters"
            if word == "raises" else
            "the clusters owe nothing measurable to what the supervised tasks taught the shared "
            "representation: single-task learning clusters " + (
                "better" if word == "lowers" else "as well"))
        g = gain_summary(relative_gains(sub, "m3h"))
        out[f"gain_{tag}_m3h_phenotype_text"] = pm(100 * g["mean"], 100 * g["se"], 1)
    return out


def run_all(cells: Sequence[Cell], *, n_jobs: int = 1, cache_dir: Any = None) -> pd.DataFrame:
    """Run (or read from the cache) every cell; the :func:`tidy` table of all of them."""
    results = run_cached(run_cell, cells, n_jobs=n_jobs, cache_dir=cache_dir,
                         namespace="m3h", progress=False)
    return tidy(cells, results)


def class_table(df: pd.DataFrame, learners: Sequence[str]) -> pd.DataFrame:
    """Mean over tasks of each class's metrics, then mean ± s.e. over replicates, per learner."""
    cols = {"binary": ["auc"], "multiclass": ["macro_f1", "auc"], "regression": ["r2", "rmse"],
            "clustering": ["ari", "nmi"]}
    rows = {}
    for name in learners:
        sub = df[df.learner == name]
        row = {}
        for cls, metrics in cols.items():
            part = sub[sub.problem_class == cls]
            if part.empty:
                continue
            for m in metrics:
                row[f"{cls} {m.upper().replace('MACRO_F1', 'macro-F1')}"] = pm(
                    *mean_se(part.groupby("replicate")[m].mean()), 3)
        rows[name] = row
    return pd.DataFrame(rows).T


def fit_seconds(df: pd.DataFrame) -> pd.DataFrame:
    """Mean fit time (seconds) of each learner over its cells (varies from run to run)."""
    per_cell = df.groupby(["learner", "cell"]).seconds.first()
    return per_cell.groupby("learner").mean().round(1).to_frame("fit (s)")


def gain_readings(df: pd.DataFrame, learners: Sequence[str], shared: Sequence[float],
                  suffix: str = "") -> dict[str, Any]:
    """Relative gains over ``single_task`` at each knob level, as glue-able values named
    ``gain_<tag><suffix>_<learner>...`` (:func:`level_tag`, :func:`gain_values`; ``_supervised``
    for the mean over the supervised tasks)."""
    out: dict[str, Any] = {}
    for level in shared:
        sub = df[df.shared == level]
        tag = level_tag(level, shared)
        if tag is None:
            continue
        tag += suffix
        for name in learners:
            if name == "single_task" or name not in set(sub.learner) or "single_task" not in set(
                    sub.learner):
                continue
            gains = relative_gains(sub, name)
            g = gain_summary(gains)
            key = f"{tag}_{name}"
            supervised = gains[gains.problem_class != "clustering"]
            if len(supervised):  # the mean without the clustering task (NMI gains are large)
                gs = gain_summary(supervised)
                out[f"gain_{key}_supervised_text"] = pm(100 * gs["mean"], 100 * gs["se"], 2)
                out[f"gain_{key}_supervised_verdict"] = versus_single_task(gs)
            out.update(gain_values(f"gain_{key}", g))
    return out


def versus_single_task(g: Mapping[str, float]) -> str:
    """The verdict on a gain summary (:func:`gain_summary`): beats, loses to or is within two
    paired standard errors of single-task learning (not judged with one replicate)."""
    return verdict(g["mean"], g["se"], higher="beats", lower="loses to",
                   within="is within two standard errors of",
                   above="is above (one replicate: not judged)",
                   below="is below (one replicate: not judged)", subject="single-task learning")


def gain_values(prefix: str, g: Mapping[str, float]) -> dict[str, Any]:
    """A gain summary as glue-able values named ``prefix``, ``prefix_se``, ``_text``, ``_min``,
    ``_max``, ``_positive`` (in %) and ``_verdict``."""
    return {
        prefix: 100 * g["mean"],
        f"{prefix}_se": 100 * g["se"],
        f"{prefix}_text": pm(100 * g["mean"], 100 * g["se"], 2),
        f"{prefix}_min": 100 * g["task_min"],
        f"{prefix}_max": 100 * g["task_max"],
        f"{prefix}_positive": 100 * g["share_positive"],
        f"{prefix}_verdict": versus_single_task(g),
    }


def label_tag(fraction: float, fractions: Sequence[float]) -> str | None:
    """The suffix of a label fraction in glued values: ``""`` when every label is kept (the
    main regime), ``"_scarce"`` for the smallest fraction below 1, None for the others (shown
    in the tables, not glued)."""
    if fraction == 1.0:
        return ""
    below = [f for f in fractions if f < 1.0]
    return "_scarce" if below and fraction == min(below) else None


def _target(df: pd.DataFrame, shared: Sequence[float]) -> str:
    """The issue's target on one label regime: m3h beats single-task learning by more than two
    paired standard errors at the main knob level and does not lose by more than two at the
    knob zero ("met", "not met", or why it is not judged)."""
    levels = {level_tag(level, shared): level for level in shared}
    if "shared" not in levels or "zero" not in levels:
        return "not judged (the knob's levels lack a level with shared causes or zero)"
    words = {}
    for tag in ("shared", "zero"):
        sub = df[df.shared == levels[tag]]
        if not {"m3h", "single_task"} <= set(sub.learner):
            return "not judged (m3h or single_task is not fitted)"
        g = gain_summary(relative_gains(sub, "m3h"))
        if not np.isfinite(g["se"]):
            return "not judged (one replicate)"
        words[tag] = versus_single_task(g)
    met = (words["shared"].startswith("beats") and not words["zero"].startswith("loses"))
    return "met" if met else "not met"


def regime_readings(main: pd.DataFrame, learners: Sequence[str], shared: Sequence[float],
                    fractions: Sequence[float]) -> dict[str, Any]:
    """Every glued reading of the main cells per label regime (:func:`label_tag`):
    :func:`gain_readings` and :func:`phenotype_readings` of the cells with that label fraction,
    their tags suffixed (``gain_shared_m3h_text`` with every label,
    ``gain_shared_scarce_m3h_text`` with scarce labels), and ``target<suffix>``, the issue's
    target on that regime (:func:`_target`); ``labels_scarce_pct``, the scarce fraction in %."""
    out: dict[str, Any] = {}
    for f in fractions:
        suffix = label_tag(f, fractions)
        if suffix is None:
            continue
        sub = main[main.labels == f]
        names = [n for n in learners if n in set(sub.learner)]
        out.update(gain_readings(sub, names, shared, suffix))
        out.update(phenotype_readings(sub, names, shared, suffix))
        out[f"target{suffix}"] = _target(sub, shared)
        if suffix:
            out[f"labels{suffix}_pct"] = 100 * f
    return out


def label_counts(cfg: Config) -> dict[str, Any]:
    """The labels a supervised task learns from in each regime, on the first replicate's cohort
    at the main knob level: ``labels_full`` and ``labels_scarce`` (the median over the tasks
    of the labelled training rows, all of them and after :func:`scarce_fit_labels` at the
    smallest fraction), and ``scarce_learners_text``, the learners fitted with fewer labels."""
    ds, tasks = _data(Cell(cfg.n, cfg.seeds[0], cfg.shared[0], "single_task",
                           tuple(cfg.task_names)))
    names = list(tasks.loc[tasks.problem_class != "clustering", "name"])
    fit = ds.take(np.asarray(ds.split) != "test")
    train = np.asarray(fit.split) == "train"

    def median(d: MultimodalDataset) -> int:
        return int(np.median(d.targets.loc[train, names].notna().sum(axis=0))) if names else 0

    out: dict[str, Any] = {"labels_full": median(fit)}
    scarce = [f for f in cfg.fractions if f < 1.0]
    if scarce:
        out["labels_scarce"] = median(scarce_fit_labels(fit, tasks, min(scarce), cfg.seeds[0]))
    names = cfg.scarce_names
    out["scarce_learners_text"] = (", ".join(names[:-1]) + " and " + names[-1]
                                   if len(names) > 1 else names[0])
    return out


def regime_tables(main: pd.DataFrame, learners: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Per (knob level, label fraction), rows: ``"gains"``, each learner's mean relative gain
    over ``single_task`` in % over all the tasks and over the supervised ones (columns
    (learner, scope); mean ± paired s.e. over replicates; – where the learner was not fitted
    in that regime), and
    ``"nmi"``, each learner's phenotype NMI (mean ± s.e.)."""
    gains: dict[tuple[float, float], dict[Any, str]] = {}
    nmi: dict[tuple[float, float], dict[Any, str]] = {}
    for (level, f), sub in main.groupby(["shared", "labels"], sort=False):
        key = (level, f)
        gains[key], nmi[key] = {}, {}
        for name in learners:
            part = sub[sub.learner == name]
            clu = part[part.problem_class == "clustering"]
            if len(clu):
                nmi[key][name] = pm(*mean_se(_per_replicate(clu, "primary")), 3)
            if name == "single_task":
                continue
            for label, rows in (("all tasks", sub),
                                ("supervised", sub[sub.problem_class != "clustering"])):
                cell = "–"
                if len(part) and "single_task" in set(sub.learner):
                    g = gain_summary(relative_gains(rows, name))
                    cell = pm(100 * g["mean"], 100 * g["se"], 2)
                gains[key][(name, label)] = cell

    def frame(rows: dict[tuple[float, float], dict[Any, str]]) -> pd.DataFrame:
        cols = list(dict.fromkeys(c for r in rows.values() for c in r))
        df = pd.DataFrame([[r.get(c, "–") for c in cols] for r in rows.values()],
                          columns=pd.MultiIndex.from_tuples(cols) if cols and isinstance(
                              cols[0], tuple) else cols)
        df.index = pd.MultiIndex.from_tuples(
            [(f"{level:g}", f"{100 * f:g} %") for level, f in rows],
            names=["shared causes", "labels kept"])
        return df

    return {"gains": frame(gains), "nmi": frame(nmi)}


def gain_figure(df: pd.DataFrame, shared: float) -> Any:
    """Per-task relative gain of ``m3h`` over ``single_task`` (mean over replicates), sorted."""
    import matplotlib.pyplot as plt

    g = relative_gains(df[df.shared == shared], "m3h").groupby(["task", "problem_class"])[
        "gain"].mean().reset_index().sort_values("gain")
    fig, ax = plt.subplots(figsize=(7, max(3.0, 0.16 * len(g))))
    colors = learner_palette(list(PRIMARY))
    ax.barh(g.task, 100 * g.gain, color=[colors[c] for c in g.problem_class])
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("relative gain of m3h over single_task (%)")
    ax.tick_params(axis="y", labelsize=6)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[c]) for c in PRIMARY]
    ax.legend(handles, list(PRIMARY), fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def variant_table(df: pd.DataFrame, column: str) -> pd.DataFrame:
    """Mean primary metric per problem class for each level of ``column`` (``balance`` or
    ``drop``), mean ± s.e. over replicates."""
    rows = {}
    for level, sub in df.groupby(column, sort=False):
        row = {}
        for cls in PRIMARY:
            part = sub[sub.problem_class == cls]
            if part.empty:
                continue
            metric = PRIMARY[cls][0].upper().replace("MACRO_F1", "macro-F1")
            row[f"{cls} {metric}"] = pm(*mean_se(part.groupby("replicate")["primary"].mean()), 3)
        rows[str(level) if level != "" else "none"] = row
    return pd.DataFrame(rows).T


def tim_figure(result: dict[str, Any]) -> Any:
    """Heatmaps: TIM, the attention proxy and the true dependency (same task order)."""
    import matplotlib.pyplot as plt

    truth = pd.DataFrame(result["truth"])
    names = list(truth.index)
    panels = [("TIM (relative loss change)", pd.DataFrame(result["tim"]).loc[names, names]),
              ("attention proxy", pd.DataFrame(result["attention"]).loc[names, names]),
              ("true shared-cause strength", truth)]
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2))
    for ax, (title, M) in zip(axes, panels, strict=True):
        A = M.to_numpy(dtype=float).copy()
        np.fill_diagonal(A, np.nan)
        im = ax.imshow(A, cmap="viridis")
        ax.set_title(title, fontsize=9)
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=6)
        ax.set_yticks(range(len(names)), names, fontsize=6)
        fig.colorbar(im, ax=ax, fraction=0.046)
    axes[0].set_ylabel("source task s")
    for ax in axes:
        ax.set_xlabel("auxiliary task j", fontsize=8)
    fig.tight_layout()
    return fig


def modality_columns() -> list[str]:
    """The modalities, in the book's order."""
    return list(MODALITIES)


# ---------------------------------------------------------------------------------------------
# Real records run offline: the Eunomia cohort (OMOP CDM, Synthea)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EunomiaCell:
    """One fit on the Eunomia cohort: the split seed, the learner and its budget, and the
    keywords of :func:`~ehrcausal.data.eunomia.load_eunomia` (without ``seed``)."""

    seed: int
    learner: str
    budget: tuple[tuple[str, Any], ...] = ()
    cohort: tuple[tuple[str, Any], ...] = ()
    balance: None = None
    drop: None = None
    shared: float = 1.0  # real records: whatever the tasks share (no knob)

    def key(self) -> dict[str, Any]:
        # the simulator cells' version: a change of the networks invalidates both
        version = NETWORK_CACHE_VERSION
        return {**asdict(self), "budget": dict(self.budget), "cohort": dict(self.cohort),
                "data": "eunomia", "version": version}


@functools.lru_cache(maxsize=4)
def eunomia_cohort(seed: int, cohort: tuple[tuple[str, Any], ...]) -> MultimodalDataset:
    """The Eunomia cohort split with ``seed`` (kept for the next cells of the same split)."""
    from ..data.eunomia import load_eunomia

    return load_eunomia(seed=seed, **dict(cohort))


def fit_and_score(learner: str, seed: int, budget: dict[str, Any], train: MultimodalDataset,
                  test: MultimodalDataset, tasks: pd.DataFrame) -> dict[str, Any]:
    """Fit ``learner`` on ``train`` (its ``"val"`` rows for early stopping) and score ``test``:
    ``{"metrics": records of :func:`task_metrics`, "seconds": fit time}``."""
    est = make(learner, random_state=seed % (2**31), **budget)
    extra = ({"val_mask": np.asarray(train.split) == "val"} if "val_mask" in _inputs(learner)
             else {})
    start = time.perf_counter()
    est.fit(train.modalities, train.targets, tasks=tasks, **extra)
    seconds = time.perf_counter() - start
    metrics = task_metrics(est.predict_scores(test.modalities), test.targets, tasks)
    return {"metrics": metrics.to_dict("records"), "seconds": seconds}


def run_eunomia_cell(cell: EunomiaCell) -> dict[str, Any]:
    """One learner on one split of the Eunomia cohort (train+val rows fitted, test scored)."""
    ds = eunomia_cohort(cell.seed, cell.cohort)
    fit_rows = np.asarray(ds.split) != "test"
    return fit_and_score(cell.learner, cell.seed, dict(cell.budget), ds.take(fit_rows),
                         ds.subset("test"), ds.tasks)


def eunomia_cells(cfg: Config, *, replicates: int, **cohort: Any) -> list[EunomiaCell]:
    """Every learner of ``cfg`` on ``replicates`` splits of the Eunomia cohort (their seeds
    derive from the chapter's master seed); ``cohort`` are keywords of ``load_eunomia``."""
    from .base import replicate_seeds

    items = tuple(sorted(cohort.items()))
    return [EunomiaCell(seed, name, cfg.budget_of(name), items)
            for seed in replicate_seeds(cfg.seed, replicates) for name in cfg.learner_names]


def run_eunomia(cells: Sequence[EunomiaCell], *, n_jobs: int = 1, cache_dir: Any = None
                ) -> pd.DataFrame:
    """Run (or read from the cache) the Eunomia cells; their :func:`tidy` table."""
    results = run_cached(run_eunomia_cell, cells, n_jobs=n_jobs, cache_dir=cache_dir,
                         namespace="m3h", progress=False)
    return tidy(cells, results)


def task_table(df: pd.DataFrame, learners: Sequence[str]) -> pd.DataFrame:
    """Per task (rows) and learner (columns): the primary metric, mean ± s.e. over
    replicates."""
    rows: dict[str, dict[str, str]] = {}
    for (task, cls), sub in df.groupby(["task", "problem_class"], sort=False):
        metric = PRIMARY[cls][0].upper().replace("MACRO_F1", "macro-F1")
        row = {}
        for name in learners:
            v = sub[sub.learner == name].groupby("replicate")["primary"].mean()
            if len(v):
                row[name] = pm(*mean_se(v), 3)
        rows[f"{task} ({metric})"] = row
    return pd.DataFrame(rows).T


def eunomia_readings(df: pd.DataFrame, learners: Sequence[str]) -> dict[str, Any]:
    """The mean relative gain over ``single_task`` of every other learner, as glue-able values
    prefixed ``eu_`` (mean ± paired s.e. over replicates, the range over tasks, a verdict);
    the best and worst learner by mean AUC over the binary tasks, and the number of binary
    tasks on which no learner's mean AUC reaches 0.6."""
    out: dict[str, Any] = {}
    for name in learners:
        if name == "single_task" or "single_task" not in set(df.learner):
            continue
        out.update(gain_values(f"eu_gain_{name}", gain_summary(relative_gains(df, name))))
    binary = df[df.problem_class == "binary"]
    if len(binary):
        per_task = binary.groupby(["learner", "task"])["auc"].mean().unstack("task")
        mean_auc = per_task.mean(axis=1).reindex([n for n in learners if n in per_task.index])
        out["eu_auc_best"] = float(mean_auc.max())
        out["eu_auc_best_learner"] = str(mean_auc.idxmax())
        out["eu_auc_worst"] = float(mean_auc.min())
        out["eu_auc_worst_learner"] = str(mean_auc.idxmin())
        out["eu_near_chance"] = int((per_task.max(axis=0) < 0.6).sum())
    return out


def eunomia_figure(df: pd.DataFrame, learners: Sequence[str]) -> Any:
    """Per task, each learner's primary metric, grouped bars: the mean over replicates with
    its standard error as an error bar (none with one replicate)."""
    import matplotlib.pyplot as plt

    per_rep = df.groupby(["task", "learner", "replicate"], sort=False)["primary"].mean()
    mean = per_rep.groupby(["task", "learner"], sort=False).mean().unstack("learner")
    se = (per_rep.groupby(["task", "learner"], sort=False).std(ddof=1)
          / np.sqrt(per_rep.groupby(["task", "learner"], sort=False).size())).unstack("learner")
    mean = mean[[n for n in learners if n in mean.columns]]
    classes = df.drop_duplicates("task").set_index("task")["problem_class"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6),
                             gridspec_kw={"width_ratios": [3, 1]})
    colors = learner_palette(list(mean.columns))
    for ax, binary in zip(axes, (True, False), strict=True):
        rows = [t for t in mean.index if (classes[t] == "binary") == binary]
        if not rows:
            ax.set_visible(False)
            continue
        width = 0.8 / len(mean.columns)
        for k, name in enumerate(mean.columns):
            err = se.loc[rows, name].to_numpy(dtype=float)  # NaN with one replicate: no bar
            ax.bar(np.arange(len(rows)) + k * width, mean.loc[rows, name], width,
                   yerr=np.where(np.isfinite(err), err, 0.0), capsize=2,
                   color=colors[name], label=name)
        ax.set_xticks(np.arange(len(rows)) + 0.4 - width / 2, rows, rotation=30, ha="right",
                      fontsize=7)
        ax.set_ylabel("held-out AUC" if binary else "held-out RMSE (encounters)")
        if binary:
            ax.axhline(0.5, color="black", lw=0.8, ls=":")
            ax.set_ylim(0.3, 1.0)
    axes[0].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig
