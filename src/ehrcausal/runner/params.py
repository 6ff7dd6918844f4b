"""Chapters and their parameters: discovery, the ``parameters`` cell, profiles, resolution.

A chapter is a notebook ``notebooks/<stem>.ipynb``. Its ``parameters`` cell holds the smoke
values; a profile (``notebooks/params/<profile>.yml``, or any file given with ``-f``) maps
chapter stems to the values it overrides; ``--device`` adds ``device`` last.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "PROFILES",
    "discover_chapters",
    "read_notebook",
    "parameters_cell",
    "notebook_parameters",
    "load_params_file",
    "profile_overrides",
    "resolve_parameters",
    "injected_parameters",
]

#: Profiles shipped in ``notebooks/params/``.
PROFILES: tuple[str, ...] = ("smoke", "default", "paper")


def discover_chapters(notebooks_dir: Path, names: Sequence[str] | None = None) -> list[Path]:
    """The chapter notebooks: every ``*.ipynb`` in ``notebooks_dir`` (sorted), or those named.

    ``names`` may be stems (``ihdp_benchmark``), file names or paths; an unknown name raises
    :class:`FileNotFoundError` listing the chapters that exist.
    """
    notebooks_dir = Path(notebooks_dir)
    available = sorted(p for p in notebooks_dir.glob("*.ipynb") if not p.name.startswith("."))
    if not names:
        return available
    by_stem = {p.stem: p for p in available}
    chosen: list[Path] = []
    for name in names:
        stem = Path(name).stem if name.endswith(".ipynb") else Path(name).name
        if stem not in by_stem:
            known = ", ".join(by_stem) or "none"
            raise FileNotFoundError(f"no chapter {name!r} in {notebooks_dir} (chapters: {known})")
        if by_stem[stem] not in chosen:
            chosen.append(by_stem[stem])
    return chosen


def read_notebook(path: Path) -> dict[str, Any]:
    """A notebook file as plain JSON (a :class:`ValueError` naming the file if it is not JSON)."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not a notebook (invalid JSON: {exc})") from exc


def parameters_cell(nb: Mapping[str, Any]) -> tuple[int, str] | None:
    """Index and source of the first code cell tagged ``parameters``, or ``None``."""
    for i, cell in enumerate(nb.get("cells", [])):
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.get("cell_type") == "code" and "parameters" in tags:
            src = cell.get("source", "")
            return i, "".join(src) if isinstance(src, list) else src
    return None


def notebook_parameters(notebook: Path) -> dict[str, Any]:
    """The defaults of a notebook's ``parameters`` cell, as Python values.

    Simple assignments (``n = 2``, ``learners: list[str] = ["ols"]``) are read with
    :func:`ast.literal_eval`; a value that is not a literal is kept as its source text.
    A notebook without a ``parameters`` cell has no defaults.
    """
    found = parameters_cell(read_notebook(Path(notebook)))
    if found is None:
        return {}
    _, source = found
    # IPython magics and shell escapes are not Python: blank them before parsing.
    lines = ["" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.splitlines()]
    source = "\n".join(lines)
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ValueError(f"{notebook}: the parameters cell is not valid Python: {exc}") from exc
    params: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                try:
                    params[target.id] = ast.literal_eval(value)
                except ValueError:
                    params[target.id] = ast.get_source_segment(source, value)
    return params


def load_params_file(path: Path) -> dict[str, dict[str, Any]]:
    """Read a parameters YAML: a mapping *chapter stem* -> *{parameter: value}*.

    An empty file means no overrides. Anything else raises :class:`ValueError` naming the file.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"parameters file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping chapter -> {{param: value}}, got {data!r}")
    out: dict[str, dict[str, Any]] = {}
    for chapter, params in data.items():
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise ValueError(f"{path}: parameters of {chapter!r} must be a mapping, got {params!r}")
        out[str(chapter)] = dict(params)
    return out


def profile_overrides(
    params_dir: Path, profile: str | None = None, params_file: Path | None = None
) -> tuple[str, dict[str, dict[str, Any]]]:
    """The profile's name and its per-chapter overrides.

    ``params_file`` (``-f``) wins over ``profile``; its stem names the profile. A profile without
    a file in ``params_dir`` raises :class:`FileNotFoundError` listing the profiles that exist.
    """
    if params_file is not None:
        return Path(params_file).stem, load_params_file(Path(params_file))
    profile = profile or "default"
    path = Path(params_dir) / f"{profile}.yml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in Path(params_dir).glob("*.yml"))) or "none"
        raise FileNotFoundError(f"no profile {profile!r}: {path} is missing (profiles: {known})")
    return profile, load_params_file(path)


def resolve_parameters(
    notebook: Path,
    overrides: Mapping[str, Any] | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """The parameters a chapter runs with: notebook defaults < ``overrides`` < ``device``.

    ``overrides`` are the chapter's entries of the profile YAML; ``device`` (from ``--device``)
    is added last when given. Returns the full mapping, defaults included.
    """
    params = notebook_parameters(notebook)
    params.update(injected_parameters(overrides, device))
    return params


def injected_parameters(
    overrides: Mapping[str, Any] | None, device: str | None = None
) -> dict[str, Any]:
    """What papermill injects: the profile overrides plus ``device`` when given."""
    injected = dict(overrides or {})
    if device is not None:
        injected["device"] = device
    return injected
