"""Where data live: the repository's ``data/<name>/``, unless ``$EHRCAUSAL_DATA/<name>`` exists.

The public data sets the book uses (the IHDP realizations) ship in the repository's ``data/``
folder. The environment variable ``EHRCAUSAL_DATA`` is only an override for data a user brings
(their own copy of a data set, or credentialed data such as MIMIC-III): a data set folder
``<name>`` is looked up, in this order, in

1. ``data_dir/<name>`` when a loader is given ``data_dir`` explicitly (nothing else is tried);
2. ``$EHRCAUSAL_DATA/<name>`` when the variable is set and that folder exists;
3. ``data/<name>`` of the project checkout, found from the package's location and, failing that,
   from the working directory (the nearest ancestor holding ``_config.yml`` and ``data/``).

When none of them exists the lookup raises :class:`FileNotFoundError` naming every folder it
tried and ``data/README.md``.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..checkout import project_root

ENV_VAR = "EHRCAUSAL_DATA"
README = "data/README.md"


def repository_data_dirs() -> list[Path]:
    """The ``data/`` folders of the project checkout: the package's own, then the cwd's."""
    out: list[Path] = []
    for start in (Path(__file__).resolve().parent, None):
        root = project_root(start)
        if root is not None and root / "data" not in out:
            out.append(root / "data")
    return out


def candidate_dirs(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders that may hold data set ``name``, in lookup order (they may not exist)."""
    if data_dir is not None:
        return [Path(data_dir).expanduser() / name]
    out: list[Path] = []
    env = os.environ.get(ENV_VAR)
    if env:
        out.append(Path(env).expanduser() / name)
    out.extend(d / name for d in repository_data_dirs())
    return out


def dataset_dir(name: str, data_dir: str | os.PathLike | None = None) -> Path:
    """The first existing folder of :func:`candidate_dirs`; ``FileNotFoundError`` if none."""
    tried = candidate_dirs(name, data_dir)
    for folder in tried:
        if folder.is_dir():
            return folder
    where = ", ".join(str(p) for p in tried) or "(no project checkout found from here)"
    raise FileNotFoundError(
        f"data set folder {name}/ not found; looked in: {where}. The repository ships it in "
        f"data/{name}/ (see {README}); to use another copy set {ENV_VAR} to the folder that "
        f"contains {name}/ or pass data_dir=."
    )
