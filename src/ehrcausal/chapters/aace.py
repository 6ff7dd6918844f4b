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

The second half of the module turns the tidy results into what the chapter shows: its tables,
figures and the readings its prose glues (:func:`main_table`, :func:`curves_figure`,
:func:`budget_readings`, :func:`selection_readings`, :func:`confounding_readings`,
:func:`representation_readings`, :func:`verdicts`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from ..cache import default_cache_dir
from ..data.dataset import CausalDataset
from ..metrics import autoc, pehe, policy_value, policy_value_curve
from ..runtime import blas_threads
from ..validation import check_int, check_number
from .base import ChapterConfig, fit_inputs, grid, learner_names, parse_list, run_cached
from .report import Md, metric_table, paired_difference, pm, summarise, verdict

#: the chapter's simulators, by name
SIMULATORS: tuple[str, ...] = ("respiratory", "cardiac")
#: text representations: sentence embeddings, or TF-IDF + truncated SVD
REPRESENTATIONS: tuple[str, ...] = ("minilm", "tfidf")
#: budgets of the policy-benefit curve kept per cell (fractions of the test patients treated)
CURVE_BUDGETS = np.linspace(0.0, 1.0, 21)
#: the learner families the chapter compares: annotation-assisted, and CATE learners on phi
FAMILIES: tuple[str, ...] = ("aace", "cate")
#: the metrics of every cell (``gain_share`` is added to the results by :func:`run_chapter`)
METRICS = ["pehe", "policy", "autoc", "gain_share"]
#: the respiratory simulator's instrument (it moves treatment only) and the label of AACE
#: fitted without it
INSTRUMENT = "policy"
INSTRUMENT_LABEL = "aace_without_instrument"
#: how the chapter's tables and figures name the learners and the reference rankings
LABELS = {
    "aace": "AACE (data-selected target)",
    "aace_no_crossfit": "AACE, no cross-fitting",
    "aace_weighted": "AACE + annotation weights",
    INSTRUMENT_LABEL: "AACE without the instrument",
    "risk_based": "risk-based",
    "t_learner": "T-learner on φ",
    "dr_learner": "DR-learner on φ",
    "tarnet": "TARNet on φ",
    "dragonnet": "DragonNet on φ",
    "oracle": "oracle E[τ | φ]",
    "true effect": "true effect (ceiling)",
    "random": "random order",
}
#: the reference rankings added to every setting (:func:`truth_rows`) and their line styles
REFERENCE_STYLES = {"true effect": ":", "random": "--"}
#: the annotation-selection experiment: plain AACE against AACE with annotation weights (a
#: paired comparison of two variants, not a family: families are the registry's)
SELECTION_PAIR = ("aace", "aace_weighted")
#: the two panels of the chapter's sweep figures: metric and title
PANELS = [("pehe", "√PEHE (lower is better)"), ("policy", "policy benefit (higher is better)")]


def label(name: str) -> str:
    """The chapter's name for a learner or reference ranking."""
    return LABELS.get(name, name)


@dataclass(kw_only=True)
class Config(ChapterConfig):
    """The chapter's parameters, parsed (lists from comma strings) and checked."""

    n: int
    learners: Any
    annotated: float
    annotated_fractions: Any
    selection_fraction: float
    confounding_levels: Any
    stress_learners: Any
    ceiling_fractions: Any = "1.0"
    ceiling_confounding: Any = "1"
    instrument: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        self.n = check_int(self.n, "n", low=1)
        self.learners = learner_names(self.learners, FAMILIES, "learners")
        self.stress_learners = learner_names(self.stress_learners, FAMILIES, "stress_learners")
        self.annotated_fractions = parse_list(self.annotated_fractions, float,
                                              name="annotated_fractions")
        self.confounding_levels = parse_list(self.confounding_levels, float,
                                             name="confounding_levels")
        self.ceiling_fractions = parse_list(self.ceiling_fractions, float,
                                            name="ceiling_fractions")
        self.ceiling_confounding = parse_list(self.ceiling_confounding, float,
                                              name="ceiling_confounding")
        for level in [*self.confounding_levels, *self.ceiling_confounding]:
            check_number(level, "confounding_levels / ceiling_confounding", 0, None)
        if not isinstance(self.instrument, bool | np.bool_):
            raise ValueError(f"instrument must be True or False, got {self.instrument!r}")
        for name, frac in [("annotated", self.annotated),
                           ("selection_fraction", self.selection_fraction),
                           *[("annotated_fractions", f) for f in self.annotated_fractions],
                           *[("ceiling_fractions", f) for f in self.ceiling_fractions]]:
            check_number(frac, name, 0, 1, low_open=True)

    @property
    def params(self) -> dict[str, dict[str, Any]]:
        """Budget parameters of every learner the chapter fits, by name."""
        return self.budget({name: name for name in self.learners + self.stress_learners})


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
    #: tabular columns withheld from phi and from the annotation space (the instrument
    #: experiment); the simulated patients are unchanged
    drop: tuple[str, ...] = ()

    def key(self) -> dict[str, Any]:
        """The cell as a JSON-serialisable cache key."""
        return asdict(self)


def run_cell(cell: Cell, *, device: str = "auto", cache_dir: Any = None) -> dict[str, Any]:
    """Simulate, represent, fit and score one cell; returns one tidy row (with the curve).

    The learner gets the extra inputs its registry entry declares: the validation rows
    (``val_mask``), the annotations and tabular confounders, or the true effect (the oracle).
    """
    from ..learners import make

    ds = simulate(cell.simulator, cell.n, cell.seed, **cell.knobs)
    if cell.drop:
        missing = sorted(set(cell.drop) - set(ds.X.columns))
        if missing:
            raise ValueError(f"drop names columns that are not in X: {missing}; X has "
                             f"{list(ds.X.columns)}")
        ds = replace(ds, X=ds.X.drop(columns=list(cell.drop)))
    phi = represent(
        ds, cell.representation, device=device, cache_dir=cache_dir, random_state=cell.seed
    )
    fit_rows = np.isin(ds.split, ("train", "val"))
    test_rows = ds.split == "test"
    train, test = ds.take(fit_rows), ds.take(test_rows)
    est = make(cell.base, random_state=cell.random_state, **cell.params)
    extra = fit_inputs(cell.base, val_mask=train.split == "val", annotations=train.annotations,
                       confounders=train.X, tau=train.tau)
    start = time.perf_counter()
    est.fit(train.Y, train.T, X=phi[fit_rows], **extra)
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
    if cell.drop:
        row["dropped"] = ",".join(cell.drop)
    if len(getattr(est, "target_models_", {})) > 1:  # a data-selected AACE: every target
        tau_fit = train.tau[est.annotated_]
        row["chosen_target"] = est.target_
        row["targets"] = {
            name: {**policy_scores(test, (t := est.effect_of_target(phi[test_rows], name)), -t),
                   "target_noise": float(np.sqrt(np.mean((est.targets_[name] - tau_fit) ** 2)))}
            for name in est.target_models_}
    return row


def truth_rows(cells: Iterable[Cell]) -> list[dict[str, Any]]:
    """Reference rows per distinct setting: the true-effect ranking (ceiling) and random order.

    ``"true effect"`` treats patients by their true benefit (the best any policy can do);
    ``"random"`` is the *expected* value of a uniformly random order, computed exactly: a
    constant score, whose ties :func:`~ehrcausal.metrics.policy_value_curve` breaks at random in
    expectation, so ``G(k) = (k/n) mean(b)`` at every budget, the benefit averaged over budgets
    is ``(n+1)/(2n) mean(b)`` and the AUTOC is 0 (no single random permutation is drawn).
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
        rows.append({**common, "learner": "random",
                     **policy_scores(test, None, np.zeros(len(test)))})
    return rows


def target_rows(results: pd.DataFrame) -> pd.DataFrame:
    """One row per target of every data-selected AACE fit (the ``targets`` column of
    :func:`run_cell`), labelled with the registered single-target variant
    (:func:`ehrcausal.learners.aace.target_variants`): the variant fitted alone on that cell
    would give the same effects (same nuisances, same seeds), so the ceiling section costs no
    extra fit. A row whose label was also fitted as its own cell is left out. The learner
    label keeps a suffix when the fit was not the plain ``aace`` (e.g. without the instrument).
    """
    from ..learners.aace import target_variants

    if "targets" not in results.columns:
        return pd.DataFrame()
    variants = target_variants()
    have = {tuple(k) for k in results[["experiment", "simulator", "replicate",
                                        "learner"]].itertuples(index=False)}
    rows = []
    for _, row in results[results.targets.notna()].iterrows():
        base = row.drop(["targets", "chosen_target", "pehe", "policy", "autoc", "curve",
                         "seconds"], errors="ignore").to_dict()
        suffix = "" if row.learner == "aace" else f"@{row.learner}"
        for target, scores in row.targets.items():
            name = variants.get(target, f"aace_{target}") + suffix
            if (row.experiment, row.simulator, row.replicate, name) in have:
                continue
            rows.append({**base, "learner": name, "seconds": 0.0, **scores})
    return pd.DataFrame(rows)


def gain_share(results: pd.DataFrame) -> pd.Series:
    """Each row's share of the attainable gain over a random order, in percent.

    For a policy with mean benefit ``G`` (``policy``), ``100 (G - G_random) / (G_true -
    G_random)`` with ``G_random`` and ``G_true`` the ``"random"`` (exact expectation) and
    ``"true effect"`` rows of the same setting (experiment, simulator, replicate,
    representation and knobs): 0 is no better than chance, 100 the true-effect ranking. A
    plain ratio ``G / G_true`` would credit a random order with most of the ceiling already.
    """
    keys = ["experiment", "simulator", "replicate", "representation",
            *sorted(c for c in results.columns if c.startswith("knob_"))]
    setting = pd.Series([repr(tuple(row)) for row in results[keys].itertuples(index=False)],
                        index=results.index)
    refs = {name: results.loc[results.learner == name].assign(_s=setting)
            .set_index("_s")["policy"] for name in ("random", "true effect")}
    g_random = setting.map(refs["random"]).astype(float)
    g_true = setting.map(refs["true effect"]).astype(float)
    return 100 * (results["policy"] - g_random) / (g_true - g_random)


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
            replicate=g["replicate"][0],
            seed=int(g["replicate"][1]),
            n=n,
            learner=g["learner"][0],
            base=g["learner"][1],
            representation=g["representation"],
            knobs=dict(g["knobs"]),
            params=dict(params.get(g["learner"][0], {})),
            random_state=int(g["replicate"][1]),
        )
        for g in grid(knobs=settings, representation=representations,
                      replicate=list(enumerate(seeds)), learner=list(learners.items()))
    ]


def chapter_cells(cfg: Config) -> list[Cell]:
    """Every cell of the chapter: the main comparison on both simulators, then the annotation
    budget, annotation selection, confounding and representation experiments (respiratory)."""
    seeds, params, n = cfg.seeds, cfg.params, cfg.n
    stress = {name: name for name in cfg.stress_learners}
    resp = partial(design, simulator="respiratory", n=n, seeds=seeds, params=params)
    cells = []
    for simulator in SIMULATORS:
        cells += design("main", simulator=simulator, n=n, seeds=seeds, params=params,
                        learners={name: name for name in cfg.learners},
                        settings=[{"annotated": cfg.annotated}])
    cells += resp("budget", learners={"aace": "aace"},
                  settings=[{"annotated": f} for f in cfg.annotated_fractions])
    cells += resp("selection", learners={name: name for name in SELECTION_PAIR},
                  settings=[{"annotated": cfg.selection_fraction, "annotation_selection": s}
                            for s in ("uniform", "covariates")])
    cells += resp("confounding", learners=stress,
                  settings=[{"annotated": cfg.annotated, "confounding": g}
                            for g in cfg.confounding_levels])
    cells += resp("representation", learners=stress,
                  settings=[{"annotated": cfg.annotated, "style": s} for s in ("normal", "compact")],
                  representations=REPRESENTATIONS)
    # the ceiling section: the cardiac records under the same two sweeps (the respiratory ones
    # reuse the budget and confounding experiments); every data-selected AACE fit also scores
    # each of its targets (:func:`run_cell`)
    card = partial(design, simulator="cardiac", n=n, seeds=seeds, params=params,
                   learners={"aace": "aace"})
    cells += card("budget", settings=[{"annotated": f} for f in cfg.ceiling_fractions])
    cells += card("confounding", settings=[{"annotated": cfg.annotated, "confounding": g}
                                           for g in cfg.ceiling_confounding])
    if cfg.instrument:  # AACE without the instrument (policy) in phi and the annotation space
        # (paired with the main experiment's AACE on the same replicates: same patients)
        cells += [replace(c, experiment="main", learner=INSTRUMENT_LABEL, drop=(INSTRUMENT,))
                  for c in resp("main", learners={"aace": "aace"},
                                settings=[{"annotated": cfg.annotated}])]
    return cells


def run_chapter(
    cells: Sequence[Cell],
    *,
    n_jobs: int = 1,
    device: str = "auto",
    cache_dir: Any = None,
    use_results_cache: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """:func:`run_cells`, followed by the reference rows of :func:`truth_rows`, with every
    row's :func:`gain_share` (column ``gain_share``)."""
    results = run_cells(cells, n_jobs=n_jobs, device=device, cache_dir=cache_dir,
                        use_results_cache=use_results_cache, progress=progress)
    out = pd.concat([results, target_rows(results), pd.DataFrame(truth_rows(cells))],
                    ignore_index=True)
    out["gain_share"] = gain_share(out)
    return out


# ----------------------------------------------------------------------------------------------
# What the chapter shows
# ----------------------------------------------------------------------------------------------


def summary_of(results: pd.DataFrame, experiment: str, by: Sequence[str],
               simulator: str | None = None) -> pd.DataFrame:
    """Mean and s.e. of the chapter's metrics in one experiment (of one ``simulator`` when
    given), grouped ``by``."""
    sub = results[results.experiment == experiment]
    if simulator is not None:
        sub = sub[sub.simulator == simulator]
    return summarise(sub, [m for m in METRICS if m in sub.columns], by=by)


def examples(cfg: Config) -> dict[str, CausalDataset]:
    """Replicate 1 of each kind of notes: respiratory, compact respiratory, and cardiac."""
    seed = cfg.seeds[0]
    return {
        "respiratory, normal": simulate("respiratory", cfg.n, seed, annotated=cfg.annotated),
        "respiratory, compact": simulate("respiratory", cfg.n, seed, style="compact"),
        "cardiac, normal": simulate("cardiac", cfg.n, seed, annotated=cfg.annotated),
    }


def data_readings(examples: Mapping[str, CausalDataset]) -> dict[str, Any]:
    """What the data section glues: each simulator's treated share, effect, risk-benefit
    correlation, columns and share of true propensities outside [0.05, 0.95]; the treated share
    with and without the instrument (``policy``); and the first note of each kind of notes."""
    out: dict[str, Any] = {}
    for key, name in [("resp", "respiratory, normal"), ("card", "cardiac, normal")]:
        ds = examples[name]
        benefit = -ds.tau
        out[f"{key}_treated"] = float(100 * ds.T.mean())
        out[f"{key}_ate"] = float(ds.tau.mean())
        out[f"{key}_share_benefit"] = 100 * float(np.mean(benefit > 0))
        out[f"{key}_corr"] = float(np.corrcoef(ds.mu0, benefit)[0, 1])
        out[f"{key}_tabular"] = ", ".join(ds.X.columns)
        out[f"{key}_facts"] = ", ".join(ds.annotations.columns)
        e = ds.modalities["propensity"]
        out[f"{key}_outside_clip"] = 100 * float(np.mean((e < 0.05) | (e > 0.95)))
    resp = examples["respiratory, normal"]
    policy = resp.X["policy"].to_numpy() == 1  # the instrument: it moves treatment only
    out["resp_treated_policy"] = float(100 * resp.T[policy].mean())
    out["resp_treated_no_policy"] = float(100 * resp.T[~policy].mean())
    for key, name in [("normal", "respiratory, normal"), ("compact", "respiratory, compact"),
                      ("cardiac", "cardiac, normal")]:
        out[f"note_{key}"] = Md("```text\n" + examples[name].text[0] + "\n```")
    return out


def recoverability(examples: Mapping[str, CausalDataset], seed: int) -> dict[str, Any]:
    """How well each annotated fact can be read off the notes (the table and its readings)."""
    from ..text.recoverability import fact_recoverability

    recover = []
    for name, ds in examples.items():
        facts = ds.modalities["records"][list(ds.annotations.columns)]  # every record's truth
        with blas_threads(1):  # many small logistic fits: about 3x less CPU on one thread
            table = fact_recoverability(ds.text, facts, random_state=seed)
        table.insert(0, "notes", name)
        recover.append(table)
    recover = pd.concat(recover, ignore_index=True)
    wide = recover.pivot(index="fact", columns="notes", values="auc")
    wide = wide[[c for c in examples if c in wide.columns]]
    mean_auc = recover.groupby("notes")["auc"].mean()
    normal, compact = mean_auc["respiratory, normal"], mean_auc["respiratory, compact"]
    return {
        "recover_table": wide.round(3).astype(object).where(wide.notna(), "–"),
        "auc_normal": float(normal),
        "auc_compact": float(compact),
        "auc_cardiac": float(mean_auc["cardiac, normal"]),
        "auc_min": float(recover["auc"].min()),
        "auc_max": float(recover["auc"].max()),
        "compact_harder": "lower than" if compact < normal else "not lower than",
    }


def order(learners: Sequence[str]) -> list[str]:
    """The rows of the main comparison: the learners, then the two reference rankings."""
    return [*learners, *REFERENCE_STYLES]


def palette(learners: Sequence[str]) -> dict[str, Any]:
    """One colour per learner label; black for the true-effect ranking, grey for random."""
    from ..plots import learner_palette

    colors = learner_palette([label(k) for k in order(learners)])
    colors[label("true effect")], colors[label("random")] = (0, 0, 0), (0.55, 0.55, 0.55)
    return colors


def main_table(results: pd.DataFrame, learners: Sequence[str]) -> dict[str, Any]:
    """The main comparison on both simulators (``main_table``) and each mean, by glue name
    (``resp_<learner>_<metric>``, ``card_<learner>_<metric>``)."""
    main = summary_of(results, "main", ["simulator", "learner"])
    rows = [name for name in order(learners) if name in set(main.learner)]
    columns = {"pehe": "√PEHE", "policy": "policy benefit", "autoc": "AUTOC"}
    blocks = []
    for simulator in SIMULATORS:
        s = main[main.simulator == simulator].set_index("learner").reindex(rows)
        block = metric_table(s, columns, index=[label(k) for k in rows])
        if "gain_share_mean" in s.columns:
            block["share of the gain (%)"] = metric_table(
                s, {"gain_share": "g"}, index=block.index, digits=0)["g"]
        block.columns = pd.MultiIndex.from_tuples([(simulator, c) for c in block.columns])
        blocks.append(block)
    table = pd.concat(blocks, axis=1)
    table.index.name = "learner"
    out: dict[str, Any] = {"main_table": table}
    means = main.set_index(["simulator", "learner"])
    for simulator, key in [("respiratory", "resp"), ("cardiac", "card")]:
        for name in rows:
            for metric in [m for m in METRICS if f"{m}_mean" in means.columns]:
                value = means.loc[(simulator, name), f"{metric}_mean"]
                out[f"{key}_{name.replace(' ', '_')}_{metric}"] = float(value)
    return out


def curves_figure(results: pd.DataFrame, learners: Sequence[str]) -> Any:
    """Policy benefit by treatment budget beyond a random order, one panel per simulator."""
    import matplotlib.pyplot as plt

    from ..plots import legend_right

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=False)
    sub = results[results.experiment == "main"]
    colors = palette(learners)
    names = [name for name in order(learners) if name in set(sub.learner)]
    for ax, simulator in zip(axes, SIMULATORS, strict=True):
        def mean_curve(name: str, simulator: str = simulator) -> np.ndarray:
            rows = sub[(sub.simulator == simulator) & (sub.learner == name)]
            return np.mean(np.stack(rows.curve.to_numpy()), axis=0)

        baseline = mean_curve("random")
        for name in names:
            ax.plot(100 * CURVE_BUDGETS, mean_curve(name) - baseline,
                    REFERENCE_STYLES.get(name, "-"), color=colors[label(name)],
                    label=label(name), lw=2.2 if name.startswith("aace") else 1.4)
        ax.set_title(simulator)
        ax.set_xlabel("patients treated (% of test patients)")
        ax.set_ylabel("benefit beyond a random order")
    legend_right(axes[1])
    fig.suptitle("Benefit captured by each ranking as the treatment budget grows", y=1.02)
    fig.tight_layout()
    return fig


