"""What every chapter experiment shares: parameters, seeds, budgets, the design grid and the runner.

A chapter's experiment is a list of *cells* (one unit of work each: a learner on one replicate
of one setting). This module holds the parts every chapter builds its cells with:

- :func:`parse_list` and :func:`learner_names` read the notebook parameters (lists, or
  comma-separated strings from ``papermill -p``; learner names checked against the registry);
- :class:`ChapterConfig` holds the knobs every chapter has -- the master seed, the learners'
  budget (``epochs``, ``n_estimators``) and the device, resolved once -- and derives the
  replicate seeds (:func:`replicate_seeds`) and each learner's budget parameters from the
  registry (:func:`ehrcausal.learners.budget_params`);
- :func:`grid` crosses the factors of a design into cells;
- :func:`fit_inputs` routes the extra inputs of ``fit`` (validation mask, annotations,
  confounders, true effect) to the learners whose registry entry declares them;
- :func:`run_cached` runs the cells, in parallel and resumably (each result cached on disk);
  :func:`run_cached_batches` does the same for cells that are computed many at a time (the
  networks of batched training), caching each cell's result as if it had run alone.
"""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..cache import ResultCache
from ..learners import available, budget_params, spec
from ..parallel import run_replicates
from ..runtime import child_seeds, resolve_device
from ..validation import OverlapWarning, check_int

__all__ = [
    "ChapterConfig",
    "chapter_device",
    "fit_inputs",
    "grid",
    "learner_names",
    "parse_list",
    "replicate_seeds",
    "run_cached",
    "run_cached_batches",
]


def parse_list(value: Any, cast: Callable[[str], Any] = str, name: str = "value") -> list[Any]:
    """A notebook parameter given as a list or as a comma-separated string (``papermill -p``).

    ``parse_list("0.05, 0.5", float) == [0.05, 0.5]``; a list or tuple is cast element-wise. An
    empty result or an element that ``cast`` rejects raises ValueError naming ``name``.
    """
    items = value.split(",") if isinstance(value, str) else list(np.atleast_1d(value))
    out = []
    for item in items:
        text = item.strip() if isinstance(item, str) else item
        if text == "":
            continue
        try:
            out.append(cast(text))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}: cannot read {item!r} as {cast.__name__}") from exc
    if not out:
        raise ValueError(f"{name} is empty")
    return out


def learner_names(value: Any, families: Sequence[str], name: str = "learners") -> list[str]:
    """Registry names from a notebook parameter, each checked to belong to one of ``families``.

    ``value`` is a list, a comma-separated string, or ``"all"`` (every learner of the families,
    in registration order). A name outside the families raises ValueError listing the allowed.
    """
    members = [n for family in families for n in available(family)]
    if isinstance(value, str) and value.strip() == "all":
        return members
    names = parse_list(value, name=name)
    wrong = sorted(set(names) - set(members))
    if wrong:
        raise ValueError(f"{name}: not learners of {list(families)}: {wrong}; available: {members}")
    return names


def replicate_seeds(seed: int, replicates: int) -> list[int]:
    """The seed of each replicate, derived from the chapter's master seed (``child_seeds``)."""
    replicates = check_int(replicates, "replicates", low=1)
    return child_seeds(check_int(seed, "seed", low=0), replicates)


def chapter_device(device: str | None = "auto") -> str:
    """The torch device of a chapter, resolved once (``"auto"``: CUDA when present, else CPU).

    Every learner and the embedding model of the chapter get this same resolved name, and the
    chapter reports it.
    """
    return resolve_device(device)


@dataclass(kw_only=True)
class ChapterConfig:
    """The knobs every chapter has: master seed, replicates, the learners' budget and the device.

    ``seeds`` holds one seed per replicate (:func:`replicate_seeds` of ``seed``), the same for
    every learner of a replicate. ``epochs`` and ``n_estimators`` are handed by :meth:`budget`
    only to the learners that declared them in the registry; ``device`` is resolved once into
    ``device_used``.
    """

    seed: int = 0
    replicates: int = 1
    epochs: int | None = None
    n_estimators: int | None = None
    device: str = "auto"
    device_used: str = field(init=False)
    seeds: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.seed = check_int(self.seed, "seed", low=0)
        self.replicates = check_int(self.replicates, "replicates", low=1)
        for knob in ("epochs", "n_estimators"):
            if getattr(self, knob) is not None:
                setattr(self, knob, check_int(getattr(self, knob), knob, low=1))
        self.device_used = chapter_device(self.device)
        self.seeds = replicate_seeds(self.seed, self.replicates)

    def budget(self, names: Sequence[str] | Mapping[str, str]) -> dict[str, dict[str, Any]]:
        """Each learner's budget parameters (label -> params), from its registry entry."""
        return budget_params(
            names, epochs=self.epochs, n_estimators=self.n_estimators, device=self.device_used
        )


def grid(**factors: Sequence[Any]) -> list[dict[str, Any]]:
    """The cells of a design: every combination of the factors' levels, as dictionaries.

    The first factor varies slowest: ``grid(a=[1, 2], b="xy")`` is ``[{a: 1, b: "x"},
    {a: 1, b: "y"}, {a: 2, b: "x"}, {a: 2, b: "y"}]``. A factor without levels gives no cells.
    """
    names = list(factors)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*factors.values())]


