"""Cache-aware planning: what each chapter runs with, its content hash, and whether it is current.

A chapter's **content hash** is :func:`ehrcausal.cache.stable_hash` of the digest of its
notebook file, its resolved parameters, ``extra`` (the profile and the versions of Python and
the key packages) and :func:`ehrcausal.cache.package_fingerprint` of the ``ehrcausal`` package
(every source and data file). A chapter whose hash equals the one of its last successful run in
its executed notebook, is current and is skipped.

Whether a chapter is current is read from the executed notebook itself, never from the
manifest alone: ``book/chapters/<stem>.ipynb`` must parse as a notebook and carry, in its
metadata (``metadata.ehrcausal``, written by :mod:`.execute`), the content hash planned now.
A truncated notebook, or one that another run published with other parameters, is not current,
whatever the manifest says.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from ..cache import file_digest, package_fingerprint, stable_hash
from .params import (
    discover_chapters,
    injected_parameters,
    profile_overrides,
    resolve_parameters,
    validate_overrides,
)
from .paths import StudyPaths

__all__ = [
    "KEY_PACKAGES",
    "ChapterTask",
    "package_versions",
    "content_hash",
    "checked_overrides",
    "plan_chapters",
    "published_record",
    "is_current",
]

#: Packages whose versions the manifest records (and the content hash covers).
KEY_PACKAGES: tuple[str, ...] = (
    "numpy",
    "pandas",
    "scikit-learn",
    "econml",
    "torch",
    "papermill",
    "jupyter-book",
)


@dataclass
class ChapterTask:
    """One chapter as planned: what to run, with which parameters, under which hash."""

    stem: str
    notebook: Path
    parameters: dict[str, Any]  # resolved (defaults included), for the manifest
    injected: dict[str, Any]  # what papermill injects (profile overrides and device)
    digest: str  # the content hash


def package_versions() -> dict[str, str]:
    """Python and the key packages' versions (``"absent"`` for one not installed)."""
    versions = {"python": ".".join(map(str, sys.version_info[:3]))}
    for name in KEY_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def content_hash(
    notebook: Path,
    parameters: Mapping[str, Any],
    package_dir: Path,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """The chapter's cache key: a stable hash of notebook, parameters, package code and ``extra``.

    The notebook enters by the digest of its bytes, the package by its fingerprint (files by
    path relative to ``package_dir``, so the key does not depend on where the checkout lives).
    """
    return stable_hash(
        {
            "notebook": file_digest(notebook),
            "parameters": dict(parameters),
            "package": package_fingerprint(package_dir),
            "extra": dict(extra or {}),
        }
    )


def checked_overrides(
    paths: StudyPaths, profile: str | None = "default", params_file: Path | None = None
) -> tuple[str, dict[str, dict[str, Any]]]:
    """The profile's name and overrides, checked against every notebook's ``parameters`` cell.

    Raises :class:`~.params.ParameterError` (a :class:`ValueError`, one line per problem) for
    an unknown chapter, an unknown parameter or a value of the wrong type, naming the file.
    """
    name, per_chapter = profile_overrides(paths.params, profile, params_file)
    source = Path(params_file) if params_file is not None else paths.params / f"{name}.yml"
    validate_overrides(paths.notebooks, per_chapter, paths.rel(source))
    return name, per_chapter


def plan_chapters(
    paths: StudyPaths,
    chapters: Sequence[str] | None = None,
    *,
    profile: str | None = "default",
    params_file: Path | None = None,
    device: str | None = None,
) -> tuple[str, list[ChapterTask], dict[str, str]]:
    """Resolve profile, parameters and content hashes; no execution.

    Returns the profile name, one task per chapter and the package versions (hashed too).
    The whole parameters file is checked first (:func:`checked_overrides`), so a bad entry
    stops every command before any chapter runs.
    """
    profile_name, per_chapter = checked_overrides(paths, profile, params_file)
    notebooks = discover_chapters(paths.notebooks, chapters)
    versions = package_versions()
    tasks = []
    for nb in notebooks:
        overrides = per_chapter.get(nb.stem, {})
        params = resolve_parameters(nb, overrides, device)
        digest = content_hash(
            nb, params, paths.package, extra={"profile": profile_name, "versions": versions}
        )
        tasks.append(
            ChapterTask(
                nb.stem, nb, params, injected_parameters(overrides, device, declared=params), digest
            )
        )
    return profile_name, tasks, versions


def published_record(paths: StudyPaths, stem: str) -> dict[str, Any] | None:
    """The runner's record stored in ``book/chapters/<stem>.ipynb``, or ``None``.

    ``None`` when the file is missing or unreadable, does not parse as a notebook (JSON with
    ``nbformat``, a ``metadata`` mapping and a list of cells, each with a ``cell_type``), or
    carries no ``metadata.ehrcausal`` record with a ``content_hash``.
    """
    try:
        with open(paths.chapter_output(stem), encoding="utf-8") as f:
            nb = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not (
        isinstance(nb, dict)
        and isinstance(nb.get("nbformat"), int)
        and isinstance(nb.get("metadata"), dict)
        and isinstance(nb.get("cells"), list)
        and all(isinstance(c, dict) and "cell_type" in c for c in nb["cells"])
    ):
        return None
    record = nb["metadata"].get("ehrcausal")
    if not isinstance(record, dict) or not isinstance(record.get("content_hash"), str):
        return None
    return record


def is_current(task_digest: str, stem: str, paths: StudyPaths) -> bool:
    """Whether the published ``book/chapters/<stem>.ipynb`` was made with this content hash.

    Read from the notebook's own record (:func:`published_record`): it must parse as a
    notebook and its stored hash must equal ``task_digest``. The manifest is not consulted.
    """
    record = published_record(paths, stem)
    return record is not None and record["content_hash"] == task_digest