def budget_readings(results: pd.DataFrame, cfg: Config) -> tuple[Any, dict[str, Any]]:
    """AACE as the annotated share grows: the figure and the numbers the prose glues."""
    import matplotlib.pyplot as plt

    from ..plots import legend_right

    budget = summary_of(results, "budget", ["knob_annotated", "learner"], "respiratory")
    budget = budget.sort_values("knob_annotated")
    budget = budget[budget.learner == "aace"]
    refs = summary_of(results, "main", ["simulator", "learner"])
    refs = refs[refs.simulator == "respiratory"].set_index("learner")
    colors = palette(cfg.learners)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, (metric, title) in zip(axes, PANELS, strict=True):
        x = 100 * budget.knob_annotated.to_numpy()
        ax.errorbar(x, budget[f"{metric}_mean"], yerr=budget[f"{metric}_se"].fillna(0),
                    marker="o", color=colors[label("aace")], label=label("aace"), capsize=3)
        for name, ls in [("oracle", ":"), ("risk_based", "--"), ("dr_learner", "-."),
                         ("tarnet", "-."), ("t_learner", "-."), ("true effect", ":")]:
            if name in refs.index and np.isfinite(refs.loc[name, f"{metric}_mean"]):
                ax.axhline(refs.loc[name, f"{metric}_mean"], ls=ls, lw=1.2,
                           color=colors.get(label(name), "grey"), label=label(name))
        ax.set_xscale("log")
        ax.set_xticks(x, [f"{v:g}" for v in x])
        ax.set_xlabel("annotated records (% of all records)")
        ax.set_title(title)
    legend_right(axes[1])
    fig.tight_layout()
    b = budget.set_index("knob_annotated")
    lo, hi = min(cfg.annotated_fractions), max(cfg.annotated_fractions)
    return fig, {
        "budget_lo": 100 * lo,
        "budget_hi": 100 * hi,
        "budget_lo_pehe": float(b.loc[lo, "pehe_mean"]),
        "budget_hi_pehe": float(b.loc[hi, "pehe_mean"]),
        "budget_lo_policy": float(b.loc[lo, "policy_mean"]),
        "budget_hi_policy": float(b.loc[hi, "policy_mean"]),
        "budget_beats_risk": Md(budget_verdict(results, cfg.annotated_fractions)),
    }


