"""Registry of the learners the book uses, with what each one needs.

Every learner is registered once, with its metadata:

- ``family`` -- which chapters can use it: ``"cate"`` (needs only ``(Y, T, X)``; the IHDP
  benchmark), ``"aace"`` (annotation-assisted policies and their baselines) or
  ``"multi_outcome"`` (class or multi-domain outcomes, several decisions, ``fit_tasks``) or
  ``"multitask"`` (prediction of many tasks from several modalities, no treatment:
  ``fit(modalities, targets, tasks=...)``, :mod:`ehrcausal.learners.m3h`);
- ``budget`` -- the budget knobs it takes: ``epochs`` and ``device`` (torch learners),
  ``n_estimators`` (forest-based learners);
- ``fit_inputs`` -- the extra keyword arguments its ``fit`` (or ``fit_tasks``) accepts, such as
  ``val_mask``, ``annotations``, ``confounders`` or ``tau``.

Chapters ask the registry (:func:`available`, :func:`spec`, :func:`budget_params`) instead of
keeping lists of names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .base import CATELearner

#: the learner families, in the order the book introduces them
FAMILIES: tuple[str, ...] = ("cate", "aace", "multi_outcome", "multitask")
#: the budget knobs a learner may declare
BUDGET_KNOBS: tuple[str, ...] = ("epochs", "device", "n_estimators")


@dataclass(frozen=True)
class LearnerSpec:
    """What the registry knows of one learner name."""

    name: str
    factory: Callable[..., CATELearner]
    description: str
    family: str
    budget: tuple[str, ...] = ()
    fit_inputs: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def torch(self) -> bool:
        """Whether the learner trains torch networks (it takes ``device``, and ``epochs`` unless
        its training length is part of a fixed published configuration)."""
        return "device" in self.budget


_REGISTRY: dict[str, LearnerSpec] = {}


def register(
    name: str,
    factory: Callable[..., CATELearner],
    description: str = "",
    *,
    family: str,
    budget: Sequence[str] = (),
    fit_inputs: Sequence[str] = (),
    **defaults: Any,
) -> None:
    """Register ``factory`` (a learner class) under ``name`` with default parameters."""
    if name in _REGISTRY:
        raise ValueError(f"learner {name!r} is already registered")
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    unknown = sorted(set(budget) - set(BUDGET_KNOBS))
    if unknown:
        raise ValueError(f"unknown budget knob(s) {unknown}; known: {BUDGET_KNOBS}")
    _REGISTRY[name] = LearnerSpec(
        name, factory, description, family, tuple(budget), tuple(fit_inputs), dict(defaults)
    )


def spec(name: str) -> LearnerSpec:
    """The registry entry of ``name`` (ValueError naming the known names otherwise)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(_REGISTRY)
        raise ValueError(f"unknown learner {name!r}; available: {known}") from None


def available(family: str | None = None) -> list[str]:
    """Names accepted by :func:`make`, in registration order; only ``family``'s when given."""
    if family is not None and family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    return [n for n, s in _REGISTRY.items() if family is None or s.family == family]


def supports_batched(name: str) -> bool:
    """Whether learner ``name`` can train with others as one batched module.

    True for the learners whose class declares ``supports_batched_training`` (TARNet, CFR,
    DragonNet): :func:`ehrcausal.learners.batched.fit_batched` fits many of them at once.
    """
    return bool(getattr(spec(name).factory, "supports_batched_training", False))


def batched_learners(family: str | None = None) -> list[str]:
    """The names of :func:`available` (of ``family``) that :func:`supports_batched`."""
    return [n for n in available(family) if supports_batched(n)]


def describe() -> dict[str, str]:
    """Name -> one-line description of every registered learner."""
    return {k: v.description for k, v in _REGISTRY.items()}


def make(name: str, **params: Any) -> CATELearner:
    """A new, unfitted learner registered as ``name``, with ``params`` overriding its defaults."""
    s = spec(name)
    return s.factory(**{**s.defaults, **params})


def check_family(names: Sequence[str], family: str) -> list[str]:
    """``names`` as a list, after checking that each is a registered learner of ``family``."""
    names = list(names)
    members = available(family)
    wrong = [n for n in names if n not in members]
    if wrong:
        raise ValueError(f"not {family!r} learners: {wrong}; available: {members}")
    return names


def budget_params(
    names: Sequence[str] | Mapping[str, str],
    *,
    epochs: int | None = None,
    n_estimators: int | None = None,
    device: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Per-learner parameters of a chapter's budget knobs, keyed by learner label.

    Each learner gets the knobs it declared at registration (``epochs`` and ``device`` for torch
    learners, ``n_estimators`` for forest-based ones) and nothing else. ``names`` may map row
    labels to registry names (to compare variants of one learner). A ``None`` knob is left out.
    """
    knobs = {"epochs": epochs, "n_estimators": n_estimators, "device": device}
    if not isinstance(names, Mapping):
        names = {n: n for n in names}
    return {
        label: {k: knobs[k] for k in spec(base).budget if knobs[k] is not None}
        for label, base in names.items()
    }
