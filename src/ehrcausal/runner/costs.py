"""Cost curves for the reproducibility page: chapter time and peak memory against size.

``benchmarks/chapter_cost.py`` runs a chapter at several sizes of one parameter and writes
``benchmarks/results/cost-<chapter>-<profile>.json`` (rows of size, wall seconds, CPU seconds,
peak memory and the load average around each run, plus a straight-line extrapolation to the
``paper`` profile's size). :func:`write_costs_markdown` renders every such file as a table into
``book/_generated/costs.md``, which ``book/reproducibility.md`` includes; the book build writes
it each time, so the page shows the measurements committed with the code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..cache import atomic_write_text
from .paths import StudyPaths

__all__ = ["COSTS_MD", "cost_results", "render_costs_markdown", "write_costs_markdown"]

#: the generated page fragment, under ``book/_generated/``
COSTS_MD = "costs.md"


def cost_results(folder: Path) -> list[dict[str, Any]]:
    """The readable ``cost-*.json`` files of ``folder``, by name (others are skipped)."""
    out = []
    for path in sorted(folder.glob("cost-*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("rows"), list) and data.get("param"):
            out.append(data)
    return out


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
            cpu_text = "" if cpu is None else f", {_num(cpu, ',.0f')} CPU seconds"
            how = est.get("note") or "straight-line extrapolation with this profile's other parameters"
            lines.append(
                f"Extrapolation to the `paper` profile's {param} = {est.get(param)} ({how}):"
                f" about {_num(est['seconds'], ',.0f')} s{cpu_text} and "
                f"{_num(est.get('peak_memory_mib'), ',.0f')} MiB on these CPU cores. One GPU: "
                f"not measured."
            )
            lines.append("")
    return "\n".join(lines)


def write_costs_markdown(paths: StudyPaths) -> Path:
    """Render ``benchmarks/results/cost-*.json`` into ``book/_generated/costs.md`` (atomic)."""
    dest = paths.generated / COSTS_MD
    results = cost_results(paths.root / "benchmarks" / "results")
    atomic_write_text(dest, render_costs_markdown(results))
    return dest
