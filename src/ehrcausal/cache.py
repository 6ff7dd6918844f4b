"""Hashing, atomic writes and on-disk caching of results: the one place for each.

- :func:`stable_hash` is the package's one content key: SHA-256 of the canonical JSON form of
  an object (:func:`canonical_json`: sorted keys, no whitespace). Everything that needs a key
  (result records, embedding files, the chapter runner's content hash) builds a JSON-able
  description and hashes it here.
- :func:`package_fingerprint` is the one file-tree fingerprint: a stable hash over every source
  and data file of a package folder (:func:`package_files`), by relative path, so cached work
  dies with the code that made it.
- :func:`atomic_write_bytes` / :func:`atomic_write_text` are the one atomic write: data go to a
  hidden temporary file in the target's folder, which is then renamed over the target
  (:func:`os.replace`), so a reader sees the old file or the new one, never a partial one, and
  an interrupted process leaves no half-written file behind.
- :class:`ResultCache` maps a key (any JSON-serialisable description of a unit of work: data
  set, replicate, learner, parameters) to a small JSON record stored under
  ``root/<namespace>/<stable_hash(key, version, code)>.json``; a re-run skips the work done.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

from . import __version__
from .checkout import project_root

__all__ = [
    "canonical_json",
    "stable_hash",
    "file_digest",
    "package_files",
    "package_fingerprint",
    "atomic_write_bytes",
    "atomic_write_text",
    "default_cache_dir",
    "ResultCache",
]

#: Folders and suffixes that are never part of a package's fingerprint (caches, byte code).
_SKIP_DIRS = frozenset({"__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".ruff_cache"})
_SKIP_SUFFIXES = frozenset({".pyc", ".pyo"})


def canonical_json(obj: Any) -> str:
    """``obj`` as canonical JSON: sorted keys, no whitespace, ``str()`` for other objects."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def stable_hash(obj: Any) -> str:
    """SHA-256 (hex) of :func:`canonical_json` of ``obj``: equal for equal content, any key order."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) of the bytes of the file at ``path``."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _package_dir() -> Path:
    """The folder of the installed ``ehrcausal`` package."""
    return Path(__file__).resolve().parent


def package_files(package_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Every source and data file under ``package_dir`` (default: ``ehrcausal``), sorted.

    Byte code (``*.pyc``) and cache folders (``__pycache__``, ``.ipynb_checkpoints``) are left
    out; files are sorted by their path relative to ``package_dir``.
    """
    root = Path(package_dir) if package_dir is not None else _package_dir()
    if not root.is_dir():
        raise NotADirectoryError(f"package folder not found: {root}")
    files = [
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix not in _SKIP_SUFFIXES
        and not any(part in _SKIP_DIRS for part in p.relative_to(root).parts)
    ]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def package_fingerprint(package_dir: str | os.PathLike[str] | None = None) -> str:
    """:func:`stable_hash` of *relative path -> file digest* over :func:`package_files`.

    Independent of where the folder lives; changes with any source or data file's content,
    name or presence.
    """
    root = Path(package_dir) if package_dir is not None else _package_dir()
    return stable_hash(
        {p.relative_to(root).as_posix(): file_digest(p) for p in package_files(root)}
    )


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, then rename).

    Creates the parent folders. The temporary file is hidden (``.<name>.<random>.tmp``) and
    removed if writing fails. The new file gets the default permissions (umask). Returns the
    path written.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"atomic_write_bytes needs bytes, got {type(data).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write_bytes`); UTF-8 by default."""
    if not isinstance(text, str):
        raise TypeError(f"atomic_write_text needs str, got {type(text).__name__}")
    return atomic_write_bytes(path, text.encode(encoding))


def default_cache_dir() -> Path:
    """``$EHRCAUSAL_CACHE`` if set, else ``data/cache`` of the project (or of the cwd)."""
    env = os.environ.get("EHRCAUSAL_CACHE")
    if env:
        return Path(env).expanduser()
    root = project_root()
    return (root if root is not None else Path.cwd()) / "data" / "cache"


_FINGERPRINT: str | None = None


def _fingerprint() -> str:
    """The installed package's fingerprint, computed once per process."""
    global _FINGERPRINT
    if _FINGERPRINT is None:
        _FINGERPRINT = package_fingerprint()
    return _FINGERPRINT


class ResultCache:
    """JSON records keyed by a work description; ``None`` root disables caching."""

    def __init__(self, root: str | os.PathLike | None, namespace: str = "results") -> None:
        self.root = None if root is None else Path(root) / namespace

    def _path(self, key: Any) -> Path:
        assert self.root is not None
        ident = {"key": key, "version": __version__, "code": _fingerprint()}
        return self.root / f"{stable_hash(ident)}.json"

    def get(self, key: Any) -> Any | None:
        """The value stored under ``key``, or ``None`` (absent, damaged, or caching disabled)."""
        if self.root is None:
            return None
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))["value"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
            return None  # a damaged record is recomputed

    def put(self, key: Any, value: Any) -> None:
        """Store ``value`` under ``key`` atomically (nothing when caching is disabled)."""
        if self.root is None:
            return
        atomic_write_text(self._path(key), json.dumps({"key": key, "value": value}, default=str))