def budget_verdict(results: pd.DataFrame, fractions: Sequence[float]) -> str:
    """At which annotated shares AACE's policy benefit beats the risk-based ranking's.

    For each share, the paired difference over replicates between AACE in the ``budget``
    experiment and the risk-based ranking in the ``main`` experiment (the same replicates, hence
    the same patients and notes: the risk score does not use annotations) on the respiratory
    records; a share counts when the difference exceeds two standard errors. Returns the
    sentence's end, with the difference and its standard error at each share.
    """
    main = results[(results.experiment == "main") & (results.simulator == "respiratory")
                   & (results.learner == "risk_based")]
    if main.empty:
        return "(the risk-based ranking was not run at this profile)"
    bud = results[(results.experiment == "budget") & (results.learner == "aace")
                  & (results.simulator == "respiratory")]
    parts, beats, judged = [], [], True
    for f in sorted(fractions):
        rows = bud[bud.knob_annotated == f].assign(learner="aace_at_share")
        diff, se = paired_difference(pd.concat([rows, main]), "aace_at_share", "risk_based",
                                     "policy")
        judged = judged and bool(np.isfinite(se))
        if (np.isfinite(se) and diff > 2 * se) or (not np.isfinite(se) and diff > 0):
            beats.append(f)
        parts.append(f"{100 * f:g} %: {diff:+.3f}" + (f" ± {se:.3f}" if np.isfinite(se) else ""))
    detail = "; ".join(parts)
    how = ("by more than two standard errors of the paired difference over replicates"
           if judged else "in mean (one replicate: no standard error, so nothing is judged)")
    if not beats:
        return f"at none of the shares tried, {how} (difference in policy benefit at {detail})"
    run = [f for f in sorted(fractions) if f >= min(beats)]
    where = (f"from {100 * min(beats):g} % of records annotated upwards" if run == beats
             else "at " + ", ".join(f"{100 * f:g} %" for f in beats) + " of records annotated")
    return f"{where}, {how} (difference in policy benefit at {detail})"


