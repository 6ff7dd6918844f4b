"""Cost curves for the reproducibility page: chapter time and peak memory against size.

``benchmarks/chapter_cost.py`` runs a chapter at several sizes of one parameter and writes
``benchmarks/results/cost-<chapter>-<profile>.json`` (rows of size, wall seconds, CPU seconds,
peak memory and the load average around each run, plus a straight-line extrapolation to the
``paper`` profile's size). :func:`write_costs_markdown` renders every such file as a table into
``book/_generated/costs.md``, which ``book/reproducibility.md`` includes; the book build writes
it each time, so the page shows the measurements committed with the code.

``benchmarks/xmultitask_size.py`` writes ``benchmarks/results/xmultitask-size-<profile>.json``:
single fits of the X-MultiTask chapter's size experiment at growing cohort sizes and, per
learner, a straight line of CPU seconds against n evaluated at a target size.
:func:`render_size_markdown` adds them to the same page.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..cache import atomic_write_text
from .paths import StudyPaths

__all__ = ["COSTS_MD", "cost_results", "render_costs_markdown", "render_size_markdown",
           "size_results", "write_costs_markdown"]

#: the generated page fragment, under ``book/_generated/``
COSTS_MD = "costs.md"


def _results(folder: Path, pattern: str, key: str) -> list[dict[str, Any]]:
    """The readable JSON files of ``folder`` matching ``pattern``, by name: objects with a list
    of ``rows`` and a value for ``key`` (others are skipped)."""
    out = []
    for path in sorted(folder.glob(pattern)) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("rows"), list) and data.get(key):
            out.append(data)
    return out


def cost_results(folder: Path) -> list[dict[str, Any]]:
    """The readable ``cost-*.json`` files of ``folder``, by name (others are skipped)."""
    return _results(folder, "cost-*.json", "param")


def size_results(folder: Path) -> list[dict[str, Any]]:
    """The readable ``xmultitask-size-*.json`` files of ``folder``, by name."""
    return _results(folder, "xmultitask-size-*.json", "target")


def _count(value: Any) -> str:
    """An integer with thousands separators; anything else as it is."""
    return f"{value:,}" if isinstance(value, int) else str(value)


def _num(value: Any, fmt: str) -> str:
    return "" if value is None else format(float(value), fmt)


def render_costs_markdown(results: Sequence[Mapping[str, Any]]) -> str:
    """One paragraph and table per measured chapter and profile; no headings."""
    if not results:
        return "*No cost measurements yet* (`python benchmarks/chapter_cost.py --help`).\n"
    lines: list[str] = []
    for res in results:
        param = str(res["param"])
        overrides = res.get("overrides") or {}
        extra = "".join(f", {k} = {v}" for k, v in overrides.items())
        lines += [
            f"`{res.get('chapter')}` at the `{res.get('profile')}` profile{extra}, against "
            f"`{param}`; measured {res.get('measured', '')} on {res.get('cpus', '?')} CPU cores "
            f"({res.get('machine', '')}), cold caches:",
            "",
            f"| {param} | seconds | CPU seconds | peak memory (MiB) | load average before, after |",
            "|---:|---:|---:|---:|---|",
        ]
        for row in res["rows"]:
            status = "" if not row.get("returncode") else " (failed)"
            lines.append(
                f"| {row.get(param)} | {_num(row.get('seconds'), '.1f')}{status} "
                f"| {_num(row.get('cpu_seconds'), ',.1f')} "
                f"| {_num(row.get('peak_memory_mib'), ',.0f')} "
                f"| {_num(row.get('load_before'), '.1f')}, {_num(row.get('load_after'), '.1f')} |"
            )
        est = res.get("paper_estimate")
        lines.append("")
        if est and est.get("seconds") is not None:
            cpu = est.get("cpu_seconds")
            cores = res.get("cpus") or 1
            cpu_text = "" if cpu is None else (
                f"about {_num(cpu, ',.0f')} CPU seconds, so at least {_num(cpu / cores, ',.0f')} s "
                f"on {cores} cores; ")
            how = est.get("note") or "straight-line extrapolation with this profile's other parameters"
            lines.append(
                f"Extrapolation to the `paper` profile's {param} = {_count(est.get(param))} ({how}):"
                f" {cpu_text}the line through the wall times (under the loads shown) gives "
                f"{_num(est['seconds'], ',.0f')} s; peak memory about "
                f"{_num(est.get('peak_memory_mib'), ',.0f')} MiB. One GPU: not measured."
            )
            lines.append("")
    return "\n".join(lines)


def render_size_markdown(results: Sequence[Mapping[str, Any]], cores: int = 2,
                         budget: float = 600.0) -> str:
    """The X-MultiTask size benchmark: one table of fits and the cost at the target size."""
    lines: list[str] = []
    for res in results:
        target, replicates = int(res["target"]), int(res.get("replicates") or 1)
        lines += [
            f"The X-MultiTask chapter's size experiment, one fit per learner and size at the "
            f"`{res.get('profile')}` profile's epochs, in one process with one thread "
            f"(`benchmarks/xmultitask_size.py`):",
            "",
            "| learner | n | seconds | CPU seconds | load average |",
            "|---|---:|---:|---:|---:|",
        ]
        for row in res["rows"]:
            lines.append(f"| {row.get('learner')} | {int(row.get('n', 0)):,} "
                         f"| {_num(row.get('seconds'), '.1f')} "
                         f"| {_num(row.get('cpu_seconds'), '.1f')} "
                         f"| {_num(row.get('load'), '.1f')} |")
        estimates = res.get("estimates") or {}
        sweep = res.get("sweep_cpu_seconds")
        lines.append("")
        if estimates and sweep is not None:
            each = ", ".join(f"{name} {_num(v, ',.0f')}" for name, v in estimates.items())
            wall = float(sweep) / cores
            lines.append(
                f"A straight line of CPU seconds against n gives, at n = {target:,}: {each} CPU "
                f"seconds per fit; the size experiment's point at n = {target:,} alone, with "
                f"{replicates} replicates, about {_num(sweep, ',.0f')} CPU seconds, so at least "
                f"{_num(wall, ',.0f')} s on {cores} cores ({wall / budget:.1f} times a "
                f"{budget / 60:.0f}-minute chapter budget) before any other cell of the chapter."
            )
            lines.append("")
    return "\n".join(lines)


def write_costs_markdown(paths: StudyPaths) -> Path:
    """Render ``benchmarks/results/cost-*.json`` and ``xmultitask-size-*.json`` into
    ``book/_generated/costs.md`` (atomic)."""
    dest = paths.generated / COSTS_MD
    folder = paths.root / "benchmarks" / "results"
    text = render_costs_markdown(cost_results(folder))
    sizes = size_results(folder)
    if sizes:
        text = text.rstrip("\n") + "\n\n" + render_size_markdown(sizes)
    atomic_write_text(dest, text)
    return dest
