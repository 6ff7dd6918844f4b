r"""Chapter: can an effect estimate be trusted without ground truth? (``trust_without_truth``)

Part A -- DoWhy on real observational data with a benchmark: a stated back-door graph
(:func:`backdoor_graph`), identification, estimation by the package's learners plugged into
DoWhy (:class:`LearnerEstimator`), overlap diagnostics (:func:`overlap`), DoWhy's refuters and a
partial-R² sensitivity reading (:func:`dowhy_study`), on Lalonde's NSW treated against CPS
controls (:func:`load_lalonde`; experimental benchmark: NSW treated minus NSW controls) and on
NHEFS (:func:`load_nhefs`; Hernán & Robins 2020, *Causal Inference: What If*, section 12.2,
IP-weighted estimate 3.4 kg, 95 % CI 2.4 to 4.5).

Part B -- the truth-free criteria of :mod:`ehrcausal.validate` where the truth is known
(:func:`truth_cell`, :func:`criterion_summary`): IHDP, the respiratory and cardiac simulators
(annotation space as covariates) and the spine simulator (any complication). Per replicate the
learners are fitted on one half and judged on the other; Kendall's tau between a criterion and
the true PEHE, how often it picks the truly best learner, and its regret. The RATE test's
false-positive rate at a constant effect and its power (:func:`rate_cell`).

Part C -- the criteria on NHEFS and Lalonde (:func:`real_cell`).

Design: ``book/design.md`` (section "Validation without the truth").
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
from dowhy.causal_estimator import CausalEstimate, CausalEstimator
from scipy.stats import kendalltau

from ..learners import make
from ..nuisance import MODEL_KINDS, cross_fit
from ..runtime import check_seed, child_seeds
from ..validate import CRITERIA, evaluate, fit_nuisances, rate, select
from ..validation import OverlapWarning, check_int, check_number
from .base import ChapterConfig, learner_names, parse_list, run_cached
from .report import Md, pm

__all__ = [
    "Config",
    "TRUTH_DATASETS",
    "load_lalonde",
    "load_nhefs",
    "backdoor_graph",
    "LearnerEstimator",
    "overlap",
    "dowhy_study",
    "truth_data",
    "TruthCell",
    "truth_cell",
    "criterion_summary",
    "RateCell",
    "rate_cell",
    "rate_summary",
    "real_cell",
]

#: the data sets of Part B (simulated or semi-synthetic: the true effect is known)
TRUTH_DATASETS: tuple[str, ...] = ("ihdp", "respiratory", "cardiac", "spine")
#: data sets whose outcome is continuous and additive in the effect (the constant-effect knob)
ADDITIVE = ("ihdp", "respiratory", "cardiac")
#: the criteria of Part B with their labels
CRITERION_LABELS = {
    "r_loss": "R-loss",
    "dr_loss": "DR-loss",
    "nn_pehe": "NN-PEHE",
    "autoc": "RATE (AUTOC)",
    "qini": "RATE (Qini)",
    "blp_differential": "BLP differential",
}


@dataclass(kw_only=True)
class Config(ChapterConfig):
    """The chapter's parameters, parsed and checked."""

    learners: Any
    datasets: Any
    n: int
    nuisance: str
    rate_nuisance: str
    n_boot: int
    ci_boot: int
    rate_learner: str
    rate_datasets: Any
    rate_replicates: int
    rate_n: int
    real_learners: Any
    refute_learner: str
    refute_simulations: int

    def __post_init__(self) -> None:
        super().__post_init__()
        self.learners = learner_names(self.learners, ("cate",), "learners")
        self.real_learners = learner_names(self.real_learners, ("cate",), "real_learners")
        self.rate_learner = learner_names(self.rate_learner, ("cate",), "rate_learner")[0]
        self.refute_learner = learner_names(self.refute_learner, ("cate",), "refute_learner")[0]
        self.datasets = _check_names(self.datasets, TRUTH_DATASETS, "datasets")
        self.rate_datasets = _check_names(self.rate_datasets, ADDITIVE, "rate_datasets")
        self.n = check_int(self.n, "n", low=100)
        self.rate_n = check_int(self.rate_n, "rate_n", low=100)
        self.n_boot = check_int(self.n_boot, "n_boot", low=2)
        self.ci_boot = check_int(self.ci_boot, "ci_boot", low=2)
        self.rate_replicates = check_int(self.rate_replicates, "rate_replicates", low=1)
        self.refute_simulations = check_int(self.refute_simulations, "refute_simulations", low=1)
        for name in ("nuisance", "rate_nuisance"):
            value = getattr(self, name)
            if value != "auto" and value not in MODEL_KINDS:
                raise ValueError(f"{name} must be 'auto' or one of {MODEL_KINDS}, got {value!r}")

    def params(self, names: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Budget parameters of each learner."""
        return self.budget(list(names))


def _check_names(value: Any, allowed: Sequence[str], name: str) -> list[str]:
    names = parse_list(value, name=name)
    bad = [v for v in names if v not in allowed]
    if bad or not names:
        raise ValueError(f"{name} must name some of {', '.join(allowed)}; got {value!r}")
    return names


# ---------------------------------------------------------------------------------------------
# Part A: real data, graphs, DoWhy
# ---------------------------------------------------------------------------------------------

LALONDE_COVARIATES = ("age", "educ", "black", "hisp", "marr", "nodegree", "re74", "re75")


def load_lalonde() -> tuple[pd.DataFrame, list[str], float]:
    """NSW treated beside CPS controls, the covariates, and the experimental benchmark.

    From the ``causaldata`` package: ``nsw_mixtape`` (the NSW experiment, 185 treated and 260
    randomised controls; Dehejia & Wahba 1999) and ``cps_mixtape`` (15,992 CPS comparison
    units; LaLonde 1986). Returns the observational sample (NSW treated + CPS, with ``treat``
    and earnings ``re78``), the covariate names and the experimental effect on the treated,
    mean ``re78`` of NSW treated minus NSW controls (the benchmark, computed here).
    """
    from causaldata import cps_mixtape, nsw_mixtape

    nsw = nsw_mixtape.load_pandas().data
    cps = cps_mixtape.load_pandas().data
    treated = nsw[nsw.treat == 1]
    benchmark = float(treated.re78.mean() - nsw[nsw.treat == 0].re78.mean())
    cols = ["treat", *LALONDE_COVARIATES, "re78"]
    data = pd.concat([treated[cols], cps[cps.treat == 0][cols]], ignore_index=True)
    data = data.astype(float)
    data["treat"] = data["treat"].astype(int)
    return data, list(LALONDE_COVARIATES), benchmark


def load_nhefs() -> tuple[pd.DataFrame, list[str]]:
    """NHEFS: quitting smoking (``qsmk``) and weight gain 1971-82 (``wt82_71``, kg).

    The ``causaldata`` copy of the data of Hernán & Robins (2020), section 12.1: the 1,566
    participants with a measured 1982 weight (censored rows dropped). Confounders as their
    section 12.2: sex, race, age, education (5 levels), smoking intensity and years, exercise
    (3 levels), activity (3 levels) and 1971 weight, with the squares of the continuous ones
    that their model includes; categories are one-hot columns (first level dropped).
    """
    from causaldata import nhefs

    raw = nhefs.load_pandas().data
    raw = raw[raw.wt82_71.notna()].reset_index(drop=True)
    data = pd.DataFrame({"qsmk": raw.qsmk.astype(int), "wt82_71": raw.wt82_71.astype(float)})
    for col in ("sex", "race", "age", "smokeintensity", "smokeyrs", "wt71"):
        data[col] = raw[col].astype(float)
    for col in ("age", "smokeintensity", "smokeyrs", "wt71"):
        data[f"{col}_sq"] = raw[col].astype(float) ** 2
    for col in ("education", "exercise", "active"):
        dummies = pd.get_dummies(raw[col].astype(int), prefix=col, drop_first=True, dtype=float)
        data = pd.concat([data, dummies], axis=1)
    confounders = [c for c in data.columns if c not in ("qsmk", "wt82_71")]
    return data, confounders


def backdoor_graph(
    data: pd.DataFrame, treatment: str, outcome: str, confounders: Sequence[str]
) -> nx.DiGraph:
    """The stated causal graph: every confounder causes treatment and outcome; T causes Y.

    Back-door identification then adjusts for exactly ``confounders``. Raises a ValueError
    naming every column of the graph that the data do not have.
    """
    names = [treatment, outcome, *confounders]
    missing = [c for c in names if c not in data.columns]
    if missing:
        raise ValueError(
            f"the graph names column(s) {missing} that are not in the data (columns: "
            f"{', '.join(map(str, data.columns[:12]))}{', ...' if data.shape[1] > 12 else ''})"
        )
    if len(set(names)) != len(names):
        raise ValueError("treatment, outcome and confounders must be distinct columns")
    graph = nx.DiGraph()
    graph.add_edge(treatment, outcome)
    for c in confounders:
        graph.add_edge(c, treatment)
        graph.add_edge(c, outcome)
    return graph


class LearnerEstimator(CausalEstimator):
    """A learner of the package's registry as a DoWhy estimator (back-door adjustment).

    Use as ``model.estimate_effect(estimand,
    method_name="backdoor.ehrcausal.chapters.trust.LearnerEstimator",
    method_params={"learner": "dr_learner", "params": {...}, "random_state": 0},
    target_units="ate" | "att")``. ``fit`` fits the learner on :math:`(Y, T, W)` with
    :math:`W` the adjustment set DoWhy identified; the estimate is the mean of
    ``effect(W)`` over all units (ATE) or over the treated (ATT). DoWhy's refuters re-fit it on
    their altered data through the same interface.
    """

    def __init__(self, identified_estimand: Any, learner: str = "ols",
                 params: Mapping[str, Any] | None = None, random_state: int = 0,
                 **kwargs: Any) -> None:
        kwargs = {k: v for k, v in kwargs.items() if k in (
            "test_significance", "evaluate_effect_strength", "confidence_intervals")}
        super().__init__(identified_estimand, **kwargs)
        self.learner = learner
        self.params = dict(params or {})
        self.random_state = random_state

    def fit(self, data: pd.DataFrame, effect_modifier_names: Any = None,
            **_: Any) -> LearnerEstimator:
        """Fit the learner on the outcome, treatment and adjustment set of ``data``."""
        self._set_effect_modifiers(data, effect_modifier_names)
        self._adjust = sorted(self._target_estimand.get_adjustment_set())
        treatment = self._target_estimand.treatment_variable[0]
        outcome = self._target_estimand.outcome_variable[0]
        self._fit_params = {}
        self.model_ = make(self.learner, random_state=self.random_state, **self.params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OverlapWarning)
            self.model_.fit(data[outcome].to_numpy(float), data[treatment].to_numpy(int),
                            X=data[self._adjust].to_numpy(float))
        self.symbolic_estimator = self.construct_symbolic_estimator(self._target_estimand)
        return self

    def estimate_effect(self, data: pd.DataFrame, treatment_value: Any = 1,
                        control_value: Any = 0, target_units: Any = "ate",
                        **_: Any) -> CausalEstimate:
        """The mean estimated effect over all units (``"ate"``) or the treated (``"att"``)."""
        self._target_units = target_units
        treatment = self._target_estimand.treatment_variable[0]
        tau = self.model_.effect(data[self._adjust].to_numpy(float))
        if target_units == "att":
            value = float(tau[data[treatment].to_numpy() == 1].mean())
        elif target_units == "ate":
            value = float(tau.mean())
        else:
            raise ValueError(f"target_units must be 'ate' or 'att', got {target_units!r}")
        estimate = CausalEstimate(
            data=data, treatment_name=self._target_estimand.treatment_variable,
            outcome_name=self._target_estimand.outcome_variable, estimate=value,
            control_value=control_value, treatment_value=treatment_value,
            target_estimand=self._target_estimand,
            realized_estimand_expr=self.symbolic_estimator, cate_estimates=tau,
        )
        estimate.add_estimator(self)
        return estimate

    def construct_symbolic_estimator(self, estimand: Any) -> str:
        """DoWhy's text form of what is estimated."""
        return (f"{self.learner}: E[{estimand.outcome_variable[0]}(1) - "
                f"{estimand.outcome_variable[0]}(0) | {', '.join(self._adjust)}]")


def overlap(
    data: pd.DataFrame, treatment: str, confounders: Sequence[str], *,
    bounds: tuple[float, float] = (0.01, 0.99), random_state: int = 0, name: str = "data",
) -> tuple[np.ndarray, np.ndarray]:
    r"""Cross-fitted propensities and the rows inside the overlap ``bounds``.

    :math:`\hat e(x)` from 5-fold cross-fitted logistic regression (standardised covariates,
    the ``ridge`` classifier of :func:`ehrcausal.nuisance.make_model`); units with
    :math:`\hat e \notin` ``bounds`` lack comparable units in the other arm (Crump et al.
    2009). When any are found an :class:`~ehrcausal.validation.OverlapWarning` says how many
    and which share of each arm will be trimmed.

    Returns:
        ``(e_hat, keep)``: propensities and the boolean mask of rows inside the bounds.
    """
    low = check_number(bounds[0], "bounds[0]", 0.0, 0.5, low_open=True, high_open=True)
    high = check_number(bounds[1], "bounds[1]", 0.5, 1.0, low_open=True, high_open=True)
    t = data[treatment].to_numpy(int)
    x = data[list(confounders)].to_numpy(float)
    fitted = cross_fit(np.zeros(len(t)), t, x, nuisance=("linear", "ridge"), cv=5,
                       random_state=random_state, overlap_name=None)
    e = fitted.e
    keep = (e >= low) & (e <= high)
    if not keep.all():
        shares = {arm: float(np.mean(~keep[t == arm])) for arm in (0, 1)}
        warnings.warn(
            f"{name}: {int((~keep).sum())} of {len(t)} units ({np.mean(~keep):.1%}) have an "
            f"estimated propensity outside [{low:g}, {high:g}] and are trimmed: "
            f"{shares[1]:.1%} of the treated, {shares[0]:.1%} of the controls",
            OverlapWarning, stacklevel=2,
        )
    return e, keep


def _learner_effect(data: pd.DataFrame, treatment: str, outcome: str, adjust: Sequence[str],
                    learner: str, params: Mapping[str, Any], target: str, seed: int) -> float:
    model = make(learner, random_state=seed, **params)
    x = data[list(adjust)].to_numpy(float)
    t = data[treatment].to_numpy(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OverlapWarning)
        model.fit(data[outcome].to_numpy(float), t, X=x)
    tau = model.effect(x)
    return float(tau[t == 1].mean() if target == "att" else tau.mean())


def _bootstrap(data: pd.DataFrame, treatment: str, outcome: str, adjust: Sequence[str],
               learner: str, params: Mapping[str, Any], target: str, n_boot: int,
               seed: int) -> float:
    """Standard deviation of the learner's estimate over resamples stratified by arm."""
    rng = np.random.default_rng(seed)
    t = data[treatment].to_numpy(int)
    arms = [np.flatnonzero(t == a) for a in (0, 1)]
    values = []
    for b in range(n_boot):
        idx = np.concatenate([rng.choice(a, size=len(a), replace=True) for a in arms])
        values.append(_learner_effect(data.iloc[idx].reset_index(drop=True), treatment, outcome,
                                      adjust, learner, params, target, seed + b + 1))
    return float(np.std(values, ddof=1))


def dowhy_study(
    data: pd.DataFrame,
    treatment: str,
    outcome: str,
    confounders: Sequence[str],
    *,
    learners: Sequence[str],
    params: Mapping[str, Mapping[str, Any]],
    target: str,
    refute_learner: str,
    n_boot: int,
    refute_simulations: int,
    random_state: int = 0,
    name: str = "data",
) -> dict[str, Any]:
    """Graph, identification, estimates with intervals, refutations and sensitivity on one data set.

    Steps (DoWhy 0.14, Sharma & Kiciman 2020, arXiv:2011.04216): ``CausalModel`` with the
    :func:`backdoor_graph`; ``identify_effect`` (back-door); estimates by DoWhy's linear
    regression and inverse propensity weighting and by every learner of ``learners`` through
    :class:`LearnerEstimator`, each with a normal interval from a stratified bootstrap of
    ``n_boot`` resamples (DoWhy's own estimators: DoWhy's bootstrap); the refuters of
    ``refute_learner`` (placebo treatment, random common cause, data subset, dummy outcome;
    ``refute_simulations`` each); and the linear partial-R² sensitivity analysis (Cinelli &
    Hazlett 2020) of the linear-regression estimate, whose robustness value is the share of the
    residual variance of treatment and outcome that an unobserved confounder would need to
    explain to bring the estimate to zero.

    Returns:
        ``estimand`` (text), ``adjustment`` (names), ``estimates`` (DataFrame: method,
        estimate, se, lower, upper), ``refutations`` (DataFrame: refuter, new effect, p-value)
        and ``robustness_value``.
    """
    from dowhy import CausalModel

    seed = check_seed(random_state)
    if target not in ("ate", "att"):
        raise ValueError(f"target must be 'ate' or 'att', got {target!r}")
    graph = backdoor_graph(data, treatment, outcome, confounders)
    logging.getLogger("dowhy").setLevel(logging.ERROR)
    model = CausalModel(data=data, treatment=treatment, outcome=outcome, graph=graph)
    estimand = model.identify_effect(proceed_when_unidentifiable=True)
    # DoWhy returns the adjustment sets in an order that follows Python's string hashing,
    # which changes from process to process; sorted, every fit sees the same column order
    estimand.backdoor_variables = {key: sorted(value) for key, value in
                                   (estimand.backdoor_variables or {}).items()}
    adjust = list(estimand.get_adjustment_set())
    rows = []
    boot_seed, refute_seed = child_seeds(seed, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        linear = model.estimate_effect(estimand, method_name="backdoor.linear_regression",
                                       target_units=target)
        ipw = model.estimate_effect(
            estimand, method_name="backdoor.propensity_score_weighting", target_units=target,
            method_params={"weighting_scheme": "ips_weight"})
    for label, est in (("DoWhy linear regression", linear), ("DoWhy IPW", ipw)):
        rows.append({"method": label, "estimate": float(est.value)})
    estimates = {}
    for learner in learners:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = model.estimate_effect(
                estimand, method_name="backdoor.ehrcausal.chapters.trust.LearnerEstimator",
                method_params={"learner": learner, "params": dict(params.get(learner, {})),
                               "random_state": seed}, target_units=target)
        estimates[learner] = est
        rows.append({"method": learner, "estimate": float(est.value)})
    # intervals: a stratified bootstrap of every method (DoWhy's estimators refitted by DoWhy
    # would need its own bootstrap machinery; the learners' cost is the same either way)
    for row in rows:
        if row["method"] in estimates:
            se = _bootstrap(data, treatment, outcome, adjust, row["method"],
                            params.get(row["method"], {}), target, n_boot, boot_seed)
        else:
            se = _dowhy_bootstrap(data, model, estimand, row["method"], target, n_boot, boot_seed)
        row.update(se=se, lower=row["estimate"] - 1.96 * se, upper=row["estimate"] + 1.96 * se)
    refutations = []
    refuters = {
        "placebo treatment": ("placebo_treatment_refuter", {"placebo_type": "permute"}),
        "random common cause": ("random_common_cause", {}),
        "data subset (80 %)": ("data_subset_refuter", {"subset_fraction": 0.8}),
        "dummy outcome": ("dummy_outcome_refuter", {}),
    }
    base = estimates.get(refute_learner)
    if base is None:
        raise ValueError(f"refute_learner {refute_learner!r} must be one of the learners")
    for label, (method, kw) in refuters.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = model.refute_estimate(estimand, base, method_name=method,
                                        num_simulations=refute_simulations,
                                        random_seed=refute_seed, **kw)
        res = res[0] if isinstance(res, list) else res
        p_value = (res.refutation_result or {}).get("p_value", np.nan)
        refutations.append({"refuter": label, "original": float(base.value),
                            "new": float(np.ravel(res.new_effect)[0]),
                            "p_value": float(p_value)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sens = model.refute_estimate(
            estimand, linear, method_name="add_unobserved_common_cause",
            simulation_method="linear-partial-R2", benchmark_common_causes=[adjust[0]],
            effect_fraction_on_treatment=[1.0], plot_estimate=False)
    return {
        "estimand": str(estimand.estimands["backdoor"]["estimand"]),
        "adjustment": adjust,
        "estimates": pd.DataFrame(rows),
        "refutations": pd.DataFrame(refutations),
        "robustness_value": float(sens.stats["robustness_value"]),
        "n": len(data),
        "name": name,
    }


def _dowhy_bootstrap(data: pd.DataFrame, model: Any, estimand: Any, label: str, target: str,
                     n_boot: int, seed: int) -> float:
    """Bootstrap standard error of DoWhy's own linear-regression or IPW estimate."""
    from dowhy import CausalModel

    method = ("backdoor.linear_regression" if label == "DoWhy linear regression"
              else "backdoor.propensity_score_weighting")
    rng = np.random.default_rng(seed)
    t = data[model._treatment[0]].to_numpy(int)
    arms = [np.flatnonzero(t == a) for a in (0, 1)]
    values = []
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(a, size=len(a), replace=True) for a in arms])
        sample = data.iloc[idx].reset_index(drop=True)
        m = CausalModel(data=sample, treatment=model._treatment, outcome=model._outcome,
                        graph=model._graph._graph)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values.append(float(m.estimate_effect(estimand, method_name=method,
                                                  target_units=target).value))
    return float(np.std(values, ddof=1))


# ---------------------------------------------------------------------------------------------
# Part B: criteria where the truth is known
# ---------------------------------------------------------------------------------------------


def truth_data(name: str, n: int, seed: int, replicate: int, *,
               constant: bool = False) -> dict[str, Any]:
    """One replicate of a Part B data set: covariates, treatment, outcome and the true effect.

    ``ihdp``: NPCI realization ``replicate + 1`` (747 units; ``n`` is ignored). ``respiratory``
    and ``cardiac``: the AACE simulators with every record annotated; the covariates are the
    annotation space (annotations and tabular columns), where the effect is identified.
    ``spine``: the approach decision of the spine simulator; the outcome is any complication
    (class > 0) and the effect the change in its probability, :math:`-\\tau_0`.

    ``constant=True`` (additive data sets only) removes the heterogeneity from the generated
    outcomes, :math:`Y' = Y - T(\\tau - \\bar\\tau)`: the true effect becomes the constant
    :math:`\\bar\\tau` for everyone, with every other part of the data unchanged.
    """
    from ..data import load_ihdp, simulate_spine
    from .aace import simulate

    if name == "ihdp":
        ds = load_ihdp(replicate % 50 + 1)
        X = ds.X.to_numpy(float)
        T, Y, tau = ds.T, ds.Y.astype(float), ds.tau.astype(float)
    elif name in ("respiratory", "cardiac"):
        ds = simulate(name, n, seed, annotated=1.0)
        X = np.hstack([ds.annotations.to_numpy(float), ds.X.to_numpy(float)])
        T, Y, tau = ds.T, ds.Y.astype(float), ds.tau.astype(float)
    elif name == "spine":
        ds = simulate_spine(n, seed)["approach"]
        X = ds.X.to_numpy(float)
        T, Y, tau = ds.T, (ds.Y > 0).astype(float), -np.asarray(ds.tau)[:, 0]
    else:
        raise ValueError(f"unknown data set {name!r}; use one of {TRUTH_DATASETS}")
    if constant:
        if name not in ADDITIVE:
            raise ValueError(f"constant=True needs an additive outcome; {name!r} is not one")
        Y = Y - T * (tau - tau.mean())
        tau = np.full_like(tau, tau.mean())
    return {"X": X, "T": np.asarray(T).astype(int), "Y": Y, "tau": tau}


def halves(T: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A random split into a fitting half and an evaluation half, stratified by treatment."""
    rng = np.random.default_rng(seed)
    fit = np.zeros(len(T), dtype=bool)
    for arm in (0, 1):
        idx = rng.permutation(np.flatnonzero(T == arm))
        fit[idx[: len(idx) // 2]] = True
    return np.flatnonzero(fit), np.flatnonzero(~fit)


@dataclass(frozen=True)
class TruthCell:
    """One replicate of one Part B data set, with the learners to judge."""

    dataset: str
    replicate: int
    seed: int
    n: int
    learners: tuple[str, ...]
    params: dict[str, dict[str, Any]]
    nuisance: str
    n_boot: int

    def key(self) -> dict[str, Any]:
        """The cell as a JSON-serialisable cache key."""
        return {"part": "truth", **asdict(self)}


def _fit_learners(cell: Any, d: Mapping[str, np.ndarray], fit: np.ndarray,
                  ev: np.ndarray) -> dict[str, np.ndarray]:
    out = {}
    for name in cell.learners:
        model = make(name, random_state=cell.seed, **cell.params.get(name, {}))
        model.fit(d["Y"][fit], d["T"][fit], X=d["X"][fit])
        out[name] = model.effect(d["X"][ev])
    return out


def truth_cell(cell: TruthCell) -> list[dict[str, Any]]:
    """Fit every learner on one half, score every criterion and the true PEHE on the other."""
    d = truth_data(cell.dataset, cell.n, cell.seed, cell.replicate)
    fit, ev = halves(d["T"], cell.seed)
    effects = _fit_learners(cell, d, fit, ev)
    nuis = fit_nuisances(d["Y"][ev], d["T"][ev], d["X"][ev], nuisance=cell.nuisance,
                         random_state=cell.seed)
    table = evaluate(effects, nuis, n_boot=cell.n_boot, random_state=cell.seed)
    rows = []
    for row in table.to_dict("records"):
        tau_hat = effects[row["learner"]]
        row.update(dataset=cell.dataset, replicate=cell.replicate,
                   pehe=float(np.sqrt(np.mean((tau_hat - d["tau"][ev]) ** 2))),
                   nuisance_outcome=nuis.selection.get("outcome", cell.nuisance),
                   nuisance_propensity=nuis.selection.get("propensity", cell.nuisance))
        rows.append({k: (float(v) if isinstance(v, np.floating) else v) for k, v in row.items()})
    return rows


def _agreement(values: np.ndarray, pehe: np.ndarray, larger_better: bool) -> float:
    key = -values if larger_better else values
    ok = np.isfinite(key)
    if ok.sum() < 3 or np.all(key[ok] == key[ok][0]):
        return float("nan")
    return float(kendalltau(key[ok], pehe[ok]).statistic)


def criterion_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per data set and criterion: Kendall tau with the true PEHE, hit rate and regret.

    For each replicate: Kendall's :math:`\\tau_b` between the criterion (oriented so that
    smaller means "better" in the criterion's own sense) and the true PEHE across learners (1:
    the same order); whether the criterion's pick (:func:`ehrcausal.validate.select`) is the
    learner with the smallest true PEHE; and its regret, the pick's PEHE minus the smallest.
    The row ``random pick`` is the expected regret of a uniformly random learner.
    Means and standard errors over replicates.
    """
    out = []
    for dataset, by_data in rows.groupby("dataset", sort=False):
        per = []
        for _, rep in by_data.groupby("replicate"):
            rep = rep.reset_index(drop=True)
            pehe = rep.pehe.to_numpy(float)
            best = float(pehe.min())
            per.append({"criterion": "random pick", "tau": np.nan, "hit": 1 / len(rep),
                        "regret": float(pehe.mean() - best)})
            for crit, larger in CRITERIA.items():
                if crit not in rep or not np.isfinite(rep[crit].to_numpy(float)).any():
                    continue
                pick = select(rep, crit)
                picked = float(rep.loc[rep.learner == pick, "pehe"].iloc[0])
                per.append({"criterion": crit,
                            "tau": _agreement(rep[crit].to_numpy(float), pehe, larger),
                            "hit": float(picked == best), "regret": picked - best})
        frame = pd.DataFrame(per)
        g = frame.groupby("criterion", sort=False)
        summary = pd.concat([g.mean().add_suffix("_mean"),
                             (g.std(ddof=1) / np.sqrt(g.count())).add_suffix("_se")], axis=1)
        summary.insert(0, "replicates", g.size())
        summary.insert(0, "dataset", dataset)
        out.append(summary.reset_index())
    return pd.concat(out, ignore_index=True)


@dataclass(frozen=True)
class RateCell:
    """One replicate of the RATE test: heterogeneous or constant effect."""

    dataset: str
    replicate: int
    seed: int
    n: int
    constant: bool
    learner: str
    params: dict[str, Any]
    nuisance: str
    n_boot: int

    def key(self) -> dict[str, Any]:
        """The cell as a JSON-serialisable cache key."""
        return {"part": "rate", **asdict(self)}


def rate_cell(cell: RateCell) -> dict[str, Any]:
    """Fit the prioritising learner on one half, test its AUTOC on the other (two-sided 5 %)."""
    d = truth_data(cell.dataset, cell.n, cell.seed, cell.replicate, constant=cell.constant)
    fit, ev = halves(d["T"], cell.seed)
    model = make(cell.learner, random_state=cell.seed, **cell.params)
    model.fit(d["Y"][fit], d["T"][fit], X=d["X"][fit])
    nuis = fit_nuisances(d["Y"][ev], d["T"][ev], d["X"][ev], nuisance=cell.nuisance,
                         random_state=cell.seed)
    # lower outcomes are better in the AACE simulators: rank by benefit, -tau there
    sign = -1.0 if cell.dataset in ("respiratory", "cardiac") else 1.0
    res = rate(sign * nuis.scores, sign * model.effect(d["X"][ev]), n_boot=cell.n_boot,
               random_state=cell.seed)
    return {"dataset": cell.dataset, "replicate": cell.replicate, "constant": cell.constant,
            "autoc": res.estimate, "se": res.stderr, "p_value": res.p_value,
            "reject": bool(res.p_value < 0.05)}


def rate_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Rejection rate (mean and binomial s.e.) per data set, under a constant and a varying effect."""
    g = rows.groupby(["dataset", "constant"], sort=False)["reject"]
    out = g.agg(["mean", "count"]).reset_index()
    out["se"] = np.sqrt(out["mean"] * (1 - out["mean"]) / out["count"])
    return out.rename(columns={"mean": "rejection_rate", "count": "replicates"})


# ---------------------------------------------------------------------------------------------
# Part C: the criteria on real data
# ---------------------------------------------------------------------------------------------


def real_cell(data: pd.DataFrame, treatment: str, outcome: str, confounders: Sequence[str], *,
              learners: Sequence[str], params: Mapping[str, Mapping[str, Any]], nuisance: str,
              n_boot: int, random_state: int = 0) -> dict[str, Any]:
    """The criteria of :mod:`ehrcausal.validate` for the learners on one real data set.

    Learners are fitted on a random half (stratified by treatment) and judged on the other;
    returns the :func:`ehrcausal.validate.evaluate` table, each criterion's pick, the chosen
    nuisances and the RATE (AUTOC) of the DR-loss pick with its two-sided p-value.
    """
    seed = check_seed(random_state)
    d = {"X": data[list(confounders)].to_numpy(float), "T": data[treatment].to_numpy(int),
         "Y": data[outcome].to_numpy(float)}
    fit, ev = halves(d["T"], seed)

    @dataclass
    class _Cell:
        learners: Sequence[str]
        params: Mapping[str, Mapping[str, Any]]
        seed: int

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OverlapWarning)
        effects = _fit_learners(_Cell(learners, params, seed), d, fit, ev)
        nuis = fit_nuisances(d["Y"][ev], d["T"][ev], d["X"][ev], nuisance=nuisance,
                             random_state=seed)
    table = evaluate(effects, nuis, n_boot=n_boot, random_state=seed)
    picks = {crit: select(table, crit) for crit in CRITERIA
             if np.isfinite(table[crit].to_numpy(float)).any()}
    top = picks.get("dr_loss", list(learners)[0])
    het = rate(nuis.scores, effects[top], n_boot=n_boot, random_state=seed)
    return {"table": table, "picks": picks, "selection": nuis.selection,
            "rate_top": top, "rate": het, "n_eval": len(ev)}


def fmt_estimate(row: Mapping[str, float], digits: int = 0) -> str:
    """``estimate [lower, upper]`` of an estimates row."""
    return (f"{row['estimate']:,.{digits}f} [{row['lower']:,.{digits}f}, "
            f"{row['upper']:,.{digits}f}]")


def truth_cells(cfg: Config) -> list[TruthCell]:
    """Every Part B cell: data set x replicate."""
    params = cfg.params(cfg.learners)
    return [TruthCell(ds, r, s, cfg.n, tuple(cfg.learners), params, cfg.nuisance, cfg.n_boot)
            for ds in cfg.datasets for r, s in enumerate(cfg.seeds)]


def rate_cells(cfg: Config) -> list[RateCell]:
    """Every RATE-test cell: data set x constant/varying effect x replicate."""
    seeds = child_seeds(cfg.seed + 1, cfg.rate_replicates)
    params = cfg.params([cfg.rate_learner])[cfg.rate_learner]
    return [RateCell(ds, r, s, cfg.rate_n, constant, cfg.rate_learner, params,
                     cfg.rate_nuisance, cfg.n_boot)
            for ds in cfg.rate_datasets for constant in (True, False)
            for r, s in enumerate(seeds)]


def run_part_b(cfg: Config, *, n_jobs: int = 1, cache_dir: Any = None,
               progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Part B's tidy tables: criteria rows and RATE-test rows."""
    truth = run_cached(truth_cell, truth_cells(cfg), n_jobs=n_jobs, cache_dir=cache_dir,
                       namespace="trust", progress=progress, desc="part B fits")
    rates = run_cached(rate_cell, rate_cells(cfg), n_jobs=n_jobs, cache_dir=cache_dir,
                       namespace="trust", progress=progress, desc="RATE tests")
    return pd.DataFrame([r for rows in truth for r in rows]), pd.DataFrame(rates)


def criterion_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The Part B table for the book: tau, hit rate and regret per data set and criterion."""
    labels = {**CRITERION_LABELS, "random pick": "random pick"}
    out = pd.DataFrame({
        "data set": summary.dataset,
        "criterion": [labels[c] for c in summary.criterion],
        "Kendall τ": [pm(m, s, 2) for m, s in zip(summary.tau_mean, summary.tau_se, strict=True)],
        "hit rate": [pm(m, s, 2) for m, s in zip(summary.hit_mean, summary.hit_se, strict=True)],
        "regret": [pm(m, s, 3) for m, s in
                   zip(summary.regret_mean, summary.regret_se, strict=True)],
    })
    return out.set_index(["data set", "criterion"])


def regret_readings(summary: pd.DataFrame) -> dict[str, Any]:
    """The best criterion by regret averaged over data sets, against a random pick."""
    mean = summary.groupby("criterion", sort=False).regret_mean.mean()
    random = float(mean.pop("random pick"))
    best = str(mean.idxmin())
    return {"best_criterion": Md(CRITERION_LABELS[best]), "best_regret": float(mean[best]),
            "random_regret": float(random),
            "regret_ratio": float(mean[best] / random) if random > 0 else float("nan"),
            "half_met": Md("yes" if mean[best] <= 0.5 * random else "no")}


# ---------------------------------------------------------------------------------------------
# what the chapter shows
# ---------------------------------------------------------------------------------------------


def estimates_table(study: Mapping[str, Any], benchmark: float | None = None,
                    digits: int = 0) -> pd.DataFrame:
    """Part A's estimates for the book: estimate [95 % interval] and, with a benchmark, the gap."""
    est = study["estimates"]
    out = pd.DataFrame({"method": est.method,
                        "estimate [95 % CI]": [fmt_estimate(r, digits)
                                               for r in est.to_dict("records")]})
    if benchmark is not None:
        out["minus benchmark"] = [f"{v - benchmark:+,.{digits}f}" for v in est.estimate]
        out["benchmark in CI"] = ["yes" if lo <= benchmark <= hi else "no"
                                  for lo, hi in zip(est.lower, est.upper, strict=True)]
    return out.set_index("method")


def refutation_table(study: Mapping[str, Any], digits: int = 2) -> pd.DataFrame:
    """Part A's refutations: the estimate before and after each refuter, with DoWhy's p-value."""
    ref = study["refutations"]
    return pd.DataFrame({
        "refuter": ref.refuter,
        "estimate": [f"{v:,.{digits}f}" for v in ref.original],
        "after refutation": [f"{v:,.{digits}f}" for v in ref.new],
        "p-value": [f"{p:.2f}" for p in ref.p_value],
    }).set_index("refuter")


def part_a_readings(study: Mapping[str, Any], prefix: str, benchmark: float,
                    learners: Sequence[str]) -> dict[str, Any]:
    """Numbers the prose glues for one Part A data set."""
    est = study["estimates"].set_index("method")
    ref = study["refutations"].set_index("refuter")
    out: dict[str, Any] = {
        f"{prefix}_n": int(study["n"]),
        f"{prefix}_n_adjust": len(study["adjustment"]),
        f"{prefix}_rv": 100 * study["robustness_value"],
        f"{prefix}_placebo": float(ref.loc["placebo treatment", "new"]),
        f"{prefix}_dummy": float(ref.loc["dummy outcome", "new"]),
        f"{prefix}_rcc": float(ref.loc["random common cause", "new"]),
        f"{prefix}_subset": float(ref.loc["data subset (80 %)", "new"]),
    }
    covered = [m for m in est.index if est.loc[m, "lower"] <= benchmark <= est.loc[m, "upper"]]
    gaps = {m: float(est.loc[m, "estimate"] - benchmark) for m in est.index}
    out[f"{prefix}_covered"] = len(covered)
    out[f"{prefix}_methods"] = len(est)
    nearest = min(gaps, key=lambda m: abs(gaps[m]))
    farthest = max(gaps, key=lambda m: abs(gaps[m]))
    out[f"{prefix}_nearest"] = Md(nearest)
    out[f"{prefix}_nearest_gap"] = gaps[nearest]
    out[f"{prefix}_farthest"] = Md(farthest)
    out[f"{prefix}_farthest_gap"] = gaps[farthest]
    for m in learners:
        out[f"{prefix}_{m}"] = float(est.loc[m, "estimate"])
    return out


def criteria_figure(summary: pd.DataFrame) -> Any:
    """Kendall tau with the true PEHE and regret, by criterion and data set (mean ± s.e.)."""
    import matplotlib.pyplot as plt

    crits = [c for c in CRITERION_LABELS if c in set(summary.criterion)]
    datasets = list(dict.fromkeys(summary.dataset))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    width = 0.8 / max(len(datasets), 1)
    for j, ds in enumerate(datasets):
        sub = summary[summary.dataset == ds].set_index("criterion")
        x = np.arange(len(crits)) + (j - (len(datasets) - 1) / 2) * width
        axes[0].bar(x, sub.loc[crits, "tau_mean"], width, yerr=sub.loc[crits, "tau_se"],
                    label=ds, capsize=2)
        regret = sub.loc[crits, "regret_mean"] / max(sub.loc["random pick", "regret_mean"], 1e-12)
        axes[1].bar(x, regret, width, label=ds)
    for ax in axes:
        ax.set_xticks(np.arange(len(crits)))
        ax.set_xticklabels([CRITERION_LABELS[c] for c in crits], rotation=35, ha="right")
    axes[0].axhline(0, color="grey", lw=0.8)
    axes[0].set_ylabel("Kendall τ with true PEHE")
    axes[1].axhline(1, color="grey", lw=0.8, ls=":")
    axes[1].axhline(0.5, color="grey", lw=0.8, ls="--")
    axes[1].set_ylabel("regret / regret of a random pick")
    axes[1].legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def rate_readings(summary: pd.DataFrame) -> dict[str, Any]:
    """False-positive rate at a constant effect and power, pooled and per data set."""
    out: dict[str, Any] = {}
    for constant, key in ((True, "fpr"), (False, "power")):
        sub = summary[summary.constant == constant]
        reps = int(sub.replicates.sum())
        rate_ = float((sub.rejection_rate * sub.replicates).sum() / reps)
        out[key] = rate_
        out[f"{key}_se"] = float(np.sqrt(rate_ * (1 - rate_) / reps))
        out[f"{key}_replicates"] = reps
        for row in sub.itertuples():
            out[f"{key}_{row.dataset}"] = float(row.rejection_rate)
    bound = 0.05 + 2 * max(out["fpr_se"], np.sqrt(0.05 * 0.95 / out["fpr_replicates"]))
    out["fpr_bound"] = float(bound)
    out["fpr_met"] = Md("yes" if out["fpr"] <= bound else "no")
    return out


def rate_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Rejection rates of the RATE test by data set: constant effect (false positives), varying."""
    rows = []
    for ds in dict.fromkeys(summary.dataset):
        sub = summary[summary.dataset == ds].set_index("constant")
        rows.append({"data set": ds, "replicates": int(sub.loc[True, "replicates"]),
                     "constant effect (false positives)":
                         pm(sub.loc[True, "rejection_rate"], sub.loc[True, "se"], 2),
                     "varying effect (power)":
                         pm(sub.loc[False, "rejection_rate"], sub.loc[False, "se"], 2)})
    return pd.DataFrame(rows).set_index("data set")


def real_table(result: Mapping[str, Any]) -> pd.DataFrame:
    """Part C's criteria per learner (estimate ± s.e.), with each criterion's pick starred."""
    table = result["table"]
    out = pd.DataFrame({"learner": table.learner})
    for crit, label in CRITERION_LABELS.items():
        if crit not in table:
            continue
        pick = result["picks"].get(crit)
        out[label] = [pm(v, s, 3 if abs(v) < 100 else 0) + (" *" if name == pick else "")
                      for name, v, s in zip(table.learner, table[crit], table[f"{crit}_se"],
                                            strict=True)]
    return out.set_index("learner")


def real_readings(result: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """Numbers the Part C prose glues for one data set."""
    picks = result["picks"]
    agree = picks.get("r_loss") == picks.get("dr_loss")
    het = result["rate"]
    return {
        f"{prefix}_pick_dr": Md(picks.get("dr_loss", "none")),
        f"{prefix}_pick_r": Md(picks.get("r_loss", "none")),
        f"{prefix}_picks_agree": Md("agree" if agree else "disagree"),
        f"{prefix}_rate": het.estimate,
        f"{prefix}_rate_lo": het.ci[0],
        f"{prefix}_rate_hi": het.ci[1],
        f"{prefix}_rate_p": het.p_value,
        f"{prefix}_het": Md("detectable" if het.p_value < 0.05 else "not detectable"),
        f"{prefix}_n_eval": int(result["n_eval"]),
        f"{prefix}_nuis": Md(", ".join(f"{k}: {v}" for k, v in result["selection"].items())
                             or "fixed"),
    }
