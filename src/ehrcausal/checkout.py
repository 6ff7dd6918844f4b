"""Where the project checkout is: the one rule for finding the repository's folders.

A checkout is recognised by its book configuration (``_config.yml``) beside the folder a caller
needs (``data/`` for the loaders and the cache, ``notebooks/`` for the runner). This module is a
leaf of the package's import graph: it imports no other ``ehrcausal`` module.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["project_root"]


def project_root(start: Path | None = None, marker: str = "data") -> Path | None:
    """The nearest ancestor of ``start`` (default: cwd) holding ``_config.yml`` and ``marker/``.

    ``None`` when no ancestor qualifies (for example, the package installed from a wheel and run
    outside a checkout).
    """
    here = (start or Path.cwd()).resolve()
    for p in (here, *here.parents):
        if (p / "_config.yml").is_file() and (p / marker).is_dir():
            return p
    return None