def selection_readings(results: pd.DataFrame, cfg: Config) -> dict[str, Any]:
    """Uniform vs covariate-driven annotation, with and without annotation weights."""
    sel = summary_of(results, "selection", ["knob_annotation_selection", "learner"])
    sel = sel[sel.learner.isin(SELECTION_PAIR)]
    index = pd.MultiIndex.from_arrays(
        [sel.knob_annotation_selection, [label(k) for k in sel.learner]],
        names=["annotation", "learner"])
    table = metric_table(sel, {"pehe": "√PEHE", "policy": "policy benefit", "autoc": "AUTOC"},
                         index=index)
    out: dict[str, Any] = {"selection_table": table}
    means = sel.set_index(["knob_annotation_selection", "learner"])
    for kind in ("uniform", "covariates"):
        for name in SELECTION_PAIR:
            out[f"sel_{kind}_{name}"] = float(means.loc[(kind, name), "pehe_mean"])
    cov = results[(results.experiment == "selection")
                  & (results.knob_annotation_selection == "covariates")]
    gain, gain_se = paired_difference(cov, "aace", "aace_weighted", "pehe")
    paired = " ± {se} (paired over replicates)"
    out["sel_verdict"] = Md(verdict(
        -gain, gain_se, higher="raises √PEHE by {size}" + paired,
        lower="lowers √PEHE by {size}" + paired,
        within="changes √PEHE by {diff} ± {se}, within two standard errors of no change",
        above="changes √PEHE by {diff} (one replicate)",
        below="changes √PEHE by {diff} (one replicate)",
    ))
    out["selection_fraction"] = 100 * cfg.selection_fraction
    return out


