"""On-disk caching of intermediate results, written atomically so interrupted runs resume.

A :class:`ResultCache` maps a key (any JSON-serialisable description of a unit of work: data
set, replicate, learner, parameters, package version) to a small JSON record stored under
``root/<namespace>/<sha256(key)>.json``. Files are written to a temporary name and renamed, so
a crash never leaves a half-written record; a re-run skips the work already done.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from . import __version__


def stable_hash(obj: Any) -> str:
    """SHA-256 of the canonical JSON form of ``obj`` (sorted keys)."""
    text = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def package_fingerprint() -> str:
    """Hash of the package's source files, so cached results die with the code that made them."""
    root = Path(__file__).parent
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.suffix in (".py", ".json") and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def default_cache_dir() -> Path:
    """``$EHRCAUSAL_CACHE`` if set, else ``data/cache`` of the project (or of the cwd)."""
    env = os.environ.get("EHRCAUSAL_CACHE")
    if env:
        return Path(env).expanduser()
    from .data._paths import project_root

    root = project_root()
    return (root if root is not None else Path.cwd()) / "data" / "cache"


_FINGERPRINT: str | None = None


def _fingerprint() -> str:
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
        if self.root is None:
            return None
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())["value"]
        except (json.JSONDecodeError, KeyError):
            return None  # a damaged record is recomputed

    def put(self, key: Any, value: Any) -> None:
        if self.root is None:
            return
        atomic_write_text(self._path(key), json.dumps({"key": key, "value": value}, default=str))
