"""CATE learners under one protocol, in a registry (``make(name, **params)``, ``available()``)."""

from .base import CATELearner
from .registry import available, describe, make, register

__all__ = ["CATELearner", "make", "available", "describe", "register"]