def confounding_readings(results: pd.DataFrame, cfg: Config) -> tuple[Any, dict[str, Any]]:
    """Effect error and policy benefit as confounding grows: the figure and the readings."""
    import matplotlib.pyplot as plt

    from ..plots import legend_right, mean_se_lines

    conf = summary_of(results, "confounding", ["knob_confounding", "learner"], "respiratory")
    names = [k for k in [*cfg.stress_learners, *REFERENCE_STYLES] if k in set(conf.learner)]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, (metric, title) in zip(axes, PANELS, strict=True):
        mean_se_lines(ax, conf, "knob_confounding", metric, names, labels=LABELS,
                      palette=palette(cfg.learners), styles=REFERENCE_STYLES)
        ax.set_xlabel("confounding strength γ")
        ax.set_title(title)
    legend_right(axes[1])
    fig.tight_layout()
    means = conf.set_index(["knob_confounding", "learner"])
    g_max, g_min = max(cfg.confounding_levels), min(cfg.confounding_levels)
    seed = cfg.seeds[0]
    out: dict[str, Any] = {
        "conf_max": g_max,
        "conf_min": g_min,
        "treated_at_min": 100 * float(simulate("respiratory", cfg.n, seed,
                                               confounding=g_min).T.mean()),
        "treated_at_max": 100 * float(simulate("respiratory", cfg.n, seed,
                                               confounding=g_max).T.mean()),
    }
    for name in cfg.stress_learners:
        out[f"conf_max_{name}_policy"] = float(means.loc[(g_max, name), "policy_mean"])
    return fig, out


def representation_readings(results: pd.DataFrame, cfg: Config) -> dict[str, Any]:
    """MiniLM vs TF-IDF on normal and compact notes: the table and the readings."""
    rep = summary_of(results, "representation", ["knob_style", "representation", "learner"])
    rep = rep[rep.learner.isin(cfg.stress_learners)]
    index = pd.MultiIndex.from_arrays(
        [rep.knob_style, rep.representation.map({"minilm": "MiniLM", "tfidf": "TF-IDF + SVD"}),
         [label(k) for k in rep.learner]], names=["notes", "representation", "learner"])
    out: dict[str, Any] = {
        "rep_table": metric_table(rep, {"pehe": "√PEHE", "policy": "policy benefit"},
                                  index=index)}
    means = rep.set_index(["knob_style", "representation", "learner"])
    for style in ("normal", "compact"):
        for rep_name in REPRESENTATIONS:
            key = f"rep_{style}_{rep_name}"
            out[f"{key}_aace"] = float(means.loc[(style, rep_name, "aace"), "pehe_mean"])
            if "oracle" in cfg.stress_learners:  # the floor each representation sets
                out[f"{key}_oracle"] = float(means.loc[(style, rep_name, "oracle"), "pehe_mean"])
    return out


