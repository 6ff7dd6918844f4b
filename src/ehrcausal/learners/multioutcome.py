"""Learners whose outcome is a class label or a vector, fitted on one task or on several.

For a **class** outcome ``Y in {0, ..., C-1}`` the effect of the treatment on unit ``x`` is the
vector of per-class probability differences

    tau_c(x) = P(Y = c | do(T = 1), x) - P(Y = c | do(T = 0), x),    c = 0, ..., C-1,

whose entries sum to zero; ``predict_outcomes`` returns the two ``(n, C)`` probability matrices
``(p0(x), p1(x))``. For a **continuous** outcome ``Y`` of shape ``(n,)`` or ``(n, D)`` the effect
is ``tau(x) = E[Y(1) - Y(0) | x]`` of shape ``(n,)`` or ``(n, D)`` (one column per domain).

**Tasks.** A *task* is one treatment decision with its own patients, treatment and outcome
(e.g. "anterior vs posterior approach" with complication classes, "surgery vs none" with
patient-reported outcome domains; Tamo et al. 2025). ``fit_tasks`` fits several tasks at once;
multitask learners share a representation across them, the others fit one independent copy per
task (the default of this base class). ``effect(X, task=...)`` and
``predict_outcomes(X, task=...)`` name the task; the single-task protocol ``fit(Y, T, X=X)``
registers one task named ``"default"`` and keeps working as for every other learner.

Subclasses that are single-task by nature implement ``_fit_one(task, seed, **fit_params)`` and
``_outcomes_one(X)`` (and ``_effect_one(X)`` when the effect is not ``mu1 - mu0``); multitask
subclasses override ``_fit_tasks``, ``_task_outcomes`` and ``_task_effect``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from ..runtime import check_seed, child_seeds
from ..validation import (
    as_2d,
    check_arms,
    check_feature_names,
    check_int,
    check_same_length,
    check_treatment,
    feature_names,
)
from .base import CATELearner

OUTCOMES = ("class", "continuous")
DEFAULT_TASK = "default"


@dataclass(frozen=True)
class TaskSpec:
    """What a fitted task looks like: its outcome kind and output width.

    ``n_outputs`` is C (classes) for a class outcome and D (domains) for a continuous one;
    ``vector`` says whether the effect of a continuous task is returned as ``(n, D)`` (the
    outcome was given as a 2-d array) or ``(n,)``.
    """

    name: str
    outcome: str
    n_outputs: int
    vector: bool

    @property
    def n_classes(self) -> int | None:
        return self.n_outputs if self.outcome == "class" else None


@dataclass
class OutcomeTask:
    """The validated training data of one task.

    ``Y`` holds integer labels ``(n,)`` for a class outcome and floats ``(n, D)`` for a
    continuous one (a 1-d outcome becomes one column).
    """

    spec: TaskSpec
    X: np.ndarray
    T: np.ndarray
    Y: np.ndarray

    @property
    def name(self) -> str:
        return self.spec.name

    def targets(self) -> np.ndarray:
        """Training targets as an ``(n, K)`` float array: one-hot labels or the outcome."""
        if self.spec.outcome == "class":
            return np.eye(self.spec.n_outputs)[self.Y]
        return self.Y.astype(float)


def check_class_labels(Y: Any, n_classes: int | None, name: str = "Y") -> tuple[np.ndarray, int]:
    """Validate integer class labels in ``0..C-1``; return them as ints and ``C``.

    ``C`` is ``n_classes`` when given, otherwise the largest label plus one (at least 2).
    """
    arr = np.asarray(Y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(
            f"{name} for a class outcome must be one column of integer labels, got shape "
            f"{arr.shape}; pass outcome='continuous' for vector outcomes"
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if arr.dtype == bool:
        arr = arr.astype(int)
    try:
        values = arr.astype(float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must hold integer class labels: {exc}") from exc
    n_nan = int(np.isnan(values).sum())
    if n_nan:
        raise ValueError(f"{name} contains {n_nan} NaN value(s)")
    n_inf = int(np.isinf(values).sum())
    if n_inf:
        raise ValueError(f"{name} contains {n_inf} infinite value(s)")
    fractional = np.unique(values[values != np.round(values)])
    if fractional.size:
        shown = ", ".join(f"{v:g}" for v in fractional[:6])
        raise ValueError(
            f"{name} must hold integer class labels 0..C-1, got non-integer value(s) {{{shown}}}"
        )
    labels = values.astype(int)
    if n_classes is None:
        C = max(int(labels.max()) + 1, 2)
    else:
        C = check_int(n_classes, "n_classes", 2)
    bad = np.unique(labels[(labels < 0) | (labels >= C)])
    if bad.size:
        shown = ", ".join(str(v) for v in bad[:6])
        raise ValueError(
            f"{name} has class label(s) {{{shown}}} outside 0..{C - 1} (C = {C}); labels must be "
            "integers 0..C-1"
        )
    return labels, C


def _check_continuous(Y: Any, name: str = "Y") -> tuple[np.ndarray, bool]:
    """Continuous outcome as a finite ``(n, D)`` float array; whether it was given as 2-d."""
    arr = np.asarray(Y)
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name} must have shape (n,) or (n, D), got shape {arr.shape}")
    vector = arr.ndim == 2
    return as_2d(arr, name), vector


class MultiOutcomeLearner(CATELearner):
    """Base of the learners for class and vector outcomes, on one task or several.

    Parameters (of every subclass)
    ------------------------------
    outcome : "class" (integer labels 0..C-1; effect ``(n, C)`` of probability differences)
        or "continuous" (``(n,)`` or ``(n, D)``; effect of the same shape). The default kind of
        every task; ``fit_tasks(..., outcomes=...)`` or a dataset's ``meta["outcome"]`` override
        it per task.
    n_classes : the number of classes C of class outcomes; None infers it per task as the
        largest label + 1 (at least 2).

    Fitted attributes
    -----------------
    tasks_ : dict task name -> :class:`TaskSpec`.
    n_classes_, n_outputs_ : int when one task was fitted (``n_classes_`` is None for a continuous
        outcome); a dict keyed by task name when several were.
    n_features_in_ (and ``feature_names_in_`` for DataFrames) : as every learner.
    """

    models_outcomes = True

    # ---- fitting --------------------------------------------------------------------------
    def fit(self, Y: Any, T: Any, *, X: Any, **fit_params: Any) -> MultiOutcomeLearner:
        """Fit one task (named ``"default"``) on labels/outcomes ``Y``, treatment ``T``, ``X``."""
        return self.fit_tasks({DEFAULT_TASK: (Y, T, X)}, **fit_params)

    def fit_tasks(
        self,
        tasks: Mapping[str, Any],
        *,
        outcomes: Mapping[str, str] | None = None,
        **fit_params: Any,
    ) -> MultiOutcomeLearner:
        """Fit several tasks: ``tasks`` maps a name to ``(Y, T, X)`` or a ``CausalDataset``.

        A dataset contributes all its rows. The outcome kind of a task comes from
        ``outcomes[name]``, else from ``ds.meta["outcome"]`` for a dataset, else from the
        ``outcome`` parameter. All tasks must have the same covariate columns (DataFrame tasks:
        the same names in the same order, as every later ``X``). Per-task fit
        arguments (e.g. ``val_mask``) are mappings task name -> value; with a single task a plain
        value is accepted too.
        """
        self._check_base_params()
        if not isinstance(tasks, Mapping) or len(tasks) == 0:
            raise ValueError("tasks must be a non-empty mapping task name -> (Y, T, X) or dataset")
        outcomes = dict(outcomes or {})
        unknown = sorted(set(outcomes) - set(tasks))
        if unknown:
            raise ValueError(f"outcomes names unknown task(s) {unknown}; tasks: {list(tasks)}")
        several = len(tasks) > 1
        data: dict[str, OutcomeTask] = {}
        names, names_from = None, None
        for name, value in tasks.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"task names must be non-empty strings, got {name!r}")
            Y, T, X, kind = self._unpack_task(name, value, outcomes.get(name))
            try:
                data[name] = self._validate_task(name, Y, T, X, kind)
            except ValueError as exc:
                if several:
                    raise ValueError(f"task {name!r}: {exc}") from exc
                raise
            # DataFrame tasks share their columns, by name and in order (arrays are not checked)
            check_feature_names(X, names, f"X of task {name!r} (against task {names_from!r})")
            if names is None and feature_names(X) is not None:
                names, names_from = feature_names(X), name
        widths = {k: v.X.shape[1] for k, v in data.items()}
        if len(set(widths.values())) > 1:
            raise ValueError(f"all tasks must have the same covariate columns; widths: {widths}")
        for attr in ("fitted_", "task_estimators_"):
            if hasattr(self, attr):
                delattr(self, attr)
        # feature_names_in_ from the first DataFrame task; deleted when every task is an array
        self._record_features(names, next(iter(widths.values())))
        self.tasks_ = {k: v.spec for k, v in data.items()}
        if several:
            self.n_classes_ = {k: s.n_classes for k, s in self.tasks_.items()}
            self.n_outputs_ = {k: s.n_outputs for k, s in self.tasks_.items()}
        else:
            spec = next(iter(self.tasks_.values()))
            self.n_classes_, self.n_outputs_ = spec.n_classes, spec.n_outputs
        seed = check_seed(self.random_state)
        self._fit_tasks(data, seed, **fit_params)
        self.fitted_ = True
        return self

    def _check_base_params(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {self.outcome!r}")
        if self.n_classes is not None:
            check_int(self.n_classes, "n_classes", 2)

    def _unpack_task(self, name: str, value: Any, kind: str | None) -> tuple[Any, Any, Any, str]:
        from ..data.dataset import CausalDataset

        if isinstance(value, CausalDataset):
            Y, T, X = value.Y, value.T, value.X
            kind = kind or value.meta.get("outcome")
        elif isinstance(value, tuple | list) and len(value) == 3:
            Y, T, X = value
        else:
            raise ValueError(
                f"task {name!r} must be a (Y, T, X) tuple or a CausalDataset, got "
                f"{type(value).__name__}"
            )
        kind = kind or self.outcome
        if kind not in OUTCOMES:
            raise ValueError(f"task {name!r}: outcome must be one of {OUTCOMES}, got {kind!r}")
        return Y, T, X, kind

    def _validate_task(self, name: str, Y: Any, T: Any, X: Any, kind: str) -> OutcomeTask:
        t = check_treatment(T)
        x = as_2d(X, "X")
        if kind == "class":
            y, C = check_class_labels(Y, self.n_classes)
            spec = TaskSpec(name, kind, C, True)
        else:
            y, vector = _check_continuous(Y)
            spec = TaskSpec(name, kind, y.shape[1], vector)
        check_same_length(Y=y, T=t, X=x)
        check_arms(t, *self._arm_minimum())
        return OutcomeTask(spec, x, t, y)

    def _fit_tasks(self, tasks: dict[str, OutcomeTask], seed: int, **fit_params: Any) -> None:
        """Default: one independent copy of this learner per task (single-task learners)."""
        if len(tasks) == 1:
            task = next(iter(tasks.values()))
            self._fit_one(task, seed, **self._task_params(fit_params, task.name, 1))
            return
        seeds = child_seeds(seed, len(tasks))
        self.task_estimators_ = {}
        for (name, task), s in zip(tasks.items(), seeds, strict=True):
            est = clone(self)
            est._fit_one(task, s, **self._task_params(fit_params, name, len(tasks)))
            self.task_estimators_[name] = est

    @staticmethod
    def _task_params(fit_params: dict[str, Any], name: str, n_tasks: int) -> dict[str, Any]:
        """The fit arguments of one task: mapping values are looked up by task name."""
        out = {}
        for key, value in fit_params.items():
            if isinstance(value, Mapping):
                if name in value:
                    out[key] = value[name]
            elif n_tasks > 1 and value is not None:
                raise ValueError(
                    f"{key} must be a mapping task name -> value when several tasks are fitted"
                )
            else:
                out[key] = value
        return out

    def _fit_one(self, task: OutcomeTask, seed: int, **fit_params: Any) -> None:
        raise NotImplementedError

    # ---- inference ------------------------------------------------------------------------
    def _resolve_task(self, task: str | None) -> TaskSpec:
        check_is_fitted(self, "fitted_")
        if task is None:
            if len(self.tasks_) > 1:
                raise ValueError(
                    f"several tasks were fitted ({', '.join(self.tasks_)}); pass task=<name>"
                )
            return next(iter(self.tasks_.values()))
        if task not in self.tasks_:
            raise ValueError(f"unknown task {task!r}; fitted tasks: {list(self.tasks_)}")
        return self.tasks_[task]

    def _shape(self, values: np.ndarray, spec: TaskSpec) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        values = values.reshape(len(values), spec.n_outputs)
        return values if spec.vector else values[:, 0]

    def effect(self, X: Any, task: str | None = None) -> np.ndarray:
        """Estimated effect of ``task`` (required when several tasks were fitted).

        Class outcome: ``(n, C)`` differences of class probabilities under T=1 and T=0.
        Continuous outcome: ``(n,)`` or ``(n, D)``, as the outcome was given.
        """
        spec = self._resolve_task(task)
        x = self._check_X(X)
        return self._shape(self._task_effect(x, spec.name), spec)

    def predict_outcomes(self, X: Any, task: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(mu0(x), mu1(x))``: class probabilities ``(n, C)`` or outcome means of ``task``."""
        spec = self._resolve_task(task)
        x = self._check_X(X)
        mu0, mu1 = self._task_outcomes(x, spec.name)
        return self._shape(mu0, spec), self._shape(mu1, spec)

    def ate(self, X: Any, task: str | None = None) -> float | np.ndarray:
        """Mean effect over ``X``: a float for a scalar outcome, else one value per column."""
        tau = self.effect(X, task=task)
        return float(tau.mean()) if tau.ndim == 1 else tau.mean(axis=0)

    def _estimator_for(self, name: str) -> MultiOutcomeLearner:
        return self.task_estimators_[name] if hasattr(self, "task_estimators_") else self

    def _task_outcomes(self, X: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
        return self._estimator_for(name)._outcomes_one(X)

    def _task_effect(self, X: np.ndarray, name: str) -> np.ndarray:
        return self._estimator_for(name)._effect_one(X)

    def _outcomes_one(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _effect_one(self, X: np.ndarray) -> np.ndarray:
        mu0, mu1 = self._outcomes_one(X)
        return mu1 - mu0
