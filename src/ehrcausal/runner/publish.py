"""What the runner adds to an executed chapter before publishing it: one place for every chapter.

:func:`decorate_notebook` is applied by :func:`.execute.execute_chapter` to each executed
notebook (a JSON dict) before it is written to ``book/chapters/<stem>.ipynb``:

- **Parameters shown once.** When papermill injected parameters, the notebook's own
  ``parameters`` cell (the smoke defaults) is tagged ``remove-cell`` (it still runs, under nbval
  too, but is not shown) and the injected cell is rewritten to assign *every* parameter the
  chapter ran with, each line labelled with what set it: the profile (``[default]``), the
  command line (``[--device]``) or the notebook. Executing it gives the same values as before.
- **Provenance.** Every ``{glue:figure}`` of the chapter's Markdown (figures and tables) gets a
  last caption line: the notebook and cell that glued it (a link to the executed notebook), the
  commit, the profile and the SHA-256 of the chapter's input data (``data`` of its entry in
  ``book/findings.yml``, when it has one).
- **Alt text.** A figure glued with :func:`ehrcausal.chapters.report.glue_figure` carries a
  description of its panels (``<key>__figure``); it becomes the directive's ``:alt:``.
- **Rerun.** A last section, *Rerun this chapter*: the executed notebook to download, the
  profile's entry for the chapter and the exact papermill and runner commands, followed by the
  chapter's own notes on rerunning it (its Markdown cells tagged ``rerun``, moved there).

:func:`figure_records` reads back, from an executed chapter, each figure's name, key and files;
:func:`write_figures_list` renders them for the reproducibility page.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..cache import atomic_write_text, file_digest
from .findings import FINDINGS_FILE, glued_outputs, load_registry
from .params import PROFILES, parameters_cell
from .paths import StudyPaths

__all__ = [
    "FIGURE_SUFFIX",
    "FigureRecord",
    "data_digest",
    "decorate_notebook",
    "figure_records",
    "label_parameters",
    "rerun_markdown",
    "write_figures_list",
]

#: Suffix of the companion key :func:`~ehrcausal.chapters.report.glue_figure` glues per figure.
FIGURE_SUFFIX = "__figure"
#: Marks the cells this module adds or rewrites (so decorating twice changes nothing).
MARK = "ehrcausal-published"
RERUN_HEADING = "## Rerun this chapter"

# ```{glue:figure} key  (or ~~~ / :::), its options, its content, the closing fence.
DIRECTIVE = re.compile(
    r"^(?P<fence>`{3,}|~{3,}|:{3,})\{glue:figure\}[ \t]+(?P<key>\S+)[ \t]*\n"
    r"(?P<body>.*?)^(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
OPTION = re.compile(r"^:(?P<name>[\w-]+):[ \t]*(?P<value>.*)$")
PROVENANCE_CLASS = "{.provenance}"


def _source(cell: Mapping[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def data_digest(root: Path, entries: Sequence[str]) -> str | None:
    """SHA-256 of a chapter's input data (``None`` without any), as ``sha256sum`` would list it.

    One file: the SHA-256 of its bytes. Several files or folders: the SHA-256 of the text
    ``"<sha256>  <path>\\n"`` over every file (paths relative to ``root``, sorted), which is
    what ``sha256sum`` prints for them. A missing path raises :class:`ValueError`.
    """
    files: list[Path] = []
    for entry in entries:
        path = Path(root) / entry
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files += [p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")]
        else:
            raise ValueError(f"{FINDINGS_FILE}: data path {entry!r} does not exist")
    if not files:
        return None
    if len(files) == 1 and len(entries) == 1 and Path(root, entries[0]).is_file():
        return file_digest(files[0])
    rel = sorted((p.relative_to(root).as_posix(), p) for p in set(files))
    lines = [f"{file_digest(p)}  {name}\n" for name, p in rel]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


# ------------------------------------------------------------------------------------------
# Parameters
# ------------------------------------------------------------------------------------------
def _comments(source: str) -> dict[str, str]:
    """The trailing comment of each ``name = value  # comment`` line of a parameters cell."""
    out = {}
    for line in source.splitlines():
        match = re.match(r"^(\w+)\s*(?::[^=]+)?=.*?#\s*(?P<comment>.+)$", line)
        if match:
            out[match[1]] = match["comment"].strip()
    return out