def baselines(learners: Sequence[str]) -> list[str]:
    """The learners AACE is judged against: those that use neither annotations nor the truth
    (per their registry entries), in the given order."""
    from ..learners import spec

    return [k for k in learners
            if not {"annotations", "tau"} & set(spec(k).fit_inputs)]


def verdicts(results: pd.DataFrame, learners: Sequence[str]) -> dict[str, Any]:
    """The closing section: AACE against each baseline on both simulators, and each policy's
    share of the gain over a random order (:func:`gain_share`)."""
    means = summary_of(results, "main", ["simulator", "learner"]).set_index(
        ["simulator", "learner"])
    out: dict[str, Any] = {}
    for simulator, key in [("respiratory", "resp"), ("cardiac", "card")]:
        s = means.loc[simulator]
        aace_p = s.loc["aace", "policy_mean"]
        main_sim = results[(results.experiment == "main") & (results.simulator == simulator)]
        parts = []
        for name in baselines(learners):
            diff, se = paired_difference(main_sim, "aace", name, "policy")
            parts.append(verdict(
                diff, se, higher="beats", lower="loses to",
                within="is within two standard errors of", above="is above", below="is below",
                subject=label(name), versus=(aace_p, s.loc[name, "policy_mean"])))
        out[f"{key}_verdict"] = Md("; ".join(parts) if parts else "has no baseline here")
        out[f"{key}_share_of_gain"] = float(s.loc["aace", "gain_share_mean"])
        out[f"{key}_share_of_gain_pm"] = Md(pm(s.loc["aace", "gain_share_mean"],
                                               s.loc["aace", "gain_share_se"], 0))
        if "oracle" in s.index:
            out[f"{key}_oracle_gap"] = float(s.loc["aace", "pehe_mean"]
                                             - s.loc["oracle", "pehe_mean"])
            out[f"{key}_oracle_share"] = float(s.loc["oracle", "gain_share_mean"])
        # like for like: the DR target with and without cross-fitting (the data-selected AACE
        # may choose another target)
        dr = _dr_variant()
        cf = (s.loc[dr, "pehe_mean"] - s.loc["aace_no_crossfit", "pehe_mean"]
              if {"aace_no_crossfit", dr} <= set(s.index) else np.nan)
        out[f"{key}_crossfit"] = Md(
            "not compared" if not np.isfinite(cf)
            else f"cross-fitting lowers √PEHE by {-cf:.3f}" if cf < 0
            else f"cross-fitting does not lower √PEHE here ({cf:+.3f})")
    if "risk_based" in learners:
        readings = []
        for simulator in SIMULATORS:
            s = means.loc[simulator]
            readings.append(
                f"on the {simulator} records it captures "
                f"{s.loc['risk_based', 'gain_share_mean']:.0f} % of the gain that ranking by the "
                f"true effect makes over a random order (AUTOC "
                f"{s.loc['risk_based', 'autoc_mean']:.3f}, against "
                f"{s.loc['aace', 'autoc_mean']:.3f} for AACE)")
        out["risk_reading"] = Md("; ".join(readings) + ".")
    else:
        out["risk_reading"] = Md("(not run at this profile).")
    return out


# ----------------------------------------------------------------------------------------------
# How close to the ceiling? (the targets of AACE, and the instrument)
# ----------------------------------------------------------------------------------------------

#: the sweeps of the ceiling section: experiment, knob column and axis label
SWEEPS = [("budget", "knob_annotated", "annotated records (share)"),
          ("confounding", "knob_confounding", "confounding strength γ")]


def _dr_variant() -> str:
    """The registered variant with the DR target (the original AACE pseudo-outcome)."""
    from ..learners.aace import target_variants

    return target_variants()["dr"]


def ceiling_variants(results: pd.DataFrame) -> list[str]:
    """The single-target variants present in the results, in the registry's order."""
    from ..learners.aace import target_variants

    present = set(results.learner)
    return [name for name in target_variants().values() if name in present]


def oracle_share(results: pd.DataFrame) -> pd.Series:
    """Each row's share of the oracle's gain over a random order, in percent:
    ``100 (G - G_random) / (G_oracle - G_random)``, with the oracle and random rows of the main
    experiment on the same simulator, replicate and representation. Neither depends on the
    annotation or confounding knobs: the simulators draw the same patients and notes whatever
    the knobs, and the oracle sees only the true effect and phi. NaN where there is no oracle."""
    keys = ["simulator", "replicate", "representation"]
    main = results[results.experiment == "main"]
    refs = {name: main[main.learner == name].set_index(keys)["policy"]
            for name in ("oracle", "random")}
    key = pd.MultiIndex.from_frame(results[keys])
    g_oracle = refs["oracle"].reindex(key).to_numpy()
    g_random = refs["random"].reindex(key).to_numpy()
    share = 100 * (results["policy"].to_numpy() - g_random) / (g_oracle - g_random)
    return pd.Series(share, index=results.index)


def _with_oracle_share(results: pd.DataFrame) -> pd.DataFrame:
    out = results.copy()
    out["oracle_share"] = oracle_share(out)
    if "target_noise" not in out.columns:
        out["target_noise"] = np.nan
    return out


def _chosen_counts(rows: pd.DataFrame) -> str:
    """How often the selection chose each target: ``"r 4×, x 1× (of 5 replicates)"``."""
    if "chosen_target" not in rows.columns or rows.chosen_target.isna().all():
        return "–"
    counts = rows.chosen_target.value_counts()
    parts = [f"{t} {k}×" for t, k in counts.items()]
    return ", ".join(parts) + f" (of {len(rows)} fit{'s' if len(rows) > 1 else ''})"