def fit_inputs(name: str, **inputs: Any) -> dict[str, Any]:
    """The keyword arguments of ``fit`` for learner ``name``: the ``inputs`` it declared.

    The registry entry's ``fit_inputs`` (``val_mask``, ``annotations``, ``confounders``,
    ``tau``, ...) say what the learner takes; the others are not passed. A declared input that
    the caller does not have (absent or None) raises ValueError.
    """
    wanted = spec(name).fit_inputs
    missing = [k for k in wanted if inputs.get(k) is None]
    if missing:
        raise ValueError(f"learner {name!r} needs {missing}, which the data do not provide")
    return {k: inputs[k] for k in wanted}


def _cached_call(task: tuple[Callable[[Any], Any], Any, str | None, str]) -> tuple[Any, bool]:
    fn, cell, cache_dir, namespace = task
    cache = ResultCache(cache_dir, namespace=namespace)
    key = cell.key() if hasattr(cell, "key") else cell
    hit = cache.get(key)
    if hit is not None:
        return hit, True
    with warnings.catch_warnings():
        # the designs are fixed and studied: a fit's overlap diagnostic would only fill the
        # notebook, and only on fresh (uncached) fits, so chapter outputs would depend on the cache
        warnings.simplefilter("ignore", OverlapWarning)
        out = fn(cell)
    cache.put(key, out)
    return out, False


def run_cached(
    fn: Callable[[Any], Any],
    cells: Sequence[Any],
    *,
    n_jobs: int = 1,
    scheduler: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    namespace: str = "cells",
    progress: bool = True,
    desc: str = "fits",
    return_hits: bool = False,
) -> list[Any] | tuple[list[Any], list[bool]]:
    """``[fn(c) for c in cells]`` through :func:`~ehrcausal.parallel.run_replicates`, cached.

    A cell describes one unit of work (its ``key()`` or the cell itself must be
    JSON-serialisable); with ``cache_dir`` every finished result is written atomically under
    ``cache_dir/namespace`` and a rerun returns it without calling ``fn``, so an interrupted
    sweep resumes. ``fn`` must be picklable (a module-level function or a partial of one).
    With ``return_hits`` the answer is ``(results, hits)``, ``hits[i]`` telling whether result
    ``i`` came from the cache.
    """
    root = None if cache_dir is None else str(cache_dir)
    tasks = [(fn, c, root, namespace) for c in cells]
    pairs = run_replicates(
        _cached_call, tasks, n_jobs=n_jobs, scheduler=scheduler, progress=progress, desc=desc
    )
    results = [out for out, _ in pairs]
    if return_hits:
        return results, [hit for _, hit in pairs]
    return results


def _cached_batch_call(
    task: tuple[Callable[[list[Any]], list[Any]], list[Any], str | None, str],
) -> list[Any]:
    fn, cells, cache_dir, namespace = task
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OverlapWarning)  # as in _cached_call
        outs = list(fn(cells))
    if len(outs) != len(cells):
        raise ValueError(f"a batch function returned {len(outs)} results for {len(cells)} cells")
    cache = ResultCache(cache_dir, namespace=namespace)
    for cell, out in zip(cells, outs, strict=True):
        cache.put(cell.key() if hasattr(cell, "key") else cell, out)
    return outs


def run_cached_batches(
    fn: Callable[[list[Any]], list[Any]],
    cells: Sequence[Any],
    *,
    group: Callable[[Any], Any],
    n_jobs: int = 1,
    scheduler: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    namespace: str = "cells",
    progress: bool = True,
    desc: str = "batches",
) -> tuple[list[Any], list[bool]]:
    """``fn`` computes many cells at once (``fn(cells) -> results``): run it over the cells,
    cached per cell.

    The cached cells are read first (the same store and keys as :func:`run_cached`); the
    others are grouped by ``group(cell)`` (cells that can be computed together, e.g. one
    learner's fits on every replicate) and each group is cut into as many batches as there are
    parallel workers (``n_jobs``; one batch per group when ``n_jobs`` is 1 or a cluster
    decides), so the workers share the work. Each batch is one task of
    :func:`~ehrcausal.parallel.run_replicates`; its worker writes every cell's result
    atomically, so an interrupted run resumes from the cells already done. Returns the results
    in the order of ``cells`` and whether each came from the cache.
    """
    root = None if cache_dir is None else str(cache_dir)
    cache = ResultCache(root, namespace=namespace)
    results: list[Any] = [None] * len(cells)
    hits = [False] * len(cells)
    todo: dict[Any, list[int]] = {}
    for i, cell in enumerate(cells):
        hit = cache.get(cell.key() if hasattr(cell, "key") else cell)
        if hit is not None:
            results[i], hits[i] = hit, True
        else:
            todo.setdefault(group(cell), []).append(i)
    workers = check_int(n_jobs, "n_jobs")
    workers = (os.cpu_count() or 1) if workers == -1 else max(workers, 1)
    batches = [list(part) for rows in todo.values()
               for part in np.array_split(rows, min(workers, len(rows)))]
    outs = run_replicates(
        _cached_batch_call, [(fn, [cells[i] for i in b], root, namespace) for b in batches],
        n_jobs=n_jobs, scheduler=scheduler, progress=progress, desc=desc,
    )
    for rows, out in zip(batches, outs, strict=True):
        for i, result in zip(rows, out, strict=True):
            results[int(i)] = result
    return results, hits