def label_parameters(
    nb: dict[str, Any],
    parameters: Mapping[str, Any],
    injected: Mapping[str, Any],
    *,
    profile: str,
    device_from_cli: bool = False,
) -> None:
    """Show the parameters the chapter ran with once, labelled (see the module docstring).

    ``parameters`` are the resolved values (defaults included), ``injected`` what papermill
    injected. Without injected parameters the notebook's own cell ran as it is and is kept.
    """
    cells = nb.get("cells", [])
    found = parameters_cell(nb)
    injected_at = next((i for i, c in enumerate(cells)
                        if "injected-parameters" in c.get("metadata", {}).get("tags", [])), None)
    if found is None or injected_at is None:
        return
    index, source = found
    comments = _comments(source)
    tags = cells[index].setdefault("metadata", {}).setdefault("tags", [])
    if "remove-cell" not in tags:
        tags.append("remove-cell")
    where = f"notebooks/params/{profile}.yml" if profile in PROFILES else "its parameters file"
    cli = "; [--device]: by the command line" if device_from_cli else ""
    lines = [
        f"# The parameters this chapter ran with. [{profile}]: set by profile {profile!r}",
        f"# ({where}){cli}; the others are the notebook's own.",
    ]
    for name, value in parameters.items():
        if name in injected and name == "device" and device_from_cli:
            label = "[--device] "
        elif name in injected:
            label = f"[{profile}] "
        else:
            label = ""
        note = comments.get(name, "")
        comment = f"  # {label}{note}".rstrip() if (label or note) else ""
        lines.append(f"{name} = {value!r}{comment}")
    cell = cells[injected_at]
    cell["source"] = "\n".join(lines)
    cell.setdefault("metadata", {})[MARK] = True


# ------------------------------------------------------------------------------------------
# Figures: provenance and alt text
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FigureRecord:
    """A ``{glue:figure}`` of an executed chapter: its key, target name and written files."""

    chapter: str
    key: str
    name: str
    is_image: bool
    files: tuple[str, ...]


def _glue_cells(nb: Mapping[str, Any]) -> dict[str, int]:
    """Key -> execution count of the code cell that glued it."""
    out = {}
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) or []:
            name = ((output.get("metadata") or {}).get("scrapbook") or {}).get("name")
            if name and cell.get("execution_count") is not None:
                out[name] = int(cell["execution_count"])
    return out


def _companion(glued: Mapping[str, Mapping[str, Any]], key: str) -> dict[str, Any]:
    text = (glued.get(key + FIGURE_SUFFIX) or {}).get("text/plain")
    if not text:
        return {}
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return {}
    return value if isinstance(value, dict) else {}


def _options(body: str) -> tuple[dict[str, str], str]:
    """A directive body's ``:name: value`` options and the rest (its caption and legend)."""
    options: dict[str, str] = {}
    lines = body.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        match = OPTION.match(lines[i].rstrip("\n"))
        if not match:
            break
        options[match["name"]] = match["value"]
        i += 1
    return options, "".join(lines[i:])


def _alt_text(text: str) -> str:
    """One line, no Markdown roles' punctuation, safe as a directive option."""
    text = re.sub(r"\{[\w:]+\}`([^`]*)`", r"\1", text)
    return " ".join(text.replace("`", "").split())


def provenance_line(stem: str, cell: int | None, *, commit: str, profile: str,
                    data_sha256: str | None) -> str:
    """The small last line of a caption (MyST): notebook and cell, commit, profile, data."""
    short = "unknown" if commit in ("", "unknown") else (
        commit[:10] + ("-dirty" if commit.endswith("-dirty") else ""))
    where = f"{{download}}`{stem}.ipynb <{stem}.ipynb>`"
    parts = [f"Source: {where}" + (f", cell In [{cell}]" if cell is not None else ""),
             f"commit `{short}`", f"profile `{profile}`"]
    if data_sha256:
        parts.append(f"input data SHA-256 `{data_sha256}`")
    return " · ".join(parts)