def ceiling_readings(results: pd.DataFrame, cfg: Config) -> tuple[Any, dict[str, Any]]:
    """Every target of AACE against the oracle: the main-setting table, the sweep table and
    figure, and the readings the prose glues (``ceil_<sim>_...``)."""
    import matplotlib.pyplot as plt

    from ..plots import legend_right, mean_se_lines

    res = _with_oracle_share(results)
    variants = ceiling_variants(res)
    rows = [*variants, "aace", "oracle"]
    metrics = ["pehe", "policy", "gain_share", "oracle_share", "target_noise"]
    main = res[(res.experiment == "main") & res.learner.isin(rows)]
    summ = summarise(main, metrics, by=["simulator", "learner"])
    columns = {"pehe": "√PEHE", "policy": "policy benefit", "gain_share": "share of gain (%)",
               "oracle_share": "share of oracle's gain (%)",
               "target_noise": "target RMS error vs τ"}
    blocks = []
    for simulator in SIMULATORS:
        sub = summ[summ.simulator == simulator].set_index("learner").reindex(
            [r for r in rows if r in set(summ.learner)])
        block = metric_table(sub, columns, index=[ceiling_label(k) for k in sub.index])
        for col in ("share of gain (%)", "share of oracle's gain (%)"):
            metric = "gain_share" if col.startswith("share of gain") else "oracle_share"
            block[col] = metric_table(sub, {metric: col}, index=block.index, digits=1)[col]
        block.columns = pd.MultiIndex.from_tuples([(simulator, c) for c in block.columns])
        blocks.append(block)
    table = pd.concat(blocks, axis=1)
    table.index.name = "target"
    out: dict[str, Any] = {"ceiling_table": table}
    for simulator, key in [("respiratory", "resp"), ("cardiac", "card")]:
        sim = main[main.simulator == simulator]
        out.update(_ceiling_sim_readings(sim, variants, key))
        out[f"ceil_{key}_chosen"] = Md(_chosen_counts(
            results[(results.experiment == "main") & (results.simulator == simulator)
                    & (results.learner == "aace")]))
    sweep_rows, fig = [], None
    fig, axes = plt.subplots(len(SWEEPS), len(SIMULATORS), figsize=(11, 7.5), squeeze=False)
    colors = _ceiling_palette(variants)
    for i, (experiment, knob, xlabel) in enumerate(SWEEPS):
        for j, simulator in enumerate(SIMULATORS):
            sub = res[(res.experiment == experiment) & (res.simulator == simulator)
                      & res.learner.isin([*variants, "aace"])]
            ax = axes[i, j]
            if sub.empty:
                ax.set_visible(False)
                continue
            summ_k = summarise(sub, ["pehe", "oracle_share"], by=[knob, "learner"])
            mean_se_lines(ax, summ_k, knob, "pehe", [*variants, "aace"],
                          labels={k: ceiling_label(k) for k in [*variants, "aace"]},
                          palette={ceiling_label(k): colors[k] for k in colors}, styles={})
            ax.set_title(f"{simulator}: {experiment}")
            ax.set_xlabel(xlabel)
            ax.set_ylabel("√PEHE (lower is better)")
            for value, group in sub.groupby(knob):
                sweep_rows.append(_sweep_row(group, simulator, experiment, value, variants))
    legend_right(axes[0, -1])
    fig.tight_layout()
    sweep = pd.DataFrame(sweep_rows)
    if not sweep.empty:
        sweep = sweep.set_index(["simulator", "sweep", "setting"])
    out["ceiling_sweep_table"] = sweep
    out["ceil_where"] = Md(_where_sentence(sweep))
    return fig, out


def ceiling_label(name: str) -> str:
    """The ceiling section's name of a variant: its registry description's short form."""
    from ..learners.aace import target_variants

    names = {v: k for k, v in target_variants().items()}
    if name in names:
        return f"target: {names[name]}"
    return {"aace": "AACE (data-selected)", "oracle": "oracle E[τ | φ]"}.get(name, label(name))


def _ceiling_palette(variants: Sequence[str]) -> dict[str, Any]:
    from ..plots import learner_palette

    colors = learner_palette([ceiling_label(k) for k in [*variants, "aace"]])
    return {k: colors[ceiling_label(k)] for k in [*variants, "aace"]}


def _best(sub: pd.DataFrame, variants: Sequence[str]) -> tuple[str, float]:
    means = sub[sub.learner.isin(variants)].groupby("learner")["pehe"].mean()
    return str(means.idxmin()), float(means.min())


