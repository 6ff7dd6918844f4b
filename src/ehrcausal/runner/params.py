"""Chapters and their parameters: discovery, the ``parameters`` cell, profiles, resolution.

A chapter is a notebook ``notebooks/<stem>.ipynb``. Its ``parameters`` cell holds the smoke
values; a profile (``notebooks/params/<profile>.yml``, or any file given with ``-f``) maps
chapter stems to the values it overrides; ``--device`` adds ``device`` last.
"""

from __future__ import annotations

import ast
import difflib
import json
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "PROFILES",
    "ParameterError",
    "discover_chapters",
    "read_notebook",
    "parameters_cell",
    "notebook_parameters",
    "parameter_defaults",
    "check_parameter",
    "validate_overrides",
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


class _Expression(str):
    """The source text of a parameter default that is not a literal (its type is unknown)."""


def _parameter_values(notebook: Path) -> dict[str, Any]:
    """The ``parameters`` cell's assignments; non-literal values as :class:`_Expression`."""
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
                    params[target.id] = _Expression(ast.get_source_segment(source, value) or "")
    return params


def notebook_parameters(notebook: Path) -> dict[str, Any]:
    """The defaults of a notebook's ``parameters`` cell, as Python values.

    Simple assignments (``n = 2``, ``learners: list[str] = ["ols"]``) are read with
    :func:`ast.literal_eval`; a value that is not a literal is kept as its source text.
    A notebook without a ``parameters`` cell has no defaults.
    """
    return {
        name: str(value) if isinstance(value, _Expression) else value
        for name, value in _parameter_values(notebook).items()
    }


def parameter_defaults(notebook: Path) -> dict[str, Any]:
    """Like :func:`notebook_parameters`, but a non-literal default (any type allowed) is ``None``.

    This is what :func:`check_parameter` checks values against: ``None`` accepts anything.
    """
    return {
        name: None if isinstance(value, _Expression) else value
        for name, value in _parameter_values(notebook).items()
    }


class ParameterError(ValueError):
    """Parameters that do not fit the notebooks' ``parameters`` cells: one line per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


_SCALARS = (str, int, float)


def _kind(value: Any) -> str:
    """How a value of a parameters file reads in an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _fits(value: Any, default: Any) -> bool:
    """Whether ``value`` has the type of the scalar ``default`` (ints count as floats)."""
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def _list_items_fit(items: Sequence[Any], default: Any) -> bool:
    """Items of a list value: scalars, of the type shared by the default's items (if any)."""
    if not all(isinstance(x, _SCALARS) and not isinstance(x, bool) for x in items):
        return False
    sample = list(default) if isinstance(default, (list, tuple)) else []
    kinds = {type(x) for x in sample}
    if len(kinds) != 1:
        return True
    return all(_fits(x, sample[0]) for x in items)


def _expected(default: Any) -> str:
    """What a parameter whose notebook default is ``default`` accepts, in words."""
    if isinstance(default, bool):
        return "a boolean (true or false)"
    if isinstance(default, int):
        return "an integer"
    if isinstance(default, float):
        return "a number"
    if isinstance(default, str):
        if "," in default:
            return "a comma-separated string or a list"
        return "a string"
    if isinstance(default, (list, tuple)):
        kinds = {type(x) for x in default}
        items = f" of {_kind(next(iter(default))).split(' ', 1)[1]}s" if len(kinds) == 1 else ""
        return f"a list{items} or a comma-separated string"
    return _kind(default)