def _decorate_figures(nb: dict[str, Any], stem: str, *, commit: str, profile: str,
                      data_sha256: str | None) -> None:
    glued = glued_outputs(nb)
    cells = _glue_cells(nb)

    def rewrite(match: re.Match[str]) -> str:
        key = match["key"]
        options, content = _options(match["body"])
        bundle = glued.get(key, {})
        if "alt" not in options and any(m.startswith("image/") for m in bundle):
            alt = _companion(glued, key).get("alt") or content.strip().split(".")[0]
            options["alt"] = _alt_text(alt)
        head = "".join(f":{k}: {v}\n" for k, v in options.items())
        line = provenance_line(stem, cells.get(key), commit=commit, profile=profile,
                               data_sha256=data_sha256)
        content = content.strip("\n")
        if PROVENANCE_CLASS in content:  # decorated already
            content = content[: content.index(PROVENANCE_CLASS)].rstrip("\n")
        if not content.strip():
            content = "<!-- -->"  # the provenance line must not become the caption
        body = f"{head}\n{content}\n\n{PROVENANCE_CLASS}\n{line}\n"
        if not head:
            body = body[1:]
        return f"{match['fence']}{{glue:figure}} {key}\n{body}{match['fence']}"

    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        source = _source(cell)
        new = DIRECTIVE.sub(rewrite, source)
        if new != source:
            cell["source"] = new


def figure_records(nb: Mapping[str, Any], chapter: str) -> list[FigureRecord]:
    """Every ``{glue:figure}`` of an executed chapter, in order."""
    glued = glued_outputs(nb)
    records = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        for match in DIRECTIVE.finditer(_source(cell)):
            options, _ = _options(match["body"])
            key = match["key"]
            files = _companion(glued, key).get("files") or []
            records.append(FigureRecord(
                chapter, key, options.get("name", ""),
                any(m.startswith("image/") for m in glued.get(key, {})),
                tuple(str(f) for f in files)))
    return records


# ------------------------------------------------------------------------------------------
# Rerun
# ------------------------------------------------------------------------------------------
def rerun_markdown(stem: str, profile: str, overrides: Mapping[str, Any], *,
                   device: str | None = None, notes: Sequence[str] = ()) -> str:
    """The *Rerun this chapter* section: download, profile entry, papermill and runner commands.

    ``overrides`` are the profile's values for the chapter (its entry in the profile file);
    ``device`` the ``--device`` given to the runner, if any; ``notes`` the chapter's own
    paragraphs about rerunning it (its Markdown cells tagged ``rerun``), appended.
    """
    import yaml

    known = profile in PROFILES
    entry = yaml.safe_dump({stem: dict(overrides)} if overrides else {stem: {}},
                           sort_keys=False, allow_unicode=True).rstrip()
    source = f"notebooks/params/{profile}.yml" if known else f"the parameters file {profile!r}"
    flat = f"{profile}-{stem}.yml"
    papermill = f"papermill notebooks/{stem}.ipynb {stem}.ipynb -f {flat}"
    runner = f"python -m ehrcausal.runner run --profile {profile} --chapters {stem}"
    if device is not None:
        papermill += f" -p device {device}"
        runner += f" --device {device}"
    lines = [
        RERUN_HEADING,
        "",
        f"This page is the notebook `notebooks/{stem}.ipynb` executed by papermill at profile "
        f"`{profile}`. Download the executed notebook, outputs included: "
        f"{{download}}`{stem}.ipynb <{stem}.ipynb>`.",
        "",
        f"The profile's entry for this chapter ({source}; every other parameter keeps the "
        "notebook's own value):",
        "",
        "```yaml",
        entry,
        "```",
        "",
    ]
    if known:
        lines += [
            "To rerun it with papermill alone, from the repository root, write the entry as the "
            "flat file papermill reads and execute the notebook:",
            "",
            "```bash",
            f"python -m ehrcausal.runner params --profile {profile} {stem} > {flat}",
            papermill,
            "```",
            "",
            "To regenerate this page instead (skipped when nothing it depends on changed, "
            "recorded on the reproducibility page), then rebuild the book:",
            "",
            "```bash",
            runner,
            "python -m ehrcausal.runner build",
            "```",
        ]
        if profile != "paper":
            lines += [
                "",
                "At the published scale, on a GPU: "
                f"`python -m ehrcausal.runner run --profile paper --device cuda --chapters {stem}`.",
            ]
    else:
        lines += [
            "To rerun it, save that entry as a file and pass it to the runner "
            f"(`python -m ehrcausal.runner run -f <file> --chapters {stem}`), or its values "
            f"flat to papermill (`papermill notebooks/{stem}.ipynb {stem}.ipynb -f <flat file>`).",
        ]
    for note in notes:
        lines += ["", note.strip()]
    return "\n".join(lines) + "\n"