def _ceiling_sim_readings(sim: pd.DataFrame, variants: Sequence[str], key: str) -> dict:
    """Readings of one simulator's main setting: the selected AACE against the best target
    (regret), against today's DR target, the share of the oracle's gain, and the
    bias-variance reading (target noise against √PEHE)."""
    out: dict[str, Any] = {}
    if sim.empty or "aace" not in set(sim.learner) or not variants:
        return out
    best, best_pehe = _best(sim, variants)
    sel = sim[sim.learner == "aace"]
    out[f"ceil_{key}_best"] = ceiling_label(best)
    out[f"ceil_{key}_best_pehe"] = best_pehe
    out[f"ceil_{key}_aace_pehe"] = float(sel.pehe.mean())
    diff, se = paired_difference(sim, "aace", best, "pehe")
    out[f"ceil_{key}_regret"] = Md(pm(diff, se))
    share = sel.oracle_share
    out[f"ceil_{key}_oracle_share"] = Md(pm(float(share.mean()), float(
        share.std(ddof=1) / np.sqrt(len(share))) if len(share) > 1 else float("nan"), 0))
    out[f"ceil_{key}_oracle_share_mean"] = float(share.mean())
    dr = _dr_variant()
    if dr in variants:
        d_pehe, d_se = paired_difference(sim, "aace", dr, "pehe")
        out[f"ceil_{key}_vs_dr"] = Md(verdict(
            d_pehe, d_se, higher="raises √PEHE by {size} ± {se}",
            lower="lowers √PEHE by {size} ± {se}",
            within="changes √PEHE by {diff} ± {se}, within two standard errors of no change",
            above="raises √PEHE by {size} (one replicate)",
            below="lowers √PEHE by {size} (one replicate)"))
        out[f"ceil_{key}_dr_oracle_share"] = float(sim[sim.learner == dr].oracle_share.mean())
    noise = sim[sim.learner.isin(variants)].groupby("learner")[["target_noise", "pehe"]].mean()
    quiet = str(noise.target_noise.idxmin())
    loud = str(noise.target_noise.idxmax())
    parts = [f"the noisiest target ({ceiling_label(loud)}) deviates from τ by "
             f"{noise.loc[loud, 'target_noise']:.2f} (RMS over the annotated records) and "
             f"reaches √PEHE {noise.loc[loud, 'pehe']:.3f}; the quietest "
             f"({ceiling_label(quiet)}) deviates by {noise.loc[quiet, 'target_noise']:.2f} and "
             f"reaches {noise.loc[quiet, 'pehe']:.3f}"]
    if quiet == best:
        parts.append("the quietest target is also the most accurate: here the error is mostly "
                     "the variance of the target")
    else:
        parts.append(f"the most accurate is {ceiling_label(best)} (target RMS error "
                     f"{noise.loc[best, 'target_noise']:.2f}, √PEHE {best_pehe:.3f}): a quieter "
                     "target that ends less accurate carries a bias that the final stage cannot "
                     "average away")
    out[f"ceil_{key}_biasvar"] = Md("; ".join(parts))
    return out


def _sweep_row(group: pd.DataFrame, simulator: str, experiment: str, value: float,
               variants: Sequence[str]) -> dict[str, Any]:
    """One setting of a sweep: the best target by mean √PEHE, its lead over the runner-up
    (paired), and the data-selected AACE."""
    best, best_pehe = _best(group, variants)
    means = group[group.learner.isin(variants)].groupby("learner")["pehe"].mean().sort_values()
    row: dict[str, Any] = {"simulator": simulator, "sweep": experiment, "setting": f"{value:g}",
                           "best target": ceiling_label(best), "best √PEHE": f"{best_pehe:.3f}"}
    if len(means) > 1:
        second = str(means.index[1])
        diff, se = paired_difference(group, best, second, "pehe")
        row["lead over the runner-up"] = (f"{-diff:.3f} ± {se:.3f} ({ceiling_label(second)})"
                                          if np.isfinite(se)
                                          else f"{-diff:.3f} ({ceiling_label(second)})")
        row["clear"] = bool(np.isfinite(se) and -diff > 2 * se)
    sel = group[group.learner == "aace"]
    row["AACE √PEHE"] = pm(float(sel.pehe.mean()), float(sel.pehe.std(ddof=1) / np.sqrt(
        len(sel))) if len(sel) > 1 else float("nan"))
    share = sel.oracle_share.dropna()
    row["AACE share of oracle's gain (%)"] = pm(float(share.mean()), float(
        share.std(ddof=1) / np.sqrt(len(share))) if len(share) > 1 else float("nan"), 0)
    row["selected"] = _chosen_counts(sel)
    return row


def _where_sentence(sweep: pd.DataFrame) -> str:
    """Which target wins where, from the sweep table."""
    if sweep.empty:
        return "(no sweep at this profile)"
    parts = []
    for (simulator, experiment), g in sweep.groupby(level=["simulator", "sweep"], sort=False):
        winners = g["best target"].unique()
        where = ", ".join(f"{idx[2]}: {row['best target']}"
                          + ("" if row.get("clear", False) else " (not clear)")
                          for idx, row in g.iterrows())
        verdict_ = ("one setting" if len(g) == 1
                    else "the same target wins everywhere" if len(winners) == 1
                    else f"{len(winners)} different targets win")
        parts.append(f"{simulator}, {experiment} ({where}): {verdict_}")
    return "; ".join(parts)


def instrument_readings(results: pd.DataFrame) -> dict[str, Any]:
    """AACE with and without the instrument (``policy``) in phi and the annotation space,
    paired over replicates on the respiratory records: the table and the readings."""
    main = results[(results.experiment == "main") & (results.simulator == "respiratory")]
    if INSTRUMENT_LABEL not in set(main.learner):
        return {"instrument_table": pd.DataFrame(), "inst_verdict": Md("(not run at this "
                                                                       "profile)")}
    suffix = f"@{INSTRUMENT_LABEL}"
    pairs = [("aace", INSTRUMENT_LABEL)] + [
        (name[: -len(suffix)], name) for name in sorted(set(main.learner))
        if name.endswith(suffix) and name[: -len(suffix)] in set(main.learner)]
    rows, out = [], {}
    for with_, without in pairs:
        d_pehe, se_pehe = paired_difference(main, without, with_, "pehe")
        d_share, se_share = paired_difference(main, without, with_, "gain_share")
        rows.append({
            "target": ceiling_label(with_),
            "√PEHE with": f"{main[main.learner == with_].pehe.mean():.3f}",
            "√PEHE without": f"{main[main.learner == without].pehe.mean():.3f}",
            "√PEHE: without − with": pm(d_pehe, se_pehe),
            "share of gain (%): without − with": pm(d_share, se_share, 1),
        })
        word = verdict(d_pehe, se_pehe, higher="raises √PEHE by {size} ± {se}",
                       lower="lowers √PEHE by {size} ± {se}",
                       within="changes √PEHE by {diff} ± {se} (within two standard errors)",
                       above="raises √PEHE by {size} (one replicate)",
                       below="lowers √PEHE by {size} (one replicate)")
        key = "aace" if with_ == "aace" else ceiling_label(with_).split(": ")[-1]
        out[f"inst_{key}"] = Md(word)
    out["instrument_table"] = pd.DataFrame(rows).set_index("target")
    return out
