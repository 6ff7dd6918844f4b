"""Registry of the learners the book uses: ``make(name, **params)`` and ``available()``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .base import CATELearner

_REGISTRY: dict[str, tuple[Callable[..., CATELearner], dict[str, Any], str]] = {}


def register(
    name: str, factory: Callable[..., CATELearner], description: str = "", **defaults: Any
) -> None:
    """Register ``factory`` (a learner class) under ``name`` with default parameters."""
    if name in _REGISTRY:
        raise ValueError(f"learner {name!r} is already registered")
    _REGISTRY[name] = (factory, defaults, description)


def available() -> list[str]:
    """Names accepted by :func:`make`, in registration order."""
    return list(_REGISTRY)


def describe() -> dict[str, str]:
    """Name -> one-line description of every registered learner."""
    return {k: v[2] for k, v in _REGISTRY.items()}


def make(name: str, **params: Any) -> CATELearner:
    """A new, unfitted learner registered as ``name``, with ``params`` overriding its defaults."""
    try:
        factory, defaults, _ = _REGISTRY[name]
    except KeyError:
        known = ", ".join(available())
        raise ValueError(f"unknown learner {name!r}; available: {known}") from None
    return factory(**{**defaults, **params})