def _rerun_cell(markdown: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "id": "ehrcausal-rerun",
            "metadata": {MARK: True}, "source": markdown}


def decorate_notebook(
    nb: dict[str, Any],
    stem: str,
    *,
    profile: str,
    parameters: Mapping[str, Any],
    injected: Mapping[str, Any],
    device_from_cli: str | None = None,
    commit: str = "unknown",
    data_sha256: str | None = None,
) -> dict[str, Any]:
    """Apply every addition of the module docstring to an executed chapter (in place; returned).

    Decorating a notebook twice gives the same notebook as decorating it once.
    """
    label_parameters(nb, parameters, injected, profile=profile,
                     device_from_cli=device_from_cli is not None)
    _decorate_figures(nb, stem, commit=commit, profile=profile, data_sha256=data_sha256)
    overrides = {k: v for k, v in injected.items()
                 if not (k == "device" and device_from_cli is not None)}
    cells = [c for c in nb.get("cells", []) if not c.get("metadata", {}).get(MARK)
             or c.get("cell_type") != "markdown"]
    notes = []
    for cell in cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.get("cell_type") == "markdown" and "rerun" in tags:
            notes.append(_source(cell))
            if "remove-cell" not in tags:
                tags.append("remove-cell")  # shown in the rerun section instead
    cells.append(_rerun_cell(rerun_markdown(stem, profile, overrides, device=device_from_cli,
                                            notes=notes)))
    nb["cells"] = cells
    return nb


def chapter_data_digest(paths: StudyPaths, stem: str) -> str | None:
    """The SHA-256 of the chapter's input data named in ``book/findings.yml`` (``None``: none)."""
    entries, _ = load_registry(paths.root / FINDINGS_FILE)
    entry = entries.get(stem)
    return data_digest(paths.root, entry.data) if entry is not None and entry.data else None


# ------------------------------------------------------------------------------------------
# The reproducibility page's list of figures
# ------------------------------------------------------------------------------------------
def render_figures_list(records: Iterable[FigureRecord], figures_dir: str) -> str:
    """Markdown: every figure and table of the book, with its SVG and PNG files when written."""
    rows = ["| Chapter | Figure or table | Files |", "|---|---|---|"]
    for r in records:
        ref = f"{{numref}}`{r.name}`" if r.name else f"`{r.key}`"
        files = " · ".join(f"{{download}}`{Path(f).suffix[1:].upper()} <{figures_dir}/{f}>`"
                           for f in r.files) or "(a table: in the chapter)"
        rows.append(f"| {r.chapter} | {ref} | {files} |")
    if len(rows) == 2:
        rows.append("| *no chapters executed yet* | | |")
    return "\n".join(rows) + "\n"


def write_figures_list(paths: StudyPaths, chapters: Sequence[str]) -> Path:
    """Write ``book/_generated/figures.md`` for ``book/reproducibility.md`` (chapters in order).

    A figure file is listed only when it exists in ``book/chapters/figures/``.
    """
    records: list[FigureRecord] = []
    figures = paths.chapters / "figures"
    for stem in chapters:
        notebook = paths.chapter_output(stem)
        if not notebook.is_file():
            continue
        nb = json.loads(notebook.read_text(encoding="utf-8"))
        for r in figure_records(nb, stem):
            present = tuple(f for f in r.files if (figures / f).is_file())
            records.append(FigureRecord(r.chapter, r.key, r.name, r.is_image, present))
    target = paths.generated / "figures.md"
    atomic_write_text(target, render_figures_list(records, "chapters/figures"))
    return target
