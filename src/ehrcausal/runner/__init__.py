"""The study runner: execute the chapters with papermill per profile, cache them, build the book.

Usage (from the repository root)::

    python -m ehrcausal.runner list                       # chapters and whether they are current
    python -m ehrcausal.runner run --profile smoke        # execute every notebooks/*.ipynb
    python -m ehrcausal.runner run --profile paper --device cuda --jobs 1
    python -m ehrcausal.runner run -f my_params.yml --chapters ihdp_benchmark --force
    python -m ehrcausal.runner build                      # Jupyter Book -> _build/html (-W)
    python -m ehrcausal.runner params --profile paper ihdp_benchmark > paper.yml  # papermill -f

(``python -m ehrcausal.study`` is the old name and does the same.)

How a chapter is run
--------------------
1. **Parameters** (:mod:`.params`). The notebook's own ``parameters`` cell holds the smoke
   values. They are overridden by ``notebooks/params/<profile>.yml`` (a mapping *chapter stem*
   -> *{name: value}*, or the file given with ``-f``), and ``device`` is added when
   ``--device`` is given. Only the overrides are injected: papermill adds an
   ``injected-parameters`` cell after the ``parameters`` cell. Every command checks the whole
   parameters file first: a chapter that does not exist, a parameter its ``parameters`` cell
   does not define, or a value not of the default's type is an ``error:`` line (exit status 2).
2. **Cache** (:mod:`.plan`). The chapter's content hash is :func:`ehrcausal.cache.stable_hash`
   of the notebook's digest, the resolved parameters, the profile, the versions of the key
   packages and :func:`ehrcausal.cache.package_fingerprint` of the installed ``ehrcausal``
   package (every source and data file). A chapter whose published notebook carries this hash
   in its own metadata (and parses as a notebook) is skipped (``--force`` reruns it); the
   manifest alone never decides.
3. **Execution** (:mod:`.execute`, :mod:`.run`). papermill runs the notebook in a kernel started
   from *this* interpreter (``sys.executable -m ipykernel_launcher``, so the virtualenv's
   ipykernel is the one used and nothing is registered globally), with ``book/chapters/`` (the
   folder the executed chapter is published in, where nbval re-executes it) as working
   directory and ``EHRCAUSAL_PROFILE=<profile>`` in its environment. The executed notebook is
   published atomically as ``book/chapters/<stem>.ipynb`` only on success. A failing chapter's
   partial notebook goes to ``_build/failed/<stem>.ipynb``; the runner reports the failing cell
   and exception, runs the other chapters and exits non-zero.
4. **Manifest** (:mod:`.manifest`). ``book/_generated/manifest.json`` records, per chapter, the
   profile, device, wall time, status, commit, content hash and time (UTC), with the package
   versions; ``book/_generated/manifest.md`` renders it as a table for the reproducibility page.
   Each record is merged in under a file lock, so overlapping runs keep each other's records.
5. **Book** (:mod:`.book`). ``build`` checks the vendored MathJax and the pages of ``_toc.yml``
   and runs Jupyter Book with warnings as errors. The command line is :mod:`.cli`.
"""

from __future__ import annotations

from .book import build_book, missing_mathjax, missing_toc_files
from .cli import main
from .execute import ChapterResult, glued_scalar, sweep_stale_temp_files
from .manifest import (
    read_manifest,
    render_manifest_markdown,
    update_manifest,
    write_manifest_markdown,
)
from .params import (
    PROFILES,
    ParameterError,
    check_parameter,
    discover_chapters,
    load_params_file,
    notebook_parameters,
    profile_overrides,
    resolve_parameters,
    validate_overrides,
)
from .paths import StudyPaths, find_root
from .plan import (
    ChapterTask,
    checked_overrides,
    content_hash,
    is_current,
    package_versions,
    plan_chapters,
    published_record,
)
from .run import run_chapters

__all__ = [
    "PROFILES",
    "StudyPaths",
    "find_root",
    "ChapterResult",
    "ChapterTask",
    "ParameterError",
    "check_parameter",
    "validate_overrides",
    "checked_overrides",
    "published_record",
    "sweep_stale_temp_files",
    "update_manifest",
    "discover_chapters",
    "notebook_parameters",
    "load_params_file",
    "profile_overrides",
    "resolve_parameters",
    "content_hash",
    "package_versions",
    "plan_chapters",
    "is_current",
    "run_chapters",
    "glued_scalar",
    "read_manifest",
    "render_manifest_markdown",
    "write_manifest_markdown",
    "missing_toc_files",
    "missing_mathjax",
    "build_book",
    "main",
]
