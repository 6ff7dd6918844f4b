"""Where data live: ``$EHRCAUSAL_DATA`` if set, else ``data/raw`` of the project checkout."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

ENV_VAR = "EHRCAUSAL_DATA"


def project_root(start: Path | None = None) -> Path | None:
    """The nearest ancestor of ``start`` (default: cwd) that holds ``_config.yml`` and ``data/``."""
    here = (start or Path.cwd()).resolve()
    for p in (here, *here.parents):
        if (p / "_config.yml").is_file() and (p / "data").is_dir():
            return p
    return None


def data_root(data_dir: str | os.PathLike | None = None) -> Path:
    """Resolve the folder that holds the data sets (``ihdp_npci/`` etc.)."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    root = project_root()
    return (root / "data" / "raw") if root is not None else Path("data") / "raw"


def sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