def check_parameter(name: str, value: Any, default: Any) -> str | None:
    """Why ``value`` does not fit the notebook's ``name = default``, or ``None`` when it fits.

    The type of the default decides: a ``bool`` takes only booleans, an ``int`` only integers
    (no floats, strings or booleans), a ``float`` integers or floats, a ``str`` strings, a
    list a list of items of the default items' type or a comma-separated string (the chapters
    read both), and a comma-separated string default (one holding a comma) also a list of
    scalars. A default of ``None`` (or one that is not a literal) takes anything; ``None`` is
    taken only where the default is ``None``.
    """
    if default is None:
        return None
    ok: bool
    if value is None:
        ok = False
    elif isinstance(default, (list, tuple)):
        ok = isinstance(value, str) or (
            isinstance(value, (list, tuple)) and _list_items_fit(value, default)
        )
    elif isinstance(default, str) and "," in default:
        ok = isinstance(value, str) or (
            isinstance(value, (list, tuple)) and _list_items_fit(value, None)
        )
    else:
        ok = _fits(value, default)
    if ok:
        return None
    return (
        f"parameter {name!r} got {value!r} ({_kind(value)}); expected {_expected(default)} "
        f"(the notebook's default is {default!r})"
    )


def validate_overrides(
    notebooks_dir: Path, per_chapter: Mapping[str, Mapping[str, Any]], source: str
) -> None:
    """Check every chapter and parameter of a parameters file against the notebooks.

    Each chapter must be a notebook of ``notebooks_dir`` and each of its parameters a name of
    that notebook's ``parameters`` cell with a value of the default's type
    (:func:`check_parameter`). Raises :class:`ParameterError` with one line per problem, each
    naming ``source`` (the file), the chapter, the parameter, the value given and what is
    expected.
    """
    notebooks = {nb.stem: nb for nb in discover_chapters(notebooks_dir)}
    problems: list[str] = []
    for stem, overrides in per_chapter.items():
        if stem not in notebooks:
            close = difflib.get_close_matches(stem, list(notebooks), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(
                f"{source}: unknown chapter {stem!r} (chapters: {', '.join(notebooks) or 'none'})"
                + hint
            )
            continue
        defaults = parameter_defaults(notebooks[stem])
        for name, value in overrides.items():
            if name not in defaults:
                close = difflib.get_close_matches(str(name), list(defaults), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                problems.append(
                    f"{source}: chapter {stem!r}: unknown parameter {name!r} (given {value!r}); "
                    f"the notebook's parameters cell defines: {', '.join(defaults) or 'nothing'}"
                    + hint
                )
                continue
            why = check_parameter(str(name), value, defaults[name])
            if why is not None:
                problems.append(f"{source}: chapter {stem!r}: {why}")
    if problems:
        raise ParameterError(problems)


def _yaml_loader() -> type:
    """``yaml.SafeLoader`` that rejects a key given twice in one mapping (else the last wins)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} is given twice", key_node.start_mark
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def _yaml_error(path: Path, exc: Exception) -> str:
    """One line for a YAML error: file, line and column, and what is wrong."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    detail = f"{problem} ({context})" if context else str(problem)
    return f"{where}: not valid YAML: {' '.join(detail.split())}"


def load_params_file(path: Path) -> dict[str, dict[str, Any]]:
    """Read a parameters YAML: a mapping *chapter stem* -> *{parameter: value}*.

    An empty file means no overrides. Anything else (a YAML syntax error, a key given twice, a
    file that is not UTF-8, a value that is not a mapping) raises :class:`ValueError` naming
    the file, and the line for YAML errors.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"parameters file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})"
        ) from exc
    try:
        data = yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ValueError(_yaml_error(path, exc)) from exc
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
    params.update(injected_parameters(overrides, device, declared=params))
    return params


def injected_parameters(
    overrides: Mapping[str, Any] | None,
    device: str | None = None,
    declared: Collection[str] | None = None,
) -> dict[str, Any]:
    """What papermill injects: the profile overrides plus ``device`` when given.

    With ``declared`` (the names of the notebook's ``parameters`` cell), ``device`` is injected
    only into a chapter that declares it: a chapter without neural learners has no device to
    choose, and papermill would warn about an unknown parameter.
    """
    injected = dict(overrides or {})
    if device is not None and (declared is None or "device" in declared):
        injected["device"] = device
    return injected
