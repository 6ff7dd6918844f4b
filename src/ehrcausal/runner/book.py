"""Building the Jupyter Book from the executed chapters: table of contents, MathJax, build."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .costs import write_costs_markdown
from .findings import write_findings
from .manifest import write_manifest_markdown
from .paths import StudyPaths, toc_chapters, toc_files
from .publish import write_figures_list

__all__ = ["toc_files", "toc_chapters", "missing_toc_files", "missing_mathjax", "build_book"]


def missing_toc_files(root: Path) -> list[str]:
    """Entries of ``_toc.yml`` with no ``.md``/``.ipynb`` file (e.g. chapters not run yet)."""
    root = Path(root)
    missing = []
    for entry in toc_files(root):
        base = root / entry
        if base.suffix in (".md", ".ipynb") and base.is_file():
            continue
        if not any(base.with_suffix(s).is_file() for s in (".md", ".ipynb")):
            missing.append(entry)
    return missing


def missing_mathjax(root: Path) -> str | None:
    """``mathjax_path`` of ``_config.yml`` when it is local but in none of its static paths.

    Returns ``None`` when MathJax is found (or when the config names no local MathJax).
    """
    import yaml

    config_path = Path(root) / "_config.yml"
    if not config_path.is_file():
        return None
    config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    sphinx_config = (config.get("sphinx") or {}).get("config") or {}
    mathjax = sphinx_config.get("mathjax_path")
    if not mathjax or "://" in str(mathjax):
        return None
    static = sphinx_config.get("html_static_path") or []
    if any((Path(root) / s / mathjax).is_file() for s in static):
        return None
    return str(mathjax)


def build_book(
    paths: StudyPaths,
    *,
    strict: bool = True,
    all_pages: bool = True,
    extra_args: Sequence[str] = (),
) -> int:
    """Build the Jupyter Book at ``paths.root`` into ``_build/html``; return the exit status.

    Writes ``manifest.md`` first if it is missing (a "no chapters executed yet" table), and the
    findings page (:func:`.findings.write_findings`) from ``book/findings.yml`` and the list of
    figures of the reproducibility page (:func:`.publish.write_figures_list`), and ``costs.md``
    from the committed cost measurements (:mod:`.costs`). With
    ``strict`` (default) warnings fail the build (``-W -n --keep-going``); ``all_pages`` rebuilds
    every page, so warnings of unchanged pages are reported too. Refuses (status 1, before
    calling Jupyter Book) when MathJax is not vendored, a page of ``_toc.yml`` is missing or the
    findings registry does not match the executed chapters.
    """
    if not paths.manifest_md.is_file():
        write_manifest_markdown(paths)
    write_costs_markdown(paths)
    mathjax = missing_mathjax(paths.root)
    if mathjax:
        print(
            f"error: MathJax ({mathjax}) is not in any html_static_path of _config.yml;\n"
            "  install it with `make vendor` (npm, pinned) so that the book builds offline",
            file=sys.stderr,
        )
        return 1
    missing = missing_toc_files(paths.root)
    if missing:
        print(
            "error: _toc.yml lists pages that do not exist: "
            + ", ".join(missing)
            + "\n  (chapters under book/chapters/ are written by `python -m ehrcausal.runner run`)",
            file=sys.stderr,
        )
        return 1
    problems = write_findings(paths)
    if problems:
        print("error: the findings page cannot be written:\n  " + "\n  ".join(problems),
              file=sys.stderr)
        return 1
    write_figures_list(paths, toc_chapters(paths.root))
    cmd = [
        sys.executable,
        "-c",
        "import sys; from jupyter_book.cli.main import main; sys.argv[0] = 'jupyter-book'; main()",
        "build",
        str(paths.root),
        "--builder",
        "html",
    ]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    if all_pages:
        cmd.append("--all")
    cmd += list(extra_args)
    return subprocess.run(cmd, cwd=paths.root).returncode
