"""Where the runner reads and writes: :class:`StudyPaths`, and :func:`find_root` for the CLI."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..checkout import project_root

__all__ = ["MANIFEST_JSON", "MANIFEST_MD", "StudyPaths", "find_root", "toc_chapters", "toc_files"]

MANIFEST_JSON = "manifest.json"
MANIFEST_MD = "manifest.md"


def _installed_package() -> Path:
    """The folder of the installed ``ehrcausal`` package (the parent of this ``runner``)."""
    return Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class StudyPaths:
    """Where the runner reads and writes; every path derives from the repository ``root``.

    Tests build one on ``tmp_path`` (``StudyPaths.from_root(tmp_path)``); the command line finds
    the root by walking up from the current directory to the folder with ``_config.yml``.
    """

    root: Path
    notebooks: Path
    params: Path
    chapters: Path
    generated: Path
    failed: Path
    package: Path

    @classmethod
    def from_root(cls, root: str | os.PathLike[str], package: Path | None = None) -> StudyPaths:
        """Standard layout under ``root``; ``package`` defaults to the installed ``ehrcausal``."""
        root = Path(root).resolve()
        return cls(
            root=root,
            notebooks=root / "notebooks",
            params=root / "notebooks" / "params",
            chapters=root / "book" / "chapters",
            generated=root / "book" / "_generated",
            failed=root / "_build" / "failed",
            package=(Path(package) if package is not None else _installed_package()),
        )

    @property
    def manifest(self) -> Path:
        """``book/_generated/manifest.json``."""
        return self.generated / MANIFEST_JSON

    @property
    def manifest_md(self) -> Path:
        """``book/_generated/manifest.md`` (included by ``book/reproducibility.md``)."""
        return self.generated / MANIFEST_MD

    def chapter_output(self, stem: str) -> Path:
        """``book/chapters/<stem>.ipynb``: where the executed chapter is published."""
        return self.chapters / f"{stem}.ipynb"

    def rel(self, path: Path) -> str:
        """``path`` relative to the root (POSIX), or as given when it lies outside."""
        try:
            return Path(path).resolve().relative_to(self.root).as_posix()
        except ValueError:
            return Path(path).as_posix()


def find_root(start: Path | None = None) -> Path:
    """The nearest ancestor of ``start`` (default: cwd) holding ``_config.yml`` and ``notebooks/``.

    Falls back to ``start`` itself when no ancestor qualifies.
    """
    root = project_root(start, marker="notebooks")
    return root if root is not None else (start or Path.cwd()).resolve()


def toc_files(root: Path) -> list[str]:
    """Every ``file:``/``root:`` entry of ``_toc.yml`` (none when there is no ``_toc.yml``)."""
    import yaml

    toc_path = Path(root) / "_toc.yml"
    if not toc_path.is_file():
        return []
    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8")) or {}
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("root", "file"):
                if isinstance(node.get(key), str):
                    found.append(node[key])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return found


def toc_chapters(root: Path) -> list[str]:
    """The stems of the chapters (``book/chapters/<stem>`` entries) of ``_toc.yml``, in order."""
    return [Path(f).name for f in toc_files(root) if Path(f).parent.name == "chapters"]
